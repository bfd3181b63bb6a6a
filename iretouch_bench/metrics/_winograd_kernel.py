"""Winograd F(4x4, 3x3) convolution + bias + ReLU for DISTS's VGG16 on CPU (numba transforms, MKL GEMMs).

Why: a 4K DISTS pair is about 10.1 TFLOP of dense 3x3 convolution, and oneDNN's direct float32
convolution already runs near the machine's peak, so the only way to go faster on CPU without
leaving float32 is to do fewer multiplications. Winograd's minimal filtering (Lavin & Gray 2016,
"Fast Algorithms for Convolutional Neural Networks") computes each 4x4 output tile from a 6x6
input tile with 36 element-wise products per channel pair instead of 144, i.e. a quarter of the
multiply-adds; the products over input channels become 36 batched GEMMs ``[tiles, Cin] @ [Cin, Cout]``,
which MKL runs at the GEMM peak. What this costs is float32 rounding in the transforms: about
1e-5 of the activations' scale per layer (direct: about 2e-6), which moves DISTS values by less
than 1e-6 (tests/test_metrics_fidelity.py checks pyiqa 1e-5 and TID2013 to four decimals with
it). oneDNN has a Winograd algorithm only for AVX-512 machines (and deprecated), and torch does
not expose it, hence this module.

Matrices (interpolation points 0, +-1, +-2, infinity), for one channel pair:

    Y = A^T [ (G g G^T) * (B^T d B) ] A,    d: 6x6 input tile, g: 3x3 filter, Y: 4x4 output tile

It is a cross-correlation, the same orientation as ``torch.nn.functional.conv2d``.

Layout: one image, channels-last ``[H, W, C]`` float32 (a row strip of a DISTS map, carrying its
halo rows); the output is ``[H - 2, W, K]``, plus one row for each side that is the true image
border (zero padding there, read as zeros rather than copied); one column of zeros on each side
(as DISTS's ``padding=1``).
"""

from __future__ import annotations

import numpy as np
import torch

try:
    import numba as nb
except Exception:  # pragma: no cover - numba is a declared dependency; dists.py keeps oneDNN's direct path
    nb = None

#: False when numba cannot be imported; :mod:`.dists` then uses the direct convolution.
AVAILABLE = nb is not None

_G = np.array([[1 / 4, 0, 0],
               [-1 / 6, -1 / 6, -1 / 6],
               [-1 / 6, 1 / 6, -1 / 6],
               [1 / 24, 1 / 12, 1 / 6],
               [1 / 24, -1 / 12, 1 / 6],
               [0, 0, 1]], np.float64)

# float32 constants, so numba keeps the transforms in float32 (a Python int would promote to float64)
_2, _4, _5, _8 = np.float32(2), np.float32(4), np.float32(5), np.float32(8)
_ZERO = np.float32(0)


def filter_transform(w: torch.Tensor) -> torch.Tensor:
    """``w [K, C, 3, 3]`` -> ``U [36, C, K]`` float32, ``U[6a + b] = (G w G^T)[a, b]``, computed in
    float64 and rounded once."""
    u = np.einsum("xa,kcab,yb->xyck", _G, w.detach().cpu().double().numpy(), _G)
    return torch.from_numpy(np.ascontiguousarray(u.reshape(36, w.shape[1], w.shape[0]), dtype=np.float32))


