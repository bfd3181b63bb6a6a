"""Retouching-pair synthesis from the photo-finishing pipeline (paper Sec. 3.1).

Used by the embedded evaluation set (:mod:`.embedded`) and by the training of the ``ours``
model. Photos come from installed packages (:data:`PHOTOS`); :data:`EVAL_PHOTOS` (the
embedded set) and :data:`TRAIN_PHOTOS` (model training) are disjoint.

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

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..core.resize import shrink_to
from ..vocab.attributes import (
    ATTRIBUTE_EFFECTS,
    CONF_HIGH,
    CONF_LOW,
    CONF_MEDIUM,
    AttributeMatch,
    measure_image,
)
from .finishing import STYLE_PRESETS, FinishingParams, LocalEdit, apply_finishing, sample_params
from .instructions import InstructionError, intents_for_degradation, write_instruction
from ..vocab.regions import render_mask

__all__ = [
    "PhotoInfo",
    "PHOTOS",
    "EVAL_PHOTOS",
    "TRAIN_PHOTOS",
    "PAIR_CATEGORIES",
    "MIN_EFFECT",
    "load_photo",
    "find_face",
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


@dataclass(frozen=True)
class PhotoInfo:
    """A photo shipped inside an installed package.

    Attributes:
        name: registry key.
        package: the distribution that ships it.
        where: how it is loaded (function or file inside the package).
        credit: author / origin as the package documents it.
        license: licence as the package documents it (see data_cards/embedded.md).
        face: (cx, cy, rx, ry) face box centre and half-sizes as fractions of width/height,
            measured once with scikit-image's LBP frontal-face cascade; None if no face.
    """

    name: str
    package: str
    where: str
    credit: str
    license: str
    face: tuple[float, float, float, float] | None = None


def _skimage(fn: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        out = getattr(skimage.data, fn)()
        return out[0] if isinstance(out, tuple) else out

    return load


def _sklearn(fname: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(fname)

    return load


def _matplotlib(fname: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from matplotlib import cbook
        from PIL import Image

        with Image.open(cbook.get_sample_data(fname, asfileobj=False)) as im:
            return np.asarray(im.convert("RGB"))

    return load


PHOTOS: dict[str, PhotoInfo] = {
    p.name: p
    for p in [
        # face boxes: skimage.feature.Cascade(lbp_frontal_face_cascade_filename()) on the full
        # photo: astronaut r=70 c=175 93x93 of 512x512; grace_hopper r=125 c=169 196x196 of 512x600
        PhotoInfo("astronaut", "scikit-image", "skimage.data.astronaut()",
                  "Eileen Collins, NASA Great Images database", "public domain (no known copyright restrictions)",
                  face=(221.5 / 512, 116.5 / 512, 46.5 / 512, 46.5 / 512)),
        PhotoInfo("grace_hopper", "matplotlib", "matplotlib.cbook.get_sample_data('grace_hopper.jpg')",
                  "Rear Admiral Grace M. Hopper, U.S. Navy official portrait",
                  "not stated in the package; a U.S. Navy photograph (U.S. federal work, public domain)",
                  face=(267.0 / 512, 223.0 / 600, 98.0 / 512, 98.0 / 600)),
        PhotoInfo("coffee", "scikit-image", "skimage.data.coffee()",
                  "Rachel Michetti, courtesy of Pikolo Espresso Bar", "CC0"),
        PhotoInfo("chelsea", "scikit-image", "skimage.data.chelsea()", "Stefan van der Walt", "CC0"),
        PhotoInfo("rocket", "scikit-image", "skimage.data.rocket()",
                  "SpaceX (DSCOVR launch on Falcon 9)", "public domain (released by SpaceX)"),
        PhotoInfo("hubble_deep_field", "scikit-image", "skimage.data.hubble_deep_field()",
                  "NASA / HubbleSite (Hubble eXtreme Deep Field)", "public domain (NASA)"),
        PhotoInfo("stereo_motorcycle", "scikit-image", "skimage.data.stereo_motorcycle()[0]",
                  "Middlebury 2014 stereo benchmark (Scharstein et al.), left view, downsampled x4",
                  "not stated in the package (Middlebury stereo data, research use)"),
        PhotoInfo("china", "scikit-learn", "sklearn.datasets.load_sample_image('china.jpg')",
                  "danielbuechele on Flickr", "CC BY 2.0"),
        PhotoInfo("flower", "scikit-learn", "sklearn.datasets.load_sample_image('flower.jpg')",
                  "vultilion on Flickr", "CC BY 2.0"),
    ]
}

_LOADERS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage("astronaut"),
    "grace_hopper": _matplotlib("grace_hopper.jpg"),
    "coffee": _skimage("coffee"),
    "chelsea": _skimage("chelsea"),
    "rocket": _skimage("rocket"),
    "hubble_deep_field": _skimage("hubble_deep_field"),
    "stereo_motorcycle": _skimage("stereo_motorcycle"),
    "china": _sklearn("china.jpg"),
    "flower": _sklearn("flower.jpg"),
}

# Not registered: skimage.data.skin() and the other images outside scikit-image's wheel are
# downloaded with pooch on first use; the registry holds only photos installed on disk.

#: Photos of the embedded evaluation set (two portraits: astronaut, grace_hopper).
EVAL_PHOTOS: tuple[str, ...] = ("astronaut", "grace_hopper", "coffee", "rocket", "china")
#: Photos for training; disjoint from EVAL_PHOTOS.
TRAIN_PHOTOS: tuple[str, ...] = ("chelsea", "flower", "stereo_motorcycle", "hubble_deep_field")
assert not set(EVAL_PHOTOS) & set(TRAIN_PHOTOS)


def load_photo(name: str, max_side: int | None = None) -> np.ndarray:
    """A registered photo as float32 ``[H, W, 3]`` in [0, 1] (values / 255).

    Args:
        name: a key of :data:`PHOTOS`.
        max_side: if given and the photo is larger, downsample (Pillow Lanczos on the 8-bit
            pixels, aspect kept, deterministic) so the long side is ``max_side``. Used when
            *building* datasets; loaders of existing datasets never resize.
    """
    if name not in PHOTOS:
        raise KeyError(f"unknown photo {name!r}; known: {', '.join(PHOTOS)}")
    arr = np.asarray(_LOADERS[name](), dtype=np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    arr = arr[..., :3]
    if max_side is not None and max(arr.shape[:2]) > max_side:
        arr = shrink_to(arr, max_side, "lanczos")
    return np.ascontiguousarray(arr, dtype=np.float32) / np.float32(255.0)


def find_face(photo: np.ndarray) -> tuple[float, float, float, float] | None:
    """Largest frontal face found by scikit-image's LBP cascade, as (cx, cy, rx, ry) fractions
    of width/height, or None."""
    import skimage.data
    from skimage.feature import Cascade

    img = np.clip(np.asarray(photo) * 255.0, 0, 255).astype(np.uint8)
    h, w = img.shape[:2]
    side = min(h, w)
    det = Cascade(skimage.data.lbp_frontal_face_cascade_filename())
    faces = det.detect_multi_scale(img=img, scale_factor=1.2, step_ratio=1,
                                   min_size=(max(24, side // 12),) * 2, max_size=(side, side))
    if not faces:
        return None
    f = max(faces, key=lambda d: d["width"] * d["height"])
    return ((f["c"] + f["width"] / 2) / w, (f["r"] + f["height"] / 2) / h, f["width"] / 2 / w, f["height"] / 2 / h)


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
