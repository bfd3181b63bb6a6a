"""The one timer of the suite: wall and CPU time of repeated calls.

Used by ``iretouch-bench latency`` (end-to-end model latency) and by every script in
``benchmarks/``, so a latency figure and a benchmark ratio are measured the same way.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable


def time_calls(fn: Callable[[], object], repeats: int, warmup: int = 0,
               sync: Callable[[], None] | None = None) -> dict:
    """Time ``repeats`` calls of ``fn`` after ``warmup`` untimed ones.

    ``sync`` (for example ``torch.cuda.synchronize``) runs before the clock starts and
    before it stops, so asynchronous device work is inside the measured interval.

    Returns ``{"wall_s": [...], "cpu_s": [...], "wall_median_s", "wall_min_s",
    "cpu_median_s"}`` (seconds). CPU time is the whole process's (all threads): CPU / wall
    shows how many cores a call used.
    """
    sync = sync or (lambda: None)
    for _ in range(warmup):
        fn()
        sync()
    walls, cpus = [], []
    for _ in range(repeats):
        sync()
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        sync()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return {"wall_s": walls, "cpu_s": cpus,
            "wall_median_s": statistics.median(walls) if walls else None,
            "wall_min_s": min(walls) if walls else None,
            "cpu_median_s": statistics.median(cpus) if cpus else None}
