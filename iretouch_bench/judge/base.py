"""The judge contract: one request per sample in, one result per sample out.

A judge turns ``(input photo, retouched photo, instruction)`` into the three
instruction-following scores of the metric contract:

* ``sc`` - semantic consistency, 0-10 (did the retouch do what was asked, without over-editing),
* ``pq`` - perceptual quality, 0-10 (does the retouched photo look natural and artifact-free),
* ``o``  - overall, ``sqrt(sc * pq)``, 0-10.

A value that could not be obtained is ``None`` with a reason in ``JudgeResult.reasons``;
a judge never fills in a zero, a mean or a random number.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.errors import BenchError

#: The score keys a judge fills, in the order the metric contract lists them.
SCORE_KEYS = ("sc", "pq", "o")


class JudgeError(BenchError):
    """A judge cannot be built or used (bad spec, missing key, no price for a budget, ...)."""


@dataclass
class JudgeRequest:
    """One sample to judge.

    Attributes:
        id: the sample id (echoed back only through the caller's bookkeeping; results come in order).
        input_rgb: the source photo, float32 ``[H, W, 3]`` in ``[0, 1]``, sRGB.
        output_rgb: the retouched photo, float32 ``[H', W', 3]`` in ``[0, 1]``, sRGB
            (usually the same size as the input; not required).
        instruction: the retouching instruction, in words.
    """

    id: str
    input_rgb: np.ndarray
    output_rgb: np.ndarray
    instruction: str


@dataclass
class JudgeResult:
    """What a judge says about one sample.

    Attributes:
        values: ``{"sc", "pq", "o"}`` -> float in ``[0, 10]`` or ``None``.
        reasons: for every key whose value is ``None``, why (one line).
        raw: one dict per model answer used (or attempted): prompt kind, sample index, the text the
            model returned, the parsed score pair and reasoning, the model id the API reported,
            token usage, attempts and errors. Kept in the per-sample record for audit.
        usage: tokens spent *in this run* for this sample: ``{"prompt_tokens", "completion_tokens",
            "total_tokens", "api_calls"}`` (answers served from the cache cost no tokens).
        cost_usd: dollars spent in this run for this sample; ``None`` when the model has no known price.
        cached: ``True`` when every answer came from the on-disk cache (no API call at all).
        spec: the judge that answered (``openai:MODEL``, ``gemini:MODEL``), for per-judge blocks.
        prompt_hash: the prompt set's hash (None for the offline judges).
        per_judge: with several judges (:class:`~.multi.MultiJudge`), every judge's result by spec,
            the primary's included; this result's ``values`` are the primary's.
    """

    values: dict[str, float | None]
    reasons: dict[str, str] = field(default_factory=dict)
    raw: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    cost_usd: float | None = None
    cached: bool = False
    spec: str | None = None
    prompt_hash: str | None = None
    per_judge: dict[str, "JudgeResult"] | None = None

    def block(self) -> dict[str, Any]:
        """This judge's entry in a sample record's ``judges`` map (and its ``judge`` block):
        scores, null reasons, the snapshots the API reported, prompt hash, usage, cost, answers."""
        return {"spec": self.spec, "sc": self.values.get("sc"), "pq": self.values.get("pq"),
                "o": self.values.get("o"), "null_reasons": dict(self.reasons), "prompt_hash": self.prompt_hash,
                # the model ids the API reported: aggregation never averages two into one cell
                "snapshots": sorted({a["model"] for a in self.raw if a.get("model")}),
                "usage": dict(self.usage), "cost_usd": self.cost_usd, "cached": self.cached, "raw": list(self.raw)}

    def to_json(self) -> dict[str, Any]:
        return {
            "values": dict(self.values),
            "reasons": dict(self.reasons),
            "raw": list(self.raw),
            "usage": dict(self.usage),
            "cost_usd": self.cost_usd,
            "cached": self.cached,
        }


def overall(sc: float | None, pq: float | None) -> float | None:
    """``O = sqrt(SC * PQ)`` (VIEScore / GEdit-Bench); ``None`` when either part is missing."""
    if sc is None or pq is None:
        return None
    return math.sqrt(max(sc, 0.0) * max(pq, 0.0))


def all_none(reason: str) -> JudgeResult:
    """A result with every score ``None`` for the same reason."""
    return JudgeResult(values={k: None for k in SCORE_KEYS}, reasons={k: reason for k in SCORE_KEYS})


class Judge(ABC):
    """Base class. Subclasses implement :meth:`score_batch`, :meth:`info` and :meth:`estimate`."""

    spec: str = ""

    @abstractmethod
    def score_batch(self, requests: list[JudgeRequest]) -> list[JudgeResult]:
        """Judge every request; results come back in the same order, one per request."""

    def score(self, request: JudgeRequest) -> JudgeResult:
        return self.score_batch([request])[0]

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """Everything ``run.json`` should say about this judge (never a credential)."""

    @abstractmethod
    def estimate(self, n_samples: int) -> dict[str, Any]:
        """For ``--dry-run``: ``{"calls": int, "est_cost_usd": float | None, "note": str}``."""

    def preflight(self) -> None:
        """Raise :class:`JudgeError` now if the judge could not make its calls (e.g. no API key).

        Call it before a long generation stage so a missing key fails in the first second, not
        after the outputs are made. Answers already in the cache need no key, so ``score_batch``
        itself only raises when a call is actually needed.
        """

    def close(self) -> None:  # pragma: no cover - nothing to release by default
        """Release network clients and thread pools."""


class NullJudge(Judge):
    """``--judge offline`` and ``--judge none``: no VLM, every judge score is ``None`` with a reason.

    ``offline`` is the default: the instruction-following score of an offline run is ``attr_acc``
    (``iretouch_bench.metrics.attr_acc``), which the runner computes separately.
    """

    def __init__(self, spec: str):
        if spec not in ("offline", "none"):
            raise JudgeError(f"judge spec {spec!r}: NullJudge serves only 'offline' and 'none'")
        self.spec = spec
        if spec == "offline":
            self.reason = "no VLM judge (--judge offline); attr_acc is the offline instruction score"
        else:
            self.reason = "judge disabled (--judge none)"

    def score_batch(self, requests: list[JudgeRequest]) -> list[JudgeResult]:
        return [all_none(self.reason) for _ in requests]

    def info(self) -> dict[str, Any]:
        return {"spec": self.spec, "kind": self.spec, "model_requested": None, "model_snapshots": [],
                "note": self.reason}

    def estimate(self, n_samples: int) -> dict[str, Any]:
        return {"calls": 0, "est_cost_usd": 0.0, "note": f"{self.spec}: no API calls"}
