"""The guidance map ``z = g(r, g, b)`` in [0, 1] that picks a pixel's depth in the bilateral grid.

The paper calls it a "learned lookup table". Here it is, as in HDRNet, a learned per-channel
curve followed by a channel mix:

    z = clamp(bias + sum_c mix_c * curve_c(clamp(I_c, 0, 1)), 0, 1)

``curve_c`` is piecewise linear through ``K`` knot values at ``linspace(0, 1, K)`` (a 1-D lookup
table with linear interpolation). Initialisation: identity curves, ``mix`` = Rec. 709 luma
weights, ``bias`` = 0, i.e. ``z`` = the luma of the (gamma-encoded) sRGB pixel.

Parameters may be shared (a :class:`GuidanceMap` module) or per image (``knots [B, 3, K]``,
``mix [B, 3]``, ``bias [B, 1]``, predicted by the bilateral adapter). The torch evaluation
(a gather-based lookup), :func:`evaluate_guidance_numpy` and the fused CPU kernel (both on the
ReLU form of :func:`guidance_relu_form`) are the same function and agree to float rounding.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["LUMA_709", "DEFAULT_KNOTS", "identity_knots", "evaluate_guidance", "evaluate_guidance_numpy",
           "guidance_relu_form", "GuidanceMap"]

#: Rec. 709 luma weights (sRGB primaries)
LUMA_709 = (0.2126, 0.7152, 0.0722)
DEFAULT_KNOTS = 16


def identity_knots(n_knots: int = DEFAULT_KNOTS, dtype=torch.float32) -> torch.Tensor:
    """``[3, K]`` knot values of the identity curve."""
    return torch.linspace(0.0, 1.0, n_knots, dtype=dtype).expand(3, n_knots).clone()


def _as_batched(knots: torch.Tensor, mix: torch.Tensor, bias: torch.Tensor, B: int):
    if knots.ndim == 2:
        knots = knots.unsqueeze(0)
    if mix.ndim == 1:
        mix = mix.unsqueeze(0)
    knots = knots.expand(B, -1, -1)
    mix = mix.expand(B, -1)
    bias = bias.reshape(-1, 1) if bias.ndim <= 1 else bias
    if bias.shape[0] == 1 and B > 1:
        bias = bias.expand(B, 1)
    return knots, mix, bias


def evaluate_guidance(image: torch.Tensor, knots: torch.Tensor, mix: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Guidance map of ``image`` float ``[B, 3, H, W]`` -> ``[B, H, W]`` in [0, 1] (differentiable).

    ``knots`` ``[3, K]`` or ``[B, 3, K]``; ``mix`` ``[3]`` or ``[B, 3]``; ``bias`` ``[1]`` or ``[B, 1]``.
    """
    B, _, H, W = image.shape
    knots, mix, bias = _as_batched(knots, mix, bias, B)
    K = knots.shape[-1]
    # Piecewise-linear lookup by gather: index of the knot segment and the fraction within it.
    # (Equal in exact arithmetic to the ReLU form the fused CPU kernel uses; differs by float
    # rounding, ~1e-7. The gather costs O(1) per pixel instead of O(K).)
    t = image.clamp(0.0, 1.0).reshape(B, 3, H * W) * (K - 1)
    idx = t.detach().floor().clamp(0, K - 2).long()
    frac = t - idx.to(t.dtype)
    k0 = torch.gather(knots, 2, idx)
    k1 = torch.gather(knots, 2, idx + 1)
    curve = k0 + frac * (k1 - k0)  # [B, 3, H*W]
    z = (mix.unsqueeze(-1) * curve).sum(1) + bias.reshape(B, 1)
    return z.clamp(0.0, 1.0).view(B, H, W)


def guidance_relu_form(knots, mix, bias) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Guidance parameters -> the ReLU form the fused CPU kernel evaluates.

    The guidance map is ``z = clamp(bias + sum_c mix_c * curve_c(clamp(I_c, 0, 1)), 0, 1)`` with
    ``curve_c`` piecewise linear through ``knots[c]`` (``K`` values at ``linspace(0, 1, K)``).
    A piecewise-linear curve equals ``knots[c,0] + sum_{i<K-1} dslope[c,i]*relu(v - i/(K-1))``
    with ``dslope`` the slope changes. ``knots [3, K]``, ``mix [3]``, ``bias [1]`` -> ``(gcoef
    [3, K-1] = mix*dslope, thr [K-1], base [1] = bias + sum_c mix_c*knots[c,0])`` as float32 numpy.
    """
    kn = np.asarray(knots, np.float64).reshape(3, -1)
    mx = np.asarray(mix, np.float64).reshape(3)
    K = kn.shape[1]
    slopes = np.diff(kn, axis=1) * (K - 1)  # [3, K-1]
    dslope = np.concatenate([slopes[:, :1], np.diff(slopes, axis=1)], axis=1)
    gcoef = (mx[:, None] * dslope).astype(np.float32)
    thr = (np.arange(K - 1) / (K - 1)).astype(np.float32)
    base = np.array([float(np.asarray(bias, np.float64).reshape(-1)[0]) + float((mx * kn[:, 0]).sum())], np.float32)
    return np.ascontiguousarray(gcoef), thr, base


def evaluate_guidance_numpy(image_hwc: np.ndarray, knots, mix, bias) -> np.ndarray:
    """Numpy twin of :func:`evaluate_guidance` for one ``[H, W, 3]`` float32 image -> ``[H, W]``."""
    gcoef, thr, base = guidance_relu_form(knots, mix, bias)
    v = np.clip(np.asarray(image_hwc, np.float32), 0.0, 1.0)
    z = np.full(v.shape[:2], base[0], np.float32)
    for c in range(3):
        vc = v[..., c]
        for i in range(thr.shape[0]):
            z += gcoef[c, i] * np.maximum(vc - thr[i], 0.0)
    return np.clip(z, 0.0, 1.0)


class GuidanceMap(nn.Module):
    """Learned guidance map with shared parameters (initialised to luma).

    ``forward(image [B, 3, H, W]) -> [B, H, W]`` in [0, 1]. ``params(delta)`` returns the
    (knots, mix, bias) after adding optional per-image offsets predicted by an adapter.
    """

    def __init__(self, n_knots: int = DEFAULT_KNOTS) -> None:
        super().__init__()
        self.n_knots = n_knots
        self.knots = nn.Parameter(identity_knots(n_knots))
        self.mix = nn.Parameter(torch.tensor(LUMA_709, dtype=torch.float32))
        self.bias = nn.Parameter(torch.zeros(1))

    @property
    def n_params(self) -> int:
        """Number of values of one parameter set (for an adapter that predicts offsets)."""
        return 3 * self.n_knots + 3 + 1

    def params(self, delta: torch.Tensor | None = None):
        """``(knots [B|1, 3, K], mix [B|1, 3], bias [B|1, 1])``; ``delta`` ``[B, n_params]`` offsets."""
        knots = self.knots.unsqueeze(0)
        mix = self.mix.unsqueeze(0)
        bias = self.bias.view(1, 1)
        if delta is not None:
            K = self.n_knots
            knots = knots + delta[:, : 3 * K].view(-1, 3, K)
            mix = mix + delta[:, 3 * K: 3 * K + 3]
            bias = bias + delta[:, 3 * K + 3: 3 * K + 4]
        return knots, mix, bias

    def forward(self, image: torch.Tensor, delta: torch.Tensor | None = None) -> torch.Tensor:
        knots, mix, bias = self.params(delta)
        return evaluate_guidance(image, knots, mix, bias)
