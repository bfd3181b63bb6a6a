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

from .core.images import read_image, write_image
from .metrics.keys import SAMPLE_KEYS
from .reporting.run_table import write_run_table
from .runner import run as _run
from .runner.config import RunConfig
from .runner.run import RunResult
from .runner.scoring import PairScores

__all__ = [
    "RunConfig", "RunResult", "aggregate", "estimate_judge_cost", "load_dataset", "load_model",
    "read_image", "run_benchmark", "score_files", "score_pair", "slice_apply", "write_image",
]


def run_benchmark(config: RunConfig, progress: bool = True, log=print) -> RunResult:
    """Generate, score and aggregate ``config``'s run; writes and returns its table too."""
    return _with_table(_run.run_benchmark(config, progress=progress, log=log))


def aggregate(run_dir: str | Path) -> RunResult:
    """Recompute ``summary.json`` and ``table.md`` of a run folder (for example after its shards finished)."""
    return _with_table(_run.aggregate(Path(run_dir)))


def _with_table(result: RunResult) -> RunResult:
    result.table = write_run_table(result.run_dir, result.summary)
    return result


def load_dataset(spec: str = "embedded", **options):
    """A :class:`~iretouch_bench.datasets.Dataset` (``embedded``, ``iretouch:PATH``, ``ppr10k:PATH``, ``hf:PATH``)."""
    from .datasets import load_dataset as _load

    return _load(spec, **options)


def load_model(name: str, device: str = "cpu", weights: str | None = None, **options):
    """A loaded :class:`~iretouch_bench.adapters.registry.RetouchModel` from the registry."""
    from .adapters.registry import create_model

    model = create_model(name, device=device, weights=weights, **options)
    model.ensure_loaded()
    return model


def score_pair(input_rgb: np.ndarray, output_rgb: np.ndarray, *, target: np.ndarray | None = None,
               instruction: str | None = None, mask: np.ndarray | None = None, identity: bool = False,
               device: str = "cpu", face_weights: str | None = None,
               metrics: tuple[str, ...] = SAMPLE_KEYS) -> PairScores:
    """Every local metric for one pair (float32 ``[H, W, 3]`` in [0, 1]); see :func:`runner.scoring.score_pair`."""
    from .runner.scoring import score_pair as _score

    return _score(input_rgb, output_rgb, target_rgb=target, instruction=instruction, mask=mask,
                  identity=identity, device=device, face_weights=face_weights, metrics=metrics)


def score_files(input: str | Path, output: str | Path, *, target: str | Path | None = None,
                instruction: str | None = None, identity: bool = False, device: str = "cpu",
                face_weights: str | None = None, metrics: tuple[str, ...] = SAMPLE_KEYS) -> PairScores:
    """:func:`score_pair` on image files."""
    return score_pair(read_image(input), read_image(output),
                      target=None if target is None else read_image(target),
                      instruction=instruction, identity=identity, device=device, face_weights=face_weights,
                      metrics=metrics)


def slice_apply(grid, guide, image, strength: float = 1.0):
    """Slice a bilateral grid ``[B, 12, D, Hg, Wg]`` with ``guide`` ``[B, H, W]`` and apply it to
    ``image`` ``[B, 3, H, W]`` (DESIGN.md convention). See :mod:`iretouch_bench.models.bilateral`."""
    from .models.bilateral import slice_apply as _slice_apply

    return _slice_apply(grid, guide, image, strength=strength)


def estimate_judge_cost(config: RunConfig) -> dict:
    """How many judge calls ``config`` needs and roughly what they cost (``run --dry-run``)."""
    from .datasets import load_dataset as _load
    from .runner.run import make_run_judge, select_samples

    ds = _load(config.dataset, expert=config.expert, split=config.split)
    n = len(select_samples(ds.samples, config.limit, config.shard))
    judge = make_run_judge(config)
    est = judge.estimate(n)
    return {"dataset": ds.name, "n_samples": n, "judge": config.judge, **est}
