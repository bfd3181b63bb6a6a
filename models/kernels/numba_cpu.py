"""Fused CPU slice-and-apply (numba): one pass over the pixels, never materialising the
per-pixel coefficients. Agrees with :mod:`.reference` to ~1e-6 (tests/test_bilateral.py).

Why numba rather than a torch C++ extension compiled at first use: numba is a well-kept JIT
whose compile of this kernel takes about a second and is cached on disk (``cache=True``), and
needs no compiler toolchain on the user's machine, whereas a torch C++ extension needs gcc +
ninja + the torch headers and costs tens of seconds of compile on a fresh CI machine. Only FMA
contraction is enabled (``fastmath={'contract'}``): IEEE semantics otherwise.

numba is a declared dependency; when it cannot be imported (or ``IRETOUCH_BENCH_NO_NUMBA`` is
set, to debug the fallback) :data:`UNAVAILABLE_REASON` says why, :data:`nb` is None and the
dispatch (:mod:`..slicing`) runs the reference instead, says so once, and records it.

Array arguments of :func:`run` (numpy only; the dispatch converts torch tensors):

* ``gt``: float32 ``[B, Hg, Wg, D, 12]`` -- the grid re-laid so that a cell's 12
  coefficients are contiguous (see :func:`..slicing.grid_for_kernel`);
* ``image`` / ``out``: float32 ``[B, 3, H, W]``, any strides (an ``[H, W, 3]`` array is passed
  as a transposed view, so the suite's layout needs no copy);
* ``guide``: float32 ``[B, H, W]`` in [0, 1], or instead ``curve = (gcoef [3, K-1], thr [K-1],
  base [1])``: the guidance map in ReLU form (:func:`..guidance.guidance_relu_form`),
  evaluated inside the kernel;
* ``smap``: optional float32 ``[B, H, W]`` per-pixel strength multiplier; ``s``: strength.
"""

from __future__ import annotations

import math
import os
from typing import Optional

import numpy as np

__all__ = ["nb", "UNAVAILABLE_REASON", "unavailable_reason", "run"]

UNAVAILABLE_REASON: Optional[str] = None
try:
    import numba as nb
except Exception as err:  # pragma: no cover - exercised only without numba (tests simulate it)
    nb = None
    UNAVAILABLE_REASON = f"numba unavailable ({type(err).__name__}: {err})"
if nb is not None and os.environ.get("IRETOUCH_BENCH_NO_NUMBA"):  # escape hatch for debugging the fallback
    nb = None
    UNAVAILABLE_REASON = "numba disabled by IRETOUCH_BENCH_NO_NUMBA"


def unavailable_reason() -> Optional[str]:
    """None when the kernels can run here, else why not (one line)."""
    return UNAVAILABLE_REASON


