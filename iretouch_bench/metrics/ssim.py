"""SSIM (Wang et al. 2004) on the 8-bit luma channel, fast at 4K.

Convention (the one pyiqa's default ``ssim`` metric uses, which is what papers that report
pyiqa numbers, including the InstantRetouch tables, compute):

* RGB input ``[B, 3, H, W]`` in [0, 1] is reduced to BT.601 luma ``Y = 0.299 R + 0.587 G +
  0.114 B`` (the Y of YIQ, the same weights as MATLAB's ``rgb2gray`` to 3 decimals); a
  ``[B, 1, H, W]`` input is taken as luma already. Luma is scaled to [0, 255] and rounded
  to integers (round-half-to-even), mimicking the official MATLAB code, which runs on uint8.
* 11x11 Gaussian window, sigma 1.5, "valid" filtering (no padding), ``C1 = (0.01*255)^2``,
  ``C2 = (0.03*255)^2``, computed in float64.
* The contrast-structure term is clamped at 0 (pyiqa does this; MATLAB ``ssim_index.m``
  does not). On photographs the two differ only where local structure is anti-correlated.
* No automatic downsampling by default. The official ``ssim_index.m``/``ssim.m`` first
  low-passes and subsamples by ``f = max(1, round(min(H, W) / 256))``; pyiqa's default
  ``ssim`` does not, and the calibration table's SSIM row (official MATLAB) is therefore
  matched only to ~4e-4 by pyiqa and by this module. ``downsample=True`` reproduces pyiqa's
  ``SSIM(downsample=True)`` option (an ``f x f`` average pool) for users who want it.

Speed: the 2-D Gaussian is separable, so each of the five local moments is filtered with
two 11-tap 1-D passes (22 multiply-adds per pixel instead of 121) done as shifted
multiply-adds in float64 on whatever device the tensors live on, in row bands so that the
working set stays small at 4K. Results agree with the direct 2-D filtering to ~1e-12.
"""

from __future__ import annotations


import torch

from .running import RunningMean
import torch.nn.functional as F

#: BT.601 luma weights (Y of YIQ), shared by all luma-based metrics in this package.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
_YIQ = (LUMA_WEIGHTS, (0.5959, -0.2746, -0.3213), (0.2115, -0.5227, 0.3112))


def to_luma255(x: torch.Tensor, quantize: bool = True) -> torch.Tensor:
    """RGB or gray batch in [0, 1] -> rounded luma in [0, 255], float64.

    Args:
        x: ``[B, 3, H, W]`` RGB or ``[B, 1, H, W]`` gray, any float dtype, values in [0, 1].
        quantize: round to integer levels (the default, MATLAB's uint8); ``False`` keeps the
            float luma (the ``float`` fidelity protocol, :mod:`.protocols`).

    Returns:
        ``[B, 1, H, W]`` float64 tensor in [0, 255] (integers when ``quantize``).

    The weighted sum is done in the input's own dtype (float32 for images read by
    :func:`iretouch_bench.core.images.read_image`) before rounding, so the rounding of the rare
    exact ``.5`` cases matches pyiqa's float32 conversion.
    """
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected [B, 1|3, H, W], got {tuple(x.shape)}")
    if not torch.is_floating_point(x):
        raise ValueError(f"expected a float tensor in [0, 1], got {x.dtype}")
    if x.shape[1] == 3:
        # The full RGB->YIQ matrix product (then keep Y), not a dot with the 3 luma weights:
        # float32 matmul kernels round the same way for the same call shape, so the few
        # pixels that sit within float32 error of a .5 level round as in pyiqa.
        m = torch.tensor(_YIQ, dtype=x.dtype, device=x.device).t()
        y = torch.matmul(x.permute(0, 2, 3, 1), m)[..., :1].permute(0, 3, 1, 2)
    else:
        y = x
    if not quantize:
        return y.to(torch.float64) * 255
    return (y * 255).round().to(torch.float64)


def gaussian_1d(size: int = 11, sigma: float = 1.5, dtype=torch.float64, device=None) -> torch.Tensor:
    """Normalised 1-D Gaussian ``[size]``; its outer product is MATLAB's ``fspecial('gaussian')``."""
    r = (size - 1) / 2.0
    t = torch.arange(size, dtype=torch.float64) - r
    g = torch.exp(-(t * t) / (2.0 * sigma * sigma))
    return (g / g.sum()).to(dtype=dtype, device=device)


