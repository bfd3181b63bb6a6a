"""Stage 3, aggregate: per-sample records -> the numbers of ``summary.json``.

Means are arithmetic over the samples where a metric was computed; the count of those
samples and the reasons for the others are kept next to each mean, so a mean over 3 of
40 samples can never pass for a mean over 40. O is averaged per sample (the paper's
dataset mean of sqrt(SC*PQ)), not recomputed from mean SC and mean PQ.
Each mean carries its 95% bootstrap interval (``ci``: seeded; method, seed and resamples
recorded with it; :mod:`.stats`).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any, Iterable

from ..judge.agreement import agreement
from ..metrics.keys import JUDGE_KEYS, SAMPLE_KEYS
from .stats import bootstrap_mean_ci


def _provenance(record: dict[str, Any], key: str) -> str | None:
    """What produced ``key``'s value in ``record`` where two sources would not be comparable:
    the FaceNet weights for ``face_sim``, the judge's model snapshot(s) for ``sc``/``pq``/``o``."""
    if key == "face_sim":
        return (record.get("details") or {}).get("identity", {}).get("weights")
    if key in JUDGE_KEYS:
        snaps = (record.get("judge") or {}).get("snapshots")
        return ",".join(snaps) if snaps else None
    return None


def _stats(records: list[dict[str, Any]], key: str) -> dict[str, Any]:
    vals = [r["metrics"][key] for r in records if r.get("metrics", {}).get(key) is not None]
    sources = sorted({s for r in records if r.get("metrics", {}).get(key) is not None
                      for s in [_provenance(r, key)] if s is not None})
    if len(sources) > 1:
        # e.g. a run resumed with other FaceNet weights, or a judge alias that moved between
        # snapshots: one mean over both would look like one measurement. Report it apart.
        by = Counter(_provenance(r, key) for r in records if r.get("metrics", {}).get(key) is not None)
        return {"mean": None, "n": 0, "n_null": len(records),
                "null_reasons": {f"mixed sources ({', '.join(sources)}): not averaged into one cell": len(records)},
                "by_source": {str(s): n for s, n in by.items()}}
    reasons = Counter(r.get("null_reasons", {}).get(key, "not computed")
                      for r in records if r.get("metrics", {}).get(key) is None)
    if not vals:
        return {"mean": None, "n": 0, "n_null": sum(reasons.values()), "null_reasons": dict(reasons)}
    mean = math.fsum(vals) / len(vals)
    var = math.fsum((v - mean) ** 2 for v in vals) / (len(vals) - 1) if len(vals) > 1 else 0.0
    # the 95% interval of the mean (seeded bootstrap; method, seed and iterations stored with it)
    return {"mean": mean, "std": math.sqrt(var), "n": len(vals), "n_null": sum(reasons.values()),
            "null_reasons": dict(reasons), "ci": bootstrap_mean_ci(vals)}


def summarise(records: Iterable[dict[str, Any]], expected: int | None = None) -> dict[str, Any]:
    """Summary of final records: overall, per category, counts of ok/failed/missing."""
    records = sorted(records, key=lambda r: r["id"])
    ok = [r for r in records if r.get("status") == "ok"]
    # a refusal (moderation, safety filter, no image) is the model's answer, not a harness failure:
    # counted apart, never scored, never averaged as if the input were the output
    refused = [r for r in records if r.get("status") == "refused"]
    failed = [r for r in records if r.get("status") not in ("ok", "refused")]
    by_cat: dict[str, list] = defaultdict(list)
    for r in ok:
        by_cat[r.get("category") or "uncategorised"].append(r)
    gen_lat = [r["latency_s"] for r in ok if isinstance(r.get("latency_s"), (int, float))]
    return {
        "n_samples": len(records),
        "n_expected": expected,
        "n_ok": len(ok),
        "n_failed": len(failed),
        "failed": {r["id"]: r.get("error") for r in failed},
        "n_refused": len(refused),
        "refused": {r["id"]: r.get("reason") for r in refused},
        "refused_reasons": dict(Counter(r.get("reason") or "no reason given" for r in refused)),
        "metrics": {k: _stats(ok, k) for k in SAMPLE_KEYS},
        "by_category": {c: {"n": len(rs), "metrics": {k: _stats(rs, k) for k in SAMPLE_KEYS}}
                        for c, rs in sorted(by_cat.items())},
        "generation_latency_s": ({"median": sorted(gen_lat)[len(gen_lat) // 2], "n": len(gen_lat),
                                  "note": "per sample at its native size, model call only"}
                                 if gen_lat else None),
        **_judges_block(ok),
    }


def judge_specs(records: list[dict[str, Any]]) -> list[str]:
    """The judges the records hold blocks for (``record["judges"]``), the primary first."""
    specs: list[str] = []
    primary = next(((r.get("judge") or {}).get("spec") for r in records if (r.get("judge") or {}).get("spec")), None)
    if primary:
        specs.append(primary)
    for r in records:
        for spec in r.get("judges") or {}:
            if spec not in specs:
                specs.append(spec)
    return specs


def _judges_block(ok: list[dict[str, Any]]) -> dict[str, Any]:
    """``judges``: per-judge means of sc/pq/o (same statistics as the plain keys, which are the
    primary's); ``judge_agreement``: Spearman and Kendall of SC and PQ for every judge pair."""
    specs = judge_specs(ok)
    if not specs:
        return {}
    per: dict[str, Any] = {}
    for spec in specs:
        rows = []
        for r in ok:
            j = (r.get("judges") or {}).get(spec)
            if j is None:
                rows.append({"metrics": {k: None for k in JUDGE_KEYS},
                             "null_reasons": {k: f"not judged by {spec}" for k in JUDGE_KEYS}})
            else:
                rows.append({"metrics": {k: j.get(k) for k in JUDGE_KEYS}, "null_reasons": j.get("null_reasons") or {},
                             "judge": {"snapshots": j.get("snapshots")}})
        first = next(((r.get("judges") or {}).get(spec) for r in ok if spec in (r.get("judges") or {})), {})
        per[spec] = {"prompt_hash": first.get("prompt_hash"), **{k: _stats(rows, k) for k in JUDGE_KEYS}}
    out: dict[str, Any] = {"judges": per}
    if len(specs) > 1:
        out["judge_agreement"] = agreement(ok, specs)
    return out
