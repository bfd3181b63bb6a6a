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

    The 7-point Laplacian ``sum_axis (g[i-1] - 2 g[i] + g[i+1])`` over the (depth, y, x) axes,
    with replicate padding (a constant continuation at the border, so a grid that is affine
    along an axis costs nothing there). ``weights`` scale the (depth, y, x) second differences:
    smoothness along depth keeps the edit a smooth function of intensity, along y/x keeps it
    spatially smooth. An identity or any affine grid has zero penalty.
    """
    if grid.ndim != 5:
        raise ValueError(f"laplacian_smoothness: grid must be [B, 12, D, Hg, Wg], got {tuple(grid.shape)}")
    B, C, D, H, W = grid.shape
    g = F.pad(grid.reshape(B * C, 1, D, H, W), (1, 1, 1, 1, 1, 1), mode="replicate").squeeze(1)
    centre = g[:, 1:-1, 1:-1, 1:-1]
    lap = (weights[0] * (g[:, :-2, 1:-1, 1:-1] + g[:, 2:, 1:-1, 1:-1] - 2 * centre)
           + weights[1] * (g[:, 1:-1, :-2, 1:-1] + g[:, 1:-1, 2:, 1:-1] - 2 * centre)
           + weights[2] * (g[:, 1:-1, 1:-1, :-2] + g[:, 1:-1, 1:-1, 2:] - 2 * centre))
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
