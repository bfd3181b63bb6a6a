"""The ``iretouch-bench`` command: a thin layer over :mod:`iretouch_bench.api`.

Errors print one line (``error: <file>: <problem>``) and exit non-zero; set
``IRETOUCH_BENCH_DEBUG=1`` for the traceback.

Every command imports what it needs inside its own function: that keeps ``iretouch-bench --help``
and the cheap commands (``models list``, ``protocols``) from importing torch (about 3 s here).
"""

from __future__ import annotations

import json
import os
import sys

import click

from .core.errors import BenchError
from .training.commands import train as _train_group  # click only; each subcommand imports its trainer

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_SAMPLES_FAILED = 0, 1, 2, 3

RUN_EPILOG = """\b
Exit codes:
  0  every selected sample was generated and scored, or refused by the model:
     a refusal (moderation, safety filter, an answer without an image) is the
     model's answer, recorded with status refused and its reason, never
     scored, counted apart in the summary (n_refused) and the table notes,
     and said on stderr; rerunning repeats it (from the cache), so it is not
     an error to retry
  3  the run finished but some samples failed (each recorded with its reason
     in samples*.jsonl; the others are scored and in the table); failures
     decide the code even when other samples were refused
  1  an error stopped the run (bad dataset, model or option, a missing key,
     or --model-budget reached before every sample was made); finished
     samples stay in the run folder and rerunning the command resumes
  2  usage error
"""


def _model_args(value: str | None) -> dict:
    from .runner.config import parse_model_args

    try:
        return parse_model_args(value)
    except BenchError as err:
        raise click.BadParameter(str(err), param_hint="--model-args") from None


MODEL_HELP = "Model name (see `iretouch-bench models list`) or a file plug-in PATH.py:ClassName."
MODEL_ARGS_HELP = ("Adapter options key=value,... (values read as int, float, true/false or text), e.g. "
                   "model=gpt-image-1,quality=high. Recorded in run.json; part of the resume guard.")


def _parse_shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        k, n = (int(x) for x in value.split("/"))
    except ValueError:
        raise click.BadParameter(f"expected K/N (e.g. 0/4), got {value!r}") from None
    if not (n >= 1 and 0 <= k < n):
        raise click.BadParameter(f"shard {value!r}: need 0 <= K < N")
    return k, n


METRICS_HELP = ("Metric groups or keys to compute (default all): fidelity, distance, judge, instruction, "
                "identity, or keys such as ssim,l1. A quick CPU run: --skip dists.")


def _metrics(include: str | None, skip: str | None) -> tuple[str, ...]:
    from .metrics.keys import select_metrics

    try:
        chosen = select_metrics(include, skip)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--metrics/--skip") from None
    if not chosen:
        raise click.BadParameter("no metric left to compute", param_hint="--metrics/--skip")
    return chosen


class _Device(click.ParamType):
    """``cpu``, ``cuda`` or ``cuda:K`` (under a launcher, ``cuda`` becomes ``cuda:LOCAL_RANK``)."""

    name = "cpu|cuda|cuda:K"

    def convert(self, value, param, ctx):
        v = str(value).strip().lower()
        head, _, idx = v.partition(":")
        if v in ("cpu", "cuda") or (head == "cuda" and idx.isdigit()):
            return v
        self.fail(f"expected cpu, cuda or cuda:K, got {value!r}", param, ctx)


DEVICE = _Device()


def _resolutions(value: str) -> tuple[str, ...]:
    return tuple(r.strip().lower() for r in value.split(",") if r.strip())


PROTOCOL_HELP = "Fidelity protocol (see `iretouch-bench protocols`): paper | float | dists256 | ssim-downsample."


def _protocol_option(f):
    return click.option("--protocol", default="paper", show_default=True, help=PROTOCOL_HELP)(f)


def _face_options(f):
    f = click.option("--face-choice", default="confident", show_default=True,
                     type=click.Choice(["confident", "largest"]),
                     help="FaceNet: the subject when the input shows several faces (most confident, or largest "
                          "as facenet-pytorch's select_largest).")(f)
    return click.option("--face-margin", default=32, show_default=True, type=click.IntRange(0),
                        help="FaceNet crop margin (px in the 160 px crop, facenet-pytorch's definition).")(f)


