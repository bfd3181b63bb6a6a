"""Train the shipped small model from scratch (CPU, minutes): ``iretouch-bench train ours-small``.

Data: triplets (input, target, instruction[, mask]) synthesised by the photo-finishing
pipeline (:func:`iretouch_bench.synth.pairs.make_pair`) from the photos in
:data:`~iretouch_bench.synth.photos.TRAIN_PHOTOS` only -- disjoint from the embedded evaluation
set's :data:`~iretouch_bench.synth.photos.EVAL_PHOTOS`. Categories: global, style, local and
portrait (the training photos hold no faces, so portrait pairs use a random face-sized ellipse
as the region). Photos are flipped at random before a pair is made, and each step takes random
crops (random aspect) of the pairs.

Loss (paper Sec. 3.3): L1 to the target + Laplacian smoothness of the grid residual + soft
out-of-gamut penalty (:mod:`.losses`), through the reference (differentiable) slice-and-apply.
The model's input follows the instruction vocabulary of the suite at training time; its
version and attribute list are recorded in the config (see :mod:`iretouch_bench.models.small`).

Outputs in ``--out``: ``ours_small.safetensors`` + ``ours_small.json`` (config and training
metadata), ``loss_curve.png``, ``train_log.json``. Copy the first two into ``models/weights/``
to ship them. ``train_ours`` is the function ``iretouch-bench train ours-small`` calls.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from iretouch_bench.models.guidance import evaluate_guidance
from iretouch_bench.models.kernels.reference import slice_apply_reference
from iretouch_bench.models.small import SmallConfig, SmallRetouchNet, save_small, text_features
from iretouch_bench.synth.pairs import augment, make_pair
from iretouch_bench.synth.photos import TRAIN_PHOTOS, load_photo

from .losses import bilateral_loss

__all__ = ["DEFAULTS", "TRAINED_BY", "build_pool", "forward_train", "train_ours"]

#: how the recorded weights say they were made (kept in the weights file's metadata)
TRAINED_BY = "iretouch-bench train ours-small"

DEFAULTS: dict[str, Any] = dict(steps=2000, seed=0, batch=8, lr=2e-3, pool=1600, max_side=256,
                                w_smooth=0.02, w_gamut=1.0, mask_prob=0.75)
CATEGORY_PROBS = {"global": 0.35, "style": 0.25, "local": 0.25, "portrait": 0.15}


def build_pool(n: int, seed: int, max_side: int = 256, progress: bool = True,
               attributes: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """``n`` verified training pairs from TRAIN_PHOTOS (uint8 images to keep memory small:
    the evaluation set is stored as 8-bit PNG too).

    Each item: ``input``/``target`` uint8 ``[H, W, 3]``, ``mask`` uint8 ``[H, W]`` or None,
    ``instruction``, ``category``, ``cond`` float32 text features over ``attributes`` (default:
    the suite's current attribute bank; mask flag off).
    """
    kw = {} if attributes is None else {"attributes": tuple(attributes)}
    rng = np.random.default_rng(seed)
    photos = {name: load_photo(name, max_side=max_side) for name in TRAIN_PHOTOS}
    cats, probs = list(CATEGORY_PROBS), np.array(list(CATEGORY_PROBS.values()))
    pool: list[dict[str, Any]] = []
    bar = tqdm(total=n, desc="synthesising pairs", disable=not progress, unit="pair")
    while len(pool) < n:
        name = TRAIN_PHOTOS[int(rng.integers(len(TRAIN_PHOTOS)))]
        photo, _ = augment(photos[name], rng, crop=None, flip=True)
        cat = cats[int(rng.choice(len(cats), p=probs))]
        face = None
        if cat == "portrait":  # no faces in the training photos: a face-sized ellipse somewhere
            face = (float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.3, 0.6)),
                    float(rng.uniform(0.1, 0.2)), float(rng.uniform(0.15, 0.3)))
        try:
            pair = make_pair(photo, rng, cat, face=face)
        except (ValueError, RuntimeError):  # InstructionError is a ValueError: redraw
            continue
        to8 = lambda a: np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)  # noqa: E731
        m = pair.get("mask")
        pool.append({"input": to8(pair["input"]), "target": to8(pair["target"]),
                     "mask": None if m is None else to8(m), "instruction": pair["instruction"],
                     "category": pair["category"], "cond": text_features(pair["instruction"], False, **kw)})
        bar.update(1)
    bar.close()
    return pool


def _batch(pool, idx, rng: np.random.Generator, mask_prob: float, mask_flag_index: int):
    """Random common crop size (random aspect), per-item random offset -> tensors."""
    hs = min(p["input"].shape[0] for p in (pool[i] for i in idx))
    ws = min(p["input"].shape[1] for p in (pool[i] for i in idx))
    # Crops of 96..160 px a side: big enough for the regions, small enough for CPU training.
    ch = int(rng.integers(min(96, hs), min(160, hs) + 1))
    cw = int(rng.integers(min(96, ws), min(160, ws) + 1))
    inp, tgt, msk, cond = [], [], [], []
    for i in idx:
        p = pool[i]
        H, W = p["input"].shape[:2]
        y0 = int(rng.integers(0, H - ch + 1))
        x0 = int(rng.integers(0, W - cw + 1))
        sl = (slice(y0, y0 + ch), slice(x0, x0 + cw))
        inp.append(p["input"][sl])
        tgt.append(p["target"][sl])
        c = p["cond"].copy()
        if p["mask"] is not None and rng.random() < mask_prob:
            msk.append(p["mask"][sl].astype(np.float32) / 255.0)
            c[mask_flag_index] = 1.0
        else:
            msk.append(np.ones((ch, cw), np.float32))
        cond.append(c)
    t = lambda a: torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).float() / 255.0  # noqa: E731
    return t(inp), t(tgt), torch.from_numpy(np.stack(msk)), torch.from_numpy(np.stack(cond))


def forward_train(net: SmallRetouchNet, inp: torch.Tensor, mask: torch.Tensor, cond: torch.Tensor):
    """Training forward: ``inp [B, 3, h, w]`` -> (unclamped output, grid)."""
    L = net.config.lowres
    low = F.adaptive_avg_pool2d(inp, (L, L))  # == lowres.area_resize_hwc used at inference
    grid, gd = net(low, cond)
    knots, mix, bias = net.guidance_params(gd)
    guide = evaluate_guidance(inp, knots, mix, bias)
    out = slice_apply_reference(grid, guide, inp, 1.0, mask=mask)
    return out, grid


def _plot(history: list[dict[str, float]], path: Path) -> None:
    # Imported here: matplotlib is slow to import and only the end of a training run plots.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.arange(1, len(history) + 1)
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    for key in ("total", "l1"):
        v = np.array([h[key] for h in history])
        k = max(1, len(v) // 50)
        ax[0].plot(steps, v, alpha=0.25)
        ax[0].plot(steps[k - 1:], np.convolve(v, np.ones(k) / k, mode="valid"), label=f"{key} (moving avg {k})")
    ax[0].axhline(np.mean([h["identity_l1"] for h in history]), color="k", ls="--", lw=1, label="identity L1 (batch mean)")
    ax[0].set_xlabel("step"), ax[0].set_ylabel("loss"), ax[0].set_yscale("log"), ax[0].legend(fontsize=8)
    for key in ("smooth", "gamut"):
        ax[1].plot(steps, [h[key] for h in history], label=key)
    ax[1].set_xlabel("step"), ax[1].set_yscale("log"), ax[1].legend(fontsize=8)
    ax[0].set_title("ours_small training: L1 to target")
    ax[1].set_title("regularisers")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def train_ours(out_dir: str | Path, steps: int = DEFAULTS["steps"], seed: int = DEFAULTS["seed"], *,
               batch: int = DEFAULTS["batch"], lr: float = DEFAULTS["lr"], pool_size: int = DEFAULTS["pool"],
               max_side: int = DEFAULTS["max_side"], w_smooth: float = DEFAULTS["w_smooth"],
               w_gamut: float = DEFAULTS["w_gamut"], mask_prob: float = DEFAULTS["mask_prob"],
               threads: Optional[int] = None, progress: bool = True,
               config: SmallConfig | None = None,
               callback: Optional[Callable[[int, dict[str, float]], None]] = None) -> dict[str, Any]:
    """Train the small model from scratch and write it to ``out_dir``.

    Returns a summary dict: paths of ``weights``, ``config``, ``loss_curve``, ``log``; final
    losses; wall time in seconds. Deterministic for a given ``seed`` and thread count.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    t0 = time.time()
    cfg = config or SmallConfig()
    pool = build_pool(pool_size, seed, max_side=max_side, progress=progress, attributes=cfg.attributes)
    t_pool = time.time() - t0
    net = SmallRetouchNet(cfg)
    n_params = sum(p.numel() for p in net.parameters())
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + np.cos(np.pi * min(1.0, s / max(1, steps)))))
    rng = np.random.default_rng(seed + 1)
    mask_flag = cfg.n_attributes + 1
    history: list[dict[str, float]] = []
    bar = tqdm(range(steps), desc="training ours_small", disable=not progress, unit="step")
    net.train()
    for step in bar:
        idx = rng.choice(len(pool), size=batch, replace=False)
        inp, tgt, msk, cond = _batch(pool, idx, rng, mask_prob, mask_flag)
        outp, grid = forward_train(net, inp, msk, cond)
        loss, parts = bilateral_loss(outp, tgt, grid, w_smooth=w_smooth, w_gamut=w_gamut,
                                     identity=net.adapter.identity(batch))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        rec = {"total": float(loss.detach()), **parts, "identity_l1": float((inp - tgt).abs().mean()),
               "lr": float(sched.get_last_lr()[0])}
        history.append(rec)
        if callback is not None:
            callback(step, rec)
        if step % 10 == 0:
            k = min(len(history), 50)
            bar.set_postfix(l1=f"{np.mean([h['l1'] for h in history[-k:]]):.4f}",
                            ident=f"{np.mean([h['identity_l1'] for h in history[-k:]]):.4f}")
    net.eval()
    wall = time.time() - t0
    k = min(len(history), 100)
    meta = {"trained_by": TRAINED_BY, "steps": str(steps), "seed": str(seed),
            "batch": str(batch), "lr": str(lr), "pool_size": str(pool_size), "max_side": str(max_side),
            "w_smooth": str(w_smooth), "w_gamut": str(w_gamut), "mask_prob": str(mask_prob),
            "train_photos": ",".join(TRAIN_PHOTOS),
            "final_l1_last100": f"{np.mean([h['l1'] for h in history[-k:]]):.5f}",
            "identity_l1_last100": f"{np.mean([h['identity_l1'] for h in history[-k:]]):.5f}",
            "wall_seconds": f"{wall:.0f}", "torch": torch.__version__, "threads": str(torch.get_num_threads()),
            "machine": platform.machine(), "n_params": str(n_params)}
    st, cj = save_small(net, out / "ours_small", metadata=meta)
    png = out / "loss_curve.png"
    _plot(history, png)
    log = out / "train_log.json"
    log.write_text(json.dumps({"meta": meta, "pool_seconds": t_pool, "history": history}) + "\n")
    return {"weights": str(st), "config": str(cj), "loss_curve": str(png), "log": str(log),
            "final_l1": float(meta["final_l1_last100"]), "identity_l1": float(meta["identity_l1_last100"]),
            "wall_seconds": wall, "pool_seconds": t_pool, "n_params": n_params}
