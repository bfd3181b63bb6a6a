"""Retouching-pair synthesis from the photo-finishing pipeline (paper Sec. 3.1).

Used by the embedded evaluation set (:mod:`.embedded`) and by the training of the ``ours``
model. Photos come from installed packages (:mod:`.photos`); its ``EVAL_PHOTOS`` (the
embedded set) and ``TRAIN_PHOTOS`` (model training) are disjoint.

:func:`make_pair` builds one (input, target, instruction) triplet. Categories:

* ``global``   input = photo degraded by 1-2 global ops (:func:`~.finishing.sample_params`),
               target = the photo; the instruction undoes the degradation
               ("Brighten it a little, then cool it down.").
* ``local``    input = photo degraded by one op inside a soft region mask (sky band, corners,
               subject ellipse, background, shadows or highlights by luminance), target = the
               photo; the instruction names the region ("Darken the sky a bit.").
* ``portrait`` input = photo degraded inside a face ellipse (and sometimes globally too),
               target = the photo ("Lift the shadows, and warm up the skin tones."). Needs a
               face: the photo's registered face box, ``face=``, or the scikit-image LBP
               face detector.
* ``style``    the photo is the *input* and the *target* is the photo with a style/mood preset
               (:data:`~.finishing.STYLE_PRESETS`) at a random strength ("Give it a subtle
               vintage look."). Reversing a look ("remove the vintage look") is not a natural
               request, so style pairs go from the plain photo to the look.

Every pair is verified before it is returned: for each intended attribute, the measured
change from input to target (:func:`~.attributes.measure_image`, inside the mask for a
regional attribute) goes the way :data:`~.attributes.ATTRIBUTE_EFFECTS` says by at least
:data:`MIN_EFFECT`; and the instruction reads back through
:func:`~.attributes.match_attributes` to exactly the intended attributes. Draws that fail
are redrawn from the same generator, so results stay deterministic.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..vocab.attributes import (
    ATTRIBUTE_EFFECTS,
    CONF_HIGH,
    CONF_LOW,
    CONF_MEDIUM,
    AttributeMatch,
    measure_image,
)
from .finishing import STYLE_PRESETS, FinishingParams, LocalEdit, apply_finishing, sample_params
from ..vocab.regions import render_mask
from .instructions import InstructionError, intents_for_degradation, write_instruction
from .photos import EVAL_PHOTOS, PHOTOS, TRAIN_PHOTOS, find_face, load_photo  # noqa: F401 TEMP re-export until models/train moves

__all__ = [
    "PAIR_CATEGORIES",
    "MIN_EFFECT",
    "augment",
    "make_pair",
    "verify_effects",
]

PAIR_CATEGORIES = ("global", "style", "local", "portrait")

#: Smallest change (target minus input, signed by the expected direction) that counts as
#: "moved the instructed way" when verifying a pair; CIELAB units, local contrast in L*.
MIN_EFFECT: dict[str, float] = {
    "lightness": 1.5, "contrast": 1.0, "chroma": 1.5, "b": 1.5, "a": 1.5,
    "shadows": 1.5, "highlights": 1.5, "local_contrast": 0.25,
}


def augment(
    photo: np.ndarray, rng: np.random.Generator, crop: tuple[int, int] | None = None, flip: bool = True,
    face: tuple[float, float, float, float] | None = None,
) -> tuple[np.ndarray, tuple[float, float, float, float] | None]:
    """Random crop (``crop`` = (h, w), at most the photo size) and horizontal flip, for
    training. Returns the new photo and the face box moved with it (None if it left the crop)."""
    out = photo
    h, w = photo.shape[:2]
    y0 = x0 = 0
    if crop is not None:
        ch, cw = min(crop[0], h), min(crop[1], w)
        y0 = int(rng.integers(0, h - ch + 1))
        x0 = int(rng.integers(0, w - cw + 1))
        out = out[y0:y0 + ch, x0:x0 + cw]
    nh, nw = out.shape[:2]
    if face is not None:
        cx, cy, rx, ry = face
        cx, cy, rx, ry = (cx * w - x0) / nw, (cy * h - y0) / nh, rx * w / nw, ry * h / nh
        face = (cx, cy, rx, ry) if (0 <= cx <= 1 and 0 <= cy <= 1) else None
    if flip and rng.random() < 0.5:
        out = out[:, ::-1]
        if face is not None:
            face = (1.0 - face[0], face[1], face[2], face[3])
    return np.ascontiguousarray(out, dtype=np.float32), face


# ---------------------------------------------------------------------------------------
# Verification


def verify_effects(
    inp: np.ndarray, target: np.ndarray, intents: Sequence[AttributeMatch], mask: np.ndarray | None = None,
) -> list[str]:
    """Problems with the pair: intents whose measured input->target change does not go the
    way ATTRIBUTE_EFFECTS says by at least MIN_EFFECT. Regional intents are measured inside
    ``mask``. Empty list = verified."""
    problems = []
    cache: dict[bool, tuple[dict[str, float], dict[str, float]]] = {}
    for it in intents:
        regional = it.region is not None and mask is not None
        if regional not in cache:
            m = mask if regional else None
            cache[regional] = (measure_image(inp, m), measure_image(target, m))
        mi, mt = cache[regional]
        for measure, sign in ATTRIBUTE_EFFECTS[it.name].items():
            delta = (mt[measure] - mi[measure]) * sign
            if delta < MIN_EFFECT[measure]:
                problems.append(f"{it.name}: {measure} moved {delta:+.2f} (need >= {MIN_EFFECT[measure]})")
    return problems


# ---------------------------------------------------------------------------------------
# Pair makers

_GLOBAL_OPS = ("exposure", "gamma", "temperature", "tint", "contrast", "saturation", "vibrance",
               "shadows", "highlights", "clarity")
# ops for a local edit; luminance-selected regions get colour ops only (a brightness change
# of "the shadows" is the shadows attribute, not a region)
_LOCAL_TONE_OPS = ("exposure", "temperature", "saturation", "tint")
_LOCAL_COLOR_OPS = ("temperature", "saturation", "tint")
_PORTRAIT_FACE_OPS = ("exposure", "temperature", "tint", "saturation")
_PORTRAIT_GLOBAL_OPS = ("exposure", "shadows", "highlights", "contrast", "temperature", "saturation")


def _local_mask_spec(rng: np.random.Generator) -> dict[str, Any]:
    kind = ["sky", "edges", "subject", "background", "shadows", "highlights"][int(rng.integers(6))]
    if kind == "sky":
        start = float(rng.uniform(0.05, 0.2))
        return {"kind": "sky", "start": round(start, 3), "end": round(start + float(rng.uniform(0.25, 0.4)), 3), "region": "sky"}
    if kind == "edges":
        inner = float(rng.uniform(0.35, 0.55))
        return {"kind": "radial", "inner": round(inner, 3), "outer": round(inner + float(rng.uniform(0.35, 0.5)), 3), "region": "edges"}
    if kind in ("subject", "background"):
        return {"kind": "ellipse", "cx": round(float(rng.uniform(0.4, 0.6)), 3), "cy": round(float(rng.uniform(0.4, 0.6)), 3),
                "rx": round(float(rng.uniform(0.2, 0.3)), 3), "ry": round(float(rng.uniform(0.25, 0.35)), 3),
                "feather": 0.4, "invert": kind == "background", "region": kind}
    if kind == "shadows":
        return {"kind": "luminance", "low": 0.0, "high": round(float(rng.uniform(0.25, 0.4)), 3), "feather": 0.15,
                "blur": 0.01, "region": "shadows"}
    return {"kind": "luminance", "low": round(float(rng.uniform(0.6, 0.72)), 3), "high": 1.0, "feather": 0.15,
            "blur": 0.01, "region": "highlights"}


def _face_spec(face: tuple[float, float, float, float]) -> dict[str, Any]:
    cx, cy, rx, ry = face
    # the detector's box is the inner face; the ellipse covers forehead to chin
    return {"kind": "ellipse", "cx": round(cx, 4), "cy": round(cy + 0.1 * ry, 4), "rx": round(0.95 * rx, 4),
            "ry": round(1.25 * ry, 4), "feather": 0.35, "region": "skin"}


def _degradation_pair(photo, rng, params: FinishingParams, mask_spec: dict | None, seen):
    inp = apply_finishing(photo, params)
    intents = intents_for_degradation(params)
    mask = render_mask(mask_spec, photo) if mask_spec is not None else None
    problems = verify_effects(inp, photo, intents, mask)
    if problems:
        return None, problems
    text = write_instruction(intents, rng, seen=seen)
    return dict(input=inp, target=photo.copy(), instruction=text, mask=mask, intents=intents,
                params={"applied_to": "input", "finishing": params.to_dict()}), []


def _make_global(photo, rng, seen):
    params = sample_params(rng, ops=_GLOBAL_OPS, n_ops=(1, 2))
    return _degradation_pair(photo, rng, params, None, seen)


def _make_local(photo, rng, seen):
    spec = _local_mask_spec(rng)
    ops = _LOCAL_COLOR_OPS if spec["kind"] == "luminance" else _LOCAL_TONE_OPS
    inner = sample_params(rng, ops=ops, n_ops=1)
    params = FinishingParams(local=[LocalEdit(spec, inner)])
    return _degradation_pair(photo, rng, params, spec, seen)


def _make_portrait(photo, rng, seen, face):
    spec = _face_spec(face)
    inner = sample_params(rng, ops=_PORTRAIT_FACE_OPS, n_ops=1)
    glob = FinishingParams()
    if rng.random() < 0.5:
        # a global op from a different quantity than the face op, so the two stay separable
        clash = {"exposure": ("exposure", "shadows", "highlights", "contrast"), "temperature": ("temperature",),
                 "tint": ("temperature",), "saturation": ("saturation",)}
        face_op = next(op for op in _PORTRAIT_FACE_OPS if inner.to_dict().get(op) is not None)
        ops = [op for op in _PORTRAIT_GLOBAL_OPS if op not in clash[face_op]]
        glob = sample_params(rng, ops=ops, n_ops=1)
    params = FinishingParams(**{**glob.to_dict(), "local": [LocalEdit(spec, inner)]})
    return _degradation_pair(photo, rng, params, spec, seen)


_STYLE_LEVELS = ((0.65, CONF_LOW), (1.0, CONF_MEDIUM), (1.25, CONF_HIGH))


def _make_style(photo, rng, seen, styles: Sequence[str] | None = None):
    names = list(styles or STYLE_PRESETS)
    name = names[int(rng.integers(len(names)))]
    if name == "style:bw":
        strength, level = 1.0, CONF_MEDIUM
    else:
        strength, level = _STYLE_LEVELS[int(rng.integers(len(_STYLE_LEVELS)))]
        strength = float(strength * rng.uniform(0.95, 1.05))
    params = STYLE_PRESETS[name].scaled(strength)
    target = apply_finishing(photo, params)
    intents = [AttributeMatch(name, level, None)]
    problems = verify_effects(photo, target, intents)
    if problems:
        return None, problems
    text = write_instruction(intents, rng, seen=seen)
    return dict(input=photo.copy(), target=target, instruction=text, mask=None, intents=intents,
                params={"applied_to": "target", "preset": name, "strength": round(strength, 4),
                        "finishing": params.to_dict()}), []


def make_pair(
    photo: np.ndarray,
    rng: np.random.Generator,
    category: str | None = None,
    *,
    face: tuple[float, float, float, float] | None = None,
    seen: list[str] | None = None,
    max_tries: int = 30,
    styles: Sequence[str] | None = None,
) -> dict[str, Any]:
    """One verified retouching triplet from ``photo``.

    Args:
        photo: float32 ``[H, W, 3]`` in [0, 1] (used as the target, or the input for style).
        rng: numpy Generator; same photo + seed -> identical pair.
        category: ``global``, ``style``, ``local``, ``portrait`` or None (drawn uniformly;
            ``portrait`` only when a face is known).
        face: (cx, cy, rx, ry) face box (fractions); for ``portrait``. When None and the
            category is ``portrait``, :func:`find_face` is tried.
        seen: instructions already used in the dataset (avoid near-duplicates); the new
            instruction is NOT appended (the caller decides).
        max_tries: redraws allowed when a draw fails verification.
        styles: restrict ``style`` pairs to these preset names.
    Returns:
        dict with ``input``, ``target`` (float32 ``[H, W, 3]`` in [0, 1]), ``instruction``
        (str), ``category``, ``params`` (JSON-able: ``applied_to`` "input" for degradations
        / "target" for style, ``finishing`` = FinishingParams.to_dict(), plus ``preset`` and
        ``strength`` for style), ``mask`` (float32 ``[H, W]`` or None), ``attributes`` (list
        of attribute names the instruction intends), ``intents`` (list of {name, confidence,
        region}).
    Raises:
        ValueError: unknown category, or ``portrait`` with no face.
        InstructionError: no verified pair within ``max_tries`` draws.
    """
    photo = np.ascontiguousarray(photo, dtype=np.float32)
    if category is None:
        cats = list(PAIR_CATEGORIES) if face is not None else ["global", "style", "local"]
        category = cats[int(rng.integers(len(cats)))]
    if category not in PAIR_CATEGORIES:
        raise ValueError(f"unknown category {category!r}; expected one of {PAIR_CATEGORIES}")
    if category == "portrait" and face is None:
        face = find_face(photo)
        if face is None:
            raise ValueError("portrait pair needs a face: none given and none detected")
    last: list[str] = []
    for _ in range(max_tries):
        try:
            if category == "global":
                pair, last = _make_global(photo, rng, seen)
            elif category == "local":
                pair, last = _make_local(photo, rng, seen)
            elif category == "portrait":
                pair, last = _make_portrait(photo, rng, seen, face)
            else:
                pair, last = _make_style(photo, rng, seen, styles)
        except InstructionError as err:
            pair, last = None, [str(err)]
        if pair is not None:
            pair["category"] = category
            pair["attributes"] = [it.name for it in pair["intents"]]
            pair["intents"] = [{"name": it.name, "confidence": it.confidence, "region": it.region} for it in pair["intents"]]
            return pair
    raise InstructionError(f"no verified {category} pair in {max_tries} draws; last: {'; '.join(last)}")
