"""The photo-finishing pipeline (paper Sec. 3.1): global and local tonal/colour edits.

A library for synthesising retouching pairs: :class:`FinishingParams` describes one edit
(JSON-serialisable), :func:`apply_finishing` applies it to a float32 ``[H, W, 3]`` image
in [0, 1] (sRGB-encoded) and returns a new image of the same shape and dtype, and
:func:`sample_params` draws a random edit from documented ranges with a seeded generator.

Operations, in the order they are applied (each is skipped, not computed, when its
parameter is at its identity value, so identity parameters return the input bit-for-bit):

=================  ====================  ========  ==================================================
parameter          range                 identity  effect (sign convention)
=================  ====================  ========  ==================================================
``temperature``    [-1, 1]               0         white balance in linear light; + warmer (R up, B
                                                   down; +1 = gain ratio R/B of e^0.6 ~ 1.8)
``tint``           [-1, 1]               0         white balance; + magenta (G down), - green
``exposure``       [-3, 3] stops         0         multiply linear light by 2**exposure, then clip
``gamma``          [0.4, 2.5]            1         out = in ** (1 / gamma); > 1 brightens midtones
``tone_curve``     5 values in [0, 1]    None      monotone (PCHIP) curve through (0, .25, .5, .75,
                                                   1) -> values, per channel; e.g. a lifted first
                                                   value fades the blacks (matte)
``contrast``       [-1, 1]               0         per channel around 0.5; + blends toward a
                                                   smoothstep S-curve, - compresses linearly
                                                   (-1 = range scaled by 0.4)
``shadows``        [-1, 1]               0         luma offset weighted towards dark tones (peak at
                                                   luma 1/3, amplitude 0.14); + lifts
``highlights``     [-1, 1]               0         luma offset weighted towards bright tones (peak
                                                   at luma 2/3, amplitude 0.14); + brightens
``clarity``        [-1, 1]               0         local contrast: adds ``clarity`` x 4y(1-y) x (luma
                                                   y - y blurred with sigma 2% of the long side);
                                                   - softens detail
``saturation``     [-1, 1]               0         scale chroma about luma by (1 + s); -1 = grey
``vibrance``       [-1, 1]               0         like saturation, weighted to less saturated pixels
``split_toning``   (hs, ss, hh, sh)      None      colour grade: adds a cast of HSV hue ``hs`` degrees
                   hues in [0, 360),               (strength ``ss``) weighted to dark tones and of hue
                   strengths in [0, 1]             ``hh`` (strength ``sh``) to bright tones; chroma
                                                   offset 0.08 x strength, luma unchanged
``hsl``            band -> (dh, ds, dl)  {}        per hue band (red, orange, yellow, green, aqua,
                   dh in [-30, 30] deg,            blue, purple, magenta): hue shift in degrees,
                   ds, dl in [-1, 1]               chroma scale 1+ds, luma scale 1+dl/2 (in luma/
                                                   chroma coordinates, faded out for greys)
``local``          list of LocalEdit     []        each applies its own parameters inside a soft
                                                   mask (:mod:`.masks`): out = out + m*(edit - out)
=================  ====================  ========  ==================================================

Every stage keeps values in [0, 1] (clipped after the linear-light stage and at the end).
All operations are vectorised numpy, O(H*W) (clarity blurs a downsampled copy); per-channel
curves (exposure/white balance, gamma, tone curve, contrast) go through 65536-entry lookup
tables. Measured on this 2-core CPU at 3840x2160: 0.2-0.8 s per operation, about 5 s with
every operation on (a plain copy of the image takes 25 ms).
"""

from __future__ import annotations

import math
from colorsys import hsv_to_rgb
from dataclasses import dataclass, field, fields, replace
from typing import Any, Sequence

import numpy as np
from scipy.interpolate import PchipInterpolator

from ..vocab.regions import _smooth, luma, render_mask

