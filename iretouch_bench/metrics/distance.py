"""Output-vs-target distances: ``l1`` (mean absolute error) and ``l2`` (mean squared error).

Both on RGB in [0, 1], averaged over all pixels and channels (DESIGN.md: L2 = MSE).
"""

from __future__ import annotations

import numpy as np


def _check(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("NaN or infinite values in input")


def l1(output: np.ndarray, target: np.ndarray) -> float:
    """Mean |output - target| over ``[H, W, 3]`` arrays in [0, 1]."""
    _check(output, target)
    return float(np.mean(np.abs(output.astype(np.float64) - target.astype(np.float64))))


def l2(output: np.ndarray, target: np.ndarray) -> float:
    """Mean (output - target)^2 over ``[H, W, 3]`` arrays in [0, 1]."""
    _check(output, target)
    d = output.astype(np.float64) - target.astype(np.float64)
    return float(np.mean(d * d))