if nb is not None:

    @nb.njit(parallel=True, cache=True)
    def _input_transform(x, v, vrow, n_rows, row0, nblk):  # pragma: no cover - compiled
        """``x [H, W, C]`` -> ``v[36, (vrow + i) * Tw + tj, C] = (B^T d B)`` for ``i < n_rows``, where
        that tile reads rows ``row0 + 4i .. row0 + 4i + 5`` (all inside ``x``) and columns
        ``4tj-1 .. 4tj+4`` (outside ``[0, W)`` reads zero). Threads take ``nblk`` blocks of tiles (a
        chunk may be a single tile row; passed in because reading numba's thread count inside a
        compiled function stops it from being cached on disk)."""
        _, W, C = x.shape
        Tw = (W + 3) // 4
        n = n_rows * Tw
        nblk = min(n, nblk)
        for blk in nb.prange(nblk):
            tmp = np.empty((6, 6, C), np.float32)
            for q in range(blk * n // nblk, (blk + 1) * n // nblk):
                i = q // Tw
                tj = q - i * Tw
                r = row0 + 4 * i
                t = vrow * Tw + q
                # rows: tmp[:, b] = B^T d[:, b]
                for b in range(6):
                    col = 4 * tj + b - 1
                    if col < 0 or col >= W:
                        for a in range(6):
                            for c in range(C):
                                tmp[a, b, c] = _ZERO
                        continue
                    for c in range(C):
                        d0 = x[r, col, c]
                        d1 = x[r + 1, col, c]
                        d2 = x[r + 2, col, c]
                        d3 = x[r + 3, col, c]
                        d4 = x[r + 4, col, c]
                        d5 = x[r + 5, col, c]
                        tmp[0, b, c] = _4 * d0 - _5 * d2 + d4
                        tmp[1, b, c] = d3 + d4 - _4 * (d1 + d2)
                        tmp[2, b, c] = _4 * (d1 - d2) - d3 + d4
                        tmp[3, b, c] = _2 * (d3 - d1) - d2 + d4
                        tmp[4, b, c] = _2 * (d1 - d3) - d2 + d4
                        tmp[5, b, c] = _4 * d1 - _5 * d3 + d5
                # columns: v[6a + nu] = tmp[a] B[:, nu]
                for a in range(6):
                    for c in range(C):
                        d0 = tmp[a, 0, c]
                        d1 = tmp[a, 1, c]
                        d2 = tmp[a, 2, c]
                        d3 = tmp[a, 3, c]
                        d4 = tmp[a, 4, c]
                        d5 = tmp[a, 5, c]
                        v[6 * a, t, c] = _4 * d0 - _5 * d2 + d4
                        v[6 * a + 1, t, c] = d3 + d4 - _4 * (d1 + d2)
                        v[6 * a + 2, t, c] = _4 * (d1 - d2) - d3 + d4
                        v[6 * a + 3, t, c] = _2 * (d3 - d1) - d2 + d4
                        v[6 * a + 4, t, c] = _2 * (d1 - d3) - d2 + d4
                        v[6 * a + 5, t, c] = _4 * d1 - _5 * d3 + d5

    @nb.njit(parallel=True, cache=True)
    def _output_transform(m, bias, out, ti0, n_rows, nblk):  # pragma: no cover - compiled
        """``m [36, n_rows * Tw, K]`` (tile rows ``ti0 ..``) -> ``out[4ti + i, 4tj + j, k] =
        relu((A^T m A)[i, j] + bias[k])`` for the rows and columns inside ``out [Ho, Wo, K]``."""
        Ho, Wo, K = out.shape
        Tw = (Wo + 3) // 4
        n = n_rows * Tw
        nblk = min(n, nblk)
        for blk in nb.prange(nblk):
            tmp = np.empty((4, 6, K), np.float32)
            row = np.empty((4, K), np.float32)
            for t in range(blk * n // nblk, (blk + 1) * n // nblk):
                ti = ti0 + t // Tw
                tj = t - (t // Tw) * Tw
                # rows: tmp[:, b] = A^T m[:, b]
                for b in range(6):
                    for k in range(K):
                        m0 = m[b, t, k]
                        m1 = m[6 + b, t, k]
                        m2 = m[12 + b, t, k]
                        m3 = m[18 + b, t, k]
                        m4 = m[24 + b, t, k]
                        m5 = m[30 + b, t, k]
                        tmp[0, b, k] = m0 + m1 + m2 + m3 + m4
                        tmp[1, b, k] = m1 - m2 + _2 * (m3 - m4)
                        tmp[2, b, k] = m1 + m2 + _4 * (m3 + m4)
                        tmp[3, b, k] = m1 - m2 + _8 * (m3 - m4) + m5
                # columns (A^T on the right), then bias and ReLU into the tile's columns inside out
                for i in range(4):
                    r = 4 * ti + i
                    if r >= Ho:
                        break
                    for k in range(K):
                        m0 = tmp[i, 0, k]
                        m1 = tmp[i, 1, k]
                        m2 = tmp[i, 2, k]
                        m3 = tmp[i, 3, k]
                        m4 = tmp[i, 4, k]
                        m5 = tmp[i, 5, k]
                        row[0, k] = m0 + m1 + m2 + m3 + m4
                        row[1, k] = m1 - m2 + _2 * (m3 - m4)
                        row[2, k] = m1 + m2 + _4 * (m3 + m4)
                        row[3, k] = m1 - m2 + _8 * (m3 - m4) + m5
                    for j in range(min(4, Wo - 4 * tj)):  # the last tile of a row may be partial
                        for k in range(K):
                            out[r, 4 * tj + j, k] = max(row[j, k] + bias[k], _ZERO)


class Workspace:
    """Reused float32 buffers for the transformed tiles and the GEMM products.

    Fresh multi-hundred-MB allocations are handed back to the OS on free, so each one costs
    page faults on first touch (measured: a third of a layer's time at 64 channels); one pair's
    layers reuse the same two buffers instead. Not thread-safe: one per caller."""

    def __init__(self) -> None:
        self._bufs: dict[str, torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        n = int(np.prod(shape))
        buf = self._bufs.get(name)
        if buf is None or buf.numel() < n:
            self._bufs.pop(name, None)
            buf = self._bufs[name] = torch.empty(n, dtype=torch.float32)
        return buf[:n].view(shape)


def conv3x3_relu(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor, ws: Workspace | None = None,
                 pad_top: bool = False, pad_bottom: bool = False) -> torch.Tensor:
    """ReLU(conv3x3(x) + bias) by Winograd F(4x4, 3x3).

    Args:
        x: ``[1, C, H, W]`` float32, channels-last: rows are used as they are (the strip's halo)
            plus a zero row above / below where ``pad_top`` / ``pad_bottom`` (the true image
            border; read as zeros, never copied); columns get one zero on each side.
        u: ``[36, C, K]`` from :func:`filter_transform`.
        bias: ``[K]`` float32.
        ws: buffers to reuse across calls (a fresh one if None).

    Returns:
        ``[1, K, H - 2 + pad_top + pad_bottom, W]`` float32, channels-last.
    """
    if not AVAILABLE:  # pragma: no cover
        raise RuntimeError("numba is not available")
    _, C, H, W = x.shape
    K = u.shape[2]
    pt = int(pad_top)
    Ho, Wo = H - 2 + pt + int(pad_bottom), W
    if Ho < 1:
        raise ValueError(f"{H} rows (+{pt + int(pad_bottom)} zero rows) are too few for a 3x3 convolution")
    Th, Tw = (Ho + 3) // 4, (Wo + 3) // 4
    ws = ws or Workspace()
    xs = x.permute(0, 2, 3, 1)[0]
    if not xs.is_contiguous():
        xs = xs.contiguous()
    # tile row ti reads rows 4ti - pt .. 4ti - pt + 5 of x: those wholly inside x are transformed in
    # place, the (at most one or two) at the top and bottom from a zero-extended 6-row copy
    lo = pt  # first tile row whose first row is >= 0
    hi = min(Th, (H - 6 + pt) // 4 + 1) if H >= 6 - pt else lo  # one past the last wholly inside
    out = torch.empty((1, K, Ho, Wo), dtype=torch.float32, memory_format=torch.channels_last)
    xn, on, bn = xs.numpy(), out.permute(0, 2, 3, 1)[0].numpy(), bias.numpy()
    step = chunk_rows(Tw, C, K)
    nblk = 4 * nb.get_num_threads()
    for c0 in range(0, Th, step):
        c1 = min(Th, c0 + step)
        v = ws.get("v", (36, (c1 - c0) * Tw, C))
        a, b = max(c0, lo), min(c1, hi)
        if b > a:
            _input_transform(xn, v.numpy(), a - c0, b - a, 4 * a - pt, nblk)
        for ti in [t for t in range(c0, c1) if not lo <= t < hi]:
            r0 = 4 * ti - pt
            edge = torch.zeros((6, W, C), dtype=torch.float32)
            ra, rb = max(r0, 0), min(r0 + 6, H)
            if rb > ra:
                edge[ra - r0 : rb - r0] = xs[ra:rb]
            _input_transform(edge.numpy(), v.numpy(), ti - c0, 1, 0, nblk)
        m = ws.get("m", (36, (c1 - c0) * Tw, K))
        torch.bmm(v, u, out=m)
        _output_transform(m.numpy(), bn, on, c0, c1 - c0, nblk)
    return out


#: bytes of transformed tiles and products per chunk: chunks this size stay in the last-level
#: cache between the transforms and the GEMM for thin layers (64-128 channels, where memory
#: traffic, not arithmetic, bounds the layer)
CHUNK_BYTES = 12 << 20


def chunk_rows(Tw: int, C: int, K: int) -> int:
    """Tile rows per chunk: about :data:`CHUNK_BYTES` of ``v`` and ``m``, but at least enough that
    the GEMMs' re-reading of the transformed weights (``36 C K`` floats per chunk) stays a small
    share of the traffic."""
    per_row = 36 * Tw * (C + K) * 4
    target = max(CHUNK_BYTES, 8 * 36 * C * K * 4)
    return max(1, target // per_row)
