"""Comparing runs: leaderboard, the paper's tables, submissions, compare, report, sweep."""

from __future__ import annotations

import click

from .app import METRICS_HELP, _metrics, cli


def _write_or_echo(text: str, out: str | None) -> None:
    if out:
        from ..core.atomic import write_text_atomic

        write_text_atomic(out, text)
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text, nl=False)


@cli.command()
@click.argument("runs", nargs=-1, type=click.Path())
@click.option("--format", "fmt", default="md", show_default=True, type=click.Choice(["md", "csv", "latex", "html"]))
@click.option("--with-published", is_flag=True, help="Add the paper's Table 1 as its own labelled, unranked block.")
@click.option("-o", "--out", default=None, type=click.Path(dir_okay=False), help="Write to a file instead of stdout.")
def leaderboard(runs, fmt, with_published, out) -> None:
    """Leaderboard of RUNS (run folders or result/submission files), one table per comparability key.

    With no RUNS: the shipped submissions (leaderboard/submissions/) and the paper's published rows."""
    from .. import api

    _write_or_echo(api.leaderboard(list(runs), fmt=fmt, with_published=with_published, out_path=out), out)


@cli.command()
@click.option("--paper", is_flag=True, required=True, help="The paper's Tables 1-3 (arXiv 2606.05071v1), as published.")
@click.option("--format", "fmt", default="md", show_default=True, type=click.Choice(["md", "csv", "latex"]))
@click.option("--table", "tables", multiple=True, type=click.IntRange(1, 3), help="Only this table (repeatable).")
def tables(paper, fmt, tables) -> None:
    """Regenerate the paper's tables from leaderboard/published/ (best per column marked)."""
    from .. import api

    click.echo(api.paper_tables(fmt=fmt, tables=tuple(tables) or None), nl=False)


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--generated-by", default=None, help="Who ran the model (name or organisation). Required.")
@click.option("--scored-by", default=None, help="Who ran the scoring. Required.")
@click.option("--out", "out_dir", default="leaderboard/submissions", show_default=True,
              type=click.Path(file_okay=False), help="Where the submission file goes.")
def submit(run_dir, generated_by, scored_by, out_dir) -> None:
    """Check RUN_DIR and write a results-only submission file, or list every problem found."""
    from .. import api

    path = api.submit(run_dir, out_dir=out_dir, generated_by=generated_by, scored_by=scored_by)
    click.echo(f"accepted: {path}")


@cli.command()
@click.argument("run_a", type=click.Path(file_okay=False))
@click.argument("run_b", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def compare(run_a, run_b, as_json) -> None:
    """Paired difference B - A per metric on the ids both runs share: 95% interval and Wilcoxon test."""
    from .. import api

    click.echo(api.compare(run_a, run_b, fmt="json" if as_json else "md"), nl=False)


@cli.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="The HTML file to write.")
@click.option("--thumb-px", default=128, show_default=True, type=click.IntRange(32, 512), help="Thumbnail height.")
@click.option("--full-px", default=768, show_default=True, type=click.IntRange(0, 16384),
              help="Long side of the click-to-enlarge image (embedded, so it sets the file size); 0: full size.")
def report(runs, out, thumb_px, full_px) -> None:
    """One self-contained HTML report of RUNS (run folders or sweep folders) that opens offline."""
    from .. import api

    path = api.report(list(runs), out, thumb_px=thumb_px, full_px=full_px)
    click.echo(f"wrote {path}")


@cli.command()
@click.option("--model", required=True, help="A model whose strength is honoured (supports_strength).")
@click.option("--strengths", default="0,0.25,0.5,1,1.5", show_default=True, help="Comma-separated strengths.")
@click.option("--dataset", default="embedded", show_default=True)
@click.option("--judge", default="offline", show_default=True)
@click.option("--limit", default=None, type=click.IntRange(1), help="Only the first N samples.")
@click.option("--out", default=None, help="Sweep folder (default runs/sweep-<model>__<dataset>); reruns resume.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--weights", default=None)
@click.option("--metrics", "metrics", default=None, help=METRICS_HELP)
@click.option("--skip", "skip", default=None, help="Metric groups or keys to leave out, e.g. dists.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def sweep(model, strengths, dataset, judge, limit, out, device, weights, metrics, skip, quiet) -> None:
    """Run MODEL at each strength (one run folder each) and print fidelity against instruction score."""
    from .. import api

    try:
        values = tuple(float(x) for x in strengths.split(",") if x.strip())
    except ValueError:
        raise click.BadParameter(f"expected numbers like 0,0.5,1, got {strengths!r}", param_hint="--strengths") from None
    if not values:
        raise click.BadParameter("no strength given", param_hint="--strengths")
    folder, table = api.sweep(model, values, dataset=dataset, judge=judge, limit=limit, out=out, device=device,
                              weights=weights, metrics=_metrics(metrics, skip), progress=not quiet)
    click.echo(table, nl=False)
    click.echo(f"sweep: {folder}")
