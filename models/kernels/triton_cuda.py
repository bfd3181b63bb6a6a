"""Fused CUDA slice-and-apply (Triton): the computation of :mod:`.numba_cpu`, one program per
``BLOCK`` pixels. triton ships with torch's CUDA build; it is imported only when this kernel is
first used. The tests check it on CPU through Triton's interpreter (``TRITON_INTERPRET=1``).
"""

from __future__ import annotations

from typing import Optional

import torch

__all__ = ["unavailable_reason", "slice_apply_triton"]

_TRITON_KERNEL = None


def unavailable_reason() -> Optional[str]:
    """None when the kernel can run on a CUDA device here, else why not (one line)."""
    if not torch.cuda.is_available():
        return "CUDA not available"
    try:
        # Imported here: optional dependency (see the module docstring).
        import triton  # noqa: F401
    except Exception as err:
        return f"triton unavailable ({type(err).__name__}: {err})"
    return None


def _kernel():
    global _TRITON_KERNEL
    if _TRITON_KERNEL is not None:
        return _TRITON_KERNEL
    # Imported here, not at the top: triton is optional (it ships with torch's CUDA build) and
    # slow to import; CPU-only runs never need it.
    import triton
    import triton.language as tl

    @triton.jit
    def _slice_apply_triton(grid_ptr, guide_ptr, img_ptr, out_ptr, smap_ptr, s,
                            W, D, Hg, Wg, N_PIX, fH, fW, fD, fHg, fWg,
                            USE_SMAP: tl.constexpr, BLOCK: tl.constexpr):
        # One program: BLOCK consecutive pixels of one image (program_id(1) is the batch index).
        # grid: [B, 12, D, Hg, Wg] contiguous; guide/smap: [B, H, W]; img/out: [B, 3, H, W].
        # Sizes used in float math come as float arguments (fH = float(H), ...) rather than
        # being cast in the kernel: Triton specialises integer arguments equal to 1 into
        # constants, which have no .to() (grids with a single cell along an axis are legal).
        pid = tl.program_id(0)
        b = tl.program_id(1)
        offs = pid * BLOCK + tl.arange(0, BLOCK)
        valid = offs < N_PIX
        y = offs // W
        x = offs - y * W
        gx = (x.to(tl.float32) + 0.5) / fW * 2.0 - 1.0
        gy = (y.to(tl.float32) + 0.5) / fH * 2.0 - 1.0
        g = tl.load(guide_ptr + b * N_PIX + offs, mask=valid, other=0.0)
        gz = g * 2.0 - 1.0
        ix = ((gx + 1.0) * fWg - 1.0) / 2.0
        iy = ((gy + 1.0) * fHg - 1.0) / 2.0
        iz = ((gz + 1.0) * fD - 1.0) / 2.0
        ix = tl.minimum(tl.maximum(ix, 0.0), fWg - 1.0)
        iy = tl.minimum(tl.maximum(iy, 0.0), fHg - 1.0)
        iz = tl.minimum(tl.maximum(iz, 0.0), fD - 1.0)
        x0f = tl.floor(ix)
        y0f = tl.floor(iy)
        z0f = tl.floor(iz)
        wx = ix - x0f
        wy = iy - y0f
        wz = iz - z0f
        x0 = x0f.to(tl.int32)
        y0 = y0f.to(tl.int32)
        z0 = z0f.to(tl.int32)
        x1 = tl.minimum(x0 + 1, Wg - 1)
        y1 = tl.minimum(y0 + 1, Hg - 1)
        z1 = tl.minimum(z0 + 1, D - 1)
        cell = D * Hg * Wg
        gbase = grid_ptr + b * 12 * cell
        o000 = (z0 * Hg + y0) * Wg + x0
        o001 = (z0 * Hg + y0) * Wg + x1
        o010 = (z0 * Hg + y1) * Wg + x0
        o011 = (z0 * Hg + y1) * Wg + x1
        o100 = (z1 * Hg + y0) * Wg + x0
        o101 = (z1 * Hg + y0) * Wg + x1
        o110 = (z1 * Hg + y1) * Wg + x0
        o111 = (z1 * Hg + y1) * Wg + x1
        w000 = (1.0 - wz) * (1.0 - wy) * (1.0 - wx)
        w001 = (1.0 - wz) * (1.0 - wy) * wx
        w010 = (1.0 - wz) * wy * (1.0 - wx)
        w011 = (1.0 - wz) * wy * wx
        w100 = wz * (1.0 - wy) * (1.0 - wx)
        w101 = wz * (1.0 - wy) * wx
        w110 = wz * wy * (1.0 - wx)
        w111 = wz * wy * wx
        ibase = img_ptr + b * 3 * N_PIX + offs
        r = tl.load(ibase, mask=valid, other=0.0)
        gg = tl.load(ibase + N_PIX, mask=valid, other=0.0)
        bb = tl.load(ibase + 2 * N_PIX, mask=valid, other=0.0)
        sp = s
        if USE_SMAP:
            sp = s * tl.load(smap_ptr + b * N_PIX + offs, mask=valid, other=0.0)
        for c in tl.static_range(3):
            acc = tl.zeros([BLOCK], dtype=tl.float32)
            for j in tl.static_range(4):
                kb = gbase + (4 * c + j) * cell
                a = (w000 * tl.load(kb + o000, mask=valid, other=0.0)
                     + w001 * tl.load(kb + o001, mask=valid, other=0.0)
                     + w010 * tl.load(kb + o010, mask=valid, other=0.0)
                     + w011 * tl.load(kb + o011, mask=valid, other=0.0)
                     + w100 * tl.load(kb + o100, mask=valid, other=0.0)
                     + w101 * tl.load(kb + o101, mask=valid, other=0.0)
                     + w110 * tl.load(kb + o110, mask=valid, other=0.0)
                     + w111 * tl.load(kb + o111, mask=valid, other=0.0))
                if j == 0:
                    acc += a * r
                elif j == 1:
                    acc += a * gg
                elif j == 2:
                    acc += a * bb
                else:
                    acc += a
            if c == 0:
                src = r
            elif c == 1:
                src = gg
            else:
                src = bb
            tl.store(out_ptr + b * 3 * N_PIX + c * N_PIX + offs, src + sp * (acc - src), mask=valid)

    _TRITON_KERNEL = _slice_apply_triton
    return _TRITON_KERNEL


def _cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b


def slice_apply_triton(grid: torch.Tensor, guide: torch.Tensor, image: torch.Tensor, s: float,
                       smap: Optional[torch.Tensor]) -> torch.Tensor:
    """``grid [B, 12, D, Hg, Wg]``, ``guide [B, H, W]``, ``image [B, 3, H, W]``, strength ``s``,
    optional per-pixel strength multiplier ``smap [B, H, W]``, all on one device ->
    ``[B, 3, H, W]`` float32 (not clamped)."""
    kernel = _kernel()
    B, _, H, W = image.shape
    D, Hg, Wg = grid.shape[2:]
    grid = grid.contiguous().float()
    guide = guide.contiguous().float()
    image_c = image.contiguous().float()
    out = torch.empty_like(image_c)
    sm = smap.contiguous().float() if smap is not None else guide  # dummy pointer when unused
    n = H * W
    BLOCK = 256
    kernel[(_cdiv(n, BLOCK), B)](grid, guide, image_c, out, sm, float(s), W, D, Hg, Wg, n,
                                 float(H), float(W), float(D), float(Hg), float(Wg),
                                 USE_SMAP=smap is not None, BLOCK=BLOCK)
    return out
