"""Soft region masks from simple priors, for local edits of the photo-finishing pipeline.

Every mask is float32 ``[H, W]`` in [0, 1] (1 = fully inside the region) with smooth
(smoothstep) edges, so a local edit blended through it leaves no seam. Geometric masks
take sizes and positions relative to the image (fractions of width/height), so one spec
describes the same region at any resolution.

Four priors (paper Sec. 3.1):

* ``radial``     radial vignette: 0 in the centre, 1 towards the corners (region "edges").
* ``sky``        top band gradient: 1 at the top edge fading to 0 lower down (region "sky").
* ``ellipse``    subject ellipse: 1 inside an ellipse, feathered outside (region "subject",
                 "skin" for a face ellipse; ``invert=True`` gives "background").
* ``luminance``  luminance range: 1 where Rec.709 luma lies in [low, high], ramps of width
                 ``feather`` outside (regions "shadows" / "highlights").

A mask is described by a JSON-able spec dict, e.g. ``{"kind": "sky", "end": 0.45}``; see
:func:`render_mask`. Costs are O(H*W) (the luminance mask's optional spatial smoothing works
on a downsampled copy so it stays O(H*W) at 4K).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

__all__ = [
    "MASK_KINDS",
    "smoothstep",
    "radial_vignette",
    "sky_gradient",
    "subject_ellipse",
    "luminance_range",
    "render_mask",
    "luma",
]

MASK_KINDS = ("radial", "sky", "ellipse", "luminance")

# Rec.709 / sRGB luma weights, applied to gamma-encoded values (a perceptual-ish brightness).
_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def luma(image: np.ndarray) -> np.ndarray:
    """float32 ``[H, W]``: Rec.709 weighted sum of the (gamma-encoded) RGB channels."""
    return np.asarray(image[..., 0] * _LUMA[0] + image[..., 1] * _LUMA[1] + image[..., 2] * _LUMA[2], dtype=np.float32)


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """Hermite ramp: 0 for x <= edge0, 1 for x >= edge1, C1-smooth in between (edge0 != edge1;
    edge0 > edge1 gives the falling ramp)."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates as fractions: y ``[H, 1]``, x ``[1, W]`` in (0, 1)."""
    y = ((np.arange(h, dtype=np.float32) + 0.5) / h)[:, None]
    x = ((np.arange(w, dtype=np.float32) + 0.5) / w)[None, :]
    return y, x


def radial_vignette(h: int, w: int, inner: float = 0.45, outer: float = 1.0,
                    cx: float = 0.5, cy: float = 0.5) -> np.ndarray:
    """Radial vignette mask, float32 ``[H, W]``.

    Distance from (cx, cy) is measured in units where the centre-to-corner distance of a
    centred frame is 1 (aspect-aware: the vignette follows the frame's shape). The mask
    rises smoothly from 0 at ``inner`` to 1 at ``outer`` (0 <= inner < outer).
    """
    y, x = _grid(h, w)
    # normalised so a corner of the frame sits at distance 1 from the centre
    d = np.sqrt(((x - cx) / 0.5) ** 2 + ((y - cy) / 0.5) ** 2) / np.sqrt(2.0)
    return smoothstep(inner, outer, d)


def sky_gradient(h: int, w: int, start: float = 0.15, end: float = 0.5) -> np.ndarray:
    """Top-band gradient, float32 ``[H, W]``: 1 above ``start`` (fraction of height from the
    top), smoothly 0 below ``end`` (start < end)."""
    y, _ = _grid(h, w)
    col = smoothstep(end, start, y)  # falling ramp: 1 at the top
    return np.ascontiguousarray(np.broadcast_to(col, (h, w)), dtype=np.float32)


def subject_ellipse(h: int, w: int, cx: float = 0.5, cy: float = 0.5, rx: float = 0.25,
                    ry: float = 0.35, feather: float = 0.35, invert: bool = False) -> np.ndarray:
    """Soft ellipse, float32 ``[H, W]``: 1 inside the ellipse with centre (cx, cy) and semi-axes
    (rx, ry) (fractions of width, height), falling to 0 at ``1 + feather`` ellipse radii.
    ``invert=True`` returns 1 - mask (the background)."""
    y, x = _grid(h, w)
    r = np.sqrt(((x - cx) / max(rx, 1e-6)) ** 2 + ((y - cy) / max(ry, 1e-6)) ** 2)
    m = smoothstep(1.0 + feather, 1.0, r)
    return (1.0 - m).astype(np.float32) if invert else m


