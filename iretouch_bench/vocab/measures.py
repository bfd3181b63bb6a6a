"""Perceptual measurements of a photo's tone and colour, in CIELAB, for the offline score ``attr_acc``.

Every measurement is taken in CIELAB (D65, sRGB input, via ``skimage.color.rgb2lab``), so the
units are perceptual: 1 unit of L*, a*, b* or C*ab is roughly the smallest difference an observer
notices side by side (CIE76 "just noticeable difference" is about 1-2.3 units).

The measures, named as in :data:`iretouch_bench.vocab.attributes.MEASURES`:

==================  =====================================================================
``lightness``       mean L* (0-100)
``contrast``        standard deviation of L*
``chroma``          mean C*ab = sqrt(a*^2 + b*^2)
``b``               mean b* (blue -, yellow +: "warm" is +)
``a``               mean a* (green -, magenta +)
``shadows``         mean L* of the darkest 25 % of the pixels (a trimmed low tail: steadier
                    than a single percentile, and a distribution statistic, so it does not
                    need pixel correspondence between input and output)
``highlights``      mean L* of the brightest 25 % of the pixels
``local_contrast``  mean absolute high-pass of L*: ``|L* - G_sigma * L*|`` with a Gaussian of
                    sigma = 2 % of the long side of the working image (10 px at 512): detail
                    and clarity, in L* units
==================  =====================================================================

Images are first reduced to a working size (long side :data:`WORK_LONG_SIDE` = 512 px, by area
averaging) so that the measures - ``local_contrast`` in particular - mean the same thing at 720p
and at 4K, and cost a few milliseconds. All measures are taken inside a region when a mask is
given (pixels whose mask value is >= 0.5).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.color import rgb2lab

from ..core.resize import resize, shrink_to

#: Long side, in pixels, of the working copy the measures are taken on.
WORK_LONG_SIDE = 512
#: Gaussian sigma of the ``local_contrast`` high-pass, as a fraction of the working long side.
LOCAL_SIGMA_REL = 0.02
#: Fraction of the pixels in the ``shadows`` / ``highlights`` tails.
TAIL_FRACTION = 0.25
#: Fewest region pixels (at working size) a measurement is taken on.
MIN_REGION_PIXELS = 64

#: The smallest change, in the measure's own CIELAB units, that counts as "moved the instructed
#: way": 1 unit for the means, spread and tails (the order of one just-noticeable difference);
#: 0.25 L* for local contrast, whose values are small (typically 2-6 L* on photos) so that a
#: clarity edit of ~10 % registers while re-encoding noise does not.
THRESHOLDS: dict[str, float] = {
    "lightness": 1.0,
    "contrast": 1.0,
    "chroma": 1.0,
    "b": 1.0,
    "a": 1.0,
    "shadows": 1.0,
    "highlights": 1.0,
    "local_contrast": 0.25,
}
MEASURE_NAMES = tuple(THRESHOLDS)


def working_copy(image: np.ndarray, long_side: int = WORK_LONG_SIDE) -> np.ndarray:
    """float32 ``[H, W, C]`` or ``[H, W]`` -> the same, area-downscaled so ``max(H, W) <= long_side``.

    Area averaging is the exact low-pass for a downscale and is fast at 4K; never upscales.
    """
    return shrink_to(np.asarray(image, dtype=np.float32), long_side, "area")


def resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """float ``[h, w]`` mask -> float32 ``[H, W]`` (area when shrinking, bilinear when growing)."""
    m = np.asarray(mask, dtype=np.float32)
    return resize(m, shape, "area" if m.shape[0] >= shape[0] else "bilinear")


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB float ``[H, W, 3]`` in [0, 1] -> CIELAB float32 ``[H, W, 3]`` (L* 0-100, a*, b*), D65."""
    return rgb2lab(np.clip(np.asarray(rgb, dtype=np.float32), 0.0, 1.0)).astype(np.float32)


def _tail_mean(values: np.ndarray, low: bool) -> float:
    k = max(1, int(round(TAIL_FRACTION * values.size)))
    part = np.partition(values, k - 1)[:k] if low else np.partition(values, values.size - k)[-k:]
    return float(part.mean())


def lab_measures(lab: np.ndarray, region: np.ndarray | None = None,
                 min_pixels: int = MIN_REGION_PIXELS) -> dict[str, float] | None:
    """The measures of :data:`MEASURE_NAMES` for a CIELAB image ``[H, W, 3]``.

    Args:
        lab: float ``[H, W, 3]`` CIELAB (at working size).
        region: optional float ``[H, W]`` mask in [0, 1]; pixels >= 0.5 are measured.
    Returns:
        ``{measure: value}`` in CIELAB units, or ``None`` when the region has fewer than
        ``min_pixels`` pixels (default :data:`MIN_REGION_PIXELS`).
    """
    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    sel = np.ones(L.shape, bool) if region is None else (np.asarray(region) >= 0.5)
    if int(sel.sum()) < max(1, min_pixels):
        return None
    Ls, as_, bs = L[sel].astype(np.float64), a[sel].astype(np.float64), b[sel].astype(np.float64)
    sigma = max(1.0, LOCAL_SIGMA_REL * max(L.shape))
    # The high-pass is taken on the whole image so region borders do not create false detail.
    detail = np.abs(L - ndimage.gaussian_filter(L, sigma, mode="reflect"))[sel]
    return {
        "lightness": float(Ls.mean()),
        "contrast": float(Ls.std()),
        "chroma": float(np.sqrt(as_ ** 2 + bs ** 2).mean()),
        "b": float(bs.mean()),
        "a": float(as_.mean()),
        "shadows": _tail_mean(Ls, low=True),
        "highlights": _tail_mean(Ls, low=False),
        "local_contrast": float(detail.mean()),
    }


def measure(rgb: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float] | None:
    """Measures of an sRGB image (float ``[H, W, 3]`` in [0, 1]) at working size, inside ``mask``."""
    work = working_copy(rgb)
    region = None if mask is None else resize_mask(mask, work.shape[:2])
    return lab_measures(to_lab(work), region)
