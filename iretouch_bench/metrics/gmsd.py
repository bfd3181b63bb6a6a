"""GMSD, gradient magnitude similarity deviation (Xue et al. 2014). Lower is better, 0 = identical.

Follows the official MATLAB ``GMSD.m`` as pyiqa's ``gmsd`` metric runs it:

* luma in [0, 255], rounded (see :func:`iretouch_bench.metrics.ssim.to_luma255`);
* 2x2 average then keep every second pixel (``conv2(.., ones(2)/4, 'same')`` then
  ``(1:2:end, 1:2:end)`` in MATLAB; a stride-2 2x2 box here, which is the same samples);
* Prewitt gradients ``[1 0 -1]/3`` with zero padding (MATLAB ``conv2(.., 'same')``);
* ``T = 170``; the score is the sample standard deviation (``std``, divisor N-1, as MATLAB
  and pyiqa) of the similarity map.

Computed in float64. The gradient magnitude is ``sqrt(Ix^2 + Iy^2)`` exactly as in MATLAB
(pyiqa adds 1e-12 inside the root to keep a finite gradient for training; the effect on
the score is below 1e-12 and this module is not used for training).

Two paths, the same numbers (agreement about 1e-15): gray float32 CPU batches, which is what the
fidelity protocol passes, go through the fused numba kernel of :mod:`._gmsd_kernel` (about 10x
faster at 4K; see there why it is exact); anything else (RGB, CUDA, float64) through torch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import _gmsd_kernel
from .running import RunningMean
from .ssim import to_luma255

T_GMSD = 170.0


def _gradient_magnitude(y: torch.Tensor) -> torch.Tensor:
    """``[B, 1, h, w]`` float64 -> Prewitt gradient magnitude, same size (zero padding)."""
    # Prewitt kernels are separable: [1,1,1]^T (x) [1,0,-1] / 3 and its transpose.
    p = F.pad(y, (1, 1, 1, 1))
    # horizontal difference of columns (x+1) - (x-1) is what cross-correlation with [1,0,-1] gives
    dx_cols = p[..., :, :-2] - p[..., :, 2:]
    ix = (dx_cols[..., :-2, :] + dx_cols[..., 1:-1, :] + dx_cols[..., 2:, :]) / 3.0
    dy_rows = p[..., :-2, :] - p[..., 2:, :]
    iy = (dy_rows[..., :, :-2] + dy_rows[..., :, 1:-1] + dy_rows[..., :, 2:]) / 3.0
    return torch.sqrt(ix * ix + iy * iy)


def gmsd(x: torch.Tensor, y: torch.Tensor, quantize: bool = True) -> torch.Tensor:
    """GMSD between a distorted batch ``x`` and reference batch ``y``.

    Args:
        x, y: ``[B, 3, H, W]`` RGB or ``[B, 1, H, W]`` gray, float in [0, 1], H, W >= 2.
        quantize: round luma x255 to integer levels as MATLAB's uint8 images are (default);
            ``False`` keeps the float luma (the ``float`` protocol; torch path, float64).

    Returns:
        ``[B]`` float64; exactly 0.0 for identical inputs.
    """
    if x.shape != y.shape:
        raise ValueError(f"shape mismatch: {tuple(x.shape)} vs {tuple(y.shape)}")
    if min(x.shape[-2:]) < 2:
        raise ValueError(f"image {tuple(x.shape[-2:])} too small for GMSD")
    if quantize and _gmsd_kernel.AVAILABLE and x.shape[1] == 1 and x.dtype == y.dtype == torch.float32 \
            and x.device.type == "cpu" and y.device.type == "cpu":
        # the kernel checks for NaN/inf in the same pass that reads the pixels
        xs, ys = x.detach().numpy(), y.detach().numpy()
        return torch.tensor([_gmsd_kernel.gmsd_gray(xs[b, 0], ys[b, 0], T_GMSD) for b in range(x.shape[0])],
                            dtype=torch.float64)
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise ValueError("NaN or infinite values in GMSD input")
    return _gmsd_torch(x, y, quantize)


def _gmsd_torch(x: torch.Tensor, y: torch.Tensor, quantize: bool = True) -> torch.Tensor:
    """The torch path of :func:`gmsd` (any channels, dtype and device); inputs already checked."""
    X = F.avg_pool2d(to_luma255(x, quantize), kernel_size=2, stride=2)
    Y = F.avg_pool2d(to_luma255(y, quantize), kernel_size=2, stride=2)
    g1 = _gradient_magnitude(X)
    g2 = _gradient_magnitude(Y)
    q = (2 * g1 * g2 + T_GMSD) / (g1 * g1 + g2 * g2 + T_GMSD)
    return torch.std(q.flatten(1), dim=1)


class GMSD(RunningMean):
    """Running mean of :func:`gmsd` over pairs (``update``/``compute``)."""

    def metric(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return gmsd(x, y)
