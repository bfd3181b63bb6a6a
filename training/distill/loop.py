"""The training loop every stage shares, on HuggingFace ``accelerate``.

One process per device (``accelerate launch`` or a single plain process): mixed precision,
gradient accumulation (``Accelerator.accumulate``), gradient clipping on the synchronised
step, AdamW with linear warm-up, EMA of the trained weights (diffusers ``EMAModel``),
checkpoints and exact resume, every loss term logged, sample grids saved.

Folder of one stage, ``DIR/<stage>/``::

    config.json                 the resolved StageConfig (written when the stage starts)
    losses.jsonl                one line per logged step: step, lr, t_hi, every loss term, total
    samples/step-NNNNNNN.png    sample grids (+ .json with the instructions and columns)
    checkpoints/step-NNNNNNN/   accelerate state (models, optimisers, RNG) + ema.safetensors + progress.json
    final/                      the result (EMA weights), with training_config.json beside the weights

Resume is exact: every random draw of step ``k`` (its batch, its noise, its timesteps) is
seeded by ``(seed, k, rank)``, and the optimiser and EMA states come from the checkpoint, so
stopping after step ``k`` and resuming gives the weights an uninterrupted run gives.

A stage is an object with ``models`` (the prepared trainable modules), ``ema_parameters()``,
``train_step(batch, step) -> {term: tensor}`` (it calls ``accelerator.backward`` and steps its
optimisers), ``set_lr(factor)``, ``sample_columns(batch) -> [(name, [B, 3, H, W])]`` and
``save_final(folder)`` (see :mod:`.teacher`, :mod:`.stage1`, :mod:`.stage2`).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from iretouch_bench.core.atomic import write_json_atomic
from iretouch_bench.core.images import write_image
from iretouch_bench.weights.store import load_safetensors, save_safetensors

from .config import StageConfig, check_resume, t_hi_at
from .data import StepBatches, TripletDataset, collate, read_manifest

__all__ = ["run_stage", "latest_checkpoint", "read_losses", "stage_generator"]


def stage_generator(cfg: StageConfig, step: int, rank: int, purpose: int) -> torch.Generator:
    """The seeded CPU random stream of one (step, rank, purpose): what makes resume exact (draws are
    made on the CPU and moved, so they are the same on any device)."""
    g = torch.Generator(device="cpu")
    g.manual_seed(int(np.random.SeedSequence([cfg.seed, step, rank, purpose]).generate_state(1)[0]))
    return g


def latest_checkpoint(stage_dir: Path) -> Path | None:
    ck = sorted(p for p in (stage_dir / "checkpoints").glob("step-*") if (p / "progress.json").is_file())
    return ck[-1] if ck else None


def read_losses(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def _trim_log(path: Path, upto: int) -> None:
    """Drop log lines after ``upto`` (a resumed run logs those steps again)."""
    keep = [r for r in read_losses(path) if r["step"] <= upto]
    path.write_text("".join(json.dumps(r) + "\n" for r in keep))


def _to_device(batch: dict[str, Any], device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _save_grid(path: Path, columns: list[tuple[str, torch.Tensor]], instructions: list[str]) -> None:
    """Rows = samples, columns = named images, each ``[B, 3, H, W]`` resized to the first's size."""
    size = columns[0][1].shape[-2:]
    cols = [torch.nn.functional.interpolate(c.float().cpu(), size=size, mode="bilinear", align_corners=False)
            if c.shape[-2:] != size else c.float().cpu() for _, c in columns]
    rows = [torch.cat([c[i] for c in cols], dim=2) for i in range(cols[0].shape[0])]
    img = torch.cat(rows, dim=1).clamp(0, 1).permute(1, 2, 0).numpy()
    write_image(path, img)
    write_json_atomic(path.with_suffix(".json"), {"columns": [n for n, _ in columns], "instructions": instructions})