def filter_valid_separable(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``'valid'`` 2-D filtering of ``x [..., H, W]`` with the separable kernel ``g (x) g``.

    Returns ``[..., H-k+1, W-k+1]``. Implemented as ``k`` shifted multiply-adds per axis
    (exact same arithmetic for every pixel, so identical inputs give identical outputs),
    which on CPU in float64 is far faster than ``conv2d``'s im2col path and uses no
    ``k``-fold temporary.
    """
    taps = [float(v) for v in g.detach().cpu().tolist()]  # python scalars: no device sync per tap
    k = len(taps)
    h, w = x.shape[-2:]
    ho, wo = h - k + 1, w - k + 1
    tmp = x[..., :, 0:wo] * taps[0]
    for i in range(1, k):
        tmp.add_(x[..., :, i : i + wo], alpha=taps[i])
    out = tmp[..., 0:ho, :] * taps[0]
    for i in range(1, k):
        out.add_(tmp[..., i : i + ho, :], alpha=taps[i])
    return out


def _ssim_sums(X: torch.Tensor, Y: torch.Tensor, g: torch.Tensor, C1: float, C2: float,
               band_rows: int) -> torch.Tensor:
    """Sum of the SSIM map over all valid positions, per batch item: ``[B]`` float64.

    Processes horizontal bands of ``band_rows`` output rows (with the ``k-1`` rows of
    overlap the valid filter needs) so that the five moment maps never exist at full size.
    """
    k = g.shape[0]
    B, _, H, W = X.shape
    ho = H - k + 1
    total = torch.zeros(B, dtype=torch.float64, device=X.device)
    for r0 in range(0, ho, band_rows):
        r1 = min(ho, r0 + band_rows)
        xs = X[:, 0, r0 : r1 + k - 1]
        ys = Y[:, 0, r0 : r1 + k - 1]
        # one stacked tensor -> one pass of shifted adds for all five moments
        stack = torch.stack((xs, ys, xs * xs, ys * ys, xs * ys), dim=1)
        f = filter_valid_separable(stack, g)
        mu1, mu2, sxx, syy, sxy = f.unbind(1)
        mu1_sq = mu1 * mu1
        mu2_sq = mu2 * mu2
        mu12 = mu1 * mu2
        s1 = sxx - mu1_sq
        s2 = syy - mu2_sq
        s12 = sxy - mu12
        cs = ((2 * s12 + C2) / (s1 + s2 + C2)).clamp_min_(0.0)
        smap = ((2 * mu12 + C1) / (mu1_sq + mu2_sq + C1)) * cs
        total += smap.sum(dim=(-2, -1))
    return total


def ssim(x: torch.Tensor, y: torch.Tensor, *, downsample: bool = False, window: int = 11,
         sigma: float = 1.5, band_rows: int = 64, quantize: bool = True) -> torch.Tensor:
    """SSIM between two image batches (pyiqa ``ssim`` convention, see module docstring).

    Args:
        x: distorted/output batch, ``[B, 3, H, W]`` RGB or ``[B, 1, H, W]`` gray, float in [0, 1].
        y: reference batch, same shape as ``x``.
        downsample: apply pyiqa's optional ``f x f`` average pooling,
            ``f = max(1, round(min(H, W) / 256))``.
        band_rows: output rows per processing band (memory/speed knob; results do not depend on it).
        quantize: round luma x255 to integer levels (default); ``False`` for the ``float`` protocol.

    Returns:
        ``[B]`` float64 tensor, 1.0 exactly for identical inputs.

    Raises:
        ValueError: shape mismatch, an image smaller than the window, or non-finite values.
    """
    if x.shape != y.shape:
        raise ValueError(f"shape mismatch: {tuple(x.shape)} vs {tuple(y.shape)}")
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise ValueError("NaN or infinite values in SSIM input")
    X = to_luma255(x, quantize)
    Y = to_luma255(y, quantize)
    f = max(1, round(min(X.shape[-2:]) / 256))
    if downsample and f > 1:
        X = F.avg_pool2d(X, kernel_size=f)
        Y = F.avg_pool2d(Y, kernel_size=f)
    if min(X.shape[-2:]) < window:
        raise ValueError(f"image {tuple(X.shape[-2:])} smaller than the {window}x{window} SSIM window")
    C1 = (0.01 * 255) ** 2
    C2 = (0.03 * 255) ** 2
    g = gaussian_1d(window, sigma, device=X.device)
    sums = _ssim_sums(X, Y, g, C1, C2, band_rows)
    n = (X.shape[-2] - window + 1) * (X.shape[-1] - window + 1)
    return sums / n


class SSIM(RunningMean):
    """Running mean of :func:`ssim` over pairs (torchmetrics-style ``update``/``compute``)."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        super().__init__()

    def metric(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ssim(x, y, **self.kwargs)
