"""Commands of a run's flow: run, aggregate, score, the judge stage, protocols and judge prompts, latency."""

from __future__ import annotations

import json
import sys

import click

from ..core.errors import BenchError
from .app import (
    DEVICE,
    EXIT_ERROR,
    EXIT_SAMPLES_FAILED,
    METRICS_HELP,
    MODEL_ARGS_HELP,
    MODEL_HELP,
    RUN_EPILOG,
    _face_options,
    _judge_view_kwargs,
    _judge_view_options,
    _metrics,
    _model_args,
    _parse_shard,
    _protocol_option,
    _resolutions,
    cli,
)


@cli.command(epilog=RUN_EPILOG)
@click.option("--model", required=True, help=MODEL_HELP)
@click.option("--model-args", "model_args", default=None, help=MODEL_ARGS_HELP)
@click.option("--seed", default=0, show_default=True, type=int,
              help="Run seed; each sample's seed derives from it and the sample id (recorded; resume guard).")
@click.option("--model-budget", default=None, type=click.FloatRange(0),
              help="API editors: stop before spending more than USD on model calls.")
@click.option("--model-cache", default="use", show_default=True, type=click.Choice(["use", "refresh", "off"]),
              help="API editors' output cache (a rerun makes no paid call).")
@click.option("--model-cache-dir", default=None, help="Model output cache (default: the user cache).")
@click.option("--dataset", "dataset", default="embedded", show_default=True,
              help="embedded | iretouch:PATH | ppr10k:PATH | hf:PATH")
@click.option("--judge", default="offline", show_default=True,
              help="offline | none | openai:MODEL | gemini:MODEL, or a comma list of API judges (the first is "
                   "the primary: plain sc/pq/o); SPEC@URL gives one judge its endpoint.")
@click.option("--judge-base-url", default=None, help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL).")
@click.option("--judge-samples", default=1, show_default=True, type=click.IntRange(1), help="Median of N judge answers.")
@click.option("--judge-cache", default="use", show_default=True, type=click.Choice(["use", "refresh", "off"]))
@click.option("--judge-budget", default=None, type=float, help="Stop judging before spending more than USD.")
@click.option("--judge-concurrency", default=4, show_default=True, type=click.IntRange(1))
@click.option("--judge-rpm", default=None, type=float, help="Judge requests per minute (rate limit).")
@click.option("--judge-max-side", default=1024, show_default=True, type=click.IntRange(0),
              help="Long side (px) of images sent to the judge.")
@click.option("--judge-timeout", default=120.0, show_default=True, type=float, help="Seconds per judge request.")
@click.option("--judge-retries", default=5, show_default=True, type=click.IntRange(0), help="Retries per judge call.")
@click.option("--judge-cache-dir", default=None, help="Judge answer cache (default: the user cache).")
@click.option("--dry-run", is_flag=True,
              help="Say how many model and judge calls the run needs and their rough cost; run nothing.")
@click.option("--limit", default=None, type=click.IntRange(1), help="Only the first N samples.")
@click.option("--out", default=None, help="Run folder (default: runs/<model>__<dataset>; rerun resumes it).")
@click.option("--device", default="cpu", show_default=True, type=DEVICE)
@click.option("--weights", default=None, help="Weights for the model (a file or folder).")
@click.option("--strength", default=1.0, show_default=True, type=float, help="Edit strength (models that support it).")
@click.option("--identity", default="auto", show_default=True, type=click.Choice(["auto", "on", "off"]),
              help="FaceNet identity score: auto = portrait samples and PPR10K.")
