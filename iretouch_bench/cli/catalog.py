"""What is available here: datasets (data), models, weights."""

from __future__ import annotations

import json

import click

from ..core.errors import BenchError
from .app import cli


@cli.group()
def data() -> None:
    """Datasets: list, build the embedded one, show a dataset's card and hash."""


@data.command("list")
def data_list() -> None:
    """The dataset kinds the suite reads."""
    from ..datasets import list_datasets

    for d in list_datasets():
        click.echo(f"{d['name']:10s} {d.get('spec', ''):18s} {d.get('description', '')}")


@data.command("build")
@click.argument("name", type=click.Choice(["embedded"]))
@click.option("--force", is_flag=True, help="Rebuild even if present.")
def data_build(name, force) -> None:
    """Build a dataset that the suite makes itself (embedded)."""
    from ..synth.embedded import build_embedded

    click.echo(str(build_embedded(force=force)))


@data.command("info")
@click.argument("spec")
@click.option("--expert", default="a", type=click.Choice(["a", "b", "c"]))
@click.option("--split", default=None)
def data_info(spec, expert, split) -> None:
    """Name, size, categories, content hash and card of SPEC."""
    from ..datasets import dataset_info

    click.echo(json.dumps(dataset_info(spec, expert=expert, split=split), indent=2, default=str))


@cli.group()
def models() -> None:
    """Models the registry knows."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per model).")
def models_list(as_json) -> None:
    """Built-in models and installed plug-ins: kind, status (ready, or what is missing: weights,
    the key in $VAR, a GPU, a package), license, and the row of the paper's Table 1."""
    from ..adapters.registry import list_models

    rows = list_models()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    head = ("model", "kind", "status", "license", "Table 1 row", "description")
    table = [head] + [(r["name"], r["kind"], r["status"], r["license"] or "-", r["paper_row"] or "-",
                       r["description"]) for r in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(head) - 1)]
    for row in table:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])


@cli.group()
def weights() -> None:
    """Pretrained weights the metrics need (VGG16 for DISTS, FaceNet)."""


@weights.command("list")
def weights_list() -> None:
    """Each weight set, whether it is ready, and where it came from."""
    from ..weights.registry import WEIGHT_SETS

    for name in WEIGHT_SETS.names():
        try:
            ws = WEIGHT_SETS[name]
            st = ws.status()
            state = "ready" if st.get("ready") else "missing"
            click.echo(f"{name:14s} {state:8s} {st.get('source') or '-':32s} {ws.description}")
        except BenchError as err:
            click.echo(f"{name:14s} unavailable: {err}")


@weights.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--path", default=None, help="Use this local file as the source (one NAME).")
def weights_fetch(names, path) -> None:
    """Resolve, verify and cache NAMES (default: all)."""
    from ..weights.registry import WEIGHT_SETS

    names = names or tuple(WEIGHT_SETS.names())
    if path and len(names) != 1:
        raise click.UsageError("--path needs exactly one NAME")
    for name in names:
        out = WEIGHT_SETS[name].fetch(path=path) if path else WEIGHT_SETS[name].fetch()
        click.echo(f"{name}: {out}")


# `train` is a group whose subcommands live with the trainers (training/commands.py): a new
# recipe adds a subcommand there, not here.


# --------------------------------------------------------------------------- results: leaderboard, tables,
# submissions, comparisons, reports, strength sweeps (iretouch_bench.reporting)
