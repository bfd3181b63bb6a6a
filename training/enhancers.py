"""What the trainers of the automatic enhancers (3D-LUT, RSFNet) share: their training pairs,
the pixels a step looks at, and the loss-curve plot. Neither model ever sees the instruction.

Pairs come from the suite's photo-finishing pipeline (:func:`iretouch_bench.synth.pairs.make_pair`)
applied to :data:`~iretouch_bench.synth.photos.TRAIN_PHOTOS` only (disjoint from the embedded
evaluation set's ``EVAL_PHOTOS``), each from a random crop of one photo, flipped at random.

Categories: the *degradation* ones (``global`` 45%, ``local`` 15%, ``portrait`` 15%), where the
target is the clean photo, so "enhance this photo" has one answer an image-only model can learn;
and ``none`` (25%): a clean photo whose target is itself, because an enhancer must leave a photo
that needs nothing alone (the benchmark is full of those: style pairs start from the clean photo,
local pairs differ only in a region). ``style`` pairs are left out: their target is a look the
instruction names (vintage, cinematic, ...), which a model that cannot read the instruction could
only guess as an average look pushed onto every photo. The training photos hold no faces, so
portrait pairs use a random face-sized ellipse as the region (as the ``ours-small`` trainer does).

Why crops and a varied look (see :func:`build_enhancer_pool`): the first models, trained on the
four photos whole with degradation pairs only, fitted their training pairs (L1 0.030 / 0.021 vs
0.045 for the identity) but made the embedded set *worse* than the identity (0.054 / 0.072 vs
0.049): each had learnt the four photos' own brightness and colour as "correct" and pushed every
new photo towards it.
"""

from __future__ import annotations

import json
import platform
from typing import Any, Callable, Optional

import numpy as np
import torch
from tqdm import tqdm

from iretouch_bench.core.resize import shrink_to
from iretouch_bench.synth.pairs import augment, make_pair
from iretouch_bench.synth.photos import TRAIN_PHOTOS, load_photo

__all__ = ["CATEGORY_PROBS", "build_enhancer_pool", "to_float", "draw_batch", "fit", "plot_history", "summary_metadata"]

CATEGORY_PROBS: dict[str, float] = {"global": 0.45, "local": 0.15, "portrait": 0.15, "none": 0.25}
#: smallest crop side (fraction of the photo's) and the look variation of :func:`build_enhancer_pool`
MIN_CROP = 0.4
LOOK = 0.12


def _to8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)


def to_float(a: np.ndarray) -> np.ndarray:
    """uint8 ``[H, W, 3]`` -> float32 in [0, 1] (how the benchmark reads its 8-bit PNGs)."""
    return a.astype(np.float32) / np.float32(255.0)


def _random_view(photo: np.ndarray, rng: np.random.Generator, max_side: int, min_frac: float) -> np.ndarray:
    """A random crop (each side ``min_frac``..1 of the photo's, so aspect varies too), flipped at
    random, shrunk to long side ``max_side`` (area filter, the suite's resizer)."""
    h, w = photo.shape[:2]
    crop = (int(round(h * rng.uniform(min_frac, 1.0))), int(round(w * rng.uniform(min_frac, 1.0))))
    view, _ = augment(photo, rng, crop=crop, flip=True)
    return np.clip(shrink_to(view, max_side, "area"), 0.0, 1.0)


def _vary_look(photo: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """The clean photo's own look varied a little: saturation x(1 +- amount*2), per-channel gains
    x(1 +- amount), gamma exp(+-4*amount). Without it, a photo's target look is one fixed point
    the model can learn by heart; with it, the model must read the degradation from the image."""
    if amount <= 0:
        return photo
    y = photo.mean(axis=2, keepdims=True)
    out = y + rng.uniform(1 - 2 * amount, 1 + 2 * amount) * (photo - y)
    out = np.clip(out * rng.uniform(1 - amount, 1 + amount, 3).astype(np.float32), 0.0, 1.0)
    # tone varies most: brightness is what a blind model most readily learns by heart
    return np.ascontiguousarray(out ** np.float32(np.exp(rng.uniform(-4 * amount, 4 * amount))), dtype=np.float32)


def build_enhancer_pool(n: int, seed: int, max_side: int = 256, progress: bool = True,
                        min_crop: float = MIN_CROP, look: float = LOOK) -> list[dict[str, Any]]:
    """``n`` verified pairs, each ``{"input", "target"}`` uint8 ``[H, W, 3]`` plus ``category``
    and ``photo``. Deterministic for a given ``seed`` (and package versions).

    Four photos are few: a model shown them whole learns each photo's own look by heart (a
    first 3D-LUT trained that way fitted its training pairs and moved the unseen evaluation
    photos away from their targets). So every pair starts from a random crop (sides
    ``min_crop``..1 of the photo at long side ``2 * max_side``), flipped at random and shrunk
    to long side ``max_side``: different content, framing and scale each time; and the clean
    photo's own look is varied a little (:func:`_vary_look`, ``look``) before it is degraded."""
    rng = np.random.default_rng(seed)
    photos = {name: load_photo(name, max_side=2 * max_side) for name in TRAIN_PHOTOS}
    cats, probs = list(CATEGORY_PROBS), np.array(list(CATEGORY_PROBS.values()))
    pool: list[dict[str, Any]] = []
    bar = tqdm(total=n, desc="synthesising pairs", disable=not progress, unit="pair")
    while len(pool) < n:
        name = TRAIN_PHOTOS[int(rng.integers(len(TRAIN_PHOTOS)))]
        photo = _vary_look(_random_view(photos[name], rng, max_side, min_crop), rng, look)
        cat = cats[int(rng.choice(len(cats), p=probs))]
        if cat == "none":  # a photo that needs nothing: the enhancer must leave it alone
            pool.append({"input": _to8(photo), "target": _to8(photo), "category": cat, "photo": name})
            bar.update(1)
            continue
        face = None
        if cat == "portrait":
            face = (float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.3, 0.6)),
                    float(rng.uniform(0.1, 0.2)), float(rng.uniform(0.15, 0.3)))
        try:
            pair = make_pair(photo, rng, cat, face=face)
        except (ValueError, RuntimeError):  # no verified draw (InstructionError is a ValueError): redraw
            continue
        pool.append({"input": _to8(pair["input"]), "target": _to8(pair["target"]), "category": cat, "photo": name})
        bar.update(1)
    bar.close()
    return pool


