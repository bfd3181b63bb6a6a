"""The notebook facade: the few functions a user needs, each a thin call into the suite.

    >>> from iretouch_bench import api
    >>> ds = api.load_dataset("embedded")
    >>> model = api.load_model("ours")
    >>> out = model.retouch(ds.samples[0].load_input(), ds.samples[0].instruction)
    >>> api.score_pair(ds.samples[0].load_input(), out, target=ds.samples[0].load_target()).values
    >>> result = api.run_benchmark(api.RunConfig(model="identity", limit=5))

The CLI calls these same functions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .adapters.registry import create_model
from .core.images import read_image, write_image
from .datasets import load_dataset as _load_dataset
from .metrics.keys import SAMPLE_KEYS
from .reporting.run_table import write_run_table
from .runner import run as _run
from .runner.config import RunConfig
from .runner.run import RunResult
from .runner.scoring import PairScores, score_pair as _score_pair

__all__ = [
    "RunConfig", "RunResult", "aggregate", "estimate_judge_cost", "estimate_run_cost", "load_dataset", "load_model",
    "read_image", "run_benchmark", "score_files", "score_pair", "slice_apply", "write_image",
]


def run_benchmark(config: RunConfig, progress: bool = True, log=print) -> RunResult:
    """Generate, score and aggregate ``config``'s run; writes and returns its table too."""
    return _with_table(_run.run_benchmark(config, progress=progress, log=log))


def aggregate(run_dir: str | Path, partial: bool = False) -> RunResult:
    """Recompute ``summary.json`` and ``table.md`` of a run folder (for example after its shards finished;
    a sharded run with shards missing or running is refused unless ``partial``)."""
    return _with_table(_run.aggregate(Path(run_dir), partial=partial))


def _with_table(result: RunResult) -> RunResult:
    result.table = write_run_table(result.run_dir, result.summary)
    return result


def load_dataset(spec: str = "embedded", **options):
    """A :class:`~iretouch_bench.datasets.Dataset` (``embedded``, ``iretouch:PATH``, ``ppr10k:PATH``, ``hf:PATH``)."""
    return _load_dataset(spec, **options)


def load_model(name: str, device: str = "cpu", weights: str | None = None, **options):
    """A loaded :class:`~iretouch_bench.adapters.registry.RetouchModel` from the registry."""
    model = create_model(name, device=device, weights=weights, **options)
    model.ensure_loaded()
    return model


def score_pair(input_rgb: np.ndarray, output_rgb: np.ndarray, *, target: np.ndarray | None = None,
               instruction: str | None = None, mask: np.ndarray | None = None, identity: bool = False,
               device: str = "cpu", face_weights: str | None = None,
               metrics: tuple[str, ...] = SAMPLE_KEYS, **options) -> PairScores:
    """Every local metric for one pair (float32 ``[H, W, 3]`` in [0, 1]); see :func:`runner.scoring.score_pair`
    (``options``: ``protocol``, ``face_margin``, ``face_choice``)."""
    return _score_pair(input_rgb, output_rgb, target_rgb=target, instruction=instruction, mask=mask,
                  identity=identity, device=device, face_weights=face_weights, metrics=metrics, **options)


def score_files(input: str | Path, output: str | Path, *, target: str | Path | None = None,
                instruction: str | None = None, identity: bool = False, device: str = "cpu",
                face_weights: str | None = None, metrics: tuple[str, ...] = SAMPLE_KEYS, **options) -> PairScores:
    """:func:`score_pair` on image files."""
    return score_pair(read_image(input), read_image(output),
                      target=None if target is None else read_image(target),
                      instruction=instruction, identity=identity, device=device, face_weights=face_weights,
                      metrics=metrics, **options)


def judge_run(run_dir: str | Path, spec: str | None = None, progress: bool = True, log=print, **judge_options):
    """The judge stage on a finished run (``iretouch-bench judge``), then its summary and table;
    returns ``(JudgeStageResult, RunResult)``. See :mod:`iretouch_bench.runner.judge_stage`."""
    from .runner.judge_stage import judge_run as _judge_run

    stage = _judge_run(run_dir, spec, progress=progress, log=log, **judge_options)
    return stage, aggregate(run_dir)


