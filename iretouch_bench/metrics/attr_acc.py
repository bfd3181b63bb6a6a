"""``attr_acc``: the offline instruction-following score (0-1), deterministic and free.

1. The attribute matcher (:func:`iretouch_bench.vocab.attributes.match_attributes`) turns the
   instruction into atomic attributes, each with a confidence (0.5 / 0.8 / 1.0) and an optional
   region ("warm up the skin a little" -> ``temperature:warm``, 0.5, ``skin``).
2. For each attribute, :data:`~iretouch_bench.vocab.attributes.ATTRIBUTE_EFFECTS` says which
   perceptual measures it should move and which way (``brightness:up`` -> mean L* up;
   ``style:vintage`` -> chroma down, contrast down, b* up).
3. Each measure is taken on input and output (:mod:`iretouch_bench.vocab.measures`: CIELAB,
   working size 512 px) inside the attribute's region, and *passes* when it moved the instructed
   way by at least its threshold (:data:`~iretouch_bench.vocab.measures.THRESHOLDS`, e.g.
   1 L* unit; 0.25 L* for local contrast). An attribute scores the fraction of its measures that
   pass (1 or 0 for single-measure attributes).
4. ``attr_acc`` is the confidence-weighted mean of the attribute scores.

So an unchanged output scores 0, an edit in the opposite direction scores 0, and an edit that
does what was asked by a noticeable amount scores 1. The score checks direction and a minimum
size, not the exact amount ("a little" and "a lot" both pass once the change is noticeable; the
confidence only weights the attribute).

Regions: a given ``mask`` (the sample's region mask, float ``[H, W]`` in [0, 1]) is used for every
attribute that names a region; attributes without a region are measured on the whole image.
Without a mask, a named region falls back to the suite's region priors
(:mod:`iretouch_bench.vocab.regions`: top-band sky gradient, centre ellipse for subject/skin and its
inverse for background, radial vignette for edges, luminance ranges of the *input* for
shadows/highlights); the detail records which source was used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..vocab.attributes import ATTRIBUTE_EFFECTS, match_attributes
from ..vocab.measures import (
    MIN_REGION_PIXELS,
    THRESHOLDS,
    WORK_LONG_SIDE,
    lab_measures,
    resize_mask,
    to_lab,
    working_copy,
)
from ..vocab.regions import render_mask

NO_ATTRIBUTE = "no recognised attribute in instruction"

#: Region name -> mask spec for :func:`iretouch_bench.vocab.regions.render_mask` (used without a mask).
REGION_PRIORS: dict[str, dict[str, Any]] = {
    "sky": {"kind": "sky"},
    "edges": {"kind": "radial"},
    "subject": {"kind": "ellipse"},
    "skin": {"kind": "ellipse"},
    "background": {"kind": "ellipse", "invert": True},
    "shadows": {"kind": "luminance", "low": 0.0, "high": 0.35},
    "highlights": {"kind": "luminance", "low": 0.65, "high": 1.0},
}


def _check_image(name: str, img: np.ndarray) -> np.ndarray:
    arr = np.asarray(img, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"attr_acc: {name} must be [H, W, 3], got {arr.shape}")
    return arr


def attr_acc(
    input_rgb: np.ndarray,
    output_rgb: np.ndarray,
    instruction: str,
    mask: np.ndarray | None = None,
) -> tuple[float | None, str | None, dict[str, Any]]:
    """Offline instruction score of one pair.

    Args:
        input_rgb: source photo, float ``[H, W, 3]`` in [0, 1] (sRGB).
        output_rgb: retouched photo, float ``[H', W', 3]`` in [0, 1] (any size; regions are
            mapped by relative position when the size differs).
        instruction: the retouching instruction.
        mask: optional region mask of the input, float ``[H, W]`` in [0, 1].
    Returns:
        ``(value, reason, detail)``: ``value`` in [0, 1] or ``None``; ``reason`` says why when
        ``None`` (e.g. ``"no recognised attribute in instruction"``); ``detail`` holds every
        attribute with its confidence, region (and its source), per-measure input/output values,
        change, expected sign, threshold and pass flag, and its score.
    """
    inp = _check_image("input", input_rgb)
    out = _check_image("output", output_rgb)
    matches = match_attributes(instruction or "")
    detail: dict[str, Any] = {"attributes": [], "thresholds": dict(THRESHOLDS),
                              "working_long_side": WORK_LONG_SIDE}
    if not matches:
        return None, NO_ATTRIBUTE, detail

    w_in, w_out = working_copy(inp), working_copy(out)
    lab_in, lab_out = to_lab(w_in), to_lab(w_out)
    full = np.asarray(mask, dtype=np.float32) if mask is not None else None
    if full is not None and full.ndim == 3:
        full = full[..., 0]
    if full is not None and full.ndim != 2:
        raise ValueError(f"attr_acc: mask must be [H, W], got {full.shape}")

    cache: dict[str | None, tuple[dict | None, dict | None, str]] = {}

    def region_measures(region: str | None):
        if region in cache:
            return cache[region]
        if region is None:
            m_in, src = None, "whole image"
        elif full is not None:
            m_in, src = resize_mask(full, lab_in.shape[:2]), "sample mask"
        elif region in REGION_PRIORS:
            m_in, src = render_mask(REGION_PRIORS[region], w_in), f"prior {REGION_PRIORS[region]}"
        else:  # a region name the priors do not know: measure globally, say so
            m_in, src = None, f"whole image (no prior for region {region!r})"
        m_out = None if m_in is None else resize_mask(m_in, lab_out.shape[:2])
        cache[region] = (lab_measures(lab_in, m_in), lab_measures(lab_out, m_out), src)
        return cache[region]

    total_w = 0.0
    total = 0.0
    skipped = []
    for match in matches:
        effects = ATTRIBUTE_EFFECTS.get(match.name)
        entry: dict[str, Any] = {"name": match.name, "confidence": match.confidence, "region": match.region}
        if not effects:
            entry["skipped"] = "no measurable effect defined for this attribute"
            skipped.append(entry)
            detail["attributes"].append(entry)
            continue
        before, after, src = region_measures(match.region)
        entry["region_source"] = src
        if before is None or after is None:
            entry["skipped"] = f"region has fewer than {MIN_REGION_PIXELS} pixels at working size"
            skipped.append(entry)
            detail["attributes"].append(entry)
            continue
        measures = {}
        passed = 0
        for name, sign in effects.items():
            delta = after[name] - before[name]
            ok = bool(sign * delta >= THRESHOLDS[name])
            passed += ok
            measures[name] = {"input": round(before[name], 4), "output": round(after[name], 4),
                              "delta": round(delta, 4), "expected": int(sign),
                              "threshold": THRESHOLDS[name], "pass": ok}
        score = passed / len(effects)
        entry.update({"measures": measures, "score": score})
        detail["attributes"].append(entry)
        total += match.confidence * score
        total_w += match.confidence
    if total_w <= 0:
        why = skipped[0]["skipped"] if skipped else NO_ATTRIBUTE
        return None, f"no attribute could be measured ({why})", detail
    return total / total_w, None, detail