__all__ = [
    "FinishingParams",
    "LocalEdit",
    "PARAM_RANGES",
    "SAMPLE_RANGES",
    "OP_GROUPS",
    "HSL_BANDS",
    "STYLE_PRESETS",
    "apply_finishing",
    "sample_params",
    "srgb_to_linear",
    "linear_to_srgb",
]

#: Documented parameter ranges: name -> (min, max, identity, unit).
PARAM_RANGES: dict[str, tuple[float, float, float, str]] = {
    "exposure": (-3.0, 3.0, 0.0, "stops"),
    "gamma": (0.4, 2.5, 1.0, "exponent (out = in ** (1/gamma))"),
    "temperature": (-1.0, 1.0, 0.0, "+ warm / - cool"),
    "tint": (-1.0, 1.0, 0.0, "+ magenta / - green"),
    "contrast": (-1.0, 1.0, 0.0, "+ more / - less"),
    "saturation": (-1.0, 1.0, 0.0, "chroma scale - 1"),
    "vibrance": (-1.0, 1.0, 0.0, "weighted chroma scale - 1"),
    "shadows": (-1.0, 1.0, 0.0, "+ lift / - deepen"),
    "highlights": (-1.0, 1.0, 0.0, "+ brighten / - recover"),
    "clarity": (-1.0, 1.0, 0.0, "+ more local contrast / - softer"),
}

#: Magnitudes :func:`sample_params` draws for a *visible* degradation: name -> (lo, hi).
#: A sampled value is ``sign * uniform(lo, hi)`` (gamma: ``exp(sign * uniform(lo, hi))``).
SAMPLE_RANGES: dict[str, tuple[float, float]] = {
    "exposure": (0.35, 1.1),
    "gamma": (0.2, 0.5),
    "temperature": (0.3, 0.75),
    "tint": (0.3, 0.65),
    "contrast": (0.35, 0.8),
    "saturation": (0.35, 0.7),
    "vibrance": (0.5, 0.95),
    "shadows": (0.45, 1.0),
    "highlights": (0.45, 1.0),
    "clarity": (0.45, 0.95),
}

#: Ops that act on the same measurable quantity; :func:`sample_params` takes at most one per
#: group so the edit's effects stay separable (and the undo instruction unambiguous).
OP_GROUPS: dict[str, tuple[str, ...]] = {
    "tone": ("exposure", "gamma", "contrast", "shadows", "highlights"),
    "white_balance": ("temperature", "tint"),
    "colorfulness": ("saturation", "vibrance"),
    "detail": ("clarity",),
}

#: Hue band centres in degrees (Lightroom's eight HSL bands).
HSL_BANDS: dict[str, float] = {
    "red": 0.0, "orange": 30.0, "yellow": 60.0, "green": 120.0,
    "aqua": 180.0, "blue": 240.0, "purple": 270.0, "magenta": 300.0,
}

_CURVE_X = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
_SCALAR = tuple(PARAM_RANGES)


