"""Fused CPU GMSD for 8-bit-valued gray images (numba): one pass to 2x2 block sums, one pass
to the similarity map's sum and sum of squares, never materialising a float64 image.

Why a kernel: the torch path (:func:`.gmsd._gmsd_torch`) makes about ten float64 temporaries
of a 4K image and measured 0.23 s at 3840x2160, for about 50 MFLOP of work; this kernel does
the same arithmetic in about a tenth of that (``benchmarks/bench_fidelity.py`` prints the ratio).

Exactness. The protocol's inputs are 8-bit levels ``L = round(255 x)``. With ``S`` the 2x2 block
sum of ``L`` (an integer), the average-pooled image is ``S/4`` and the Prewitt responses are
``D/12`` with ``D`` an integer sum of six block sums (at most 3060 in magnitude); so
``g1 g2 = sqrt(A1 A2)/144`` and ``g^2 = A/144`` with ``A = Dx^2 + Dy^2`` an exact integer, and

    q = (2 sqrt(A1 A2) + 144 T) / (A1 + A2 + 144 T)

is the paper's similarity with every step but the square root and the division exact. The
rounding ``round(255 x)`` is done in float32 then half-to-even, as :func:`.ssim.to_luma255`
does, so the levels are the torch path's levels. Per-row sums are float64 and added in row
order, so the result does not depend on the number of threads. Agreement with the torch
path: about 1e-15 (tests/test_metrics_fidelity.py).
"""

from __future__ import annotations

import numpy as np

try:
    import numba as nb
except Exception:  # pragma: no cover - numba is a declared dependency; the torch path serves without it
    nb = None

#: False when numba cannot be imported here; :func:`.gmsd.gmsd` then runs its torch path (same values).
AVAILABLE = nb is not None


if nb is not None:

    @nb.njit(parallel=True, cache=True)
    def _block_sums(img: np.ndarray, out: np.ndarray) -> int:  # pragma: no cover - compiled
        """``img`` float32 ``[H, W]`` in [0, 1] -> the interior of ``out`` int32 ``[H//2 + 2, W//2 + 2]``
        (a zero border: MATLAB ``conv2(.., 'same')`` padding): 2x2 sums of round(255 x).

        Returns how many NaN or infinite values it met (the caller refuses the pair), so the input
        is read once instead of a separate ``isfinite`` pass."""
        h2, w2 = out.shape[0] - 2, out.shape[1] - 2
        k = np.float32(255.0)
        bad = 0
        for i in nb.prange(h2):
            r0 = img[2 * i]
            r1 = img[2 * i + 1]
            o = out[i + 1]
            for j in range(w2):
                p, q, r, t = r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]
                if not (np.isfinite(p) and np.isfinite(q) and np.isfinite(r) and np.isfinite(t)):
                    bad += 1
                    o[j + 1] = 0
                else:
                    o[j + 1] = np.int32(np.rint(p * k) + np.rint(q * k) + np.rint(r * k) + np.rint(t * k))
        return bad

    @nb.njit(parallel=True, cache=True, fastmath={"contract"})
    def _q_row_sums(s1: np.ndarray, s2: np.ndarray, c: float, row_sum: np.ndarray,
                    row_sq: np.ndarray) -> None:  # pragma: no cover - compiled
        """Per row ``i`` of the pooled images (zero-bordered block sums ``s1``, ``s2``): the sum of
        ``q - 1`` and of ``(q - 1)^2`` (``c = 144 T``). Prewitt is separable: a vertical sum ``v`` and
        difference ``h`` per column, then a horizontal difference / sum. Shifting by 1 (q is in
        (0, 1]) keeps the sum of squares far from cancellation."""
        h2, w2 = s1.shape[0] - 2, s1.shape[1] - 2
        for i in nb.prange(h2):
            v1 = np.empty(w2 + 2, np.int32)
            h1 = np.empty(w2 + 2, np.int32)
            v2 = np.empty(w2 + 2, np.int32)
            h2_ = np.empty(w2 + 2, np.int32)
            a, b, d = s1[i], s1[i + 1], s1[i + 2]
            e, f, g = s2[i], s2[i + 1], s2[i + 2]
            for j in range(w2 + 2):
                v1[j] = a[j] + b[j] + d[j]
                h1[j] = a[j] - d[j]
                v2[j] = e[j] + f[j] + g[j]
                h2_[j] = e[j] - g[j]
            acc = 0.0
            acc2 = 0.0
            for j in range(w2):
                dx1 = np.float64(v1[j] - v1[j + 2])
                dy1 = np.float64(h1[j] + h1[j + 1] + h1[j + 2])
                dx2 = np.float64(v2[j] - v2[j + 2])
                dy2 = np.float64(h2_[j] + h2_[j + 1] + h2_[j + 2])
                a1 = dx1 * dx1 + dy1 * dy1
                a2 = dx2 * dx2 + dy2 * dy2
                q = (2.0 * np.sqrt(a1 * a2) + c) / (a1 + a2 + c) - 1.0
                acc += q
                acc2 += q * q
            row_sum[i] = acc
            row_sq[i] = acc2


def gmsd_gray(x: np.ndarray, y: np.ndarray, t: float) -> float:
    """GMSD of one pair of gray images (float32 ``[H, W]`` in [0, 1], H, W >= 2; ``t`` = T).

    Returns the sample standard deviation (divisor N-1) of the similarity map, float64.

    Raises:
        ValueError: NaN or infinite values (checked in the same pass; the odd last row or column
            that pooling drops is checked too)."""
    if nb is None:  # pragma: no cover
        raise RuntimeError("numba is not available")
    h2, w2 = x.shape[0] // 2, x.shape[1] // 2
    s1 = np.zeros((h2 + 2, w2 + 2), np.int32)
    s2 = np.zeros((h2 + 2, w2 + 2), np.int32)
    bad = _block_sums(np.ascontiguousarray(x, dtype=np.float32), s1)
    bad += _block_sums(np.ascontiguousarray(y, dtype=np.float32), s2)
    if bad or (x.shape[0] % 2 and not np.isfinite(x[-1]).all()) or (x.shape[1] % 2 and not np.isfinite(x[:, -1]).all()) \
            or (y.shape[0] % 2 and not np.isfinite(y[-1]).all()) or (y.shape[1] % 2 and not np.isfinite(y[:, -1]).all()):
        raise ValueError("NaN or infinite values in GMSD input")
    row_sum = np.empty(h2, np.float64)
    row_sq = np.empty(h2, np.float64)
    _q_row_sums(s1, s2, 144.0 * t, row_sum, row_sq)
    n = h2 * w2
    total = 0.0
    total_sq = 0.0
    for i in range(h2):  # row order: the same sum for any thread count
        total += row_sum[i]
        total_sq += row_sq[i]
    var = (total_sq - total * total / n) / (n - 1) if n > 1 else float("nan")
    return float(np.sqrt(max(var, 0.0)))
