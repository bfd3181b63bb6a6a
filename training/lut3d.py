"""Train the shipped 3D-LUT baseline from scratch (CPU, minutes): ``iretouch-bench train 3dlut``.

Data: :func:`.enhancers.build_enhancer_pool` (degradation pairs from TRAIN_PHOTOS only; never
the embedded evaluation photos), long side 256, random flips.

Each step: ``batch`` whole pairs; the classifier sees each input's 256x256 view
(:func:`~iretouch_bench.baselines.lut3d_net.low_view`, the suite's resizer, exactly as at
inference); the fused LUT is applied to ``pixels`` colours drawn at random from each input
(a LUT is a per-pixel map, so a random subset of pixels gives an unbiased estimate of the
whole-image loss at a fraction of the cost). Loss, the paper's:
``MSE + 1e-4 (R_s + mean w^2) + 10 R_m`` (:mod:`~iretouch_bench.baselines.lut3d_net`).
Adam (classifier lr ``lr``, LUTs ``lr_luts``: the classifier's 270 K weights move its outputs
far more per step than one LUT entry moves its colour), 5% warm-up and cosine decay.

Outputs in ``--out``: ``lut3d.safetensors`` + ``lut3d.json`` (config, training metadata),
``lut3d_loss_curve.png``, ``train_log.json``. Copy the first three into ``baselines/weights/``
to ship them. Deterministic for a given seed and thread count (1 by default): the weights
file is byte-identical across reruns.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from iretouch_bench.baselines.lut3d_net import (
    Lut3DConfig,
    Lut3DNet,
    apply_lut,
    low_view,
    monotonicity,
    save_lut3d,
    smoothness,
)

from .enhancers import build_enhancer_pool, fit, plot_history, summary_metadata

__all__ = ["DEFAULTS", "TRAINED_BY", "lut3d_loss", "train_step", "train_3dlut"]

TRAINED_BY = "iretouch-bench train 3dlut"
DEFAULTS: dict[str, Any] = dict(steps=1000, seed=0, batch=4, lr=1e-4, lr_luts=1e-3, pool=400, pixels=8192,
                                max_side=256, w_smooth=1e-4, w_mono=10.0, threads=1)


def lut3d_loss(out: torch.Tensor, target: torch.Tensor, luts: torch.Tensor, weights: torch.Tensor,
               w_smooth: float = 1e-4, w_mono: float = 10.0) -> tuple[torch.Tensor, dict[str, float]]:
    """``MSE(out, target) + w_smooth * R_s(luts, weights) + w_mono * R_m(luts)``; parts as floats."""
    mse = F.mse_loss(out, target)
    rs = smoothness(luts, weights)
    rm = monotonicity(luts)
    total = mse + w_smooth * rs + w_mono * rm
    return total, {"mse": float(mse.detach()), "smooth": float(rs.detach()), "mono": float(rm.detach())}


def _pixels(pairs: list[tuple[np.ndarray, np.ndarray]], n: int, rng: np.random.Generator):
    """``n`` random pixels of each pair -> input and target colours ``[B, 3, n, 1]``."""
    xs, ys = [], []
    for inp, tgt in pairs:
        idx = rng.integers(0, inp.shape[0] * inp.shape[1], size=n)
        xs.append(inp.reshape(-1, 3)[idx])
        ys.append(tgt.reshape(-1, 3)[idx])
    t = lambda a: torch.from_numpy(np.stack(a)).permute(0, 2, 1)[..., None]  # noqa: E731
    return t(xs), t(ys)


def train_step(net: Lut3DNet, opt: torch.optim.Optimizer, pairs, rng: np.random.Generator, pixels: int,
               w_smooth: float = 1e-4, w_mono: float = 10.0) -> dict[str, float]:
    """One optimisation step on ``pairs`` (``[(input, target)]`` float32 HWC); returns the loss parts."""
    low = torch.from_numpy(np.stack([low_view(p[0]) for p in pairs])).permute(0, 3, 1, 2)
    x, y = _pixels(pairs, pixels, rng)
    lut, w = net.fused(low)
    out = apply_lut(lut, x)
    loss, parts = lut3d_loss(out, y, net.luts, w, w_smooth, w_mono)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"total": float(loss.detach()), **parts, "l1": float((out.detach().clamp(0, 1) - y).abs().mean()),
            "identity_l1": float((x - y).abs().mean())}


def train_3dlut(out_dir: str | Path, steps: int = DEFAULTS["steps"], seed: int = DEFAULTS["seed"], *,
                batch: int = DEFAULTS["batch"], lr: float = DEFAULTS["lr"], lr_luts: float = DEFAULTS["lr_luts"],
                pool_size: int = DEFAULTS["pool"], pixels: int = DEFAULTS["pixels"],
                max_side: int = DEFAULTS["max_side"], w_smooth: float = DEFAULTS["w_smooth"],
                w_mono: float = DEFAULTS["w_mono"], threads: Optional[int] = DEFAULTS["threads"],
                progress: bool = True, config: Lut3DConfig | None = None,
                callback: Optional[Callable[[int, dict[str, float]], None]] = None) -> dict[str, Any]:
    """Train a 3D-LUT model from scratch and write it to ``out_dir``; returns a summary dict
    (paths, final losses, wall and pool seconds)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    t0 = time.time()
    pool = build_enhancer_pool(pool_size, seed, max_side=max_side, progress=progress)
    t_pool = time.time() - t0
    net = Lut3DNet(config or Lut3DConfig())
    net.init_for_training()
    opt = torch.optim.Adam([{"params": net.classifier.parameters(), "lr": lr}, {"params": [net.luts], "lr": lr_luts}])
    net.train()
    history = fit(opt, pool, steps, batch, seed,
                  lambda pairs, rng: train_step(net, opt, pairs, rng, pixels, w_smooth, w_mono),
                  "training 3dlut", progress, callback)
    net.eval()
    meta = {"trained_by": TRAINED_BY, "steps": str(steps), "seed": str(seed), "batch": str(batch), "lr": str(lr),
            "lr_luts": str(lr_luts), "pool_size": str(pool_size), "pixels_per_image": str(pixels),
            "max_side": str(max_side), "w_smooth": str(w_smooth), "w_mono": str(w_mono),
            **summary_metadata(history, net, time.time() - t0, t_pool)}
    st, cj = save_lut3d(net, out / "lut3d", metadata=meta)
    png = out / "lut3d_loss_curve.png"
    plot_history(history, png, "3D-LUT training (synthetic pairs, TRAIN_PHOTOS)", ("mse", "l1"))
    log = out / "train_log.json"
    log.write_text(json.dumps({"meta": meta, "history": history}) + "\n")
    return {"weights": str(st), "config": str(cj), "loss_curve": str(png), "log": str(log),
            "final_l1": float(meta["final_l1_last100"]), "identity_l1": float(meta["identity_l1_last100"]),
            "wall_seconds": float(meta["wall_seconds"]), "pool_seconds": t_pool, "n_params": int(meta["n_params"])}
