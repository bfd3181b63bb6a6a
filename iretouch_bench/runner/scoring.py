"""Per-pair scoring: every local metric of DESIGN.md for one (input, output, target) triple.

The VLM judge is not here: it is batched across samples (concurrency, cache, budget) and
called by :mod:`iretouch_bench.runner.score`. Everything here is deterministic.

Each metric group returns values and, for each ``None``, a reason. A group that raises
is recorded as ``None`` with the error as reason, so one failing metric never loses the
others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.errors import error_line
from ..core.resize import match_size
from ..metrics.attr_acc import attr_acc
from ..metrics.distance import l1, l2
from ..metrics.fidelity import fidelity_scores
from ..metrics.identity import MARGIN, face_similarity
from ..metrics.keys import DISTANCE_KEYS, FIDELITY_KEYS, JUDGE_KEYS, SAMPLE_KEYS

NOT_SELECTED = "not selected (--metrics/--skip)"


@dataclass
class PairScores:
    """``values``: every key of SAMPLE_KEYS (None when not computed); ``reasons``: why None."""

    values: dict[str, float | None] = field(default_factory=lambda: {k: None for k in SAMPLE_KEYS})
    reasons: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def set_null(self, keys, reason: str) -> None:
        for k in keys:
            self.values[k] = None
            self.reasons[k] = reason

    def merge(self, values: dict[str, float | None], reasons: dict[str, str]) -> None:
        for k, v in values.items():
            self.values[k] = None if v is None else float(v)
            if v is None:
                self.reasons[k] = reasons.get(k, "not computed")
            else:
                self.reasons.pop(k, None)


def _error_reason(err: BaseException) -> str:
    return f"error: {error_line(err, limit=300)}"


def score_pair(
    input_rgb: np.ndarray,
    output_rgb: np.ndarray,
    *,
    target_rgb: np.ndarray | None = None,
    instruction: str | None = None,
    mask: np.ndarray | None = None,
    identity: bool = False,
    instruction_score: bool = True,
    device: str = "cpu",
    face_weights: str | None = None,
    metrics: tuple[str, ...] = SAMPLE_KEYS,
    protocol: str | None = None,
    face_margin: int = MARGIN,
    face_choice: str = "confident",
) -> PairScores:
    """Score one pair. Images are float32 ``[H, W, 3]`` in [0, 1].

    * fidelity (ssim, cw_ssim, gmsd, dists): output vs input, the paper's protocol;
    * distance (l1, l2): output vs target, when a target is given;
    * attr_acc: offline instruction score, when an instruction is given and
      ``instruction_score``;
    * face_sim: FaceNet cosine input vs output, when ``identity``.

    ``protocol``: the fidelity protocol (:mod:`iretouch_bench.metrics.protocols`, default ``paper``);
    ``face_margin`` / ``face_choice``: FaceNet crop margin and which input face is the subject
    (:func:`iretouch_bench.metrics.identity.face_similarity`).

    Only the keys in ``metrics`` are computed (``--metrics`` / ``--skip``); the others are
    None with the reason "not selected". sc/pq/o stay None here (set by the judge stage).
    """
    for name, arr in (("input", input_rgb), ("output", output_rgb), ("target", target_rgb)):
        if arr is not None and not np.isfinite(arr).all():
            raise ValueError(f"{name} image holds NaN or infinite values")
    scores = PairScores()
    scores.set_null(("sc", "pq", "o"), "no VLM judge (offline scoring; run --judge openai:MODEL)")

    # One resize for every metric of the sample, recorded once (the README's wrong-size rule).
    out_same, resized = match_size(output_rgb, input_rgb.shape[:2])
    if resized is not None:
        scores.details["resized_output"] = resized

    selected = set(metrics)
    scores.set_null([k for k in SAMPLE_KEYS if k not in selected and k not in JUDGE_KEYS], NOT_SELECTED)

    # Fidelity.
    fid_keys = tuple(k for k in FIDELITY_KEYS if k in selected)
    if fid_keys:
        try:
            values, reasons, extra = fidelity_scores(input_rgb, out_same, device=device, keys=fid_keys,
                                                     protocol=protocol)
            scores.merge(values, reasons)
            scores.details["fidelity"] = extra
        except Exception as err:
            scores.set_null(fid_keys, _error_reason(err))

    # Distance to target (resized output, so sizes agree with the input the target matches).
    dist_keys = tuple(k for k in DISTANCE_KEYS if k in selected)
    if not dist_keys:
        pass
    elif target_rgb is None:
        scores.set_null(dist_keys, "no target (the dataset or --target gives none)")
    elif target_rgb.shape != out_same.shape:
        scores.set_null(dist_keys, f"target size {target_rgb.shape[:2]} != input size {out_same.shape[:2]}")
    else:
        fns = {"l1": l1, "l2": l2}
        scores.merge({k: fns[k](out_same, target_rgb) for k in dist_keys}, {})

    # Offline instruction score.
    if "attr_acc" not in selected:
        pass
    elif not instruction_score:
        scores.set_null(("attr_acc",), "instruction scoring off (--judge none)")
    elif not instruction:
        scores.set_null(("attr_acc",), "no instruction")
    else:
        try:
            value, reason, detail = attr_acc(input_rgb, out_same, instruction, mask=mask)
            scores.merge({"attr_acc": value}, {"attr_acc": reason or "not computed"})
            scores.details["attr_acc"] = detail
        except Exception as err:
            scores.set_null(("attr_acc",), _error_reason(err))

    # Identity.
    if "face_sim" not in selected:
        pass
    elif not identity:
        scores.set_null(("face_sim",), "identity off (not a portrait sample; --identity on forces it)")
    else:
        try:
            value, reason, detail = face_similarity(input_rgb, out_same, device=device, weights=face_weights,
                                                    margin=face_margin, face=face_choice)
            scores.merge({"face_sim": value}, {"face_sim": reason or "not computed"})
            scores.details["identity"] = detail
        except Exception as err:
            scores.set_null(("face_sim",), _error_reason(err))
    return scores
