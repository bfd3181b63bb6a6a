"""Latency of ``ours`` (shipped small model) on this machine's CPU, per input size.

Measures, image in memory (float32 numpy ``[H, W, 3]``) to image in memory:

* ``end_to_end``: ``OursModel.retouch`` (goal at 4K: median <= 200 ms);
* its parts: ``area_resize`` (the one full-resolution read feeding the low-res branch),
  ``lowres_net`` (encoder + text conditioning + adapter on the fixed-size view -- should be
  the same at every input size), ``slice_apply`` (fused full-resolution branch);
* ``copy``: ``np.copyto`` of the image into a preallocated buffer (bandwidth floor);
* ``alloc_copy``: ``img.copy()``, a copy into fresh memory (what any op that returns a new
  full-resolution image pays: the pages are faulted in on first touch).

Then the two floor ratios, measured in the same run: ``slice_apply`` (allocating its output, as
``retouch`` does) over ``alloc_copy`` (goal <= 1.5x at 4K) and ``end_to_end`` over ``slice_apply``
(goal <= 1.5x).

Wall-clock medians over ``--repeats`` runs after one warm-up; CPU seconds are printed too
(on a shared machine other processes inflate wall time). Load average is printed.

Usage: python benchmarks/bench_ours_latency.py [--sizes 720p,1080p,2k,4k] [--repeats N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
from iretouch_bench.core.timing import time_calls

SIZES = {"720p": (720, 1280), "1080p": (1080, 1920), "1k": (1080, 1920), "2k": (1440, 2560), "4k": (2160, 3840)}
INSTRUCTION = "Make it warmer and brighten the shadows a little."


def _time(fn, repeats):
    return time_calls(fn, repeats, warmup=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="720p,1080p,2k,4k")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import torch

    from iretouch_bench.models.lowres import area_resize_hwc
    from iretouch_bench.models.ours import OursModel
    from iretouch_bench.models.slicing import slice_apply_hwc
    from iretouch_bench.models.small import _torch_threads

    model = OursModel()
    model.load()
    net = model._net
    L = net.config.lowres
    rng = np.random.default_rng(0)
    results = []
    for size in args.sizes.split(","):
        H, W = SIZES[size.strip()]
        # A smooth image with some texture (content does not change the cost of any stage).
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        img = np.stack([xx / W, yy / H, 0.5 + 0.25 * np.sin(xx / 37.0) * np.cos(yy / 23.0)], -1).astype(np.float32)
        img += rng.random((H, W, 3), dtype=np.float32) * 0.05
        np.clip(img, 0, 1, out=img)
        low = torch.from_numpy(area_resize_hwc(img, L, L)).permute(2, 0, 1)[None]
        cond = torch.from_numpy(net.text_features(INSTRUCTION, False))[None]
        grid, guidance = net.predict(img, INSTRUCTION, False)
        dst = np.zeros_like(img)
        out = np.zeros_like(img)

        def lowres_net():  # as OursModel runs it: one torch thread (see small._torch_threads)
            with torch.no_grad(), _torch_threads(1):
                g, gd = net(low, torch.from_numpy(net.text_features(INSTRUCTION, False))[None])
                net.guidance_params(gd)

        r = {"size": size, "H": H, "W": W, "loadavg": os.getloadavg()[0], "backend": model.info()["backend"],
             "copy": _time(lambda: np.copyto(dst, img), args.repeats),
             "alloc_copy": _time(lambda: img.copy(), args.repeats),
             "slice_apply_alloc": _time(lambda: slice_apply_hwc(grid, img, guidance=guidance, clamp=True), args.repeats),
             "area_resize": _time(lambda: area_resize_hwc(img, L, L), args.repeats),
             "lowres_net": _time(lowres_net, args.repeats),
             "slice_apply": _time(lambda: slice_apply_hwc(grid, img, guidance=guidance, out=out, clamp=True), args.repeats),
             "end_to_end": _time(lambda: model.retouch(img, INSTRUCTION), args.repeats)}
        results.append(r)
        del cond
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"ours (shipped small model) latency, slice backend {model.info()['backend']}, "
          f"torch threads {torch.get_num_threads()}, lowres {L}x{L}")
    print(f"{'size':6s} {'HxW':>10s} {'load':>5s} | {'end_to_end':>16s} | {'area_resize':>11s} {'lowres_net':>10s} "
          f"{'slice_apply':>11s} {'copy':>6s}   (wall medians, ms; end_to_end cpu ms in brackets)")
    for r in results:
        e = r["end_to_end"]
        print(f"{r['size']:6s} {r['H']:>4d}x{r['W']:<5d} {r['loadavg']:5.2f} | {e['wall_median_s']*1e3:7.1f} ({e['cpu_median_s']*1e3:6.1f}) | "
              f"{r['area_resize']['wall_median_s']*1e3:11.1f} {r['lowres_net']['wall_median_s']*1e3:10.1f} "
              f"{r['slice_apply']['wall_median_s']*1e3:11.1f} {r['copy']['wall_median_s']*1e3:6.1f}")
    for r in results:
        sa, ac = r["slice_apply_alloc"]["wall_median_s"], r["alloc_copy"]["wall_median_s"]
        e2e = r["end_to_end"]["wall_median_s"]
        print(f"{r['size']:6s} slice_apply (allocating) {sa*1e3:.1f} ms = {sa/ac:.2f}x an allocating copy "
              f"({ac*1e3:.1f} ms; goal <= 1.5x); end_to_end = {e2e/sa:.2f}x slice_apply (goal <= 1.5x)")
    nets = [r["lowres_net"]["wall_median_s"] * 1e3 for r in results]
    print(f"low-res branch (net) across sizes: {min(nets):.1f}..{max(nets):.1f} ms (constant by construction: fixed {L}x{L} input)")


if __name__ == "__main__":
    main()
