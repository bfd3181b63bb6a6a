"""Stage 3, aggregate: per-sample records -> ``summary.json`` and ``table.md``.

Means are arithmetic over the samples where a metric was computed; the count of those
samples and the reasons for the others are kept next to each mean, so a mean over 3 of
40 samples can never pass for a mean over 40. O is averaged per sample (the paper's
dataset mean of sqrt(SC*PQ)), not recomputed from mean SC and mean PQ.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any, Iterable

from ..metrics.keys import HIGHER_IS_BETTER, LATENCY_KEYS, SAMPLE_KEYS

#: Columns of the run table, in the paper's order (fidelity, instruction, identity, distance).
TABLE_KEYS = ("ssim", "cw_ssim", "gmsd", "dists", "sc", "pq", "o", "attr_acc", "face_sim", "l1", "l2")


def _stats(records: list[dict[str, Any]], key: str) -> dict[str, Any]:
    vals = [r["metrics"][key] for r in records if r.get("metrics", {}).get(key) is not None]
    reasons = Counter(r.get("null_reasons", {}).get(key, "not computed")
                      for r in records if r.get("metrics", {}).get(key) is None)
    if not vals:
        return {"mean": None, "n": 0, "n_null": sum(reasons.values()), "null_reasons": dict(reasons)}
    mean = math.fsum(vals) / len(vals)
    var = math.fsum((v - mean) ** 2 for v in vals) / (len(vals) - 1) if len(vals) > 1 else 0.0
    return {"mean": mean, "std": math.sqrt(var), "n": len(vals), "n_null": sum(reasons.values()),
            "null_reasons": dict(reasons)}


def summarise(records: Iterable[dict[str, Any]], expected: int | None = None) -> dict[str, Any]:
    """Summary of final records: overall, per category, counts of ok/failed/missing."""
    records = sorted(records, key=lambda r: r["id"])
    ok = [r for r in records if r.get("status") == "ok"]
    failed = [r for r in records if r.get("status") != "ok"]
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
        "metrics": {k: _stats(ok, k) for k in SAMPLE_KEYS},
        "by_category": {c: {"n": len(rs), "metrics": {k: _stats(rs, k) for k in SAMPLE_KEYS}}
                        for c, rs in sorted(by_cat.items())},
        "generation_latency_s": ({"median": sorted(gen_lat)[len(gen_lat) // 2], "n": len(gen_lat),
                                  "note": "per sample at its native size, model call only"}
                                 if gen_lat else None),
    }


def _fmt(stat: dict[str, Any] | None, total: int) -> str:
    if not stat or stat.get("mean") is None:
        return "—"
    v = stat["mean"]
    s = f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"
    if stat["n"] < total:
        s += f" ({stat['n']}/{total})"
    return s


def _header(keys: Iterable[str]) -> list[str]:
    return [f"{k} {'↑' if HIGHER_IS_BETTER[k] else '↓'}" for k in keys]


def render_table(summary: dict[str, Any], model: str, dataset: str, latency: dict[str, Any] | None = None) -> str:
    """Markdown: one overall row, one row per category, then latency if measured, then null reasons."""
    keys = [k for k in TABLE_KEYS]
    head = ["model", "dataset", "subset", "n"] + _header(keys)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    n_ok = summary["n_ok"]
    row = [model, dataset, "all", str(n_ok)] + [_fmt(summary["metrics"][k], n_ok) for k in keys]
    lines.append("| " + " | ".join(row) + " |")
    for cat, block in summary["by_category"].items():
        row = [model, dataset, cat, str(block["n"])] + [_fmt(block["metrics"][k], block["n"]) for k in keys]
        lines.append("| " + " | ".join(row) + " |")
    out = ["\n".join(lines)]
    if latency:
        lk = [k for k in LATENCY_KEYS if k in latency]
        lhead = ["model"] + _header(lk)
        lrow = [model] + [("—" if latency[k] is None else f"{latency[k]:.4f} s") for k in lk]
        out.append("| " + " | ".join(lhead) + " |\n|" + "---|" * len(lhead) + "\n| " + " | ".join(lrow) + " |")
    notes = []
    if summary["n_failed"]:
        notes.append(f"- {summary['n_failed']} sample(s) failed: see `samples*.jsonl` (status failed).")
    for k in keys:
        st = summary["metrics"][k]
        if st["n_null"]:
            top = ", ".join(f"{r} ({c})" for r, c in sorted(st["null_reasons"].items(), key=lambda x: -x[1])[:2])
            notes.append(f"- `{k}` null for {st['n_null']} sample(s): {top}")
    if notes:
        out.append("Notes:\n" + "\n".join(notes))
    return "\n\n".join(out) + "\n"
