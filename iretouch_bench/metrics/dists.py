"""DISTS (Ding et al. 2020): deep image structure and texture similarity. Lower is better, 0 = identical.

Same network and formula as the official ``DISTS_pytorch`` (and pyiqa's ``dists``):
ImageNet VGG16 ``features`` with each max-pool replaced by an L2 pooling (3x3 Hann window
``[.5, 1, .5]^T [.5, 1, .5] / 4``, stride 2, zero padding 1, ``sqrt(. + 1e-12)``), inputs
normalised with the ImageNet mean/std; at the raw image and at ``relu1_2 .. relu5_3`` the
per-channel spatial mean and (co)variance give

    S1 = (2 mx my + c1) / (mx^2 + my^2 + c1),  S2 = (2 cxy + c2) / (vx + vy + c2),  c1 = c2 = 1e-6
    DISTS = 1 - (sum alpha * S1 + sum beta * S2) / (sum alpha + sum beta)

with the learned ``alpha``/``beta`` (1475 channels each). Convolutions run in float32 like
the reference (on CPU by Winograd F(4x4, 3x3) past conv1_1, see :mod:`._winograd_kernel`: DISTS
within 1e-6 of direct convolution); the moments are one-pass sums of x, x^2, y, y^2, xy (float32 within a strip,
float64 across strips), equal to the reference's two-pass float32 moments to ~1e-6.

Memory: the reference keeps every stage's full-resolution activations of both images
(over 10 GB at 4K). Here each stage runs over horizontal strips with the few halo rows its
3x3 convolutions and the following pooling need, so only the (4x smaller) pooled input of
the next stage is kept whole. Zero padding happens only at the true image border, so the
strips reproduce the full-image computation exactly (same arithmetic per output pixel).
A gray ``[B, 1, H, W]`` input is repeated to 3 channels (what the reference's broadcasting
does too).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F

from ..weights.vgg16 import load_vgg16_dists
from . import _moments_kernel, _winograd_kernel
from .running import RunningMean

# stage -> torchvision ``features`` indices of its convolutions (each followed by ReLU)
STAGES = ((0, 2), (5, 7), (10, 12, 14), (17, 19, 21), (24, 26, 28))
CHANNELS = (3, 64, 128, 256, 512, 512)
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
C1 = C2 = 1e-6
#: layers with at least this many input channels use Winograd F(4x4, 3x3) on CPU (see
#: :mod:`._winograd_kernel`): every layer but conv1_1 (3 channels, 0.6% of the work). Measured
#: against oneDNN's direct convolution on a 2-core Zen 3: 1.06x (64->64), 1.24x (64->128),
#: 1.55x (128), 2.2x (256), 3.0x (512 channels)
WINOGRAD_MIN_CHANNELS = 64


def _fused_conv_relu_available() -> bool:
    return hasattr(torch.ops, "mkldnn") and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


_FUSED = _fused_conv_relu_available()


def _conv_relu(t: torch.Tensor, w: torch.Tensor, b: torch.Tensor, top: bool = False, bot: bool = False) -> torch.Tensor:
    """3x3 convolution then ReLU: one column of zero padding; rows: the strip carries its halo, plus a
    zero row above / below where ``top`` / ``bot`` is the true image border.

    The border rows come from the convolution's own (symmetric) padding, and where only one side
    is a border the one surplus output row is dropped (a view), so no padded copy of the strip is
    made (``F.pad`` copied every border strip, a full copy per layer on a one-strip image). On CPU
    float32 this is oneDNN's convolution with the ReLU as a fused post-op, the kernel
    torch.compile's inductor emits for conv+relu (``mkldnn._convolution_pointwise``): the same
    numbers as conv2d then relu (tests/test_metrics_fidelity.py), one pass over the activations
    less, about 13% faster per layer here. Elsewhere, or if that private op is missing or
    refuses, plain conv2d + relu_."""
    global _FUSED
    pad = 1 if (top or bot) else 0
    out = None
    if _FUSED and t.device.type == "cpu" and t.dtype == torch.float32:
        try:
            out = torch.ops.mkldnn._convolution_pointwise(t, w, b, [pad, 1], [1, 1], [1, 1], 1, "relu", [None], "")
        except (RuntimeError, TypeError):  # pragma: no cover - a torch build without the fused op
            _FUSED = False
    if out is None:
        out = F.relu_(F.conv2d(t, w, b, padding=(pad, 1)))
    if pad and not bot:
        return out[:, :, :-1]
    if pad and not top:
        return out[:, :, 1:]
    return out


@contextlib.contextmanager
def ieee_fp32_convolutions(device: torch.device) -> Iterator[None]:
    """cuDNN convolutions in true float32 inside the block (restored after).

    This torch build lets cuDNN use TF32 for float32 convolutions by default, which rounds
    inputs to a 10-bit mantissa and moves DISTS values in the fourth decimal; the protocol's
    numbers are float32 ones, so on CUDA the VGG convolutions run with TF32 off. No-op on CPU."""
    if device.type != "cuda":
        yield
        return
    conv = torch.backends.cudnn.conv
    old = conv.fp32_precision
    conv.fp32_precision = "ieee"
    try:
        yield
    finally:
        conv.fp32_precision = old


def winograd_default(device: torch.device | str, dtype: torch.dtype = torch.float32) -> bool:
    """Whether a :class:`DISTSNet` uses Winograd when not told: on CPU in float32 with numba."""
    return torch.device(device).type == "cpu" and dtype == torch.float32 and _winograd_kernel.AVAILABLE


def convolution_algorithm(device: str = "cpu") -> str:
    """What a default :class:`DISTSNet` on ``device`` convolves with, for run provenance."""
    if winograd_default(device):
        return (f"float32 Winograd F(4x4,3x3) on layers with >= {WINOGRAD_MIN_CHANNELS} input channels "
                "(numba transforms, MKL GEMMs), oneDNN direct on the others")
    if torch.device(device).type == "cuda":
        return "float32 direct (cuDNN, TF32 off)"
    return "float32 direct (oneDNN)"


class DISTSNet:
    """Holds the weights on a device and computes DISTS for image pairs.

    Args:
        weights: from :func:`iretouch_bench.weights.vgg16.load_vgg16_dists` (``features.{i}.weight|bias``,
            ``alpha``, ``beta``).
        device: torch device string.
        strip_bytes: working-set budget per strip in bytes (speed/memory knob; results do not depend on it).
        dtype: convolution dtype; float32 (default) reproduces the reference. bfloat16 is an
            opt-in fast mode on CPUs with AVX512-BF16 / on GPUs; it is not the reference.
        winograd: the layers with >= :data:`WINOGRAD_MIN_CHANNELS` input channels by Winograd
            F(4x4, 3x3) (a quarter of the multiplications; DISTS within 1e-6 of the direct
            convolution). None (default): :func:`winograd_default`; False: the direct convolution
            everywhere (the reference's arithmetic); True off CPU float32 or without numba: ValueError.
    """

    def __init__(self, weights: dict[str, torch.Tensor], device: str = "cpu", strip_bytes: int = 512 << 20,
                 dtype: torch.dtype = torch.float32, winograd: bool | None = None):
        self.device = torch.device(device)
        self.dtype = dtype
        self.strip_bytes = int(strip_bytes)
        possible = winograd_default(self.device, dtype)
        if winograd and not possible:
            raise ValueError("winograd=True needs the CPU, float32 and numba")
        self.winograd = possible if winograd is None else bool(winograd)
        cl = torch.channels_last
        # per layer: (weight, bias, Winograd-transformed weight or None)
        self.convs = []
        for stage in STAGES:
            layers = []
            for i in stage:
                w = weights[f"features.{i}.weight"]
                u = (_winograd_kernel.filter_transform(w)
                     if self.winograd and w.shape[1] >= WINOGRAD_MIN_CHANNELS else None)
                layers.append((w.to(self.device, dtype).contiguous(memory_format=cl),
                               weights[f"features.{i}.bias"].to(self.device, dtype), u))
            self.convs.append(layers)
        self.alpha = weights["alpha"].reshape(-1).to(self.device, torch.float64)
        self.beta = weights["beta"].reshape(-1).to(self.device, torch.float64)
        if self.alpha.numel() != sum(CHANNELS) or self.beta.numel() != sum(CHANNELS):
            raise ValueError(f"alpha/beta must have {sum(CHANNELS)} entries")
        a = torch.tensor([0.5, 1.0, 0.5], dtype=torch.float64)
        g = (a[:, None] * a[None, :]) / (a.sum() ** 2)
        self.pool = {c: g.to(self.device, dtype)[None, None].repeat(c, 1, 1, 1).contiguous(memory_format=cl)
                     for c in CHANNELS[1:5]}
        self.mean = torch.tensor(_MEAN, device=self.device, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(_STD, device=self.device, dtype=torch.float32).view(1, 3, 1, 1)

    # ------------------------------------------------------------------ building blocks
    @staticmethod
    def _moments(f: torch.Tensor) -> torch.Tensor:
        """``f [2, C, h, w]`` (x then y) -> ``[5, C]`` float64 sums of x, y, x^2, y^2, xy.

        The torch path (the raw images, and VGG maps off CPU; on CPU the stages use the one-pass
        kernel through :meth:`_moments_pair`): products and the sum over one strip are float32
        (torch's reductions keep the relative error near 1e-7 over a strip; measured 3.5e-7 worst
        case at 4K); strips are then accumulated in float64.
        """
        x = f[0].float()
        y = f[1].float()
        return torch.stack((x.sum((1, 2)), y.sum((1, 2)), (x * x).sum((1, 2)), (y * y).sum((1, 2)),
                            (x * y).sum((1, 2)))).to(torch.float64)

    def _convs(self, t: torch.Tensor, s0: int, s1: int, H: int, stage: int,
               ws: _winograd_kernel.Workspace) -> tuple[torch.Tensor, int]:
        """Run a stage's conv+ReLU layers on rows ``[s0, s1)`` of an ``H``-row map.

        Rows beyond the strip are consumed as halo (one per conv and side); zero rows are
        added only where the strip touches the true image border, as full-image zero padding
        would. Returns the output and its first row index.
        """
        for w, b, u in self.convs[stage]:
            top, bot = s0 == 0, s1 == H
            t = (_conv_relu(t, w, b, top, bot) if u is None
                 else _winograd_kernel.conv3x3_relu(t, u, b, ws, top, bot))
            s0 = s0 + 1 - top
            s1 = s1 - 1 + bot
        return t, s0

    def _l2pool(self, t: torch.Tensor, top: bool, bot: bool, out: torch.Tensor) -> int:
        """L2 pooling of the rows ``t [1, C, h, W]`` (plus a zero row above / below where ``top`` /
        ``bot``), written into the first rows of ``out``; returns how many.

        ``t`` is squared in place (the caller is done with these activations). A zero row above
        comes from the convolution's symmetric padding with any surplus last row dropped (stride 2
        from the top keeps every other row where it was); only a zero row below alone is a copy.
        """
        c = t.shape[1]
        sq = t.mul_(t)
        if top:
            n = (t.shape[2] + 1 + int(bot) - 3) // 2 + 1
            p = F.conv2d(sq, self.pool[c], stride=2, padding=(1, 1), groups=c)[:, :, :n]
        else:
            if bot:
                sq = F.pad(sq, (0, 0, 0, 1))
            p = F.conv2d(sq, self.pool[c], stride=2, padding=(0, 1), groups=c)
        n = p.shape[2]
        torch.sqrt(p.add_(1e-12), out=out[:, :, :n])
        return n

    @staticmethod
    def _moments_pair(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """:meth:`_moments` of two ``[1, C, h, w]`` maps (x, y), each read where it lies. On CPU the
        channels-last float32 maps of every stage go through the one-pass numba kernel of
        :mod:`._moments_kernel` (float64 accumulation, about 9x faster than the torch path)."""
        if _moments_kernel.AVAILABLE and a.device.type == "cpu" and a.dtype == b.dtype == torch.float32:
            na, nb = a.permute(0, 2, 3, 1)[0], b.permute(0, 2, 3, 1)[0]
            if all(t.stride(-1) == 1 and t.stride(-2) == a.shape[1] for t in (na, nb)):
                return torch.from_numpy(_moments_kernel.pair_moments(na.numpy(), nb.numpy()))
        return DISTSNet._moments(torch.cat((a, b)))

    def _stage(self, inps: list[torch.Tensor], stage: int,
               ws: _winograd_kernel.Workspace) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        """One stage over strips. ``inps``: the two images' maps, each ``[1, C, H, W]`` channels-last
        (kept apart rather than as one batch of 2: a row strip of a 1-image channels-last map is one
        dense block, so the convolutions read it in place; a strip of a 2-image batch is not, and
        oneDNN copied it first, about a fifth of each stage's first convolution).
        ``ws``: the Winograd layers' buffers, reused across strips.
        Returns (moments ``[5, C]``, the two pooled inputs of the next stage, or None)."""
        inp = inps[0]
        _, _, H, W = inp.shape
        n = len(self.convs[stage])
        cout = self.convs[stage][-1][0].shape[0]
        pooled = stage < len(STAGES) - 1
        # bytes per output row of both images: activations (~3 live copies) + moment temporaries
        per_row = 2 * cout * W * (3 * inp.element_size() + 3 * 4)
        if self.convs[stage][-1][2] is not None:  # Winograd's tiles and products: 2 x 2.25 maps of one image
            per_row += 18 * cout * W
        rows = max(8, int(self.strip_bytes // max(per_row, 1)))
        rows -= rows % 2
        moments = torch.zeros(5, cout, dtype=torch.float64, device=inp.device)
        # the next stage's input is filled strip by strip (no list + cat: that doubled the peak)
        nxt = ([torch.empty((1, cout, (H + 1) // 2, (W + 1) // 2), dtype=inp.dtype, device=inp.device,
                            memory_format=torch.channels_last) for _ in inps] if pooled else None)
        filled = 0
        for r0 in range(0, H, rows):
            r1 = min(H, r0 + rows)  # core rows (counted in the moments by this strip only)
            o0 = max(r0 - 1, 0) if pooled else r0  # the pool's 3-row window reaches one row up
            o1 = r1
            i0, i1 = max(o0 - n, 0), min(o1 + n, H)
            ts = []
            for im in inps:
                t, s0 = self._convs(im[:, :, i0:i1], i0, i1, H, stage, ws)
                ts.append(t[:, :, o0 - s0 : o1 - s0])
            moments += self._moments_pair(ts[0][:, :, r0 - o0 :], ts[1][:, :, r0 - o0 :])
            if pooled:
                # pool output rows r0/2 .. ceil(r1/2)-1 need rows r0-1 .. 2*ceil(r1/2)-1
                top, bot = r0 == 0, r1 == H and H % 2 == 1
                for k, t in enumerate(ts):
                    n_rows = self._l2pool(t, top, bot, nxt[k][:, :, r0 // 2 :])
                    if k == 0:
                        filled += n_rows
            del ts, t
        if pooled and filled != nxt[0].shape[2]:  # every row of the next stage written exactly once
            raise RuntimeError(f"DISTS strip bookkeeping wrote {filled} of {nxt[0].shape[2]} rows")
        return moments, nxt

    # ------------------------------------------------------------------ public
    @torch.no_grad()
    def moments(self, x: torch.Tensor, y: torch.Tensor) -> tuple[list[torch.Tensor], list[int]]:
        """Per-stage float64 moment sums ``[5, C_k]`` and pixel counts for one pair ``[1, 3, H, W]``."""
        pair = torch.cat((x, y)).to(self.device, torch.float32)
        out = [self._moments(pair)]
        counts = [pair.shape[2] * pair.shape[3]]
        norm = ((pair - self.mean) / self.std).to(self.dtype)
        h = [norm[i : i + 1].contiguous(memory_format=torch.channels_last) for i in range(2)]
        del pair, norm
        # one pair's Winograd buffers, reused by its layers and strips; per call, so threads scoring
        # pairs with one shared net never share them, and nothing is held between pairs
        ws = _winograd_kernel.Workspace()
        with ieee_fp32_convolutions(self.device):
            for stage in range(len(STAGES)):
                m, h_next = self._stage(h, stage, ws)
                out.append(m)
                counts.append(h[0].shape[2] * h[0].shape[3])
                h = h_next
        return out, counts

    def score_pair(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """DISTS of one pair ``x, y: [1, 3, H, W]`` float in [0, 1] (distorted, reference)."""
        mom, counts = self.moments(x, y)
        s1, s2 = [], []
        for m, n in zip(mom, counts):
            mx, my = m[0] / n, m[1] / n
            vx = m[2] / n - mx * mx
            vy = m[3] / n - my * my
            cxy = m[4] / n - mx * my
            s1.append((2 * mx * my + C1) / (mx * mx + my * my + C1))
            s2.append((2 * cxy + C2) / (vx + vy + C2))
        s1 = torch.cat(s1)
        s2 = torch.cat(s2)
        num = (self.alpha * s1).sum() + (self.beta * s2).sum()
        # same shapes and reductions as the numerator, so identical inputs give exactly 0
        den = (self.alpha * torch.ones_like(s1)).sum() + (self.beta * torch.ones_like(s2)).sum()
        return float(1.0 - num / den)


def _prep(x: torch.Tensor) -> torch.Tensor:
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected [B, 1|3, H, W], got {tuple(x.shape)}")
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def dists(x: torch.Tensor, y: torch.Tensor, net: DISTSNet | None = None, *, device: str | None = None) -> torch.Tensor:
    """DISTS between a distorted batch ``x`` and a reference batch ``y``.

    Args:
        x, y: ``[B, 3, H, W]`` RGB or ``[B, 1, H, W]`` gray, float in [0, 1], ``H, W >= 16``.
        net: a :class:`DISTSNet`; by default one is built from the cached ``vgg16-dists``
            weights (raises :class:`iretouch_bench.core.errors.WeightsError` if they are missing).

    Returns:
        ``[B]`` float64; exactly 0.0 for identical inputs.
    """
    if x.shape != y.shape:
        raise ValueError(f"shape mismatch: {tuple(x.shape)} vs {tuple(y.shape)}")
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise ValueError("NaN or infinite values in DISTS input")
    if min(x.shape[-2:]) < 16:
        raise ValueError(f"image {tuple(x.shape[-2:])} too small for DISTS (needs >= 16 px)")
    if net is None:
        net = default_net(device or str(x.device))
    x, y = _prep(x), _prep(y)
    return torch.tensor([net.score_pair(x[i : i + 1], y[i : i + 1]) for i in range(x.shape[0])],
                        dtype=torch.float64)


_NETS: dict[str, DISTSNet] = {}


def default_net(device: str = "cpu") -> DISTSNet:
    """A cached :class:`DISTSNet` on ``device`` built from the ``vgg16-dists`` weight set."""
    if device not in _NETS:
        _NETS[device] = DISTSNet(load_vgg16_dists(), device=device)
    return _NETS[device]


class DISTS(RunningMean):
    """Running mean of :func:`dists` over pairs (``update``/``compute``)."""

    def __init__(self, net: DISTSNet | None = None, device: str = "cpu"):
        self.net = net or default_net(device)
        super().__init__()

    def metric(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return dists(x, y, self.net)
