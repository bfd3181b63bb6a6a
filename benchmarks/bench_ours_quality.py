"""The model card's quality table, read from two ``iretouch-bench run`` folders (no scoring here).

The figures come from the runs' ``summary.json`` files, written by the suite's one scoring
path; this script only lays them out per category as ``models/MODEL_CARD.md`` shows them::

    iretouch-bench run --model identity --skip dists --out runs/card-identity
    iretouch-bench run --model ours --skip dists --out runs/card-ours
    python benchmarks/bench_ours_quality.py runs/card-identity runs/card-ours

It refuses two runs that did not score the same dataset content (``run.json`` content hash).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _read(run: Path, name: str) -> dict:
    path = run / name
    if not path.is_file():
        raise SystemExit(f"error: {path}: not found (a finished `iretouch-bench run` folder holds it)")
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise SystemExit(f"error: {path}: not JSON ({err})") from None


def _mean(block: dict, key: str) -> float | None:
    return block["metrics"].get(key, {}).get("mean")


def _fmt(v: float | None, spec: str = ".4f") -> str:
    return "—" if v is None else format(v, spec)


def card_table(identity_run: Path, ours_run: Path) -> str:
    """Markdown table: per subset n, L1 identity / ours and the reduction, ours' SSIM and attr_acc."""
    runs = {r: _read(r, "run.json") for r in (identity_run, ours_run)}
    hashes = {r: info["dataset"]["content_hash"] for r, info in runs.items()}
    if len(set(hashes.values())) != 1:
        raise SystemExit(f"error: {ours_run}: dataset content {hashes[ours_run][:8]} differs from "
                         f"{identity_run}'s {hashes[identity_run][:8]}")
    ident, ours = _read(identity_run, "summary.json"), _read(ours_run, "summary.json")
    subsets = [("all", ident, ours)] + [(c, ident["by_category"][c], ours["by_category"][c])
                                       for c in sorted(ours["by_category"]) if c in ident["by_category"]]
    lines = [f"Dataset {runs[ours_run]['dataset']['spec']} (content {hashes[ours_run][:8]}), "
             f"ours weights sha256 {str(runs[ours_run]['model'].get('weights_sha256'))[:8]}, "
             f"slice backend {runs[ours_run]['model'].get('backend', 'not recorded')}",
             "",
             "| subset | n | L1 identity | L1 ours | reduction | SSIM ours (hist.-matched, vs input) | attr_acc ours |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, a, b in subsets:
        li, lo = _mean(a, "l1"), _mean(b, "l1")
        red = None if li in (None, 0) or lo is None else 100 * (1 - lo / li)
        n = b.get("n") or b.get("n_ok") or b["metrics"]["l1"].get("n")
        lines.append(f"| {name} | {n} | {_fmt(li)} | {_fmt(lo)} | {_fmt(red, '.1f')}% | "
                     f"{_fmt(_mean(b, 'ssim'))} | {_fmt(_mean(b, 'attr_acc'), '.3f')} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("identity_run", type=Path, help="run folder of --model identity")
    ap.add_argument("ours_run", type=Path, help="run folder of --model ours (same dataset)")
    args = ap.parse_args()
    print(card_table(args.identity_run, args.ours_run))


if __name__ == "__main__":
    main()
