"""Slice-and-apply, choosing the backend: the one entry point inference and the API call.

The convention (grid layout, sample positions, strength, mask) is defined by the reference
(:mod:`.kernels.reference`, ``grid_sample``); the fused kernels agree with it to ~1e-6:

* ``numba`` (:mod:`.kernels.numba_cpu`): CPU tensors and the ``[H, W, 3]`` numpy path;
* ``triton`` (:mod:`.kernels.triton_cuda`): CUDA tensors;
* ``reference``: whenever autograd needs gradients (any input requires grad and grad mode is
  on), when asked for, or when the fused kernel for the device cannot run here.

No silent slow path: when the fused kernel cannot run, the reference runs (correct, several
times slower and more memory-hungry at 4K), a ``RuntimeWarning`` says so once per process and
reason, and :func:`backend_for` reports it so that an adapter records it (``ours`` puts
``backend`` and ``backend_note`` in its ``info()``, which ``run.json`` records).
"""

from __future__ import annotations

import threading
import warnings
from typing import Optional, Union

import numpy as np
import torch

from .guidance import evaluate_guidance, evaluate_guidance_numpy, guidance_relu_form
from .kernels import numba_cpu, triton_cuda
from .kernels.reference import (
    StrengthLike,
    check_shapes,
    expand_strength,
    identity_grid,
    slice_apply_reference,
    slice_apply_reference_chunked,
)

__all__ = ["BACKENDS", "backend_for", "slice_apply", "slice_apply_regional", "slice_apply_hwc", "apply_to_image",
           "grid_for_kernel", "warmup"]

#: names :func:`backend_for` returns and ``slice_apply(backend=...)`` accepts (besides ``"auto"``)
BACKENDS = ("reference", "numba", "triton")

_warned: set[str] = set()
_warned_lock = threading.Lock()


def backend_for(device: str = "cpu") -> tuple[str, Optional[str]]:
    """``(backend, reason)``: the backend inference on ``device`` runs when no gradient is
    needed, and, when that is the reference, why the fused kernel cannot run (else None)."""
    cuda = str(device).startswith("cuda")
    why = triton_cuda.unavailable_reason() if cuda else numba_cpu.unavailable_reason()
    if why is None:
        return ("triton" if cuda else "numba"), None
    return "reference", f"fused {'CUDA' if cuda else 'CPU'} kernel unavailable: {why}"


def _warn_fallback(reason: str) -> None:
    """Say once per process (and reason) that the slow reference runs instead of a fused kernel."""
    with _warned_lock:
        if reason in _warned:
            return
        _warned.add(reason)
    warnings.warn(f"slice_apply: {reason}; running the grid_sample reference (correct, but several times "
                  "slower at 4K; latency figures measured this way are not the fused path's)",
                  RuntimeWarning, stacklevel=3)


def _needs_grad(*ts) -> bool:
    return torch.is_grad_enabled() and any(isinstance(t, torch.Tensor) and t.requires_grad for t in ts)


def grid_for_kernel(grid: torch.Tensor) -> np.ndarray:
    """``[B, 12, D, Hg, Wg]`` -> contiguous float32 numpy ``[B, Hg, Wg, D, 12]`` (the CPU
    kernel's layout: a cell's 12 coefficients contiguous)."""
    return np.ascontiguousarray(grid.detach().to("cpu", torch.float32).permute(0, 3, 4, 2, 1).numpy())


def _strength_parts(strength: StrengthLike, mask: Optional[torch.Tensor], B: int, H: int, W: int, device):
    """Split strength (+mask) into a scalar ``s`` and an optional per-pixel map ``[B, H, W]``."""
    smap = None
    s = 1.0
    if isinstance(strength, torch.Tensor) and strength.ndim > 0:
        st = strength.detach().to(device, torch.float32)
        smap = st.view(B, 1, 1).expand(B, H, W) if st.ndim == 1 else st.expand(B, H, W)
    else:
        s = float(strength)
    if mask is not None:
        m = mask.detach().to(device, torch.float32)
        smap = m if smap is None else smap * m
    return s, smap


