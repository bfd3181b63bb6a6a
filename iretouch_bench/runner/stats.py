"""Statistics a reviewer expects next to a mean: bootstrap confidence intervals and paired tests.

Everything here is deterministic for a given seed: the same records give the same interval on
every machine, and the seed, the number of resamples and the method are recorded beside each
interval so a reader can redo it.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

#: Defaults recorded in every interval (``summary.json``, ``result.json``).
CI_LEVEL = 0.95
CI_ITERATIONS = 2000
CI_SEED = 0
#: The percentile bootstrap (the same definition as scipy.stats.bootstrap's ``percentile`` method,
#: drawn here with numpy so ~100 intervals per summary cost milliseconds): defined for any sample,
#: where BCa is undefined when every value is equal (e.g. SSIM 1.0 for the identity model).
CI_METHOD = "percentile"


def ci_params(level: float = CI_LEVEL, iterations: int = CI_ITERATIONS, seed: int = CI_SEED) -> dict[str, Any]:
    """How an interval was made (stored next to it)."""
    return {"method": f"bootstrap ({CI_METHOD})", "level": level, "iterations": iterations, "seed": seed}


def bootstrap_mean_ci(values: Sequence[float], *, level: float = CI_LEVEL, iterations: int = CI_ITERATIONS,
                      seed: int = CI_SEED) -> dict[str, Any]:
    """Bootstrap confidence interval of the mean of ``values`` (n floats).

    Returns ``{"lo", "hi", "method", "level", "iterations", "seed"}``; ``lo``/``hi`` are null with
    a ``reason`` when fewer than two values exist (an interval of one sample means nothing).
    All-equal values give the degenerate interval ``[v, v]`` (every resample has the same mean).
    """
    x = np.asarray(values, dtype=np.float64)
    out = ci_params(level, iterations, seed)
    if x.size < 2:
        return {"lo": None, "hi": None, **out, "reason": f"n={x.size}: an interval needs at least 2 values"}
    if np.all(x == x[0]):
        v = float(x[0])
        return {"lo": v, "hi": v, **out}
    means = _resample_means(x, iterations, seed)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.percentile(means, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return {"lo": float(lo), "hi": float(hi), **out}


def _resample_means(x: np.ndarray, iterations: int, seed: int) -> np.ndarray:
    """Means of ``iterations`` resamples (with replacement, size n) of ``x``: ``[iterations]``.

    Drawn in chunks of at most ~2M indices so a 10k-sample dataset needs no large array; the
    draws, hence the interval, depend only on (x, iterations, seed)."""
    rng = np.random.default_rng(seed)
    n = x.size
    chunk = max(1, min(iterations, 2_000_000 // n))
    out = np.empty(iterations, dtype=np.float64)
    for start in range(0, iterations, chunk):
        stop = min(iterations, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = x[idx].mean(axis=1)
    return out


def paired_difference(a: Sequence[float], b: Sequence[float], *, level: float = CI_LEVEL,
                      iterations: int = CI_ITERATIONS, seed: int = CI_SEED) -> dict[str, Any]:
    """Paired comparison of two runs on the same samples: ``d_i = b_i - a_i``.

    Returns the mean difference, its bootstrap interval (resampling the pairs), and the Wilcoxon
    signed-rank test (two-sided, zero differences dropped, exact or normal approximation as
    scipy chooses). ``p_value`` is null with a reason where the test is undefined (fewer than two
    pairs, or every difference zero).
    """
    xa = np.asarray(a, dtype=np.float64)
    xb = np.asarray(b, dtype=np.float64)
    if xa.shape != xb.shape:
        raise ValueError(f"paired samples differ in length: {xa.shape} vs {xb.shape}")
    d = xb - xa
    n = int(d.size)
    out: dict[str, Any] = {"n": n, "mean_a": _mean(xa), "mean_b": _mean(xb), "mean_diff": _mean(d),
                           "ci": bootstrap_mean_ci(d, level=level, iterations=iterations, seed=seed),
                           "test": "Wilcoxon signed-rank (two-sided, zero differences dropped)",
                           "p_value": None, "statistic": None}
    nonzero = int(np.count_nonzero(d))
    if n < 2:
        out["p_value_reason"] = f"n={n}: a paired test needs at least 2 pairs"
    elif nonzero == 0:
        out["p_value_reason"] = "every paired difference is zero"
    else:
        from scipy.stats import wilcoxon

        res = wilcoxon(xa, xb, zero_method="wilcox", alternative="two-sided")
        p = float(res.pvalue)
        out["statistic"] = float(res.statistic)
        if math.isfinite(p):
            out["p_value"] = p
        else:
            out["p_value_reason"] = "test undefined for these differences"
    out["n_nonzero"] = nonzero
    return out


def _mean(x: np.ndarray) -> float | None:
    return float(math.fsum(x.tolist()) / x.size) if x.size else None
