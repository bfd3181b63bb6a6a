"""``iretouch-bench compare RUN_A RUN_B``: paired differences per metric on the samples both runs share.

For each metric: the ids where both runs have an ``ok`` record with a value, the mean of
``B - A`` with its 95% bootstrap interval (resampling the pairs), and the Wilcoxon signed-rank
test. A paired comparison removes the between-sample spread that makes two separate intervals
overlap, so it can show a real difference two leaderboard rows cannot.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.errors import BenchError
from ..metrics.keys import HIGHER_IS_BETTER, SAMPLE_KEYS
from ..runner.records import read_all
from ..runner.result import comparability_key, load_result
from ..runner.stats import paired_difference


def _ok_records(run_dir: Path) -> dict[str, dict[str, Any]]:
    if not (run_dir / "run.json").is_file():
        raise BenchError(f"{run_dir}: not a run folder (no run.json)")
    return {i: r for i, r in read_all(run_dir, "samples").items() if r.get("status") == "ok"}


def compare_runs(run_a: str | Path, run_b: str | Path, keys: tuple[str, ...] = SAMPLE_KEYS) -> dict[str, Any]:
    """``{"a", "b", "comparable", "warning", "n_shared", "metrics": {key: paired_difference(...) + verdict}}``."""
    a, b = Path(run_a), Path(run_b)
    ra, rb = _ok_records(a), _ok_records(b)
    shared = sorted(set(ra) & set(rb))
    warning = None
    try:
        ka, kb = (comparability_key(load_result(p / "result.json")) for p in (a, b))
        if ka != kb:
            diff = [n for n, x, y in zip(("dataset hash", "fidelity protocol", "judge"), ka, kb) if x != y]
            warning = f"the runs differ in {', '.join(diff)}: paired differences mix two measurements"
    except BenchError:
        ka = kb = None
        warning = "result.json missing in one run (run `iretouch-bench aggregate`); comparability not checked"
    out: dict[str, Any] = {"a": str(a), "b": str(b), "n_a": len(ra), "n_b": len(rb), "n_shared": len(shared),
                           "comparable": ka == kb and ka is not None, "warning": warning, "metrics": {}}
    for k in keys:
        ids = [i for i in shared if (ra[i].get("metrics") or {}).get(k) is not None
               and (rb[i].get("metrics") or {}).get(k) is not None]
        if not ids:
            out["metrics"][k] = {"n": 0, "reason": "no sample has this metric in both runs"}
            continue
        res = paired_difference([ra[i]["metrics"][k] for i in ids], [rb[i]["metrics"][k] for i in ids])
        lo, hi = res["ci"]["lo"], res["ci"]["hi"]
        if lo is None or hi is None or (lo <= 0 <= hi):
            verdict = "no clear difference (95% interval includes 0)"
        else:
            better = (lo > 0) == HIGHER_IS_BETTER[k]
            verdict = "B better" if better else "A better"
        res["verdict"] = verdict
        out["metrics"][k] = res
    return out


def _f(v: float | None, digits: int = 4) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def render_compare(cmp: dict[str, Any], fmt: str = "md") -> str:
    if fmt == "json":
        return json.dumps(cmp, indent=2)
    lines = [f"A: `{cmp['a']}` ({cmp['n_a']} ok)  B: `{cmp['b']}` ({cmp['n_b']} ok)  shared ids: {cmp['n_shared']}"]
    if cmp["warning"]:
        lines.append(f"warning: {cmp['warning']}")
    lines += ["", "| metric | n | mean A | mean B | B − A | 95% CI (bootstrap) | Wilcoxon p | verdict |",
              "|---|---|---|---|---|---|---|---|"]
    for k, r in cmp["metrics"].items():
        arrow = "↑" if HIGHER_IS_BETTER[k] else "↓"
        if not r.get("n"):
            lines.append(f"| {k} {arrow} | 0 | — | — | — | — | — | {r['reason']} |")
            continue
        ci = r["ci"]
        p = _f(r["p_value"], 3) if r["p_value"] is not None and r["p_value"] >= 1e-3 else (
            f"{r['p_value']:.1e}" if r["p_value"] is not None else f"— ({r.get('p_value_reason')})")
        lines.append(f"| {k} {arrow} | {r['n']} | {_f(r['mean_a'])} | {_f(r['mean_b'])} | {r['mean_diff']:+.4f} | "
                     f"[{_f(ci['lo'])}, {_f(ci['hi'])}] | {p} | {r['verdict']} |")
    lines.append("")
    lines.append(f"Paired over the ids both runs scored; interval: {ci_note()}; test: Wilcoxon signed-rank, two-sided.")
    return "\n".join(lines) + "\n"


def ci_note() -> str:
    from ..runner.stats import CI_ITERATIONS, CI_METHOD, CI_SEED

    return f"{CI_METHOD} bootstrap of the mean difference, {CI_ITERATIONS} resamples, seed {CI_SEED}"
