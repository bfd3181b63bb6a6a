"""Train the shipped RSFNet (map variant) baseline from scratch (CPU, minutes): ``iretouch-bench train rsfnet``.

Data: :func:`.enhancers.build_enhancer_pool` (degradation pairs from TRAIN_PHOTOS only; never
the embedded evaluation photos), long side 256, random flips.

Each step: ``batch`` whole pairs; the backbone sees each input's 256x256 view
(:func:`~iretouch_bench.baselines.rsfnet_net.low_view`, as at inference); its strength maps are
upsampled to the pair's size and the filters applied to the whole input (whole, because the
contrast filter pivots on the image's mean luma). Loss: MSE to the target (tried first: L1,
whose sign-only gradient left the maps near zero for hundreds of steps on these small
differences; MSE's gradient grows with the error). Adam, lr ``lr``, 5% warm-up and cosine decay.

Outputs in ``--out``: ``rsfnet.safetensors`` + ``rsfnet.json``, ``rsfnet_loss_curve.png``,
``train_log.json``. Copy the first three into ``baselines/weights/`` to ship them. Deterministic
for a given seed and thread count (1 by default): the weights file is byte-identical across reruns.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

from iretouch_bench.baselines.rsfnet_net import RSFConfig, RSFNet, apply_filters, low_view, save_rsfnet

from .enhancers import build_enhancer_pool, fit, plot_history, summary_metadata

__all__ = ["DEFAULTS", "TRAINED_BY", "train_step", "train_rsfnet"]

TRAINED_BY = "iretouch-bench train rsfnet"
DEFAULTS: dict[str, Any] = dict(steps=800, seed=0, batch=4, lr=1e-3, pool=400, max_side=256, threads=1)


def train_step(net: RSFNet, opt: torch.optim.Optimizer, pairs, rng: np.random.Generator) -> dict[str, float]:
    """One optimisation step on ``pairs`` (``[(input, target)]`` float32 HWC, sizes may differ)."""
    low = torch.from_numpy(np.stack([low_view(p[0]) for p in pairs])).permute(0, 3, 1, 2)
    maps, shift = net(low)
    losses, ident, l1s = [], [], []
    for i, (inp, tgt) in enumerate(pairs):
        x = torch.from_numpy(inp).permute(2, 0, 1)[None]
        y = torch.from_numpy(tgt).permute(2, 0, 1)[None]
        out = apply_filters(x, net.upsample(maps[i:i + 1], x.shape[-2:]), shift[i:i + 1])
        losses.append((out - y).pow(2).mean())
        ident.append(float((x - y).abs().mean()))
        l1s.append(float((out.detach() - y).abs().mean()))
    loss = torch.stack(losses).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"mse": float(loss.detach()), "l1": float(np.mean(l1s)), "identity_l1": float(np.mean(ident)),
            "map_abs": float(maps.detach().abs().mean()), "shift_abs": float(shift.detach().abs().mean())}


def train_rsfnet(out_dir: str | Path, steps: int = DEFAULTS["steps"], seed: int = DEFAULTS["seed"], *,
                 batch: int = DEFAULTS["batch"], lr: float = DEFAULTS["lr"], pool_size: int = DEFAULTS["pool"],
                 max_side: int = DEFAULTS["max_side"], threads: Optional[int] = DEFAULTS["threads"],
                 progress: bool = True, config: RSFConfig | None = None,
                 callback: Optional[Callable[[int, dict[str, float]], None]] = None) -> dict[str, Any]:
    """Train an RSFNet (map variant) from scratch and write it to ``out_dir``; returns a summary
    dict (paths, final losses, wall and pool seconds)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    t0 = time.time()
    pool = build_enhancer_pool(pool_size, seed, max_side=max_side, progress=progress)
    t_pool = time.time() - t0
    net = RSFNet(config or RSFConfig())
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    history = fit(opt, pool, steps, batch, seed, lambda pairs, rng: train_step(net, opt, pairs, rng),
                  "training rsfnet", progress, callback)
    net.eval()
    meta = {"trained_by": TRAINED_BY, "steps": str(steps), "seed": str(seed), "batch": str(batch), "lr": str(lr),
            "pool_size": str(pool_size), "max_side": str(max_side),
            **summary_metadata(history, net, time.time() - t0, t_pool)}
    st, cj = save_rsfnet(net, out / "rsfnet", metadata=meta)
    png = out / "rsfnet_loss_curve.png"
    plot_history(history, png, "RSFNet (maps) training (synthetic pairs, TRAIN_PHOTOS)", ("mse", "l1"))
    log = out / "train_log.json"
    log.write_text(json.dumps({"meta": meta, "history": history}) + "\n")
    return {"weights": str(st), "config": str(cj), "loss_curve": str(png), "log": str(log),
            "final_l1": float(meta["final_l1_last100"]), "identity_l1": float(meta["identity_l1_last100"]),
            "wall_seconds": float(meta["wall_seconds"]), "pool_seconds": t_pool, "n_params": int(meta["n_params"])}
