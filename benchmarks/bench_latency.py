"""Latency of every registered model at 720p/1K/2K/4K, next to the `identity` floor measured in the same run.

    python benchmarks/bench_latency.py [--models identity,ours] [--repeats 5] [--device cpu]
                                       [--plot latency.png] [--json latency.json]

Prints a Markdown table (median ± IQR seconds, [peak extra MB]) and, per model and size, the
ratio to `identity` (a plain copy of the frame: the cost of moving the pixels at all). Models
that cannot be created or loaded here (missing weights, no key) are listed with the reason.
"""

from __future__ import annotations

import argparse
import json
import sys

from iretouch_bench.core.errors import BenchError
from iretouch_bench.runner.latency import RESOLUTIONS, measure_latency
from iretouch_bench.reporting.latency import format_table, plot_latency
from iretouch_bench.adapters.registry import available_models, create_model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=None, help="comma-separated names (default: all registered)")
    ap.add_argument("--resolutions", default=",".join(RESOLUTIONS))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--plot", default=None, help="write the latency plot (PNG) here")
    ap.add_argument("--json", default=None, help="write all results (JSON) here")
    args = ap.parse_args(argv)

    names = args.models.split(",") if args.models else available_models()
    if "identity" not in names:
        names = ["identity", *names]
    results, skipped = {}, {}
    for name in names:
        try:
            model = create_model(name, device=args.device)
            results[name] = measure_latency(model, args.resolutions.split(","), repeats=args.repeats,
                                            warmup=args.warmup, device=args.device)
            model.close()
        except (BenchError, ImportError, OSError) as err:
            skipped[name] = f"{type(err).__name__}: {err}"
    env = results["identity"]["environment"] if "identity" in results else {}
    print(f"device: {args.device}; {env.get('processor', '')}, {env.get('cpu_count')} CPUs, "
          f"torch {env.get('torch')} ({env.get('torch_threads')} threads); repeats {args.repeats}, warm-up {args.warmup}")
    print(format_table(results))
    ref = {r["resolution"]: r["median_s"] for r in results.get("identity", {}).get("records", [])}
    print("\nratio to identity (same run):")
    for name, res in results.items():
        cells = []
        for r in res["records"]:
            base = ref.get(r["resolution"])
            cells.append(f"{r['resolution']}: " + (f"{r['median_s'] / base:.1f}x" if r["median_s"] and base else "n/a"))
        print(f"  {name}: " + ", ".join(cells))
    for name, why in skipped.items():
        print(f"  skipped {name}: {why}")
    if args.plot:
        print("plot:", plot_latency(results, args.plot, title=f"Latency vs resolution ({args.device})"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "skipped": skipped}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
