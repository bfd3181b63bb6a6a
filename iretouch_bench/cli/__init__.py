"""The ``iretouch-bench`` command: a thin layer over :mod:`iretouch_bench.api`, one module per job:
:mod:`.app` (the group, shared options, :func:`main`), :mod:`.flow` (run, aggregate, score, judge,
latency, protocols), :mod:`.catalog` (data, models, weights), :mod:`.reporting` (leaderboard, tables,
submit, compare, report, sweep); ``train`` comes from :mod:`iretouch_bench.training.commands`.

Every command imports what it needs inside its own function: that keeps ``iretouch-bench --help``
and the cheap commands (``models list``, ``protocols``) from importing torch (about 3 s here).
"""

from ..training.commands import train as _train_group  # click only; each subcommand imports its trainer
from . import catalog, flow, reporting  # noqa: F401  (importing them registers their commands)
from .app import EXIT_ERROR, EXIT_OK, EXIT_SAMPLES_FAILED, EXIT_USAGE, cli, main

cli.add_command(_train_group, name="train")

__all__ = ["cli", "main", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_SAMPLES_FAILED"]
