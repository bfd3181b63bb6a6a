"""The reference slice-and-apply: ``torch.nn.functional.grid_sample``. It defines the convention.

Convention (DESIGN.md, HDRNet layout)
-------------------------------------
* ``grid``: float32 ``[B, 12, D, Hg, Wg]``; coefficient ``k = 4*c + j`` is ``A[c][j]`` of the
  3x4 affine colour transform, ``A[c][3]`` being the offset.
* ``guide``: float32 ``[B, H, W]`` in [0, 1] (values outside are clamped by the border rule).
* ``image``: float32 ``[B, 3, H, W]`` (RGB, nominally in [0, 1]).
* The coefficients at pixel ``(x, y)`` are ``F.grid_sample(grid, g, mode="bilinear",
  padding_mode="border", align_corners=False)`` at ``g = ((x+0.5)/W*2-1, (y+0.5)/H*2-1,
  guide*2-1)``; output channel ``c`` is ``sum_{j<3} A[c][j]*image_j + A[c][3]``.
* Strength ``s`` scales the edit linearly in the affine space, ``A_s = I + s*(A - I)``.
  Slicing is linear in the grid, so this equals ``image + s*(edited - image)``; it is computed
  in that form so that ``s = 0`` returns the input bit-exactly and ``s > 1`` amplifies.
* Regional control: a soft ``mask`` ``[B, H, W]`` in [0, 1] multiplies the strength per pixel
  (``A_m = I + m*s*(A - I)``). Blending per pixel in coefficient space is exact (no seams
  beyond those of the mask itself) because slicing is linear in the coefficients.

This path materialises the per-pixel 12-channel coefficient tensor, runs on any device and is
differentiable with respect to every input (training uses it). The fused kernels
(:mod:`.numba_cpu`, :mod:`.triton_cuda`) must agree with it; :mod:`..slicing` chooses between them.
"""

from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn.functional as F

__all__ = ["N_COEFFS", "StrengthLike", "identity_grid", "apply_strength_to_grid", "blend_grids", "check_shapes",
           "slice_coeffs_reference", "slice_apply_reference", "slice_apply_reference_chunked", "expand_strength"]

#: coefficients per grid cell: a 3x4 affine colour transform
N_COEFFS = 12

StrengthLike = Union[float, torch.Tensor]


def identity_grid(batch: int, depth: int, height: int, width: int, *, dtype=torch.float32,
                  device=None) -> torch.Tensor:
    """The grid whose affine transform is the identity everywhere: ``[B, 12, D, Hg, Wg]``
    with ``A[c][c] = 1`` (``k = 5*c``) and every other coefficient 0."""
    g = torch.zeros(batch, N_COEFFS, depth, height, width, dtype=dtype, device=device)
    for c in range(3):
        g[:, 4 * c + c] = 1.0
    return g


def _identity_coeffs(dtype, device) -> torch.Tensor:
    """``[12]`` identity affine in HDRNet layout."""
    v = torch.zeros(N_COEFFS, dtype=dtype, device=device)
    v[0] = v[5] = v[10] = 1.0
    return v


def apply_strength_to_grid(grid: torch.Tensor, strength: StrengthLike) -> torch.Tensor:
    """``I + s*(grid - I)``: the grid whose slice equals the strength-``s`` edit.

    ``grid`` ``[B, 12, D, Hg, Wg]``; ``strength`` a float or a ``[B]`` tensor. Useful for
    inspection; slice-and-apply applies strength in image space so ``s = 0`` is exact.
    """
    ident = _identity_coeffs(grid.dtype, grid.device).view(1, N_COEFFS, 1, 1, 1)
    s = torch.as_tensor(strength, dtype=grid.dtype, device=grid.device)
    if s.ndim == 1:
        s = s.view(-1, 1, 1, 1, 1)
    return ident + s * (grid - ident)


def blend_grids(grid_a: torch.Tensor, grid_b: Optional[torch.Tensor], mask_lowres: torch.Tensor) -> torch.Tensor:
    """Blend two grids in grid space: ``m*grid_a + (1-m)*grid_b``.

    ``grid_a``/``grid_b`` ``[B, 12, D, Hg, Wg]`` (``grid_b=None`` means the identity grid);
    ``mask_lowres`` ``[B, Hg, Wg]`` or ``[B, H, W]`` in [0, 1] (a full-resolution mask is
    area-averaged down to the grid's spatial size and broadcast along the depth axis). The
    result is smooth across the region boundary because the grid itself is slicing-smooth.
    """
    B, _, D, Hg, Wg = grid_a.shape
    m = mask_lowres.to(grid_a.dtype)
    if m.shape[-2:] != (Hg, Wg):
        m = F.adaptive_avg_pool2d(m.unsqueeze(1), (Hg, Wg)).squeeze(1)
    m = m.view(B, 1, 1, Hg, Wg)
    if grid_b is None:
        grid_b = identity_grid(B, D, Hg, Wg, dtype=grid_a.dtype, device=grid_a.device)
    return grid_b + m * (grid_a - grid_b)