@click.option("--face-weights", default=None, help="FaceNet weights: auto | vggface2 | casia-webface | PATH.")
@_face_options
@_protocol_option
@_judge_view_options
@click.option("--expert", default="a", show_default=True, type=click.Choice(["a", "b", "c"]), help="PPR10K expert.")
@click.option("--split", default=None, help="Dataset split (PPR10K train/val, HF DatasetDict split).")
@click.option("--shard", default=None, help="K/N: run every N-th sample from K (for several processes).")
@click.option("--latency", is_flag=True, help="Also measure per-resolution latency (adds latency_* columns).")
@click.option("--resolutions", default="720p,1k,2k,4k", show_default=True, help="For --latency.")
@click.option("--metrics", "metrics", default=None, help=METRICS_HELP)
@click.option("--skip", "skip", default=None, help="Metric groups or keys to leave out, e.g. dists.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run(model, model_args, seed, model_budget, model_cache, model_cache_dir, dataset, judge, judge_base_url, judge_samples, judge_cache, judge_budget, judge_concurrency,
        judge_rpm, judge_max_side, judge_timeout, judge_retries, judge_cache_dir, dry_run, limit, out, device, weights,
        strength, identity, face_weights, face_margin, face_choice, protocol, judge_prompts, judge_image_format,
        judge_image_quality, judge_temperature, judge_seed, expert, split, shard, latency, resolutions, metrics, skip, quiet) -> None:
    """Run MODEL on a dataset, score it and print the results table."""
    from .. import api
    from ..runner.config import RunConfig

    config = RunConfig(model=model, dataset=dataset, judge=judge, limit=limit, out=out, device=device,
                       protocol=protocol, face_margin=face_margin, face_choice=face_choice,
                       **_judge_view_kwargs(judge_prompts, judge_image_format, judge_image_quality,
                                            judge_temperature, judge_seed),
                       weights=weights, strength=strength, identity=identity, face_weights=face_weights, expert=expert, split=split,
                       shard=_parse_shard(shard), judge_base_url=judge_base_url, judge_samples=judge_samples,
                       judge_cache=judge_cache, judge_budget=judge_budget, judge_concurrency=judge_concurrency,
                       judge_rpm=judge_rpm, judge_max_side=judge_max_side, judge_timeout=judge_timeout,
                       judge_retries=judge_retries, judge_cache_dir=judge_cache_dir,
                       latency=latency, resolutions=_resolutions(resolutions), metrics=_metrics(metrics, skip),
                       model_args=_model_args(model_args), seed=seed, model_budget=model_budget,
                       model_cache=model_cache, model_cache_dir=model_cache_dir)
    if dry_run:
        est = api.estimate_run_cost(config)
        click.echo(json.dumps(est, indent=2))
        return
    result = api.run_benchmark(config, progress=not quiet)
    click.echo(result.table)
    click.echo(f"results: {result.run_dir}")
    if result.n_refused:
        click.echo(f"{result.n_refused} sample(s) refused by the model (not scored, counted apart); "
                   f"see the table notes", err=True)
    if result.stopped:
        click.echo(f"error: {result.stopped}", err=True)
        sys.exit(EXIT_ERROR)
    if result.n_failed:
        click.echo(f"{result.n_failed} sample(s) failed; see {result.run_dir}/samples*.jsonl", err=True)
        sys.exit(EXIT_SAMPLES_FAILED)


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--partial", is_flag=True, help="Merge what is there even when some shards are missing or running "
              "(the table says so).")
def aggregate(run_dir, partial) -> None:
    """Recompute summary.json and table.md of RUN_DIR, merging its shards once every shard has
    finished (otherwise: one line naming the missing and running shards, exit 1)."""
    from .. import api

    click.echo(api.aggregate(run_dir, partial=partial).table)


@cli.command()
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False), help="The photo before the edit.")
@click.option("--output", "output_path", required=True, type=click.Path(dir_okay=False), help="The edited photo.")
@click.option("--target", "target_path", default=None, type=click.Path(dir_okay=False), help="Reference result (l1, l2).")
@click.option("--instruction", default=None, help="The instruction (attr_acc).")
@click.option("--identity", default="auto", show_default=True, type=click.Choice(["auto", "on", "off"]),
              help="FaceNet identity score; auto = on for a single pair (null with reason no_face when "
                   "the input shows no face).")
@click.option("--face-weights", default=None, help="FaceNet weights: auto | vggface2 | casia-webface | PATH.")
@_face_options
@_protocol_option
@click.option("--device", default="cpu", show_default=True, type=DEVICE)
@click.option("--metrics", "metrics", default=None, help=METRICS_HELP)
@click.option("--skip", "skip", default=None, help="Metric groups or keys to leave out, e.g. dists.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (values and null reasons).")
def score(input_path, output_path, target_path, instruction, identity, face_weights, face_margin, face_choice,
          protocol, device, metrics, skip, as_json) -> None:
    """Score one edited photo against its input (and target)."""
    from .. import api
    from ..metrics.protocols import get_protocol

    try:
        proto = get_protocol(protocol)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--protocol") from None
    scores = api.score_files(input_path, output_path, target=target_path, instruction=instruction,
                             protocol=proto.name, face_margin=face_margin, face_choice=face_choice,
                             identity=identity != "off", device=device, face_weights=face_weights,
                             metrics=_metrics(metrics, skip))
    if as_json:
        click.echo(json.dumps({"protocol": proto.label,
                               "metrics": scores.values, "null_reasons": scores.reasons,
                               "details": scores.details}, indent=2, default=str))
    else:
        for k, v in scores.values.items():
            click.echo(f"{k:10s} {'null  (' + scores.reasons.get(k, '') + ')' if v is None else f'{v:.6f}'}")


