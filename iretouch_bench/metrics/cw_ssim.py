"""CW-SSIM, complex-wavelet SSIM (Sampat et al. 2009), computed from the coarsest pyramid level only.

The official MATLAB ``cwssim_index.m`` (and pyiqa's ``cw_ssim``, which ports it) builds a
complex steerable pyramid (Portilla-Simoncelli ``buildSCFpyr``: 4 levels, 8 orientations,
raised-cosine radial masks in log-frequency, scale factor 2) of each image and then uses
**only the 8 oriented bands of the coarsest level**. Every finer level is built and thrown
away. Because the pyramid is built in the Fourier domain, the coarsest bands equal

    ifft2( ifftshift( D[c3] * lo0 * lo1 * lo2 * lo3 * hi4 * angle_b ) )

where ``D`` is the centred 2-D DFT of the image, ``c3`` the block of central frequencies
left after the three frequency-domain crops (about ``H/8 x W/8``), and the masks are the
same radial/angular functions the pyramid applies level by level, all evaluated on that
block. This module computes exactly that: a real FFT along the rows, a complex FFT along
the columns of only the needed ``~W/8`` frequencies, the masks on the small block, and
eight small inverse FFTs. Same numbers as the full pyramid, far less work at 4K.

Score per band: ``sum_ij w_ij * 2|box7(b1 conj(b2))| / box7(|b1|^2 + |b2|^2)`` with
``box7`` a 7x7 mean ("valid"), ``w`` a Gaussian of the size of the result with
``sigma = rows/4`` (``fspecial`` in MATLAB), ``K = 0``, guard band 0; the final score is
the mean over the 8 orientations. As in MATLAB there is no epsilon (pyiqa adds 1e-12
inside its magnitudes, an absolute term that only matters for near-zero band energy);
the one case MATLAB leaves as 0/0, two all-zero bands, is defined as 1 (identical).

Input: RGB ``[B, 3, H, W]`` in [0, 1] is reduced to rounded 8-bit luma like the other
luma metrics (:func:`iretouch_bench.metrics.ssim.to_luma255`); a gray ``[B, 1, H, W]``
input is used as given (the index is invariant to the scale; pyiqa does not round gray
input either). ``min(H, W) >= 64`` is required (4 pyramid levels).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from .running import RunningMean

from .ssim import filter_valid_separable, to_luma255

LEVELS = 4
ORIENTATIONS = 8


def _crop_start_len(d: int) -> tuple[int, int]:
    """Start and length of the central frequency block kept by one pyramid subsampling."""
    length = math.ceil((d - 0.5) / 2)
    start = math.ceil((d + 0.5) / 2) - math.ceil((length + 0.5) / 2)
    return start, length


def _rcos(width: float = 1.0, position: float = -0.5) -> tuple[np.ndarray, np.ndarray]:
    """Raised-cosine transition table (``rcosFn`` of matlabPyrTools), 259 samples."""
    n = 256
    X = np.pi * np.arange(-n - 1, 2) / 2 / n
    Y = np.cos(X) ** 2
    Y[0] = Y[1]
    Y[n + 2] = Y[n + 1]
    X = position + 2 * width / np.pi * (X + np.pi / 4)
    return X, Y


@lru_cache(maxsize=8)
def _band_masks(H: int, W: int, levels: int, nbands: int) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """Combined masks of the coarsest level on its frequency block.

    Returns ``((r0, c0, h, w), masks)``: the block's offset/size in the centred ``H x W``
    spectrum and ``masks [nbands, h, w]`` float64 = (product of the low-pass masks of all
    coarser steps) * (high-pass mask of the last level) * (angular mask of band ``b``).
    """
    # composed offset of the nested crops (one per level except the last)
    r0 = c0 = 0
    h, w = H, W
    for _ in range(levels - 1):
        sr, h = _crop_start_len(h)[0], _crop_start_len(h)[1]
        sc, w = _crop_start_len(w)[0], _crop_start_len(w)[1]
        r0 += sr
        c0 += sc
    # the frequency grid of the full centred spectrum (matlabPyrTools' layout), sliced
    xs = np.linspace(-(H // 2) / (H / 2), (H // 2) / (H / 2) - (1 - H % 2) * 2 / H, num=H)
    ys = np.linspace(-(W // 2) / (W / 2), (W // 2) / (W / 2) - (1 - W % 2) * 2 / W, num=W)
    rows = xs[r0 : r0 + h]
    cols = ys[c0 : c0 + w]
    colv, rowv = np.meshgrid(cols, rows)
    angle = np.arctan2(rowv, colv)
    rad = np.sqrt(colv**2 + rowv**2)
    # DC has radius 0; the pyramid code replaces it by its left neighbour's radius
    ci, cj = H // 2 - r0, W // 2 - c0
    rad[ci, cj] = math.sqrt(ys[W // 2 - 1] ** 2 + xs[H // 2] ** 2)
    log_rad = np.log2(rad)

    Xr, Yr = _rcos(1.0, -0.5)
    Yr = np.sqrt(Yr)
    YIr = np.sqrt(1.0 - Yr**2)
    flat = log_rad.ravel()
    radial = np.interp(flat, Xr, YIr)  # lo0 (before the first level)
    for k in range(1, levels):  # low-pass of levels 1..levels-1 (Xrcos shifted by one octave each)
        radial = radial * np.interp(flat, Xr - k, YIr)
    radial = radial * np.interp(flat, Xr - levels, Yr)  # high-pass of the last level

    lut = 1024
    order = nbands - 1
    Xcosn = np.pi * np.arange(-(2 * lut + 1), lut + 2) / lut
    alpha = (Xcosn + np.pi) % (2 * np.pi) - np.pi
    const = 2 ** (2 * order) * math.factorial(order) ** 2 / (nbands * math.factorial(2 * order))
    Ycosn = 2 * math.sqrt(const) * np.cos(Xcosn) ** order * (np.abs(alpha) < np.pi / 2)
    aflat = angle.ravel()
    masks = np.stack([radial * np.interp(aflat, Xcosn + np.pi * b / nbands, Ycosn) for b in range(nbands)])
    return (r0, c0, h, w), masks.reshape(nbands, h, w)


def _central_spectrum(img: torch.Tensor, r0: int, c0: int, h: int, w: int) -> torch.Tensor:
    """Block ``[r0:r0+h, c0:c0+w]`` of ``fftshift(fft2(img))`` for real ``img [N, H, W]``.

    Real FFT along W, keep the ``w`` needed column frequencies (negative ones by Hermitian
    symmetry of a real row's spectrum), complex FFT along H of that narrow matrix, keep the
    ``h`` needed row frequencies. Equals slicing the full shifted 2-D FFT.
    """
    N, H, W = img.shape
    Z = torch.fft.rfft(img, dim=-1)  # [N, H, W//2+1]
    kc = torch.arange(c0, c0 + w, device=img.device) - W // 2  # signed column frequencies
    pos = kc >= 0
    Zc = torch.empty((N, H, w), dtype=Z.dtype, device=img.device)
    Zc[..., pos] = Z[..., kc[pos]]
    Zc[..., ~pos] = Z[..., (-kc[~pos])].conj()
    Zc = torch.fft.fft(Zc, dim=-2)
    kr = (torch.arange(r0, r0 + h, device=img.device) - H // 2) % H
    return Zc[:, kr, :]


@lru_cache(maxsize=8)
def _gauss_window(h: int, w: int, sigma: float) -> np.ndarray:
    """Unnormalised ``fspecial('gaussian', [h, w], sigma)`` with its tiny-value cut."""
    m, n = (h - 1) / 2.0, (w - 1) / 2.0
    y, x = np.ogrid[-m : m + 1, -n : n + 1]
    g = np.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    g[g < np.finfo(g.dtype).eps * g.max()] = 0
    return g


def coarsest_bands(x: torch.Tensor, levels: int = LEVELS, nbands: int = ORIENTATIONS) -> torch.Tensor:
    """Complex oriented bands of the coarsest pyramid level: ``[N, nbands, h, w]`` complex128.

    ``x``: ``[N, H, W]`` float64. The bands are those of pyiqa/matlabPyrTools up to the
    constant factor ``(-i)^(nbands-1)`` applied to every band, which CW-SSIM cancels.
    """
    N, H, W = x.shape
    if levels > int(np.floor(np.log2(min(H, W)))) - 2:
        raise ValueError(f"image {H}x{W} too small for a {levels}-level pyramid (CW-SSIM needs min side >= 64)")
    (r0, c0, h, w), masks = _band_masks(H, W, levels, nbands)
    spec = _central_spectrum(x, r0, c0, h, w)  # [N, h, w]
    m = torch.from_numpy(masks).to(device=x.device)
    bands = spec[:, None] * m[None]  # [N, nbands, h, w]
    return torch.fft.ifft2(torch.fft.ifftshift(bands, dim=(-2, -1)))


def _cw_ssim_from_bands(b1: torch.Tensor, b2: torch.Tensor) -> torch.Tensor:
    """``[N, nb, h, w]`` complex bands -> ``[N]`` CW-SSIM (mean over bands, Gaussian-weighted)."""
    a, b = b1.real, b1.imag
    c, d = b2.real, b2.imag
    box = torch.full((7,), 1.0 / 7.0, dtype=torch.float64, device=b1.device)
    # b1 * conj(b2) = (ac + bd) + i(bc - ad);  |b1|^2 + |b2|^2
    stack = torch.stack((a * c + b * d, b * c - a * d, (a * a + b * b) + (c * c + d * d)), dim=2)
    f = filter_valid_separable(stack, box)  # [N, nb, 3, h-6, w-6]
    re, im, var = f.unbind(2)
    num = 2 * torch.sqrt(re * re + im * im)
    cs = torch.where(var > 0, num / var, torch.ones_like(var))  # 0/0 (both bands empty) := 1
    hh, ww = cs.shape[-2:]
    g = torch.from_numpy(_gauss_window(hh, ww, b1.shape[-2] / 4.0)).to(cs)
    # divide by sum(g) at the end (not pre-normalised) so identical inputs give exactly 1.0
    # (same shape and reduction order for numerator and denominator)
    per_band = (cs * g).sum(dim=(-2, -1)) / (torch.ones_like(cs) * g).sum(dim=(-2, -1))
    return per_band.mean(dim=1)


def cw_ssim(x: torch.Tensor, y: torch.Tensor, *, levels: int = LEVELS, nbands: int = ORIENTATIONS) -> torch.Tensor:
    """CW-SSIM between two image batches.

    Args:
        x: distorted/output batch ``[B, 3, H, W]`` RGB or ``[B, 1, H, W]`` gray, float in [0, 1].
        y: reference batch of the same shape. ``min(H, W) >= 64``.

    Returns:
        ``[B]`` float64 in [0, 1]; exactly 1.0 for identical inputs.
    """
    if x.shape != y.shape:
        raise ValueError(f"shape mismatch: {tuple(x.shape)} vs {tuple(y.shape)}")
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected [B, 1|3, H, W], got {tuple(x.shape)}")
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise ValueError("NaN or infinite values in CW-SSIM input")
    if x.shape[1] == 3:
        # luma computed in float64 before rounding (pyiqa casts to float64 first for CW-SSIM,
        # unlike SSIM/GMSD); this decides the rare exact-.5 pixels of 8-bit input
        X, Y = to_luma255(x.to(torch.float64)), to_luma255(y.to(torch.float64))
    else:
        X, Y = x.to(torch.float64), y.to(torch.float64)
    B = X.shape[0]
    bands = coarsest_bands(torch.cat((X[:, 0], Y[:, 0])), levels, nbands)
    return _cw_ssim_from_bands(bands[:B], bands[B:])


class CWSSIM(RunningMean):
    """Running mean of :func:`cw_ssim` over pairs (``update``/``compute``)."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        super().__init__()

    def metric(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return cw_ssim(x, y, **self.kwargs)
