"""Strength sweeps (paper Sec. 4.4): one run folder per strength and the fidelity-vs-instruction curve.

``iretouch-bench sweep`` writes ``<sweep>/sweep.json`` (model, dataset, and the strength -> run
folder list) next to the run folders ``strength-<s>/``; this module reads it back as points for
the table and the report's plot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import BenchError
from ..runner.result import Result, load_result

SWEEP_FILE = "sweep.json"
#: The fidelity axis of the curve and the instruction axis (judge O when measured, else attr_acc).
FIDELITY_KEY = "ssim"
INSTRUCTION_KEYS = ("o", "attr_acc")


def strength_dir(s: float) -> str:
    """``0.25`` -> ``strength-0.25`` (the run folder of one strength inside a sweep folder)."""
    return f"strength-{float(s):g}"


def is_sweep(path: Path) -> bool:
    return (Path(path) / SWEEP_FILE).is_file()


@dataclass
class SweepPoint:
    strength: float
    run_dir: Path
    result: Result


def load_sweep(folder: str | Path) -> tuple[dict, list[SweepPoint]]:
    """``(sweep.json, points sorted by strength)``; every run must have its ``result.json``."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / SWEEP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise BenchError(f"{folder / SWEEP_FILE}: not a readable sweep file ({err})") from err
    points = []
    for entry in meta.get("runs", []):
        run_dir = folder / entry["run"]
        points.append(SweepPoint(float(entry["strength"]), run_dir, load_result(run_dir / "result.json")))
    return meta, sorted(points, key=lambda p: p.strength)


def instruction_key(results: list[Result]) -> str:
    """The instruction score every point has: the judge's ``o`` if measured, else ``attr_acc``."""
    for k in INSTRUCTION_KEYS:
        if all((getattr(r.metrics, k) is not None and getattr(r.metrics, k).mean is not None) for r in results):
            return k
    return INSTRUCTION_KEYS[-1]


def _cell(res: Result, key: str) -> str:
    st = getattr(res.metrics, key)
    if st is None or st.mean is None:
        return "—"
    ci = st.ci
    return f"{st.mean:.4f}" + (f" [{ci.lo:.4f}, {ci.hi:.4f}]" if ci and ci.lo is not None else "")


def render_sweep_table(folder: str | Path) -> str:
    """Markdown: one row per strength, fidelity metrics and the instruction score with intervals."""
    meta, points = load_sweep(folder)
    ikey = instruction_key([p.result for p in points])
    keys = ["ssim", "cw_ssim", "gmsd", "dists", ikey, "l1"]
    lines = [f"Strength sweep of {meta.get('model')} on {meta.get('dataset')} (fidelity vs {ikey}; 95% bootstrap "
             f"intervals)", "", "| strength | n | " + " | ".join(keys) + " | run |", "|---|" + "---|" * (len(keys) + 2)]
    for p in points:
        lines.append(f"| {p.strength:g} | {p.result.counts.n_ok} | " + " | ".join(_cell(p.result, k) for k in keys)
                     + f" | `{p.run_dir}` |")
    return "\n".join(lines) + "\n"
