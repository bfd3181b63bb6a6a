"""One GPU check for whoever has a CUDA machine: the GPU paths against their CPU references, and
the GPU figures the paper reports, in one table.

Checks (each PASS/FAIL with its measured figure):

* the Triton slice-and-apply kernel against the ``grid_sample`` reference (max abs diff <= 1e-5),
  at 1920x1080 with strength 1 and 0.5 and a soft mask;
* SSIM, CW-SSIM, GMSD and DISTS on CUDA against the same metrics on CPU for one 768x512 pair
  (abs diff <= 1e-5; DISTS runs with TF32 off, see ``metrics.dists.ieee_fp32_convolutions``);
* ``ours`` end to end (image in memory to image in memory) at 720p / 1K / 2K / 4K on CUDA,
  median of 5 after a warm-up, with peak GPU memory (figures only: no pass/fail);
* the whole fidelity suite (histogram matching + the four metrics) on one 4K pair on CUDA (figure).

Exit status: 0 when every check passes, 1 when one fails, and 0 with a one-line message on a
machine without CUDA (nothing to check there). ``--json FILE`` also writes the rows.

Usage: python benchmarks/gpu_check.py [--device cuda:0] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch


def _pair(h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A photo-like [h, w, 3] float32 pair: astronaut resized, and a retouched version of it."""
    from skimage import data

    from iretouch_bench.core.resize import resize

    img = resize(data.astronaut(), (h, w), "bicubic").astype(np.float32) / 255.0
    rng = np.random.default_rng(seed)
    out = np.clip(img ** 0.85 * np.array([1.05, 1.0, 0.93], np.float32) + rng.normal(0, 0.01, img.shape), 0, 1)
    return img, out.astype(np.float32)


def check_slice_apply(device: str) -> list[dict]:
    from iretouch_bench.models.slicing import backend_for, slice_apply

    backend, why = backend_for(device)
    if backend != "triton":
        return [{"check": "slice_apply triton vs reference", "status": "FAIL", "figure": why or backend}]
    g = torch.Generator().manual_seed(0)
    grid = (torch.randn(1, 12, 8, 16, 16, generator=g) * 0.1).to(device)
    grid[:, [0, 5, 10]] += 1.0
    guide = torch.rand(1, 1080, 1920, generator=g).to(device)
    image = torch.rand(1, 3, 1080, 1920, generator=g).to(device)
    mask = torch.rand(1, 1080, 1920, generator=g).to(device)
    rows = []
    for strength, m in ((1.0, None), (0.5, None), (1.0, mask)):
        fast = slice_apply(grid, guide, image, strength, mask=m, backend="triton")
        ref = slice_apply(grid, guide, image, strength, mask=m, backend="reference")
        diff = float((fast - ref).abs().max())
        rows.append({"check": f"slice_apply triton vs reference (s={strength}{', mask' if m is not None else ''})",
                     "status": "PASS" if diff <= 1e-5 else "FAIL", "figure": f"max abs diff {diff:.2e}"})
    return rows


def check_metrics(device: str) -> list[dict]:
    from iretouch_bench.metrics.cw_ssim import cw_ssim
    from iretouch_bench.metrics.dists import DISTSNet, dists
    from iretouch_bench.metrics.fidelity import matched_gray_pair
    from iretouch_bench.metrics.gmsd import gmsd
    from iretouch_bench.metrics.ssim import ssim
    from iretouch_bench.weights.vgg16 import load_vgg16_dists

    inp, out = _pair(512, 768)
    g_in, g_match, _ = matched_gray_pair(inp, out)
    x = torch.from_numpy(g_match.astype(np.float32) / 255)[None, None]
    y = torch.from_numpy(g_in.astype(np.float32) / 255)[None, None]
    weights = load_vgg16_dists()
    nets = {"cpu": DISTSNet(weights, "cpu"), device: DISTSNet(weights, device)}
    fns = {"ssim": ssim, "cw_ssim": cw_ssim, "gmsd": gmsd,
           "dists": lambda a, b: dists(a, b, nets[str(a.device) if a.device.type == "cpu" else device])}
    rows = []
    for name, fn in fns.items():
        cpu = float(fn(x, y)[0])
        gpu = float(fn(x.to(device), y.to(device))[0])
        diff = abs(cpu - gpu)
        rows.append({"check": f"{name} cuda vs cpu", "status": "PASS" if diff <= 1e-5 else "FAIL",
                     "figure": f"cpu {cpu:.6f} cuda {gpu:.6f} diff {diff:.1e}"})
    return rows


def time_ours(device: str) -> list[dict]:
    from iretouch_bench.adapters.registry import create_model
    from iretouch_bench.runner.latency import measure_latency

    model = create_model("ours", device=device)
    res = measure_latency(model, ["720p", "1k", "2k", "4k"], repeats=5, warmup=1, device=device)
    rows = []
    for r in res["records"]:
        fig = (f"median {r['median_s'] * 1e3:.1f} ms, peak {r.get('peak_mem_bytes') or 0:,} B"
               if r.get("median_s") is not None else f"not measured: {r.get('error')}")
        rows.append({"check": f"ours end to end {r['resolution']} ({r['width']}x{r['height']})",
                     "status": "PASS" if r.get("error") is None else "FAIL", "figure": fig})
    return rows


def time_fidelity_suite(device: str) -> list[dict]:
    from iretouch_bench.metrics.fidelity import fidelity_scores

    inp, out = _pair(2160, 3840)
    fidelity_scores(inp[:256, :256], out[:256, :256], device=device)  # warm-up (kernels, weights)
    torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    values, reasons, _ = fidelity_scores(inp, out, device=device)
    torch.cuda.synchronize(device)
    wall = time.perf_counter() - t0
    ok = all(values[k] is not None for k in values)
    return [{"check": "fidelity suite at 4K (match + ssim, cw_ssim, gmsd, dists)", "status": "PASS" if ok else "FAIL",
             "figure": f"{wall:.2f} s" + ("" if ok else f"; null: {reasons}")}]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="CUDA device (default: cuda)")
    ap.add_argument("--json", default=None, help="also write the rows to this file")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device on this machine; nothing to check (exit 0)")
        return 0
    rows: list[dict] = []
    for step in (check_slice_apply, check_metrics, time_ours, time_fidelity_suite):
        try:
            rows.extend(step(args.device))
        except Exception as err:  # one broken step must not hide the others' results
            rows.append({"check": step.__name__, "status": "FAIL", "figure": f"{type(err).__name__}: {err}"})
    width = max(len(r["check"]) for r in rows)
    print(f"device: {torch.cuda.get_device_name(args.device)}  torch {torch.__version__}")
    for r in rows:
        print(f"{r['check']:<{width}}  {r['status']:<4}  {r['figure']}")
    failed = [r for r in rows if r["status"] != "PASS"]
    print(f"{len(rows) - len(failed)} passed, {len(failed)} failed")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