def slice_apply(grid: torch.Tensor, guide: torch.Tensor, image: torch.Tensor,
                strength: StrengthLike = 1.0, *, mask: Optional[torch.Tensor] = None,
                backend: str = "auto") -> torch.Tensor:
    """Slice ``grid`` at ``guide`` and apply the per-pixel affine transform to ``image``.

    Args:
        grid: float32 ``[B, 12, D, Hg, Wg]`` (HDRNet layout, see :mod:`.kernels.reference`).
        guide: float32 ``[B, H, W]`` in [0, 1].
        image: float32 ``[B, 3, H, W]``.
        strength: float, ``[B]`` or ``[B, H, W]`` tensor; 0 returns ``image`` exactly.
        mask: optional ``[B, H, W]`` soft mask in [0, 1] blending the edit with the identity.
        backend: ``"auto"`` (fused kernel for the image's device when no gradient is needed,
            else the reference), ``"reference"``, ``"numba"`` (CPU) or ``"triton"`` (CUDA).

    Returns: float32 ``[B, 3, H, W]`` on ``image``'s device, not clamped.
    """
    check_shapes(grid, guide, image)
    if backend == "reference" or (backend == "auto" and _needs_grad(grid, guide, image, strength, mask)):
        return slice_apply_reference(grid, guide, image, strength, mask=mask)
    if backend not in ("auto",) + BACKENDS:
        raise ValueError(f"slice_apply: unknown backend {backend!r} (one of auto, {', '.join(BACKENDS)})")
    B, _, H, W = image.shape
    if not isinstance(strength, torch.Tensor) and mask is None and float(strength) == 0.0:
        return image.clone()
    if backend == "auto":
        backend, why = backend_for(image.device.type)
        if backend == "reference":
            _warn_fallback(why)
            return slice_apply_reference_chunked(grid, guide, image, strength, mask)
    with torch.no_grad():
        s, smap = _strength_parts(strength, mask, B, H, W, image.device)
        if backend == "triton":
            return triton_cuda.slice_apply_triton(grid, guide, image, s, smap).to(image.dtype)
        img_np = image.detach().to("cpu", torch.float32).numpy()
        out = np.empty(img_np.shape, np.float32)
        numba_cpu.run(grid_for_kernel(grid), img_np, out, guide=guide.detach().to("cpu", torch.float32).numpy(),
                      smap=None if smap is None else np.ascontiguousarray(smap.cpu().numpy()), s=s)
        return torch.from_numpy(out).to(image.device, image.dtype)


def slice_apply_regional(grid_a: torch.Tensor, grid_b: Optional[torch.Tensor], guide: torch.Tensor,
                         image: torch.Tensor, mask: torch.Tensor, strength: StrengthLike = 1.0,
                         **kw) -> torch.Tensor:
    """Regional edit: grid ``a`` inside the soft ``mask`` ``[B, H, W]``, grid ``b`` outside.

    ``grid_b=None`` means the identity (the region-limited edit of a local instruction).
    Coefficients are blended per pixel, ``A = m*A_a + (1-m)*A_b`` (then strength applies to
    the blended edit), which by linearity equals blending the two applied images.
    """
    if grid_b is None:
        return slice_apply(grid_a, guide, image, strength, mask=mask, **kw)
    out_a = slice_apply(grid_a, guide, image, 1.0, **kw)
    out_b = slice_apply(grid_b, guide, image, 1.0, **kw)
    m = mask.to(image.dtype).unsqueeze(1)
    blended = out_b + m * (out_a - out_b)
    s = expand_strength(strength, None, image)
    if not isinstance(s, torch.Tensor) and s == 1.0:
        return blended
    return image + s * (blended - image)