def slice_apply(grid, guide, image, strength: float = 1.0):
    """Slice a bilateral grid ``[B, 12, D, Hg, Wg]`` with ``guide`` ``[B, H, W]`` and apply it to
    ``image`` ``[B, 3, H, W]`` (DESIGN.md convention). See :mod:`iretouch_bench.models.slicing`."""
    # lazy, and the one place the facade reaches into a backend: the harness never imports models/
    from .models.slicing import slice_apply as _slice_apply

    return _slice_apply(grid, guide, image, strength=strength)


def estimate_judge_cost(config: RunConfig) -> dict:
    """How many judge calls ``config`` needs and roughly what they cost (``run --dry-run``)."""
    ds = _load_dataset(config.dataset, expert=config.expert, split=config.split)
    n = len(_run.select_samples(ds.samples, config.limit, config.shard))
    judge = _run.make_run_judge(config)
    est = judge.estimate(n)
    return {"dataset": ds.name, "n_samples": n, "judge": config.judge, **est}


def estimate_run_cost(config: RunConfig) -> dict:
    """``run --dry-run``: the judge's calls and cost (top-level keys, as :func:`estimate_judge_cost`)
    and under ``"model"`` the model calls still needed (outputs cached or already in the run
    folder excluded) and their rough cost in USD."""
    return {**estimate_judge_cost(config), "model": _run.estimate_model_cost(config)}


# --------------------------------------------------------------------------- results (reporting layer)


def leaderboard(runs: list[str | Path], fmt: str = "md", with_published: bool = False,
                out_path: str | Path | None = None) -> str:
    """The leaderboard of run folders / result files (none: the shipped submissions + published rows)."""
    from .reporting.leaderboard import build_boards, render

    return render(build_boards(list(runs), with_published=with_published), fmt, out_path=out_path)


def paper_tables(fmt: str = "md", tables: tuple[int, ...] | None = None) -> str:
    """The paper's Tables 1-3 as published (``md``, ``csv`` or ``latex``)."""
    from .reporting.paper_tables import render_paper_tables

    return render_paper_tables(fmt, tables)


def submit(run_dir: str | Path, out_dir: str | Path = "leaderboard/submissions", generated_by: str | None = None,
           scored_by: str | None = None) -> Path:
    """Check a run folder and write its submission file (raises listing every problem)."""
    from .reporting.submit import submit as _submit

    return _submit(run_dir, out_dir, generated_by, scored_by)


def compare(run_a: str | Path, run_b: str | Path, fmt: str = "md") -> str:
    """Paired per-metric differences of two runs on their shared ids (``md`` or ``json``)."""
    from .reporting.compare import compare_runs, render_compare

    return render_compare(compare_runs(run_a, run_b), fmt)


def report(runs: list[str | Path], out: str | Path, **options) -> Path:
    """A self-contained HTML report of run folders and sweep folders."""
    from .reporting.report import write_report

    return write_report([Path(r) for r in runs], Path(out), **options)


def sweep(model: str, strengths: tuple[float, ...], *, dataset: str = "embedded", judge: str = "offline",
          limit: int | None = None, out: str | Path | None = None, device: str = "cpu", weights: str | None = None,
          metrics: tuple[str, ...] = SAMPLE_KEYS, progress: bool = True, log=print) -> tuple[Path, str]:
    """Run ``model`` at each strength, one run folder each under the sweep folder (rerunning
    resumes every one), write ``sweep.json`` and return (folder, fidelity-vs-instruction table)."""
    from .adapters.registry import get_model_class
    from .core.atomic import write_json_atomic
    from .core.errors import BenchError
    from .reporting.sweep import SWEEP_FILE, render_sweep_table, strength_dir

    if not getattr(get_model_class(model), "supports_strength", False):
        raise BenchError(f"model {model!r} does not honour a strength (supports_strength is false); nothing to sweep")
    folder = Path(out) if out else Path("runs") / f"sweep-{model}__{dataset.replace(':', '_').replace('/', '_')}"
    runs = []
    for s in strengths:
        run_dir = folder / strength_dir(s)
        cfg = RunConfig(model=model, dataset=dataset, judge=judge, limit=limit, out=str(run_dir), device=device,
                        weights=weights, strength=float(s), metrics=metrics)
        log(f"sweep {model}: strength {s:g} -> {run_dir}")
        run_benchmark(cfg, progress=progress, log=log)
        runs.append({"strength": float(s), "run": strength_dir(s)})
    write_json_atomic(folder / SWEEP_FILE, {"kind": "sweep", "model": model, "dataset": dataset, "runs": runs})
    return folder, render_sweep_table(folder)