@dataclass
class LocalEdit:
    """Parameters applied inside a soft mask.

    Attributes:
        mask: a :func:`~iretouch_bench.vocab.regions.render_mask` spec, e.g.
            ``{"kind": "sky", "start": 0.1, "end": 0.45, "region": "sky"}``; ``region`` names the
            area in words (one of :data:`~iretouch_bench.vocab.attributes.REGIONS`).
        params: global parameters of the edit inside the mask (their own ``local`` must be empty).
    """

    mask: dict[str, Any]
    params: "FinishingParams"

    def to_dict(self) -> dict[str, Any]:
        return {"mask": dict(self.mask), "params": self.params.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LocalEdit":
        return cls(mask=dict(d["mask"]), params=FinishingParams.from_dict(d["params"]))


@dataclass
class FinishingParams:
    """One photo-finishing edit. Defaults are the identity. See the module table for ranges."""

    exposure: float = 0.0
    gamma: float = 1.0
    temperature: float = 0.0
    tint: float = 0.0
    contrast: float = 0.0
    tone_curve: tuple[float, ...] | None = None
    saturation: float = 0.0
    vibrance: float = 0.0
    shadows: float = 0.0
    highlights: float = 0.0
    clarity: float = 0.0
    split_toning: tuple[float, float, float, float] | None = None
    hsl: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    local: list[LocalEdit] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in _SCALAR:
            v = float(getattr(self, name))
            lo, hi, _, unit = PARAM_RANGES[name]
            if not (lo <= v <= hi) or not math.isfinite(v):
                raise ValueError(f"finishing parameter {name}={v} outside [{lo}, {hi}] ({unit})")
            setattr(self, name, v)
        if self.tone_curve is not None:
            tc = tuple(float(v) for v in self.tone_curve)
            if len(tc) != 5 or any(not (0.0 <= v <= 1.0) for v in tc) or any(b < a for a, b in zip(tc, tc[1:])):
                raise ValueError(f"tone_curve must be 5 non-decreasing values in [0, 1], got {tc}")
            self.tone_curve = tc
        if self.split_toning is not None:
            st = tuple(float(v) for v in self.split_toning)
            if len(st) != 4 or not (0 <= st[0] < 360 and 0 <= st[2] < 360 and 0 <= st[1] <= 1 and 0 <= st[3] <= 1):
                raise ValueError(f"split_toning must be (hue 0-360, strength 0-1, hue 0-360, strength 0-1), got {st}")
            self.split_toning = st
        hsl = {}
        for band, vals in dict(self.hsl).items():
            if band not in HSL_BANDS:
                raise ValueError(f"unknown HSL band {band!r}; expected one of {tuple(HSL_BANDS)}")
            dh, ds, dl = (float(v) for v in vals)
            if not (-30 <= dh <= 30 and -1 <= ds <= 1 and -1 <= dl <= 1):
                raise ValueError(f"HSL band {band}: (hue {dh}, sat {ds}, lum {dl}) outside ([-30,30], [-1,1], [-1,1])")
            hsl[band] = (dh, ds, dl)
        self.hsl = hsl
        self.local = [e if isinstance(e, LocalEdit) else LocalEdit.from_dict(e) for e in self.local]
        for e in self.local:
            if e.params.local:
                raise ValueError("local edits cannot nest local edits")

    # -- identity -----------------------------------------------------------------------
    def is_global_identity(self) -> bool:
        """True when no global operation changes the image (local edits not considered)."""
        return (
            all(getattr(self, n) == PARAM_RANGES[n][2] for n in _SCALAR)
            and (self.tone_curve is None or np.array_equal(np.asarray(self.tone_curve), _CURVE_X))
            and all(v == (0.0, 0.0, 0.0) for v in self.hsl.values())
            and (self.split_toning is None or (self.split_toning[1] == 0.0 and self.split_toning[3] == 0.0))
        )

    def is_identity(self) -> bool:
        return self.is_global_identity() and all(e.params.is_identity() for e in self.local)

    # -- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict holding only the non-identity fields ({} for the identity)."""
        out: dict[str, Any] = {}
        for n in _SCALAR:
            v = getattr(self, n)
            if v != PARAM_RANGES[n][2]:
                out[n] = round(float(v), 6)
        if self.tone_curve is not None:
            out["tone_curve"] = [round(float(v), 6) for v in self.tone_curve]
        if self.split_toning is not None:
            out["split_toning"] = [round(float(v), 6) for v in self.split_toning]
        hsl = {b: [round(float(x), 6) for x in v] for b, v in self.hsl.items() if v != (0.0, 0.0, 0.0)}
        if hsl:
            out["hsl"] = hsl
        if self.local:
            out["local"] = [e.to_dict() for e in self.local]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FinishingParams":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown finishing parameter(s): {sorted(unknown)}")
        kw = dict(d)
        if kw.get("tone_curve") is not None:
            kw["tone_curve"] = tuple(kw["tone_curve"])
        if kw.get("split_toning") is not None:
            kw["split_toning"] = tuple(kw["split_toning"])
        if "hsl" in kw:
            kw["hsl"] = {b: tuple(v) for b, v in kw["hsl"].items()}
        if "local" in kw:
            kw["local"] = [LocalEdit.from_dict(e) for e in kw["local"]]
        return cls(**kw)

    # -- helpers -------------------------------------------------------------------------
    def scaled(self, s: float) -> "FinishingParams":
        """The edit at strength ``s`` (0 = identity, 1 = self): offsets scale linearly, gamma
        geometrically, the tone curve interpolates towards the diagonal. Values are clipped
        to :data:`PARAM_RANGES`."""
        kw: dict[str, Any] = {}
        for n in _SCALAR:
            lo, hi, ident, _ = PARAM_RANGES[n]
            v = getattr(self, n)
            nv = ident * (v / ident) ** s if n == "gamma" else ident + s * (v - ident)
            kw[n] = float(np.clip(nv, lo, hi))
        if self.tone_curve is not None:
            tc = _CURVE_X + s * (np.asarray(self.tone_curve) - _CURVE_X)
            kw["tone_curve"] = tuple(float(v) for v in np.maximum.accumulate(np.clip(tc, 0, 1)))
        if self.split_toning is not None:
            hs, ss, hh, sh = self.split_toning
            kw["split_toning"] = (hs, float(np.clip(s * ss, 0, 1)), hh, float(np.clip(s * sh, 0, 1)))
        kw["hsl"] = {b: (float(np.clip(s * v[0], -30, 30)), float(np.clip(s * v[1], -1, 1)), float(np.clip(s * v[2], -1, 1)))
                     for b, v in self.hsl.items()}
        kw["local"] = [LocalEdit(dict(e.mask), e.params.scaled(s)) for e in self.local]
        return FinishingParams(**kw)

    def global_part(self) -> "FinishingParams":
        """A copy without local edits."""
        return replace(self, local=[])