def slice_apply_hwc(grid: Union[torch.Tensor, np.ndarray], image: np.ndarray, *,
                    guide: Optional[np.ndarray] = None, guidance: Optional[tuple] = None,
                    strength: float = 1.0, mask: Optional[np.ndarray] = None,
                    out: Optional[np.ndarray] = None, clamp: bool = False) -> np.ndarray:
    """CPU slice-and-apply on the suite's image layout, without any layout copy (numba).

    Args:
        grid: ``[12, D, Hg, Wg]`` (or ``[1, 12, ...]``) tensor/array.
        image: float32 numpy ``[H, W, 3]``.
        guide: float32 ``[H, W]`` in [0, 1]; or instead ``guidance=(knots [3, K], mix [3],
            bias [1])``, the guidance-map parameters evaluated inside the kernel (fused).
        strength: float; ``mask``: optional float32 ``[H, W]`` in [0, 1].
        out: optional preallocated ``[H, W, 3]`` float32 output; clamp: clip the result to [0, 1]
            inside the kernel (free) instead of in a separate pass.
    Returns: float32 ``[H, W, 3]``.

    Without numba the chunked reference runs on a planar copy; it warns once and
    ``backend_for("cpu")`` reports it (see the module docstring).
    """
    if (guide is None) == (guidance is None):
        raise ValueError("slice_apply_hwc: give exactly one of guide / guidance")
    g = torch.as_tensor(grid)
    if g.ndim == 4:
        g = g.unsqueeze(0)
    img = np.asarray(image, np.float32)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"slice_apply_hwc: image must be [H, W, 3], got {img.shape}")
    if out is None:
        out = np.empty_like(img)
    if float(strength) == 0.0 and mask is None:
        out[...] = img
        if clamp:
            np.clip(out, 0.0, 1.0, out=out)
        return out
    backend, why = backend_for("cpu")
    if backend == "reference":
        _warn_fallback(why)
        im_t = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]
        if guide is None:
            guide = evaluate_guidance_numpy(img, *guidance)
        gd = torch.from_numpy(np.ascontiguousarray(guide, np.float32))[None]
        mk = None if mask is None else torch.from_numpy(np.asarray(mask, np.float32))[None]
        res = slice_apply_reference_chunked(g.float(), gd, im_t, float(strength), mk)
        out[...] = res[0].permute(1, 2, 0).numpy()
        if clamp:
            np.clip(out, 0.0, 1.0, out=out)
        return out
    view_in = img.transpose(2, 0, 1)[None]
    view_out = out.transpose(2, 0, 1)[None]
    numba_cpu.run(grid_for_kernel(g), view_in, view_out,
                  guide=None if guide is None else np.asarray(guide, np.float32)[None],
                  curve=None if guidance is None else guidance_relu_form(*guidance),
                  smap=None if mask is None else np.asarray(mask, np.float32)[None], s=float(strength), clamp=clamp)
    return out


def apply_to_image(grid: np.ndarray, image: np.ndarray, guidance: tuple, *, strength: float = 1.0,
                   mask: Optional[np.ndarray] = None, device: str = "cpu") -> np.ndarray:
    """A model's full-resolution branch on the suite's layout, on ``device``: ``grid``
    ``[12, D, Hg, Wg]``, ``image`` float32 ``[H, W, 3]``, ``guidance = (knots [3, K], mix [3],
    bias [1])``, optional ``mask`` ``[H, W]`` -> float32 ``[H, W, 3]`` clamped to [0, 1].

    CPU: :func:`slice_apply_hwc` (guidance fused in the kernel, no layout copy). Other devices:
    the guidance map by :func:`~.guidance.evaluate_guidance`, then :func:`slice_apply`."""
    if not str(device).startswith("cuda"):
        return slice_apply_hwc(grid, image, guidance=guidance, strength=strength, mask=mask, clamp=True)
    with torch.no_grad():
        im = torch.from_numpy(np.ascontiguousarray(image, np.float32)).to(device).permute(2, 0, 1)[None].contiguous()
        k, m, b = (torch.from_numpy(np.asarray(a, np.float32)).to(device) for a in guidance)
        guide = evaluate_guidance(im, k[None], m[None], b.reshape(1, 1))
        mk = None if mask is None else torch.from_numpy(np.asarray(mask, np.float32)).to(device)[None]
        out = slice_apply(torch.as_tensor(grid).to(device)[None], guide, im, strength, mask=mk)
        return out.clamp_(0.0, 1.0)[0].permute(1, 2, 0).contiguous().cpu().numpy()


def warmup(full: bool = True) -> None:
    """Compile (or load from numba's on-disk cache) the CPU kernels.

    ``full=False`` does only what a model's inference uses ([H, W, 3] layout, fused guidance
    curve, with and without a mask): a cold compile costs seconds per specialisation, a cached
    load well under one. Without numba there is nothing to compile.
    """
    if numba_cpu.unavailable_reason() is not None:
        return
    grid = identity_grid(1, 2, 2, 2)
    im = np.zeros((3, 3, 3), np.float32)
    curve = (np.tile(np.linspace(0, 1, 4, dtype=np.float32), (3, 1)), np.full(3, 1 / 3, np.float32),
             np.zeros(1, np.float32))
    slice_apply_hwc(grid, im, guidance=curve, strength=0.5)
    slice_apply_hwc(grid, im, guidance=curve, mask=np.ones((3, 3), np.float32))
    if full:
        slice_apply(grid, torch.zeros(1, 3, 3), torch.zeros(1, 3, 3, 3), 0.5, backend="numba")
        slice_apply_hwc(grid, im, guide=np.zeros((3, 3), np.float32), strength=0.5)