if nb is not None:
    _f32 = np.float32
    _u64 = np.uint64

    # fastmath: only 'contract' (fused multiply-add) is allowed. It keeps IEEE semantics (no
    # reassociation, no NaN/inf assumptions), rounds once instead of twice, and measured ~15%
    # faster; results stay within ~1e-6 of the grid_sample reference.
    _FM = {"contract"}

    @nb.njit(cache=True, fastmath=_FM)
    def _column_table(W, Wg, D):
        """Per-column x corners (flat offsets into a row buffer, difference to the next corner)
        and weights. Mirrors grid_sample's unnormalise ``((g+1)*size-1)/2`` and border clip, in
        float32."""
        one = _f32(1.0)
        xs0 = np.empty(W, np.int64)
        xsd = np.empty(W, np.uint64)
        wxs = np.empty(W, np.float32)
        for x in range(W):
            gx = (_f32(x) + _f32(0.5)) / _f32(W) * _f32(2.0) - one
            ix = ((gx + one) * _f32(Wg) - one) / _f32(2.0)
            if not (ix > _f32(0.0)):
                ix = _f32(0.0)
            if ix > _f32(Wg - 1):
                ix = _f32(Wg - 1)
            x0 = int(math.floor(ix))
            xs0[x] = x0 * D * 12
            xsd[x] = _u64((min(x0 + 1, Wg - 1) - x0) * D * 12)
            wxs[x] = ix - _f32(x0)
        return xs0, xsd, wxs

    @nb.njit(cache=True, fastmath=_FM, inline="always")
    def _process_row(r, gt, xs0, xsd, wxs, guide, gcoef, thr, base, image, out, smap, s, lo, hi,
                     USE_GUIDE, USE_SMAP):
        """Slice-and-apply one image row ``r`` (flat over batch*height), in three passes over
        the row: (1) the guide values (given, or the fused guidance curve), (2) per-pixel depth
        corners/weights, both vectorised over x; (3) the gather-and-apply loop, left with only
        the 48 coefficient loads and the arithmetic (measured 1.5x faster than one fused loop).

        ``USE_GUIDE``/``USE_SMAP`` are literal booleans at every call site, so after inlining
        LLVM drops the dead branch (a runtime flag measured 2x slower). Offsets into the row
        buffer are unsigned where used as indices: numba emits a negative-index wraparound check
        for signed indices, which blocks vectorisation (measured 2x slower).
        """
        Hg = gt.shape[1]
        Wg = gt.shape[2]
        D = gt.shape[3]
        H = image.shape[2]
        W = image.shape[3]
        one = _f32(1.0)
        two = _f32(2.0)
        zero = _f32(0.0)
        b = r // H
        y = r - b * H
        gy = (_f32(y) + _f32(0.5)) / _f32(H) * two - one
        iy = ((gy + one) * _f32(Hg) - one) / two
        if not (iy > zero):
            iy = zero
        if iy > _f32(Hg - 1):
            iy = _f32(Hg - 1)
        y0 = int(math.floor(iy))
        y1 = min(y0 + 1, Hg - 1)
        wy = iy - _f32(y0)
        # The grid interpolated along y, once per row: flat [Wg, D, 12], a few KB (L1-resident).
        row = np.empty(Wg * D * 12, np.float32)
        n = 0
        for i in range(Wg):
            for d in range(D):
                for k in range(12):
                    row[n] = gt[b, y0, i, d, k] * (one - wy) + gt[b, y1, i, d, k] * wy
                    n += 1
        # The row's pixels in a local planar buffer, and the results in another, copied out at
        # the end: the image and output planes sit a multiple of 4 KiB apart, and reading one
        # while writing the other at the same offsets stalls on 4K aliasing (measured 1.6x
        # slower on [B, 3, H, W] inputs). Rows are padded so the local planes do not alias.
        Wp = W + 24
        ibuf = np.empty((3, Wp), np.float32)
        obuf = np.empty((3, Wp), np.float32)
        for c in range(3):
            for x in range(W):
                ibuf[c, x] = image[b, c, y, x]
        # pass 1: guide values of the row
        zrow = np.empty(W, np.float32)
        if USE_GUIDE:
            for x in range(W):
                zrow[x] = guide[b, y, x]
        else:
            # Guidance curve in ReLU form (knots -> slope changes, premultiplied by the channel
            # mix): z = clamp(base + sum_c sum_i gcoef[c,i]*relu(clamp(I_c, 0, 1) - thr[i]), 0, 1).
            vc = np.empty(W, np.float32)
            for x in range(W):
                zrow[x] = base[0]
            for c in range(3):
                for x in range(W):
                    vc[x] = min(max(ibuf[c, x], zero), one)
                for i in range(thr.shape[0]):
                    a = gcoef[c, i]
                    t = thr[i]
                    for x in range(W):
                        zrow[x] += a * max(vc[x] - t, zero)
            for x in range(W):
                zrow[x] = min(max(zrow[x], zero), one)
        # pass 2: depth corners and weights (grid_sample's unnormalise + border clip)
        za = np.empty(W, np.uint32)
        zb = np.empty(W, np.uint32)
        wzs = np.empty(W, np.float32)
        for x in range(W):
            gz = zrow[x] * two - one
            iz = ((gz + one) * _f32(D) - one) / two
            if not (iz > zero):  # also maps NaN to the first layer
                iz = zero
            if iz > _f32(D - 1):
                iz = _f32(D - 1)
            z0 = np.int32(iz)
            wzs[x] = iz - _f32(z0)
            za[x] = np.uint32(xs0[x] + z0 * 12)
            zb[x] = np.uint32(xs0[x] + min(z0 + 1, D - 1) * 12)
        # pass 3: bilinear in (x, z) of the y-interpolated row (== grid_sample's trilinear),
        # then the 3x4 affine transform and the strength blend.
        for x in range(W):
            wz = wzs[x]
            wx = wxs[x]
            w00 = (one - wx) * (one - wz)
            w01 = (one - wx) * wz
            w10 = wx * (one - wz)
            w11 = wx * wz
            pa = _u64(za[x])
            pb = _u64(zb[x])
            pc = pa + xsd[x]
            pd = pb + xsd[x]
            r_ = ibuf[0, x]
            g_ = ibuf[1, x]
            b_ = ibuf[2, x]
            if USE_SMAP:
                sp = s * smap[b, y, x]
            else:
                sp = s
            for c in range(3):
                o0 = _u64(4 * c)
                o1 = o0 + _u64(1)
                o2 = o0 + _u64(2)
                o3 = o0 + _u64(3)
                a0 = w00 * row[pa + o0] + w01 * row[pb + o0] + w10 * row[pc + o0] + w11 * row[pd + o0]
                a1 = w00 * row[pa + o1] + w01 * row[pb + o1] + w10 * row[pc + o1] + w11 * row[pd + o1]
                a2 = w00 * row[pa + o2] + w01 * row[pb + o2] + w10 * row[pc + o2] + w11 * row[pd + o2]
                a3 = w00 * row[pa + o3] + w01 * row[pb + o3] + w10 * row[pc + o3] + w11 * row[pd + o3]
                v = a0 * r_ + a1 * g_ + a2 * b_ + a3
                src = ibuf[c, x]
                # lo/hi = -inf/+inf (no clamp) for slice_apply; 0/1 for a model's final output
                obuf[c, x] = min(max(src + sp * (v - src), lo), hi)
        for c in range(3):
            for x in range(W):
                out[b, c, y, x] = obuf[c, x]

    # Four specialisations (explicit guide or fused guidance curve) x (scalar strength or map).
    # Arguments of every kernel:
    #   gt:    float32 [B, Hg, Wg, D, 12] (grid re-laid so a cell's 12 coefficients are contiguous)
    #   guide: float32 [B, H, W] in [0, 1]            (unused by the *_curve kernels)
    #   gcoef [3, K-1], thr [K-1], base [1]: the guidance map in ReLU form (see guidance_relu_form)
    #   image: float32 [B, 3, H, W], any strides (a [H, W, 3] array is passed as a view)
    #   out:   float32, same shape as image (written)
    #   smap:  float32 [B, H, W] per-pixel strength multiplier (unused by *_scalar kernels)
    #   s:     float32 strength
    #   lo/hi: float32 output clamp (-inf/+inf: none)

    @nb.njit(parallel=True, cache=True, fastmath=_FM, nogil=True)
    def _k_guide_scalar(gt, guide, gcoef, thr, base, image, out, smap, s, lo, hi):
        xs0, xsd, wxs = _column_table(image.shape[3], gt.shape[2], gt.shape[3])
        for r in nb.prange(image.shape[0] * image.shape[2]):
            _process_row(r, gt, xs0, xsd, wxs, guide, gcoef, thr, base, image, out, smap, s, lo, hi, True, False)

    @nb.njit(parallel=True, cache=True, fastmath=_FM, nogil=True)
    def _k_guide_map(gt, guide, gcoef, thr, base, image, out, smap, s, lo, hi):
        xs0, xsd, wxs = _column_table(image.shape[3], gt.shape[2], gt.shape[3])
        for r in nb.prange(image.shape[0] * image.shape[2]):
            _process_row(r, gt, xs0, xsd, wxs, guide, gcoef, thr, base, image, out, smap, s, lo, hi, True, True)

    @nb.njit(parallel=True, cache=True, fastmath=_FM, nogil=True)
    def _k_curve_scalar(gt, guide, gcoef, thr, base, image, out, smap, s, lo, hi):
        xs0, xsd, wxs = _column_table(image.shape[3], gt.shape[2], gt.shape[3])
        for r in nb.prange(image.shape[0] * image.shape[2]):
            _process_row(r, gt, xs0, xsd, wxs, guide, gcoef, thr, base, image, out, smap, s, lo, hi, False, False)

    @nb.njit(parallel=True, cache=True, fastmath=_FM, nogil=True)
    def _k_curve_map(gt, guide, gcoef, thr, base, image, out, smap, s, lo, hi):
        xs0, xsd, wxs = _column_table(image.shape[3], gt.shape[2], gt.shape[3])
        for r in nb.prange(image.shape[0] * image.shape[2]):
            _process_row(r, gt, xs0, xsd, wxs, guide, gcoef, thr, base, image, out, smap, s, lo, hi, False, True)

    _KERNELS = {(True, False): _k_guide_scalar, (True, True): _k_guide_map,
                (False, False): _k_curve_scalar, (False, True): _k_curve_map}


