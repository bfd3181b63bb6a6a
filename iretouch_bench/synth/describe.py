"""Describe a measured change: two images -> the instruction that asks for it.

For datasets that ship pairs without instructions (PPR10K): the change from source to
target is explained with the photo-finishing pipeline's global operations (a least-squares
fit on small copies), each fitted operation is kept only when the CIELAB measures of the
vocabulary confirm its direction, and the writer of :mod:`.instructions` phrases the result.

:func:`describe_files` is the same on two image files, with an on-disk cache keyed by the
files' sha256 and the fingerprint of this module's whole import closure, so a changed
writer, vocabulary or measure never serves stale text.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.optimize import least_squares

from ..core.atomic import cache_dir, write_json_atomic
from ..core.fingerprint import code_fingerprint
from ..core.images import read_image
from ..core.resize import block_mean, resize
from ..vocab.attributes import ATTRIBUTE_EFFECTS, AttributeMatch, measure_image
from .finishing import PARAM_RANGES, FinishingParams, _apply_global
from .instructions import InstructionError, op_level, write_instruction

__all__ = ["change_intents", "fit_finishing", "describe_change", "describe_files", "MEASURE_MAX_SIDE"]


#: Long side of the working copy measured by change_intents (the offline score ``attr_acc``
#: measures at the same size, so "local contrast" means the same in both).
WORK_LONG_SIDE = 512
#: Long side of the small copy the finishing parameters are fitted on.
FIT_LONG_SIDE = 96
#: Operations fitted by :func:`fit_finishing`, with the smallest |value| that counts as a
#: change when describing it.
FIT_OPS: dict[str, float] = {
    "exposure": 0.15, "temperature": 0.12, "tint": 0.12, "contrast": 0.15,
    "saturation": 0.12, "shadows": 0.3, "highlights": 0.3,
}
# op -> (attribute of a positive value, attribute of a negative value): the forward change
_FORWARD: dict[str, tuple[str, str]] = {
    "exposure": ("brightness:up", "brightness:down"),
    "temperature": ("temperature:warm", "temperature:cool"),
    "tint": ("tint:magenta", "tint:green"),
    "contrast": ("contrast:up", "contrast:down"),
    "saturation": ("saturation:up", "saturation:down"),
    "shadows": ("shadows:up", "shadows:down"),
    "highlights": ("highlights:up", "highlights:down"),
}
#: Smallest measured change (CIELAB units, signed by the attribute's expected direction)
#: for a fitted attribute to be kept: the description never claims a change that the
#: offline score would measure the other way.
AGREE_MIN = 0.75


def fit_finishing(source: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> FinishingParams:
    """The global finishing parameters (:data:`FIT_OPS`) that best map ``source`` to ``target``.

    Non-linear least squares (scipy ``least_squares``, trust-region within
    :data:`~.finishing.PARAM_RANGES`) on copies area-averaged to a long side of
    :data:`FIT_LONG_SIDE` px, pixel weights = ``mask`` when given, with a small penalty
    towards zero so that operations the change does not need stay at zero.

    Args:
        source, target: float32 ``[H, W, 3]`` in [0, 1], same size.
        mask: optional float32 ``[H, W]`` in [0, 1].
    Returns:
        FinishingParams with only FIT_OPS set.
    """
    src, tgt = block_mean(source, FIT_LONG_SIDE), block_mean(target, FIT_LONG_SIDE)
    w = np.ones(src.shape[:2], np.float32) if mask is None else np.clip(block_mean(mask, FIT_LONG_SIDE), 0, 1)
    sw = np.sqrt(w / max(float(w.mean()), 1e-6))[..., None]
    ops = list(FIT_OPS)
    lo = np.array([PARAM_RANGES[o][0] for o in ops])
    hi = np.array([PARAM_RANGES[o][1] for o in ops])
    n = float(src.size)

    def resid(x: np.ndarray) -> np.ndarray:
        p = FinishingParams(**{o: float(np.clip(v, lo[i], hi[i])) for i, (o, v) in enumerate(zip(ops, x))})
        out = _apply_global(src, p)
        # penalty 0.01 per unit of parameter, scaled to the pixel term's size
        return np.concatenate([((out - tgt) * sw).ravel().astype(np.float64), 0.01 * np.sqrt(n) * x / np.sqrt(len(ops))])

    def jac(x: np.ndarray) -> np.ndarray:
        # Forward differences with an absolute step: scipy's relative steps are ~1e-8 at x = 0,
        # below what float32 pixels resolve (the Jacobian would read as zero).
        f0 = resid(x)
        cols = []
        for i in range(len(x)):
            h = 0.02 if x[i] + 0.02 <= hi[i] else -0.02
            xi = x.copy()
            xi[i] += h
            cols.append((resid(xi) - f0) / h)
        return np.stack(cols, axis=1)

    sol = least_squares(resid, np.zeros(len(ops)), jac=jac, bounds=(lo, hi), xtol=1e-4, ftol=1e-6, max_nfev=100)
    return FinishingParams(**{o: float(np.clip(v, lo[i], hi[i])) for i, (o, v) in enumerate(zip(ops, sol.x))})


def change_intents(
    source: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None, region: str | None = None,
    max_attributes: int = 3,
) -> list[AttributeMatch]:
    """The attributes of the measured source-to-target change (largest effect first).

    1. :func:`fit_finishing` explains the change with the pipeline's global operations
       (exposure, white balance, contrast, saturation, shadows, highlights), so that a
       plain brightening is not also read as "warmer" or "more contrast".
    2. Each operation beyond its :data:`FIT_OPS` threshold becomes its attribute, ranked by
       how much that operation alone changes the (small) image; confidence from its
       magnitude (thirds of :data:`~.finishing.SAMPLE_RANGES`).
    3. An attribute is kept only if the measured change (:func:`~.attributes.measure_image`
       on copies of long side :data:`WORK_LONG_SIDE`, inside ``mask`` when given) goes its
       expected way by at least :data:`AGREE_MIN` for every measure of its
       ``ATTRIBUTE_EFFECTS`` row.
    """
    fitted = fit_finishing(source, target, mask)
    small = block_mean(source, FIT_LONG_SIDE)
    cands = []
    for op, thr in FIT_OPS.items():
        v = getattr(fitted, op)
        if abs(v) < thr:
            continue
        effect = float(np.abs(_apply_global(small, FinishingParams(**{op: v})) - small).mean())
        name = _FORWARD[op][0 if v > 0 else 1]
        cands.append((effect, AttributeMatch(name, op_level(op, v), region)))
    cands.sort(key=lambda t: -t[0])
    if not cands:
        return []
    ws, wt = block_mean(source, WORK_LONG_SIDE), block_mean(target, WORK_LONG_SIDE)
    wm = None if mask is None else block_mean(mask, WORK_LONG_SIDE)
    ms, mt = measure_image(ws, wm), measure_image(wt, wm)
    out = []
    for _, it in cands:
        if all((mt[k] - ms[k]) * sign >= AGREE_MIN for k, sign in ATTRIBUTE_EFFECTS[it.name].items()):
            out.append(it)
    return out[:max_attributes]


_NO_CHANGE = ["Leave the tones as they are.", "Keep the photo as it is.", "Keep the colors and tones unchanged."]


def describe_change(
    source: np.ndarray,
    target: np.ndarray,
    rng: np.random.Generator | None = None,
    mask: np.ndarray | None = None,
    region: str | None = None,
    seen: Sequence[str] | None = None,
) -> str:
    """An instruction for the measured change from ``source`` to ``target``.

    Args:
        source, target: float32 ``[H, W, 3]`` in [0, 1], same size.
        rng: phrasing randomness (default: a fixed seed, so the text is deterministic).
        mask: optional float32 ``[H, W]``; measure inside it and name ``region``.
        region: region word for the intents (one of ``REGIONS``) when ``mask`` is given.
        seen: earlier instructions, to avoid near-duplicates.
    Returns:
        The instruction (verified like :func:`write_instruction`); a "keep it as it is"
        sentence (which matches no attribute) when no change exceeds the thresholds.
    """
    if source.shape != target.shape:
        raise InstructionError(f"source {source.shape} and target {target.shape} differ in size")
    rng = np.random.default_rng(0) if rng is None else rng
    intents = change_intents(source, target, mask=mask, region=region)
    if not intents:
        return _NO_CHANGE[int(rng.integers(len(_NO_CHANGE)))]
    return write_instruction(intents, rng, seen=seen)


#: Longest side the images are reduced to (block mean) before measuring the change: the
#: measurement is of global tone/colour statistics, which a 1024-px view keeps, and a 4K
#: 16-bit decode+measure per pair would dominate loading time.
MEASURE_MAX_SIDE = 1024


def describer_fingerprint() -> str:
    """Fingerprint of the code that decides a description (this module's import closure)."""
    return code_fingerprint(__name__)


def describe_files(source: Path, target: Path, source_sha256: str, target_sha256: str) -> tuple[str, bool]:
    """Instruction for a source->target file pair, from the cache or freshly measured.

    Returns ``(text, from_cache)``. The phrasing rng is seeded from the two file digests, so
    phrasing varies across pairs but is the same on every machine and rerun.

    Raises:
        ImageReadError: a file cannot be decoded.
    """
    key = hashlib.sha256(f"{source_sha256}:{target_sha256}:{describer_fingerprint()}".encode()).hexdigest()
    cache_file = cache_dir("instructions", "ppr10k") / f"{key}.json"
    if cache_file.is_file():
        try:
            return json.loads(cache_file.read_text())["instruction"], True
        except (OSError, ValueError, KeyError):
            pass  # a damaged entry is recomputed
    src = block_mean(read_image(source), MEASURE_MAX_SIDE)
    tgt = block_mean(read_image(target), MEASURE_MAX_SIDE)
    if src.shape != tgt.shape:
        tgt = np.clip(resize(tgt, src.shape[:2], "bilinear"), 0.0, 1.0)
    rng = np.random.default_rng(int(key[:16], 16))
    text = describe_change(src, tgt, rng=rng)
    write_json_atomic(cache_file, {"instruction": text, "source_sha256": source_sha256,
                                   "target_sha256": target_sha256}, indent=None)
    return text, False