def check_shapes(grid: torch.Tensor, guide: torch.Tensor, image: torch.Tensor) -> None:
    """Raise ``ValueError`` (one line) unless the shapes follow the convention above."""
    if grid.ndim != 5 or grid.shape[1] != N_COEFFS:
        raise ValueError(f"slice_apply: grid must be [B, 12, D, Hg, Wg], got {tuple(grid.shape)}")
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"slice_apply: image must be [B, 3, H, W], got {tuple(image.shape)}")
    B, _, H, W = image.shape
    if guide.shape != (B, H, W):
        raise ValueError(f"slice_apply: guide must be [B, H, W] = {(B, H, W)}, got {tuple(guide.shape)}")
    if grid.shape[0] != B:
        raise ValueError(f"slice_apply: grid batch {grid.shape[0]} != image batch {B}")


def _pixel_centres(n: int, device, dtype) -> torch.Tensor:
    """``[n]`` normalised pixel-centre coordinates ``(i + 0.5) / n * 2 - 1``."""
    return (torch.arange(n, device=device, dtype=dtype) + 0.5) / n * 2 - 1


def _sampling_grid(guide: torch.Tensor) -> torch.Tensor:
    """``[B, 1, H, W, 3]`` normalised (x, y, z) sample positions for ``grid_sample``."""
    B, H, W = guide.shape
    gx = _pixel_centres(W, guide.device, guide.dtype).view(1, 1, W).expand(B, H, W)
    gy = _pixel_centres(H, guide.device, guide.dtype).view(1, H, 1).expand(B, H, W)
    return torch.stack([gx, gy, guide * 2 - 1], dim=-1).unsqueeze(1)


def slice_coeffs_reference(grid: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    """Per-pixel coefficients ``[B, 12, H, W]`` by ``grid_sample`` (the DESIGN.md definition)."""
    g = _sampling_grid(guide.to(grid.dtype))
    coeffs = F.grid_sample(grid, g, mode="bilinear", padding_mode="border", align_corners=False)
    return coeffs.squeeze(2)


def expand_strength(strength: StrengthLike, mask: Optional[torch.Tensor], like: torch.Tensor):
    """Strength as something broadcastable to ``[B, 1, H, W]`` (scalar, per-batch ``[B]`` or
    map ``[B, H, W]``), multiplied by ``mask`` ``[B, H, W]`` when given."""
    s = strength
    if isinstance(s, torch.Tensor):
        s = s.to(like.dtype)
        if s.ndim == 1:
            s = s.view(-1, 1, 1, 1)
        elif s.ndim == 3:
            s = s.unsqueeze(1)
    if mask is not None:
        s = mask.to(like.dtype).unsqueeze(1) * s
    return s


def slice_apply_reference(grid: torch.Tensor, guide: torch.Tensor, image: torch.Tensor,
                          strength: StrengthLike = 1.0, *, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Reference slice-and-apply via ``grid_sample``; differentiable w.r.t. every input.

    Shapes as in the module docstring; returns ``[B, 3, H, W]`` (same dtype as ``image``,
    not clamped). ``strength``: float, ``[B]`` or ``[B, H, W]`` tensor; ``mask``: optional
    ``[B, H, W]`` in [0, 1] (multiplies the strength per pixel).
    """
    check_shapes(grid, guide, image)
    A = slice_coeffs_reference(grid, guide)  # [B, 12, H, W]
    B, _, H, W = image.shape
    A = A.view(B, 3, 4, H, W)
    edited = (A[:, :, :3] * image.unsqueeze(1)).sum(dim=2) + A[:, :, 3]
    s = expand_strength(strength, mask, image)
    if not isinstance(s, torch.Tensor) and s == 1.0:
        return edited
    return image + s * (edited - image)


def slice_apply_reference_chunked(grid: torch.Tensor, guide: torch.Tensor, image: torch.Tensor,
                                  strength: StrengthLike, mask: Optional[torch.Tensor],
                                  rows: int = 256) -> torch.Tensor:
    """The reference in row bands, without gradients, so memory stays bounded at 4K
    (what runs when no fused kernel is available). Equal to :func:`slice_apply_reference`.

    Row bands are exact: the sample position of a row depends only on the full height, which
    is passed by slicing the grid coordinates, not by re-normalising per band.
    """
    B, _, H, W = image.shape
    out = torch.empty_like(image)
    with torch.no_grad():
        ys = _pixel_centres(H, image.device, grid.dtype)
        xs = _pixel_centres(W, image.device, grid.dtype)
        s_full = expand_strength(strength, mask, image)
        for y0 in range(0, H, rows):
            y1 = min(H, y0 + rows)
            h = y1 - y0
            gz = guide[:, y0:y1].to(grid.dtype) * 2 - 1
            g = torch.stack([xs.view(1, 1, W).expand(B, h, W), ys[y0:y1].view(1, h, 1).expand(B, h, W), gz], -1)
            A = F.grid_sample(grid, g.unsqueeze(1), mode="bilinear", padding_mode="border",
                              align_corners=False).squeeze(2).view(B, 3, 4, h, W)
            im = image[:, :, y0:y1]
            ed = (A[:, :, :3] * im.unsqueeze(1)).sum(2) + A[:, :, 3]
            s = s_full
            if isinstance(s, torch.Tensor) and s.ndim == 4 and s.shape[-2] == H:
                s = s[:, :, y0:y1]
            out[:, :, y0:y1] = im + s * (ed - im)
    return out