# ---------------------------------------------------------------------------------------
# Colour-space helpers


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded [0, 1] -> linear light (IEC 61966-2-1), float32, same shape."""
    x = np.asarray(x, dtype=np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(y: np.ndarray) -> np.ndarray:
    """Linear light [0, 1] -> sRGB-encoded, float32, same shape (input clipped to [0, 1])."""
    y = np.clip(np.asarray(y, dtype=np.float32), 0.0, 1.0)
    return np.where(y <= 0.0031308, y * 12.92, 1.055 * np.power(y, 1 / 2.4) - 0.055).astype(np.float32)


_LUMA_LIN = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def _wb_gains(temperature: float, tint: float) -> np.ndarray:
    """Per-channel linear gains for white balance, normalised so that a neutral grey keeps its
    luminance (the edit moves colour, not brightness)."""
    g = np.exp(np.array([0.3 * temperature, -0.3 * tint, -0.3 * temperature], dtype=np.float64))
    g /= float(np.dot(_LUMA_LIN, g))
    return g.astype(np.float32)


# ---------------------------------------------------------------------------------------
# Operations (each takes and returns float32 [H, W, 3])


_LUT_SIZE = 65536


def _lut_index(img: np.ndarray) -> np.ndarray:
    """uint16 index of the nearest of 65536 evenly spaced entries on [0, 1]."""
    return np.rint(np.clip(img, 0.0, 1.0) * np.float32(_LUT_SIZE - 1)).astype(np.uint16)


def _lut(fn) -> np.ndarray:
    xs = np.linspace(0.0, 1.0, _LUT_SIZE, dtype=np.float64)
    return np.clip(fn(xs), 0.0, 1.0).astype(np.float32)


def _lut_apply(img: np.ndarray, fn) -> np.ndarray:
    """Apply a scalar map ``fn`` ([0,1] -> [0,1], vectorised) to every channel through a
    65536-entry lookup table (nearest entry): O(H*W) whatever ``fn`` costs, and several times
    faster than evaluating powers/splines per pixel at 4K. Error <= |fn'| * 7.6e-6 (the curves
    here have |fn'| < 3 except x**(1/gamma) right at 0), below one 16-bit output step."""
    if img.size <= _LUT_SIZE:  # small images (parameter fitting): evaluating directly is cheaper
        return np.clip(fn(np.clip(img, 0.0, 1.0).astype(np.float64)), 0.0, 1.0).astype(np.float32)
    return _lut(fn)[_lut_index(img)]


