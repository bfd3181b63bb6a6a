"""Training losses of the bilateral model (paper Sec. 3.3): reconstruction, grid smoothness, gamut.

All losses return a scalar float tensor (mean over the batch) and are differentiable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["l1_loss", "laplacian_smoothness", "gamut_penalty", "bilateral_loss"]


def l1_loss(output: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error between ``[B, 3, H, W]`` images (optionally per-pixel weighted by
    ``weight`` ``[B, 1|3, H, W]``)."""
    d = (output - target).abs()
    if weight is None:
        return d.mean()
    return (d * weight).sum() / (weight.expand_as(d).sum().clamp_min(1e-8))


def laplacian_smoothness(grid: torch.Tensor, weights: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> torch.Tensor:
    """Mean squared discrete 3-D Laplacian of a bilateral grid ``[B, 12, D, Hg, Wg]``.

    The 7-point Laplacian ``sum_axis w_axis*(g[i-1] - 2 g[i] + g[i+1])`` over the (depth, y, x)
    axes, evaluated at the cells where every used neighbour exists (no padding: an axis shorter
    than 3 contributes no term and does not shrink the others). Any grid that is affine in
    (depth, y, x) -- the identity grid, a global affine colour transform -- costs exactly 0.
    ``weights`` scale the depth / y / x terms: depth smoothness keeps the edit a smooth function
    of intensity, y/x smoothness keeps it spatially smooth.
    """
    if grid.ndim != 5:
        raise ValueError(f"laplacian_smoothness: grid must be [B, 12, D, Hg, Wg], got {tuple(grid.shape)}")
    sizes = grid.shape[2:]
    inner = tuple(slice(1, -1) if n >= 3 else slice(None) for n in sizes)
    lap = torch.zeros_like(grid[(Ellipsis,) + inner])
    used = False
    for ax, (n, w) in enumerate(zip(sizes, weights)):
        if n < 3 or w == 0:
            continue
        dim = 2 + ax
        lo = [slice(None)] * 2 + list(inner)
        hi = list(lo)
        lo[dim] = slice(0, -2)
        hi[dim] = slice(2, None)
        lap = lap + w * (grid[tuple(lo)] + grid[tuple(hi)] - 2 * grid[(slice(None), slice(None)) + inner])
        used = True
    if not used:
        return grid.sum() * 0.0
    return lap.square().mean()


def gamut_penalty(output: torch.Tensor, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    """Soft out-of-gamut penalty (the paper's Eq. 8 in spirit): mean of
    ``relu(lo - x)^2 + relu(x - hi)^2`` over the *unclamped* output ``[B, 3, H, W]``.

    Zero inside the gamut; grows smoothly (quadratically) outside, so the affine edits learn to
    stay displayable instead of relying on a hard clip whose gradient is zero. (The paper's
    exact weighting is not public; this hinge-squared form is our reading.)
    """
    return (F.relu(lo - output).square() + F.relu(output - hi).square()).mean()


def bilateral_loss(output: torch.Tensor, target: torch.Tensor, grid: torch.Tensor, *,
                   w_smooth: float = 0.05, w_gamut: float = 1.0, identity: torch.Tensor | None = None,
                   weight: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Total training loss ``L1 + w_smooth*Laplacian(grid - identity) + w_gamut*gamut(output)``.

    ``output`` is the unclamped sliced image ``[B, 3, H, W]``; the L1 term uses it clamped to
    [0, 1] (what a user sees) while the gamut term sees the excursions. Returns
    ``(loss, {"l1": ..., "smooth": ..., "gamut": ...})`` with the parts as floats.
    """
    rec = l1_loss(output.clamp(0.0, 1.0), target, weight)
    g = grid if identity is None else grid - identity
    smooth = laplacian_smoothness(g)
    gamut = gamut_penalty(output)
    total = rec + w_smooth * smooth + w_gamut * gamut
    return total, {"l1": float(rec.detach()), "smooth": float(smooth.detach()), "gamut": float(gamut.detach())}