def _judge_view_options(f):
    """What the judge is shown and how it is asked (recorded; part of the cache key and resume guard)."""
    for opt in reversed((
        click.option("--judge-prompts", default=None, type=click.Path(dir_okay=False),
                     help="Judge prompt-set file (JSON/TOML; `iretouch-bench judge-prompts export FILE` writes "
                          "the default to edit). Its hash is recorded."),
        click.option("--judge-image-format", default="png", show_default=True, type=click.Choice(["png", "jpeg"]),
                     help="Encoding of the images sent to the judge."),
        click.option("--judge-image-quality", default=None, type=click.IntRange(1, 95),
                     help="JPEG quality for --judge-image-format jpeg (default 90)."),
        click.option("--judge-temperature", default=0.0, show_default=True, type=click.FloatRange(0, 2)),
        click.option("--judge-seed", default=None, type=int, help="Judge sampling seed (default 20260527)."),
    )):
        f = opt(f)
    return f


def _judge_view_kwargs(judge_prompts, judge_image_format, judge_image_quality, judge_temperature, judge_seed) -> dict:
    if judge_image_quality is not None and judge_image_format != "jpeg":
        raise click.BadParameter("applies to --judge-image-format jpeg only", param_hint="--judge-image-quality")
    return {"judge_prompts": judge_prompts, "judge_image_format": judge_image_format,
            "judge_image_quality": judge_image_quality, "judge_temperature": judge_temperature,
            "judge_seed": judge_seed}


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="iretouch-bench")
def cli() -> None:
    """Evaluation suite for instruction-guided photo retouching (InstantRetouch, arXiv 2606.05071)."""


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
    from . import api
    from .runner.config import RunConfig

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
    from . import api

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
    from . import api

    from .metrics.protocols import get_protocol

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
    from . import api

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
    from .metrics.protocols import DEFAULT_PROTOCOL, list_protocols

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
    from .judge.prompts import DEFAULT_PROMPTS, export_prompt_set

    path = export_prompt_set(file)
    click.echo(f"wrote {path} ({DEFAULT_PROMPTS.name} {DEFAULT_PROMPTS.version}, sha256 {DEFAULT_PROMPTS.hash[:12]})")


@judge_prompts_group.command("show")
@click.argument("file", type=click.Path(dir_okay=False), required=False)
def judge_prompts_show(file) -> None:
    """Name, version and hash of FILE's prompt set (default: the suite's), after validating it."""
    from .judge.prompts import resolve_prompt_set

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
    from . import api
    from .reporting.latency import format_table, plot_latency
    from .runner.latency import measure_latency, parse_resolutions
    from .adapters.registry import create_model

    from .adapters.registry import get_model_class
    from .runner.run import runner_options

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

        from .core.atomic import write_json_atomic

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


@cli.group()
def data() -> None:
    """Datasets: list, build the embedded one, show a dataset's card and hash."""


@data.command("list")
def data_list() -> None:
    """The dataset kinds the suite reads."""
    from .datasets import list_datasets

    for d in list_datasets():
        click.echo(f"{d['name']:10s} {d.get('spec', ''):18s} {d.get('description', '')}")


@data.command("build")
@click.argument("name", type=click.Choice(["embedded"]))
@click.option("--force", is_flag=True, help="Rebuild even if present.")
def data_build(name, force) -> None:
    """Build a dataset that the suite makes itself (embedded)."""
    from .synth.embedded import build_embedded

    click.echo(str(build_embedded(force=force)))


@data.command("info")
@click.argument("spec")
@click.option("--expert", default="a", type=click.Choice(["a", "b", "c"]))
@click.option("--split", default=None)
def data_info(spec, expert, split) -> None:
    """Name, size, categories, content hash and card of SPEC."""
    from .datasets import dataset_info

    click.echo(json.dumps(dataset_info(spec, expert=expert, split=split), indent=2, default=str))