_DUMMY2 = np.zeros((3, 2), np.float32)
_DUMMY1 = np.zeros(3, np.float32)
_DUMMY3 = np.zeros((1, 1, 1), np.float32)


def run(gt: np.ndarray, image_b3hw: np.ndarray, out_b3hw: np.ndarray, *,
        guide: Optional[np.ndarray] = None, curve: Optional[tuple] = None,
        smap: Optional[np.ndarray] = None, s: float = 1.0, clamp: bool = False) -> None:
    """Slice-and-apply into ``out_b3hw`` (shapes in the module docstring); exactly one of
    ``guide`` / ``curve``. ``clamp`` clips the result to [0, 1] inside the kernel (free)."""
    if unavailable_reason() is not None:
        raise RuntimeError(f"slice_apply: {unavailable_reason()}")
    if guide is not None:
        use_guide, g = True, guide
        gcoef, thr, base = _DUMMY2, _DUMMY1, _DUMMY1
    else:
        use_guide, g = False, _DUMMY3
        gcoef, thr, base = curve
    use_smap = smap is not None
    _KERNELS[(use_guide, use_smap)](gt, g, gcoef, thr, base, image_b3hw, out_b3hw,
                                    smap if use_smap else _DUMMY3, np.float32(s),
                                    np.float32(0.0 if clamp else -np.inf), np.float32(1.0 if clamp else np.inf))
