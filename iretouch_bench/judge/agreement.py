"""Agreement between judges: Spearman and Kendall correlation of SC and of PQ across samples.

Computed over the samples both judges scored (``None`` on either side drops the sample), with
``scipy.stats.spearmanr`` and ``scipy.stats.kendalltau`` (tau-b, which handles the ties 0-10
integer scores always have). A correlation that cannot be computed (fewer than 3 shared samples,
or one judge gave every sample the same score) is ``None`` with the reason.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any, Iterable

AGREEMENT_KEYS = ("sc", "pq")
MIN_SAMPLES = 3


def _corr(xs: list[float], ys: list[float]) -> dict[str, Any]:
    from scipy import stats

    n = len(xs)
    out: dict[str, Any] = {"n": n, "spearman": None, "spearman_p": None, "kendall": None, "kendall_p": None}
    if n < MIN_SAMPLES:
        out["reason"] = f"only {n} sample(s) scored by both judges (need >= {MIN_SAMPLES})"
        return out
    if len(set(xs)) < 2 or len(set(ys)) < 2:
        out["reason"] = "a judge gave every shared sample the same score (correlation undefined)"
        return out
    rho = stats.spearmanr(xs, ys)
    tau = stats.kendalltau(xs, ys)
    for name, res in (("spearman", rho), ("kendall", tau)):
        v, p = float(res.statistic), float(res.pvalue)
        out[name] = v if math.isfinite(v) else None
        out[f"{name}_p"] = p if math.isfinite(p) else None
    return out


def agreement(records: Iterable[dict[str, Any]], specs: list[str]) -> list[dict[str, Any]]:
    """One entry per judge pair (in spec order): ``{"a", "b", "sc": {...}, "pq": {...}}`` with
    ``n``, ``spearman``, ``kendall`` and their p-values (or ``reason``). ``records``: final sample
    records with a ``judges`` map (only status ``ok`` records count)."""
    recs = [r for r in records if r.get("status") == "ok"]
    out = []
    for a, b in combinations(specs, 2):
        entry: dict[str, Any] = {"a": a, "b": b}
        for key in AGREEMENT_KEYS:
            xs, ys = [], []
            for r in recs:
                ja, jb = (r.get("judges") or {}).get(a), (r.get("judges") or {}).get(b)
                if ja and jb and ja.get(key) is not None and jb.get(key) is not None:
                    xs.append(float(ja[key]))
                    ys.append(float(jb[key]))
            entry[key] = _corr(xs, ys)
        out.append(entry)
    return out