@cli.command("judge")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--judge", "spec", default=None,
              help="openai:MODEL | gemini:MODEL, or a comma list (SPEC@URL gives one judge its endpoint); "
                   "default: the run's --judge.")
@click.option("--judge-base-url", default=None, help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL).")
@click.option("--judge-samples", default=None, type=click.IntRange(1), help="Median of N judge answers (1).")
@click.option("--judge-cache", default=None, type=click.Choice(["use", "refresh", "off"]), help="(use)")
@click.option("--judge-budget", default=None, type=float, help="Stop judging before spending more than USD (all judges).")
@click.option("--judge-concurrency", default=None, type=click.IntRange(1), help="(4)")
@click.option("--judge-rpm", default=None, type=float, help="Judge requests per minute (rate limit, per judge).")
@click.option("--judge-max-side", default=None, type=click.IntRange(0),
              help="Long side (px) of images sent to the judge; 0 = native size (1024).")
@click.option("--judge-timeout", default=None, type=float, help="Seconds per judge request (120).")
@click.option("--judge-retries", default=None, type=click.IntRange(0), help="Retries per judge call (5).")
@click.option("--judge-cache-dir", default=None, help="Judge answer cache (default: the user cache).")
@click.option("--judge-prompts", default=None, type=click.Path(dir_okay=False), help="Judge prompt-set file.")
@click.option("--judge-image-format", default=None, type=click.Choice(["png", "jpeg"]), help="(png)")
@click.option("--judge-image-quality", default=None, type=click.IntRange(1, 95), help="JPEG quality (90).")
@click.option("--judge-temperature", default=None, type=click.FloatRange(0, 2), help="(0)")
@click.option("--judge-seed", default=None, type=int, help="(20260527)")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def judge_cmd(run_dir, spec, judge_base_url, judge_samples, judge_cache, judge_budget, judge_concurrency, judge_rpm,
              judge_max_side, judge_timeout, judge_retries, judge_cache_dir, judge_prompts, judge_image_format,
              judge_image_quality, judge_temperature, judge_seed, quiet) -> None:
    """Add VLM judge scores to the finished run RUN_DIR, without regenerating anything.

    One process (one rate limiter, one cache, one budget); resumable; a rerun sends no request.
    Options not given (defaults in brackets) are the run's own --judge-* settings, if it had them."""
    from .. import api

    view = {"judge_prompts": judge_prompts, "judge_image_format": judge_image_format,
            "judge_image_quality": judge_image_quality, "judge_temperature": judge_temperature, "judge_seed": judge_seed}
    stage, result = api.judge_run(
        run_dir, spec, progress=not quiet, log=lambda m: click.echo(m, err=True),
        base_url=judge_base_url, samples=judge_samples, cache_mode=judge_cache, budget_usd=judge_budget,
        concurrency=judge_concurrency, requests_per_minute=judge_rpm, max_side=judge_max_side,
        timeout_s=judge_timeout, max_retries=judge_retries, cache_dir=judge_cache_dir,
        prompts=view["judge_prompts"], image_format=view["judge_image_format"],
        image_quality=view["judge_image_quality"], temperature=view["judge_temperature"], seed=view["judge_seed"])
    click.echo(result.table)
    click.echo(f"judged {stage.n_judged} sample(s) ({stage.n_already} already judged; {stage.api_requests} API "
               f"request(s)); results: {stage.run_dir}")
    if stage.failures:
        click.echo("samples without a score (reasons in samples*.jsonl): "
                   + ", ".join(f"{s}: {n}" for s, n in stage.failures.items()), err=True)


