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
