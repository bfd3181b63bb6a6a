"""The ``iretouch-bench`` click group, the options and parsers its commands share, and :func:`main`
(one-line errors, exit codes).

Errors print one line (``error: <file>: <problem>``) and exit non-zero; set
``IRETOUCH_BENCH_DEBUG=1`` for the traceback.

Every command imports what it needs inside its own function: that keeps ``iretouch-bench --help``
and the cheap commands (``models list``, ``protocols``) from importing torch (about 3 s here).
"""

from __future__ import annotations

import os
import sys

import click

from ..core.errors import BenchError

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
    from ..runner.config import parse_model_args

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
    from ..metrics.keys import select_metrics

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