@cli.command("protocols")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (name, version, what changes, every step).")
def protocols_cmd(as_json) -> None:
    """The named fidelity protocols (--protocol) and what each changes from `paper`."""
    from ..metrics.protocols import DEFAULT_PROTOCOL, list_protocols

    rows = list_protocols()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for p in rows:
        mark = " (default)" if p["name"] == DEFAULT_PROTOCOL else ""
        click.echo(f"{p['label']:20s} {p['changes']}{mark}")


@cli.group("judge-prompts")
def judge_prompts_group() -> None:
    """Judge prompt sets: export the default to edit, load yours with --judge-prompts FILE."""


@judge_prompts_group.command("export")
@click.argument("file", type=click.Path(dir_okay=False))
def judge_prompts_export(file) -> None:
    """Write the suite's default prompt set to FILE (JSON, the format --judge-prompts reads)."""
    from ..judge.prompts import DEFAULT_PROMPTS, export_prompt_set

    path = export_prompt_set(file)
    click.echo(f"wrote {path} ({DEFAULT_PROMPTS.name} {DEFAULT_PROMPTS.version}, sha256 {DEFAULT_PROMPTS.hash[:12]})")


@judge_prompts_group.command("show")
@click.argument("file", type=click.Path(dir_okay=False), required=False)
def judge_prompts_show(file) -> None:
    """Name, version and hash of FILE's prompt set (default: the suite's), after validating it."""
    from ..judge.prompts import resolve_prompt_set

    ps = resolve_prompt_set(file)
    click.echo(json.dumps({**ps.info(), "images": {k: list(ps.images(k)) for k in ("sc", "pq")}}, indent=2))


@cli.command()
@click.option("--model", required=True, help=MODEL_HELP)
@click.option("--model-args", "model_args", default=None, help=MODEL_ARGS_HELP)
@click.option("--resolutions", default="720p,1k,2k,4k", show_default=True)
@click.option("--repeats", default=5, show_default=True, type=click.IntRange(1))
@click.option("--warmup", default=1, show_default=True, type=click.IntRange(0))
@click.option("--device", default="cpu", show_default=True, type=DEVICE)
@click.option("--weights", default=None)
@click.option("--instruction", default="Brighten the image a little", show_default=True)
@click.option("--plot", default=None, type=click.Path(dir_okay=False), help="Write a latency-vs-resolution PNG.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--out", "run_dir", default=None, type=click.Path(file_okay=False),
              help="A run folder of MODEL: write latency.json there (the latency_* columns) and re-aggregate it. "
                   "The single-process latency step of a sharded run.")
def latency(model, model_args, resolutions, repeats, warmup, device, weights, instruction, plot, as_json,
            run_dir) -> None:
    """Measure end-to-end latency of MODEL at each resolution (median of N repeats)."""
    from .. import api
    from ..adapters.registry import create_model, get_model_class
    from ..reporting.latency import format_table, plot_latency
    from ..runner.latency import measure_latency, parse_resolutions
    from ..runner.run import runner_options

    options = _model_args(model_args)
    # an API editor's own cache off: repeats must time real calls, not cache reads
    m = create_model(model, device=device, weights=weights, **runner_options(get_model_class(model), options))
    m.preflight()
    m.ensure_loaded()
    result = measure_latency(m, parse_resolutions(resolutions), repeats=repeats, warmup=warmup, device=device,
                             instruction=instruction)
    result["model_args"] = options
    if run_dir:
        from pathlib import Path

        from ..core.atomic import write_json_atomic

        info_path = Path(run_dir) / "run.json"
        if not info_path.exists():
            raise BenchError(f"{run_dir}: not a run folder (no run.json)")
        run_model = json.loads(info_path.read_text()).get("config", {}).get("model")
        if run_model != model:
            raise BenchError(f"{run_dir}: is a run of model {run_model!r}, not {model!r}")
        result["model"] = model
        write_json_atomic(Path(run_dir) / "latency.json", result)
        click.echo(f"latency written to {Path(run_dir) / 'latency.json'}", err=True)
        try:
            api.aggregate(run_dir)
        except BenchError as err:  # shards still running: the latency columns appear when they are merged
            click.echo(f"not re-aggregated yet: {err}", err=True)
    if plot:
        plot_latency({model: result}, plot)
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
    click.echo(format_table({model: result}))
