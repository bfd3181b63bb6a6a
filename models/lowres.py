"""The low-resolution view of the input that the model's encoder sees (constant cost per image size).

``area_resize_hwc(image [H, W, 3], out_h, out_w)`` equals
``torch.nn.functional.adaptive_avg_pool2d`` (bin ``i`` covers rows ``floor(i*H/oh)`` to
``ceil((i+1)*H/oh)``), so the network sees the same low-res image at training time (torch, on
small images) and at inference (numba, on 4K images straight from the ``[H, W, 3]`` layout, one
read of the image, no layout copy). Without numba it falls back to torch (the same numbers;
the slice-and-apply fallback is the one that warns, see :mod:`.slicing`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .kernels.numba_cpu import nb as _nb

__all__ = ["area_resize_hwc", "area_resize_torch"]


def area_resize_torch(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``[B, 3, H, W]`` -> ``[B, 3, h, w]`` by adaptive average pooling."""
    return F.adaptive_avg_pool2d(image, size)


if _nb is not None:

    @_nb.njit(parallel=True, cache=True, fastmath=False, nogil=True)
    def _area_nb(img, out):
        H, W, C = img.shape
        oh, ow, _ = out.shape
        for i in _nb.prange(oh):
            y0 = (i * H) // oh
            y1 = -((-(i + 1) * H) // oh)  # ceil
            acc = np.zeros((ow, C), np.float64)
            for y in range(y0, y1):
                for j in range(ow):
                    x0 = (j * W) // ow
                    x1 = -((-(j + 1) * W) // ow)
                    s0 = 0.0
                    s1 = 0.0
                    s2 = 0.0
                    for x in range(x0, x1):
                        s0 += img[y, x, 0]
                        s1 += img[y, x, 1]
                        s2 += img[y, x, 2]
                    acc[j, 0] += s0
                    acc[j, 1] += s1
                    acc[j, 2] += s2
            for j in range(ow):
                x0 = (j * W) // ow
                x1 = -((-(j + 1) * W) // ow)
                n = (y1 - y0) * (x1 - x0)
                for c in range(C):
                    out[i, j, c] = acc[j, c] / n


def area_resize_hwc(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """float32 ``[H, W, 3]`` -> float32 ``[out_h, out_w, 3]`` (adaptive average pooling)."""
    img = np.asarray(image, np.float32)
    if _nb is None:
        t = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]
        return area_resize_torch(t, (out_h, out_w))[0].permute(1, 2, 0).contiguous().numpy()
    out = np.empty((out_h, out_w, 3), np.float32)
    _area_nb(img, out)
    return out
