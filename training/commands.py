"""``iretouch-bench train``: one click group, one subcommand per recipe.

The harness CLI adds :data:`train` as is (``cli.add_command(train)``), so a new recipe is one
function here::

    @train.command("3dlut")
    @click.option(...)
    def train_3dlut(...):
        \"\"\"One line for `iretouch-bench train --help`.\"\"\"
        from .lut3d import train_3dlut  # heavy: see below
        ...

Only click is imported at module level: the CLI imports this module at start-up, and
``iretouch-bench --help`` must not pay for torch. Each subcommand imports its trainer inside
its body for that reason (and only for that reason).
"""

from __future__ import annotations

import json

import click

__all__ = ["train"]


@click.group()
def train() -> None:
    """Train the suite's models (each subcommand reproduces one shipped or baseline model)."""


@train.command("ours-small")
@click.option("--out", default="ours-train", show_default=True, help="Folder for weights, config and loss curve.")
@click.option("--steps", default=2000, show_default=True, type=click.IntRange(1), help="Training steps.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--threads", default=None, type=click.IntRange(1),
              help="Torch threads (the shipped weights used 1; results are bit-identical for a fixed count).")
@click.option("--batch", default=8, show_default=True, type=click.IntRange(1))
@click.option("--pool", default=1600, show_default=True, type=click.IntRange(1), help="Training pairs synthesised.")
def ours_small(out, steps, seed, threads, batch, pool) -> None:
    """Train the shipped `ours` model from scratch (reproduces models/weights/ours_small.*)."""
    from .small import train_ours  # heavy (torch, synth): only when this command runs

    result = train_ours(out, steps=steps, seed=seed, threads=threads, batch=batch, pool_size=pool)
    click.echo(json.dumps(result, indent=2, default=str))


@train.command("data", short_help="Training triplets of the paper's section 3.1 (resumable manifest folder).")
@click.option("--photos", type=click.Path(file_okay=False, path_type=str), default=None,
              help="Folder of high-quality photos (the targets). Required unless --tiny.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=str), help="Triplet folder to write.")
@click.option("--per-photo", default=4, show_default=True, type=click.IntRange(1), help="Triplets per photo.")
@click.option("--max-side", default=1024, show_default=True, type=click.IntRange(32), help="Long side of the images.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--tiny", is_flag=True, help="Use the training photos installed packages ship (small, for a demo).")
def data(photos, out, per_photo, max_side, seed, tiny) -> None:
    """Sec. 3.1 triplets (input, target, instruction, mask) as a manifest folder (resumable)."""
    from .distill.data import build_triplets  # heavy (synth, numpy): only when this command runs

    if photos is None and not tiny:
        raise click.UsageError("--photos DIR is required (or --tiny for the packages' photos)")
    info = build_triplets(out, photos, per_photo=per_photo, seed=seed, max_side=96 if tiny and photos is None else max_side)
    click.echo(json.dumps(info, indent=2))


@train.command("distill")
@click.option("--stage", required=True, type=click.Choice(["teacher", "stage1", "stage2"]))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=str),
              help="The training folder of the whole recipe (each stage writes OUT/<stage>/).")
@click.option("--config", "config", default=None, type=click.Path(dir_okay=False, path_type=str),
              help="JSON config (any subset of the fields; default: training/configs/<stage>.json).")
@click.option("--tiny", is_flag=True, help="Tiny random models of the real classes: runs on a CPU in minutes.")
@click.option("--data", "data_path", default=None, help="Triplet manifest or folder (default OUT/data).")
@click.option("--teacher", default=None, help="Diffusers InstructPix2Pix folder (stage1/2 default OUT/teacher/final).")
@click.option("--clip", default=None, help="Local transformers CLIPModel folder (prompt alignment).")
@click.option("--lpips-vgg", default=None, help="VGG16 weights for LPIPS (default: the suite's weight cache).")
@click.option("--steps", default=None, type=click.IntRange(1), help="Override the config's step count.")
def distill(stage, out, config, tiny, data_path, teacher, clip, lpips_vgg, steps) -> None:
    """One stage of the paper's one-step bilateral distillation (launch with `accelerate launch` for GPUs)."""
    from .distill import run_distill  # heavy (torch, diffusers, accelerate): only when this command runs

    result = run_distill(stage, out, config=config, tiny=tiny, overrides={
        "data": data_path, "teacher": teacher, "clip": clip, "lpips_vgg": lpips_vgg, "steps": steps})
    if result.get("rank", 0) == 0:  # under a launcher, one summary (rank 0's)
        click.echo(json.dumps(result, indent=2))


@train.command("3dlut")
@click.option("--out", default="3dlut-train", show_default=True, help="Folder for weights, config and loss curve.")
@click.option("--steps", default=1000, show_default=True, type=click.IntRange(1), help="Training steps.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1),
              help="Torch threads (the shipped weights used 1; results are bit-identical for a fixed count).")
@click.option("--batch", default=4, show_default=True, type=click.IntRange(1))
@click.option("--pool", default=400, show_default=True, type=click.IntRange(1), help="Training pairs synthesised.")
def train_3dlut_cmd(out, steps, seed, threads, batch, pool) -> None:
    """Train the 3D-LUT baseline from scratch (reproduces baselines/weights/lut3d.*)."""
    from .lut3d import train_3dlut  # heavy (torch, synth): only when this command runs

    result = train_3dlut(out, steps=steps, seed=seed, threads=threads, batch=batch, pool_size=pool)
    click.echo(json.dumps(result, indent=2, default=str))


@train.command("rsfnet")
@click.option("--out", default="rsfnet-train", show_default=True, help="Folder for weights, config and loss curve.")
@click.option("--steps", default=800, show_default=True, type=click.IntRange(1), help="Training steps.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1),
              help="Torch threads (the shipped weights used 1; results are bit-identical for a fixed count).")
@click.option("--batch", default=4, show_default=True, type=click.IntRange(1))
@click.option("--pool", default=400, show_default=True, type=click.IntRange(1), help="Training pairs synthesised.")
def train_rsfnet_cmd(out, steps, seed, threads, batch, pool) -> None:
    """Train the RSFNet (map variant) baseline from scratch (reproduces baselines/weights/rsfnet.*)."""
    from .rsfnet import train_rsfnet  # heavy (torch, synth): only when this command runs

    result = train_rsfnet(out, steps=steps, seed=seed, threads=threads, batch=batch, pool_size=pool)
    click.echo(json.dumps(result, indent=2, default=str))