@cli.group()
def models() -> None:
    """Models the registry knows."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per model).")
def models_list(as_json) -> None:
    """Built-in models and installed plug-ins: kind, status (ready, or what is missing: weights,
    the key in $VAR, a GPU, a package), license, and the row of the paper's Table 1."""
    from .adapters.registry import list_models

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
    from .weights.registry import WEIGHT_SETS

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
    from .weights.registry import WEIGHT_SETS

    names = names or tuple(WEIGHT_SETS.names())
    if path and len(names) != 1:
        raise click.UsageError("--path needs exactly one NAME")
    for name in names:
        out = WEIGHT_SETS[name].fetch(path=path) if path else WEIGHT_SETS[name].fetch()
        click.echo(f"{name}: {out}")


# `train` is a group whose subcommands live with the trainers (training/commands.py): a new
# recipe adds a subcommand there, not here.
cli.add_command(_train_group, name="train")


# --------------------------------------------------------------------------- results: leaderboard, tables,
# submissions, comparisons, reports, strength sweeps (iretouch_bench.reporting)


def _write_or_echo(text: str, out: str | None) -> None:
    if out:
        from .core.atomic import write_text_atomic

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
    from . import api

    _write_or_echo(api.leaderboard(list(runs), fmt=fmt, with_published=with_published, out_path=out), out)


@cli.command()
@click.option("--paper", is_flag=True, required=True, help="The paper's Tables 1-3 (arXiv 2606.05071v1), as published.")
@click.option("--format", "fmt", default="md", show_default=True, type=click.Choice(["md", "csv", "latex"]))
@click.option("--table", "tables", multiple=True, type=click.IntRange(1, 3), help="Only this table (repeatable).")
def tables(paper, fmt, tables) -> None:
    """Regenerate the paper's tables from leaderboard/published/ (best per column marked)."""
    from . import api

    click.echo(api.paper_tables(fmt=fmt, tables=tuple(tables) or None), nl=False)


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--generated-by", default=None, help="Who ran the model (name or organisation). Required.")
@click.option("--scored-by", default=None, help="Who ran the scoring. Required.")
@click.option("--out", "out_dir", default="leaderboard/submissions", show_default=True,
              type=click.Path(file_okay=False), help="Where the submission file goes.")
def submit(run_dir, generated_by, scored_by, out_dir) -> None:
    """Check RUN_DIR and write a results-only submission file, or list every problem found."""
    from . import api

    path = api.submit(run_dir, out_dir=out_dir, generated_by=generated_by, scored_by=scored_by)
    click.echo(f"accepted: {path}")


@cli.command()
@click.argument("run_a", type=click.Path(file_okay=False))
@click.argument("run_b", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def compare(run_a, run_b, as_json) -> None:
    """Paired difference B - A per metric on the ids both runs share: 95% interval and Wilcoxon test."""
    from . import api

    click.echo(api.compare(run_a, run_b, fmt="json" if as_json else "md"), nl=False)


@cli.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="The HTML file to write.")
@click.option("--thumb-px", default=128, show_default=True, type=click.IntRange(32, 512), help="Thumbnail height.")
@click.option("--full-px", default=768, show_default=True, type=click.IntRange(0, 16384),
              help="Long side of the click-to-enlarge image (embedded, so it sets the file size); 0: full size.")
def report(runs, out, thumb_px, full_px) -> None:
    """One self-contained HTML report of RUNS (run folders or sweep folders) that opens offline."""
    from . import api

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
    from . import api

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


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="iretouch-bench", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(EXIT_USAGE if isinstance(err, click.UsageError) else EXIT_ERROR)
    except BenchError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        click.echo("interrupted; rerun the same command to resume", err=True)
        sys.exit(130)
    except Exception as err:  # one line, not a traceback, unless asked
        if os.environ.get("IRETOUCH_BENCH_DEBUG"):
            raise
        msg = str(err).splitlines()[0] if str(err) else ""
        click.echo(f"error: {type(err).__name__}: {msg} (IRETOUCH_BENCH_DEBUG=1 for the traceback)", err=True)
        sys.exit(EXIT_ERROR)


if __name__ == "__main__":
    main()