def luminance_range(image: np.ndarray, low: float = 0.0, high: float = 0.35, feather: float = 0.15,
                    blur: float = 0.01) -> np.ndarray:
    """Luminance-range mask of ``image`` (float32 ``[H, W, 3]`` in [0, 1]) -> float32 ``[H, W]``.

    1 where luma is within [low, high], smoothstep ramps of width ``feather`` outside (a range
    touching 0 or 1 has no ramp on that side). ``blur`` > 0 smooths the mask spatially with a
    Gaussian of that sigma (fraction of the longer side) so it follows regions, not pixel noise;
    it is computed on a copy downsampled to a few px per sigma (O(H*W) at any size).
    """
    y = luma(image)
    m = np.ones_like(y)
    if low > 0.0:
        m *= smoothstep(low - feather, low, y)
    if high < 1.0:
        m *= smoothstep(high + feather, high, y)
    if blur > 0:
        m = _smooth(m, blur)
    return np.clip(m, 0.0, 1.0).astype(np.float32)


def _smooth(m: np.ndarray, sigma_rel: float) -> np.ndarray:
    """Gaussian smoothing with sigma = ``sigma_rel`` * long side, via downsample-blur-upsample."""
    h, w = m.shape
    sigma = sigma_rel * max(h, w)
    # Downsample so sigma is ~4 px: the blur then costs O(H*W) whatever the resolution.
    factor = max(1, int(sigma // 4))
    if factor > 1:
        hh, ww = -(-h // factor), -(-w // factor)
        pad = np.pad(m, ((0, hh * factor - h), (0, ww * factor - w)), mode="edge")
        small = pad.reshape(hh, factor, ww, factor).mean(axis=(1, 3))
        small = ndimage.gaussian_filter(small, sigma / factor, mode="nearest")
        # bilinear upsample back to the full grid (pixel-centre aligned)
        yy = (np.arange(h) + 0.5) / factor - 0.5
        xx = (np.arange(w) + 0.5) / factor - 0.5
        return _bilinear(small, yy, xx)
    return ndimage.gaussian_filter(m, sigma, mode="nearest").astype(np.float32)


def _bilinear(small: np.ndarray, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """Separable bilinear sampling of ``small`` at fractional rows ``yy`` and columns ``xx``."""
    hs, ws = small.shape
    yy = np.clip(yy, 0, hs - 1)
    xx = np.clip(xx, 0, ws - 1)
    y0 = np.floor(yy).astype(np.int64)
    x0 = np.floor(xx).astype(np.int64)
    y1 = np.minimum(y0 + 1, hs - 1)
    x1 = np.minimum(x0 + 1, ws - 1)
    fy = (yy - y0).astype(np.float32)[:, None]
    fx = (xx - x0).astype(np.float32)[None, :]
    rows = small[y0] * (1 - fy) + small[y1] * fy  # [H, ws]
    return (rows[:, x0] * (1 - fx) + rows[:, x1] * fx).astype(np.float32)


def render_mask(spec: dict[str, Any], image: np.ndarray) -> np.ndarray:
    """Render a JSON-able mask ``spec`` for ``image`` (float32 ``[H, W, 3]``) -> float32 ``[H, W]``.

    ``spec["kind"]`` is one of :data:`MASK_KINDS`; the other keys are the keyword arguments
    of the matching function (:func:`radial_vignette`, :func:`sky_gradient`,
    :func:`subject_ellipse`, :func:`luminance_range`). ``"region"`` (the region's name in
    words) and ``"invert"`` (for every kind) are also accepted.
    """
    spec = dict(spec)
    kind = spec.pop("kind", None)
    spec.pop("region", None)
    invert = bool(spec.pop("invert", False))
    h, w = image.shape[:2]
    if kind == "radial":
        m = radial_vignette(h, w, **spec)
    elif kind == "sky":
        m = sky_gradient(h, w, **spec)
    elif kind == "ellipse":
        m = subject_ellipse(h, w, **spec)
    elif kind == "luminance":
        m = luminance_range(image, **spec)
    else:
        raise ValueError(f"unknown mask kind {kind!r}; expected one of {MASK_KINDS}")
    return (1.0 - m).astype(np.float32) if invert else m
