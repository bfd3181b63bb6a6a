"""The one timer the benchmarks share: wall and CPU time of repeated calls.

Benchmarks are run as scripts (``python benchmarks/bench_X.py``), so this folder is on
``sys.path`` and ``from timing import time_calls`` works.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable


def time_calls(fn: Callable[[], object], repeats: int, warmup: int = 0) -> dict[str, float]:
    """``{"wall_median_s", "wall_min_s", "cpu_median_s"}`` over ``repeats`` calls after ``warmup``.

    CPU time is the whole process's (all threads): CPU / wall shows how many cores a call used.
    """
    for _ in range(warmup):
        fn()
    walls, cpus = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return {"wall_median_s": statistics.median(walls), "wall_min_s": min(walls),
            "cpu_median_s": statistics.median(cpus)}