def draw_batch(pool: list[dict[str, Any]], batch: int, rng: np.random.Generator
               ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``batch`` distinct pairs, each flipped left-right at random: ``[(input, target)]`` float32
    ``[H, W, 3]`` in [0, 1] (sizes differ between pairs: each keeps its whole photo, because
    both models look at the whole image to decide their edit)."""
    out = []
    for i in rng.choice(len(pool), size=batch, replace=False):
        inp, tgt = to_float(pool[int(i)]["input"]), to_float(pool[int(i)]["target"])
        if rng.random() < 0.5:
            inp, tgt = np.ascontiguousarray(inp[:, ::-1]), np.ascontiguousarray(tgt[:, ::-1])
        out.append((inp, tgt))
    return out


def fit(opt: torch.optim.Optimizer, pool: list[dict[str, Any]], steps: int, batch: int, seed: int,
        step_fn: Callable[[list, np.random.Generator], dict[str, float]], desc: str, progress: bool = True,
        callback: Optional[Callable[[int, dict[str, float]], None]] = None) -> list[dict[str, float]]:
    """The shared loop: ``steps`` calls of ``step_fn(pairs, rng)`` (which does forward, backward
    and ``opt.step()`` and returns its loss parts, ``l1`` and ``identity_l1`` among them) on
    batches from :func:`draw_batch`, under 5% linear warm-up then cosine decay of every param
    group's learning rate. Returns the per-step records."""
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + np.cos(np.pi * min(1.0, s / max(1, steps)))))
    rng = np.random.default_rng(seed + 1)
    history: list[dict[str, float]] = []
    bar = tqdm(range(steps), desc=desc, disable=not progress, unit="step")
    for step in bar:
        rec = step_fn(draw_batch(pool, batch, rng), rng)
        sched.step()
        history.append(rec)
        if callback is not None:
            callback(step, rec)
        if step % 10 == 0:
            k = min(len(history), 50)
            bar.set_postfix(l1=f"{np.mean([h['l1'] for h in history[-k:]]):.4f}",
                            ident=f"{np.mean([h['identity_l1'] for h in history[-k:]]):.4f}")
    return history


def summary_metadata(history: list[dict[str, float]], net: torch.nn.Module, wall: float, t_pool: float
                     ) -> dict[str, str]:
    """What every enhancer's weight file records about its run besides its own settings."""
    k = min(len(history), 100)
    return {"train_photos": ",".join(TRAIN_PHOTOS), "categories": json.dumps(CATEGORY_PROBS, sort_keys=True),
            "min_crop": str(MIN_CROP), "look": str(LOOK),
            "final_l1_last100": f"{np.mean([h['l1'] for h in history[-k:]]):.5f}",
            "identity_l1_last100": f"{np.mean([h['identity_l1'] for h in history[-k:]]):.5f}",
            "wall_seconds": f"{wall:.0f}", "pool_seconds": f"{t_pool:.0f}", "torch": torch.__version__,
            "threads": str(torch.get_num_threads()), "machine": platform.machine(),
            "n_params": str(sum(p.numel() for p in net.parameters()))}


def plot_history(history: list[dict[str, float]], path, title: str, keys: tuple[str, ...]) -> None:
    """Loss curves (moving average over 1/50 of the run) with the identity's L1 as a dashed line."""
    # Imported here: matplotlib is slow to import and only the end of a training run plots.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.arange(1, len(history) + 1)
    k = max(1, len(history) // 50)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for key in keys:
        v = np.array([h[key] for h in history])
        ax.plot(steps, v, alpha=0.2)
        ax.plot(steps[k - 1:], np.convolve(v, np.ones(k) / k, mode="valid"), label=f"{key} (moving avg {k})")
    ax.axhline(float(np.mean([h["identity_l1"] for h in history])), color="k", ls="--", lw=1,
               label="identity L1 (batch mean)")
    ax.set_xlabel("step"), ax.set_ylabel("loss"), ax.set_yscale("log"), ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
