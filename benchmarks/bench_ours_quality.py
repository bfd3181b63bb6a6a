"""Quality of ``ours`` vs ``identity`` on the embedded evaluation set (issue: quality targets).

For every pair of the embedded set (``iretouch_bench.synth.embedded.build_embedded()``), runs
``identity`` (the input) and ``ours`` (mask passed when the manifest has one) and prints:

* mean L1 to the target (goal: ours at least 25% below identity);
* histogram-matched grayscale SSIM of the output against the input (the suite's fidelity
  protocol, :func:`iretouch_bench.metrics.fidelity.matched_gray_pair` + ``ssim``; goal >= 0.98);
* instructed-attribute direction: for each intended attribute of a pair and each measure
  :data:`~iretouch_bench.vocab.attributes.ATTRIBUTE_EFFECTS` lists for it, whether the output
  moved that measure (CIELAB, inside the mask for regional attributes) the instructed way
  relative to the input (sign only, no threshold), and the suite's ``attr_acc`` score.

Usage: python benchmarks/bench_ours_quality.py [--weights PATH] [--limit N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--json", default=None, help="write per-sample records here")
    ap.add_argument("--root", default=None, help="embedded dataset folder (default: build/locate it)")
    args = ap.parse_args()

    import torch

    from iretouch_bench.vocab.attributes import ATTRIBUTE_EFFECTS, match_attributes, measure_image
    from iretouch_bench.synth.embedded import build_embedded
    from iretouch_bench.core.images import read_image
    from iretouch_bench.metrics.attr_acc import attr_acc
    from iretouch_bench.metrics.fidelity import matched_gray_pair
    from iretouch_bench.metrics.ssim import ssim
    from iretouch_bench.models.ours import OursModel

    root = Path(args.root) if args.root else build_embedded()
    rows = [json.loads(l) for l in (root / "manifest.jsonl").read_text().splitlines() if l.strip()]
    if args.limit:
        rows = rows[: args.limit]
    model = OursModel(weights=args.weights)
    model.load()

    def hm_ssim(a, b):
        g_in, g_out, _ = matched_gray_pair(a, b)
        t = lambda g: (torch.from_numpy(g.astype(np.float32)) / 255.0)[None, None]  # noqa: E731
        return float(ssim(t(g_out), t(g_in))[0])

    recs = []
    t0 = time.time()
    for row in rows:
        inp = read_image(root / row["input"])
        tgt = read_image(root / row["target"])
        mask = None
        if row.get("mask"):
            mask = read_image(root / row["mask"])[..., 0]
        out = model.retouch(inp, row["instruction"], mask=mask)
        rec = {"id": row["id"], "category": row.get("category"), "instruction": row["instruction"],
               "l1_identity": float(np.abs(inp - tgt).mean()), "l1_ours": float(np.abs(out - tgt).mean()),
               "ssim_ours": hm_ssim(inp, out)}
        a, reason, _ = attr_acc(inp, out, row["instruction"], mask)
        rec["attr_acc_ours"] = a
        at, _, _ = attr_acc(inp, tgt, row["instruction"], mask)
        rec["attr_acc_target"] = at
        moves = []
        for m in match_attributes(row["instruction"]):
            regional = m.region is not None and mask is not None
            mi = measure_image(inp, mask if regional else None)
            mo = measure_image(out, mask if regional else None)
            ok = all((mo[k] - mi[k]) * sgn > 0 for k, sgn in ATTRIBUTE_EFFECTS[m.name].items())
            moves.append({"attribute": m.name, "region": m.region, "right_way": bool(ok)})
        rec["moves"] = moves
        recs.append(rec)
    wall = time.time() - t0

    def mean(key, rs):
        v = [r[key] for r in rs if r[key] is not None]
        return statistics.fmean(v) if v else float("nan")

    cats = sorted({r["category"] for r in recs})
    print(f"embedded set: {len(recs)} pairs from {root} ({wall:.1f} s)")
    print(f"{'subset':10s} {'n':>3s} {'L1 identity':>12s} {'L1 ours':>9s} {'reduction':>9s} "
          f"{'SSIM(hm) ours':>13s} {'min SSIM':>8s} {'attr right-way':>14s} {'attr_acc ours':>13s} {'attr_acc target':>15s}")
    for name, rs in [("all", recs)] + [(c, [r for r in recs if r["category"] == c]) for c in cats]:
        li, lo = mean("l1_identity", rs), mean("l1_ours", rs)
        mv = [m["right_way"] for r in rs for m in r["moves"]]
        print(f"{name:10s} {len(rs):3d} {li:12.4f} {lo:9.4f} {100 * (1 - lo / li):8.1f}% {mean('ssim_ours', rs):13.4f} "
              f"{min(r['ssim_ours'] for r in rs):8.4f} {sum(mv)}/{len(mv):<3d} ({100 * sum(mv) / max(1, len(mv)):3.0f}%) "
              f"{mean('attr_acc_ours', rs):13.3f} {mean('attr_acc_target', rs):15.3f}")
    per_sample = [np.mean([m["right_way"] for m in r["moves"]]) for r in recs if r["moves"]]
    print(f"samples whose instructed attributes all moved the right way: {sum(p == 1.0 for p in per_sample)}/{len(per_sample)}")
    print(f"model info: {json.dumps({k: v for k, v in model.info().items() if k in ('variant', 'weights_file', 'weights_sha256')})}")
    if args.json:
        Path(args.json).write_text(json.dumps(recs, indent=1) + "\n")


if __name__ == "__main__":
    main()