def run_stage(cfg: StageConfig, out: Path, build: Callable[..., Any], *, progress: bool = True) -> dict[str, Any]:
    """Train one stage into ``out/<stage>/`` (resuming from its latest checkpoint); returns a summary.

    ``build(cfg, out, accelerator)`` returns the stage object (see the module docstring).
    """
    from accelerate import Accelerator  # heavy: only when training
    from accelerate.utils import DistributedDataParallelKwargs
    from diffusers.training_utils import EMAModel
    from tqdm import tqdm

    stage_dir = out / cfg.stage
    final = stage_dir / "final"
    # cpu=True without CUDA: under a torchrun-style launcher (`accelerate launch --multi_gpu`, `torchrun`)
    # accelerate then joins the ranks with gloo (MULTI_CPU); otherwise each rank would train alone
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision, gradient_accumulation_steps=cfg.grad_accum,
                              cpu=not torch.cuda.is_available(),
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False)])
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if accelerator.num_processes != launched:
        raise RuntimeError(f"{launched} processes were launched but accelerate joined {accelerator.num_processes}; "
                           "launch with `accelerate launch --multi_gpu --num_processes N` or torchrun")
    rank = accelerator.process_index
    saved_cfg = stage_dir / "config.json"
    if saved_cfg.is_file():
        check_resume(saved_cfg, cfg)
    losses_path = stage_dir / "losses.jsonl"
    if (final / "training_config.json").is_file():
        done = json.loads((final / "training_config.json").read_text())
        if done.get("steps") == cfg.steps:
            return {"stage": cfg.stage, "final": str(final), "status": "already complete",
                    "losses": str(losses_path)}
    rows = read_manifest(cfg.data)  # a bad data path fails before any model loads
    stage = build(cfg, out, accelerator)  # and a missing teacher / CLIP before the folder is written
    if accelerator.is_main_process:
        stage_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(saved_cfg, cfg.to_json())
    accelerator.wait_for_everyone()
    ema_params = list(stage.ema_parameters())
    ema = EMAModel(ema_params, decay=cfg.ema_decay)
    ema.to(accelerator.device)

    start = 0
    ckpt = latest_checkpoint(stage_dir)
    if ckpt is not None:
        accelerator.load_state(str(ckpt))
        prog = json.loads((ckpt / "progress.json").read_text())
        start = int(prog["step"])
        shadow = load_safetensors(ckpt / "ema.safetensors")
        ema.shadow_params = [shadow[f"p{i:05d}"].to(accelerator.device) for i in range(len(ema_params))]
        ema.optimization_step = int(prog["ema_optimization_step"])
        if accelerator.is_main_process:
            _trim_log(losses_path, start)
    accelerator.wait_for_everyone()

    full = cfg.full_resolution if cfg.stage == "stage2" else None
    dataset = TripletDataset(rows, cfg.resolution, full)
    sampler = StepBatches(len(dataset), cfg.batch_size, seed=cfg.seed, start_step=start, steps=cfg.steps,
                          accum=cfg.grad_accum, rank=rank)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate,
                                         num_workers=cfg.num_workers, persistent_workers=False)
    sample_batch = collate([dataset[i] for i in range(min(cfg.n_samples, len(dataset)))])

    def save_checkpoint(step: int) -> None:
        ck_dir = stage_dir / "checkpoints"
        tmp, dst = ck_dir / f".tmp-step-{step:07d}", ck_dir / f"step-{step:07d}"
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp))
        if accelerator.is_main_process:
            save_safetensors({f"p{i:05d}": p.detach().cpu().contiguous() for i, p in enumerate(ema.shadow_params)},
                             tmp / "ema.safetensors")
            write_json_atomic(tmp / "progress.json", {"step": step, "ema_optimization_step": ema.optimization_step,
                                                      "world_size": accelerator.num_processes})
            shutil.rmtree(dst, ignore_errors=True)
            tmp.rename(dst)  # a checkpoint exists under its final name only once complete
            old = sorted(p for p in ck_dir.glob("step-*"))[:-cfg.keep_checkpoints]
            for p in old:
                shutil.rmtree(p, ignore_errors=True)
        accelerator.wait_for_everyone()

    def save_samples(step: int) -> None:
        if accelerator.is_main_process:
            with torch.no_grad():
                cols = stage.sample_columns(_to_device(sample_batch, accelerator.device))
            _save_grid(stage_dir / "samples" / f"step-{step:07d}.png", cols, sample_batch["instruction"])

    it = iter(loader)
    t0 = time.time()
    bar = tqdm(total=cfg.steps, initial=start, desc=cfg.stage, disable=not (progress and accelerator.is_main_process))
    for step in range(start, cfg.steps):
        factor = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
        stage.set_lr(factor)
        terms: dict[str, float] = {}
        for _ in range(cfg.grad_accum):
            batch = _to_device(next(it), accelerator.device)
            with accelerator.accumulate(*stage.models):
                out_terms = stage.train_step(batch, step)
            for k, v in out_terms.items():
                terms[k] = terms.get(k, 0.0) + float(v.detach()) / cfg.grad_accum
        ema.step(ema_params)
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            keys = sorted(terms)
            vals = accelerator.reduce(torch.tensor([terms[k] for k in keys], device=accelerator.device), "mean")
            rec = {"step": step + 1, "lr": cfg.lr * factor, **({"t_hi": t_hi_at(cfg, step)} if cfg.stage != "teacher" else {}),
                   **{k: float(v) for k, v in zip(keys, vals.tolist())}, "seconds": round(time.time() - t0, 3)}
            if accelerator.is_main_process:
                with open(losses_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(rec, allow_nan=True) + "\n")
                bar.set_postfix(total=f"{rec.get('total', float('nan')):.4f}")
        bar.update(1)
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            save_checkpoint(step + 1)
        if (step + 1) % cfg.sample_every == 0 or step + 1 == cfg.steps:
            save_samples(step + 1)
    bar.close()

    if accelerator.is_main_process:
        ema.store(ema_params)
        ema.copy_to(ema_params)  # the result is the EMA of the weights (paper: "AdamW with EMA")
        tmp = stage_dir / ".tmp-final"
        shutil.rmtree(tmp, ignore_errors=True)
        stage.save_final(tmp)
        write_json_atomic(tmp / "training_config.json", cfg.to_json())
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        ema.restore(ema_params)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return {"stage": cfg.stage, "final": str(final), "status": "trained", "steps": cfg.steps,
            "resumed_from": start, "losses": str(losses_path), "world_size": accelerator.num_processes, "rank": rank}