def _op_linear(img: np.ndarray, p: FinishingParams) -> np.ndarray:
    """White balance and exposure in linear light, as one per-channel LUT
    sRGB -> linear -> gain, clip -> sRGB (the same function, evaluated once per entry)."""
    gains = np.ones(3, dtype=np.float64)
    if p.temperature != 0.0 or p.tint != 0.0:
        gains = gains * _wb_gains(p.temperature, p.tint)
    if p.exposure != 0.0:
        gains = gains * 2.0 ** p.exposure
    if img.size <= _LUT_SIZE:
        return linear_to_srgb(srgb_to_linear(img) * gains.astype(np.float32))
    idx = _lut_index(img)
    out = np.empty(img.shape, dtype=np.float32)
    for c in range(3):
        lut = _lut(lambda x, g=float(gains[c]): linear_to_srgb(srgb_to_linear(x) * g))
        out[..., c] = lut[idx[..., c]]
    return out


def _op_gamma(img: np.ndarray, g: float) -> np.ndarray:
    return _lut_apply(img, lambda x: np.power(x, 1.0 / g))


def _op_curve(img: np.ndarray, ys: tuple[float, ...]) -> np.ndarray:
    curve = PchipInterpolator(_CURVE_X, np.asarray(ys, dtype=np.float64))
    return _lut_apply(img, curve)


def _op_contrast(img: np.ndarray, c: float) -> np.ndarray:
    if c > 0:
        # blend toward smoothstep: stays monotone and inside [0, 1] (no clipping)
        return _lut_apply(img, lambda x: x + c * (x * x * (3 - 2 * x) - x))
    k = 1.0 + 0.6 * c  # c = -1 -> 0.4
    return (0.5 + (img - 0.5) * np.float32(k)).astype(np.float32)


def _op_shadows_highlights(img: np.ndarray, sh: float, hl: float) -> np.ndarray:
    y = luma(img)
    d = np.zeros_like(y)
    # Weights 6.75*y*(1-y)^2 (peak 1 at y=1/3) and 6.75*y^2*(1-y) (peak 1 at y=2/3): zero at
    # pure black and pure white, so the ends of the range never move; amplitude 0.14 keeps
    # y + d(y) monotone for |s| <= 1 (|d'| <= 0.14 * 6.75 < 1).
    if sh != 0.0:
        d += np.float32(0.14 * sh) * (6.75 * y * (1 - y) ** 2)
    if hl != 0.0:
        d += np.float32(0.14 * hl) * (6.75 * y * y * (1 - y))
    return np.clip(img + d[..., None], 0.0, 1.0).astype(np.float32)


def _op_clarity(img: np.ndarray, c: float) -> np.ndarray:
    y = luma(img)
    detail = y - _smooth(y, 0.02)
    # midtone weight: detail added at the ends of the range would clip
    w = 4.0 * y * (1.0 - y)
    return np.clip(img + (np.float32(c) * w * detail)[..., None], 0.0, 1.0).astype(np.float32)


def _op_saturation(img: np.ndarray, s: float, v: float) -> np.ndarray:
    y = luma(img)[..., None]
    scale = np.float32(1.0 + s)
    if v != 0.0:
        r, g, b = img[..., 0], img[..., 1], img[..., 2]
        sat = (np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b))[..., None]
        scale = scale * (1.0 + np.float32(v) * (1.0 - sat))
    return np.clip(y + (img - y) * scale, 0.0, 1.0).astype(np.float32)


# Opponent (Rec.709 luma/chroma, "YCbCr") coordinates: per-band hue/saturation/luminance edits
# are a rotation and scaling of the chroma vector about the luma axis. This is O(H*W) with a
# handful of float32 passes (skimage's rgb2hsv/hsv2rgb take ~14 s at 4K here).
_KB, _KR = 1.8556, 1.5748


def _to_opp(img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = luma(img)
    return y, (img[..., 2] - y) / np.float32(_KB), (img[..., 0] - y) / np.float32(_KR)


def _from_opp(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    r = y + np.float32(_KR) * cr
    b = y + np.float32(_KB) * cb
    g = (y - np.float32(0.2126) * r - np.float32(0.0722) * b) / np.float32(0.7152)
    return np.stack([r, g, b], axis=-1)


def _band_angles() -> dict[str, float]:
    """Opponent-plane angle (radians) of each band's pure hue (HSV hue h, S = V = 1)."""
    out = {}
    for band, h in HSL_BANDS.items():
        rgb = np.array(hsv_to_rgb(h / 360.0, 1.0, 1.0), dtype=np.float32)[None, None, :]
        _, cb, cr = _to_opp(rgb)
        out[band] = float(np.arctan2(cr[0, 0], cb[0, 0]))
    return out


def _op_hsl(img: np.ndarray, hsl: dict[str, tuple[float, float, float]]) -> np.ndarray:
    angles = _band_angles()
    # HSV hue runs red -> yellow -> green; find which way that turns in the opponent plane
    turn = float(np.sign(np.sin(angles["yellow"] - angles["red"]))) or 1.0
    order = sorted(angles.items(), key=lambda kv: kv[1])
    y, cb, cr = _to_opp(img)
    theta = np.arctan2(cr, cb)
    rho = np.hypot(cb, cr)
    dth = np.zeros_like(y)
    ds = np.zeros_like(y)
    dl = np.zeros_like(y)
    n = len(order)
    for i, (band, c) in enumerate(order):
        vals = hsl.get(band, (0.0, 0.0, 0.0))
        if vals == (0.0, 0.0, 0.0):
            continue
        prev_c, next_c = order[i - 1][1], order[(i + 1) % n][1]
        half = 0.5 * (((c - prev_c) % (2 * np.pi)) + ((next_c - c) % (2 * np.pi)))
        dist = np.abs((theta - np.float32(c) + np.float32(np.pi)) % np.float32(2 * np.pi) - np.float32(np.pi))
        w = np.cos(np.clip(dist / np.float32(half), 0, 1) * np.float32(np.pi / 2)) ** 2
        dth += w * np.float32(np.deg2rad(vals[0]) * turn)
        ds += w * np.float32(vals[1])
        dl += w * np.float32(vals[2])
    # greys have no hue: fade the edit out at low chroma
    gate = np.clip((rho - np.float32(0.01)) / np.float32(0.05), 0, 1)
    th2 = theta + gate * dth
    rho2 = rho * np.maximum(1.0 + gate * ds, 0.0)
    y2 = y * (1.0 + np.float32(0.5) * gate * dl)
    out = _from_opp(y2, rho2 * np.cos(th2), rho2 * np.sin(th2))
    return np.clip(out, 0, 1).astype(np.float32)


def _hue_vector(hue_deg: float) -> np.ndarray:
    """Unit chroma direction (cb, cr) of HSV hue ``hue_deg`` (S = V = 1)."""
    rgb = np.array(hsv_to_rgb((hue_deg % 360.0) / 360.0, 1.0, 1.0), dtype=np.float32)[None, None, :]
    _, cb, cr = _to_opp(rgb)
    v = np.array([cb[0, 0], cr[0, 0]], dtype=np.float64)
    return (v / np.linalg.norm(v)).astype(np.float32)


def _op_split_toning(img: np.ndarray, st: tuple[float, float, float, float]) -> np.ndarray:
    hs, ss, hh, sh = st
    y, cb, cr = _to_opp(img)
    w_sh = (1.0 - y) ** 2  # dark tones
    w_hl = y * y  # bright tones
    vs, vh = _hue_vector(hs) * np.float32(0.08 * ss), _hue_vector(hh) * np.float32(0.08 * sh)
    cb = cb + w_sh * vs[0] + w_hl * vh[0]
    cr = cr + w_sh * vs[1] + w_hl * vh[1]
    return np.clip(_from_opp(y, cb, cr), 0, 1).astype(np.float32)


def _apply_global(img: np.ndarray, p: FinishingParams) -> np.ndarray:
    out = img
    if p.temperature != 0.0 or p.tint != 0.0 or p.exposure != 0.0:
        out = _op_linear(out, p)
    if p.gamma != 1.0:
        out = _op_gamma(out, p.gamma)
    if p.tone_curve is not None and not np.array_equal(np.asarray(p.tone_curve), _CURVE_X):
        out = _op_curve(out, p.tone_curve)
    if p.contrast != 0.0:
        out = _op_contrast(out, p.contrast)
    if p.shadows != 0.0 or p.highlights != 0.0:
        out = _op_shadows_highlights(out, p.shadows, p.highlights)
    if p.clarity != 0.0:
        out = _op_clarity(out, p.clarity)
    if p.saturation != 0.0 or p.vibrance != 0.0:
        out = _op_saturation(out, p.saturation, p.vibrance)
    if p.split_toning is not None and (p.split_toning[1] != 0.0 or p.split_toning[3] != 0.0):
        out = _op_split_toning(out, p.split_toning)
    if any(v != (0.0, 0.0, 0.0) for v in p.hsl.values()):
        out = _op_hsl(out, p.hsl)
    return out


def apply_finishing(image: np.ndarray, params: FinishingParams, masks: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """Apply ``params`` to ``image``.

    Args:
        image: float32 ``[H, W, 3]``, sRGB-encoded values in [0, 1].
        params: the edit; identity parameters return a bitwise-equal copy.
        masks: optional pre-rendered float32 ``[H, W]`` masks, one per ``params.local`` entry
            (otherwise each is rendered from its spec on the image as it is when that local
            edit is applied).
    Returns:
        float32 ``[H, W, 3]`` in [0, 1], a new array.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"apply_finishing expects an [H, W, 3] image, got shape {img.shape}")
    if img.dtype != np.float32:
        img = img.astype(np.float32)
    if params.is_identity():
        return img.copy()
    out = _apply_global(img, params)
    for i, edit in enumerate(params.local):
        if edit.params.is_identity():
            continue
        m = masks[i] if masks is not None else render_mask(edit.mask, out)
        m = np.asarray(m, dtype=np.float32)
        if m.shape != img.shape[:2]:
            raise ValueError(f"local mask {i} has shape {m.shape}, image is {img.shape[:2]}")
        edited = _apply_global(out, edit.params)
        out = out + m[..., None] * (edited - out)
    if out is img:
        return img.copy()
    return np.clip(out, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------
# Sampling


def _sample_value(rng: np.random.Generator, op: str, sign: float, strength: float | None) -> float:
    lo, hi = SAMPLE_RANGES[op]
    u = rng.uniform(lo, hi) if strength is None else lo + float(np.clip(strength, 0, 1)) * (hi - lo)
    if op == "gamma":
        return float(math.exp(sign * u))
    return float(sign * u)


def sample_params(
    rng: np.random.Generator,
    ops: Sequence[str] | None = None,
    n_ops: int | tuple[int, int] = (1, 2),
    strength: float | None = None,
    signs: dict[str, int] | None = None,
) -> FinishingParams:
    """Draw a random global edit (typically a *degradation* to be undone).

    Args:
        rng: numpy Generator (the only source of randomness: same seed, same params).
        ops: candidate operations (keys of :data:`SAMPLE_RANGES`); default all.
        n_ops: how many operations (int, or inclusive (min, max) range); at most one per
            :data:`OP_GROUPS` group, so effects do not cancel each other.
        strength: None draws each magnitude uniformly from :data:`SAMPLE_RANGES`; a value
            in [0, 1] picks that fraction of the way from the low to the high end.
        signs: optional fixed sign (+1/-1) per op; otherwise a fair coin (vibrance: always -1,
            the pipeline's degradation of colourfulness; its undo is "vibrance up").
    Returns:
        FinishingParams with the chosen ops set and everything else identity.
    """
    ops = list(SAMPLE_RANGES) if ops is None else list(ops)
    for op in ops:
        if op not in SAMPLE_RANGES:
            raise ValueError(f"unknown op {op!r}; expected one of {tuple(SAMPLE_RANGES)}")
    n = n_ops if isinstance(n_ops, int) else int(rng.integers(n_ops[0], n_ops[1] + 1))
    group_of = {op: g for g, members in OP_GROUPS.items() for op in members}
    order = [ops[i] for i in rng.permutation(len(ops))]
    chosen: list[str] = []
    used: set[str] = set()
    for op in order:
        if len(chosen) >= n:
            break
        if group_of[op] in used:
            continue
        chosen.append(op)
        used.add(group_of[op])
    kw: dict[str, float] = {}
    for op in sorted(chosen, key=list(SAMPLE_RANGES).index):
        if signs and op in signs:
            sign = float(np.sign(signs[op]) or 1.0)
        elif op == "vibrance":
            sign = -1.0
        else:
            sign = 1.0 if rng.random() < 0.5 else -1.0
        kw[op] = _sample_value(rng, op, sign, strength)
    return FinishingParams(**kw)


# ---------------------------------------------------------------------------------------
# Style and mood presets: global looks whose measurable effects match the attribute bank's
# ATTRIBUTE_EFFECTS rows (tested on every packaged photo).

STYLE_PRESETS: dict[str, FinishingParams] = {
    # faded film: muted colour, lower contrast, lifted blacks, warm/yellowed cast
    "style:vintage": FinishingParams(temperature=0.3, saturation=-0.3, contrast=-0.3,
                                     tone_curve=(0.06, 0.28, 0.52, 0.74, 0.93), split_toning=(40.0, 1.0, 50.0, 1.0)),
    # soft, bright, low contrast, softened detail
    "style:dreamy": FinishingParams(exposure=0.35, contrast=-0.4, shadows=0.5, clarity=-0.6, saturation=-0.1),
    # film grade: crushed shadows, more contrast, teal shadows and orange highlights
    "style:cinematic": FinishingParams(contrast=0.95, shadows=-0.6, saturation=-0.15,
                                       split_toning=(190.0, 0.5, 30.0, 0.4)),
    "style:bw": FinishingParams(saturation=-1.0, contrast=0.15),
    # matte: lifted (faded) blacks, lower contrast
    "style:matte": FinishingParams(tone_curve=(0.14, 0.32, 0.52, 0.73, 0.93), contrast=-0.15, saturation=-0.1),
    "mood:cozy": FinishingParams(temperature=0.3, contrast=-0.3, highlights=-0.2, split_toning=(35.0, 0.5, 45.0, 0.5)),
    "mood:moody": FinishingParams(exposure=-0.5, saturation=-0.35, shadows=-0.3),
    "mood:fresh": FinishingParams(exposure=0.3, temperature=-0.85, vibrance=0.2),
    "mood:dramatic": FinishingParams(contrast=0.5, clarity=0.8, shadows=-0.2),
    "mood:airy": FinishingParams(exposure=0.45, contrast=-0.35, shadows=0.45, saturation=-0.1),
}
