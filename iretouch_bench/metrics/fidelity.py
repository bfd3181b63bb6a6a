"""Content fidelity of an edit: SSIM, CW-SSIM, GMSD, DISTS between input and output (paper Sec. 4.1).

Protocol, step by step (also in :data:`PROTOCOL`, which a run records in ``run.json``):

1. **Size.** An output whose size differs from the input's is brought to the input size by
   the suite's one rule, :func:`iretouch_bench.core.resize.match_size` (antialiased bicubic
   on the float RGB output, clipped to [0, 1]); the scorer applies it once per sample, so
   every metric sees the same image. The per-sample ``extra`` records ``resized_output``,
   ``output_size`` and ``input_size``.
2. **Grayscale.** Both images become 8-bit gray: BT.601 luma ``0.299 R + 0.587 G + 0.114 B``
   of the [0, 1] float values, times 255, rounded half-to-even, clipped to [0, 255]. These
   are the Y weights the metrics' reference (pyiqa) uses, and MATLAB's ``rgb2gray`` to 3
   decimals; the rounding reproduces the uint8 images the official MATLAB codes run on.
3. **Histogram matching.** ``skimage.exposure.match_histograms(gray_output, gray_input)``
   (exact CDF matching on the 256 levels); its float result is rounded half-to-even back
   to 8 bits, so every metric sees the same 8-bit image, as MATLAB's ``imhistmatch`` would give.
4. **Metrics** between the matched output (distorted) and the gray input (reference), each
   on ``[1, 1, H, W]`` gray tensors with values ``level / 255``:
   ``ssim`` (:mod:`.ssim`), ``cw_ssim`` (:mod:`.cw_ssim`), ``gmsd`` (:mod:`.gmsd`),
   ``dists`` (:mod:`.dists`, gray repeated to RGB).

This is the ``paper`` protocol, the default. The named variants (``float``, ``dists256``,
``ssim-downsample``) are defined, with what each changes, in :mod:`.protocols`; pass
``protocol=`` to :func:`fidelity_scores`.

Identical input and output give exactly ssim 1, cw_ssim 1, gmsd 0, dists 0. A metric that
cannot be computed (image too small for it, DISTS weights not installed) is ``None`` with
a reason; NaN/inf pixels raise ``ValueError``.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.exposure import match_histograms

from ..core.errors import WeightsError
from ..core.resize import match_size
from .cw_ssim import cw_ssim
from .dists import default_net, dists
from .gmsd import gmsd
from .keys import FIDELITY_KEYS
from .protocols import DEFAULT_PROTOCOL, PROTOCOLS, Protocol, get_protocol
from .ssim import LUMA_WEIGHTS, ssim

#: Name and version of the default (``paper``) protocol; a run records both, and a change to any
#: step bumps the version (the definitions live in :mod:`.protocols`).
PROTOCOL_NAME = PROTOCOLS[DEFAULT_PROTOCOL].name
PROTOCOL_VERSION = PROTOCOLS[DEFAULT_PROTOCOL].version
PROTOCOL = dict(PROTOCOLS[DEFAULT_PROTOCOL].steps)


def _check_image(a: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"{what}: expected an [H, W, 3] RGB array, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"{what}: expected float values in [0, 1], got dtype {a.dtype}")
    if not np.isfinite(a).all():
        raise ValueError(f"{what}: contains NaN or infinite values")
    lo, hi = float(a.min()), float(a.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise ValueError(f"{what}: values outside [0, 1] (min {lo:.4g}, max {hi:.4g})")
    return a


def to_gray_u8(rgb: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` float in [0, 1] -> ``[H, W]`` uint8 BT.601 luma (step 2 of the protocol)."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = LUMA_WEIGHTS[0] * r + LUMA_WEIGHTS[1] * g + LUMA_WEIGHTS[2] * b
    return np.clip(np.rint(y * 255.0), 0, 255).astype(np.uint8)


def to_gray_float(rgb: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` float in [0, 1] -> ``[H, W]`` float64 BT.601 luma in [0, 1], not rounded (``float``)."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    return LUMA_WEIGHTS[0] * r + LUMA_WEIGHTS[1] * g + LUMA_WEIGHTS[2] * b


def matched_gray_pair(input_rgb: np.ndarray, output_rgb: np.ndarray,
                      protocol: str | Protocol | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Steps 1-3: (gray input, histogram-matched gray output, extra).

    uint8 levels for the 8-bit protocols; float64 in [0, 1] for ``float`` (no rounding)."""
    proto = get_protocol(protocol)
    inp = _check_image(input_rgb, "input")
    out = _check_image(output_rgb, "output")
    in_size = [int(inp.shape[0]), int(inp.shape[1])]
    out_size = [int(out.shape[0]), int(out.shape[1])]
    extra: dict = {"resized_output": out_size != in_size, "output_size": out_size, "input_size": in_size}
    if out_size != in_size:  # the scorer resizes first; a direct call gets the same rule
        out, note = match_size(out, tuple(in_size))
        extra["resize_method"] = note["rule"]

    if proto.float_gray:
        g_in = to_gray_float(inp)
        g_match = np.clip(match_histograms(to_gray_float(out), g_in), 0.0, 1.0)
        return g_in, g_match, extra
    g_in = to_gray_u8(inp)
    g_out = to_gray_u8(out)
    matched = match_histograms(g_out, g_in)
    g_match = np.clip(np.rint(matched), 0, 255).astype(np.uint8)
    return g_in, g_match, extra


def _as_tensor(g: np.ndarray, device: str, dtype=torch.float32) -> torch.Tensor:
    """``[H, W]`` gray -> ``[1, 1, H, W]`` in [0, 1]: uint8 as level/255 (float32: every metric maps
    it back to the exact integer level), float gray as it is."""
    if g.dtype == np.uint8:
        return (torch.from_numpy(g.astype(np.float32)) / 255.0)[None, None].to(device)
    return torch.from_numpy(np.ascontiguousarray(g)).to(dtype)[None, None].to(device)


def dists_prepare(g: np.ndarray, short_side: int) -> torch.Tensor:
    """The official DISTS preparation of one 8-bit gray image: ``[1, 1, h, w]`` float32 in [0, 1].

    ``DISTS_pytorch/DISTS_pt.py`` ``prepare_image``: when ``min(size) > short_side``,
    ``torchvision.transforms.functional.resize(PIL image, short_side)`` (short side to
    ``short_side``, long side ``int(short_side * long / short)``, PIL bilinear), then ``ToTensor``.
    """
    from PIL import Image
    from torchvision.transforms import functional as TF  # only this protocol needs torchvision here

    if g.dtype != np.uint8:
        raise ValueError("dists256 prepares 8-bit gray images (as the official code's PIL images)")
    im = Image.fromarray(g, mode="L")
    if min(im.size) > short_side:
        im = TF.resize(im, short_side)
    return TF.to_tensor(im)[None]


def fidelity_scores(input_rgb: np.ndarray, output_rgb: np.ndarray, device: str = "cpu",
                    keys: tuple[str, ...] = FIDELITY_KEYS, protocol: str | Protocol | None = None,
                    ) -> tuple[dict[str, float | None], dict[str, str], dict]:
    """The four content-fidelity metrics of one (input, output) pair.

    Args:
        input_rgb: ``[H, W, 3]`` float32 in [0, 1], the model's input (reference).
        output_rgb: ``[h, w, 3]`` float32 in [0, 1], the model's output (any size; resized back).
        device: ``"cpu"`` or ``"cuda"`` (or ``"cuda:N"``) for the metric computations.
        keys: the fidelity keys to compute (the others are None with reason "not selected").
        protocol: a :mod:`.protocols` name (default ``paper``) or :class:`~.protocols.Protocol`.

    Returns:
        ``(values, reasons, extra)``: ``values`` has keys ``ssim, cw_ssim, gmsd, dists``
        (float, or None when not computable), ``reasons`` maps each None key to a one-line
        reason, ``extra`` holds ``resized_output``, ``output_size``, ``input_size`` (and
        ``resize_method`` when resized), ``protocol`` (``name/version``) and, for ``dists256``,
        ``dists_size`` (the ``[h, w]`` DISTS saw).

    Raises:
        ValueError: NaN/inf values, wrong shape/dtype, or values outside [0, 1].
    """
    proto = get_protocol(protocol)
    g_in, g_match, extra = matched_gray_pair(input_rgb, output_rgb, proto)
    extra["protocol"] = proto.label
    x = _as_tensor(g_match, device)  # distorted (float32)
    y = _as_tensor(g_in, device)  # reference
    # float gray stays float64 where the metric computes in float64 (ssim, cw_ssim)
    x64, y64 = (_as_tensor(g_match, device, torch.float64), _as_tensor(g_in, device, torch.float64)) \
        if proto.float_gray else (x, y)
    values: dict[str, float | None] = {k: None for k in FIDELITY_KEYS}
    reasons: dict[str, str] = {k: "not selected (--metrics/--skip)" for k in FIDELITY_KEYS if k not in keys}
    funcs = {
        "ssim": lambda: ssim(x64, y64, downsample=proto.ssim_downsample, quantize=not proto.float_gray),
        "cw_ssim": lambda: cw_ssim(x64, y64),
        "gmsd": lambda: gmsd(x64, y64, quantize=not proto.float_gray),
    }
    for key, fn in funcs.items():
        if key not in keys:
            continue
        try:
            values[key] = float(fn()[0])
        except ValueError as err:  # only size limits can remain after the checks above
            reasons[key] = str(err)
    if "dists" in keys:
        try:
            if proto.dists_short_side:
                xd = dists_prepare(g_match, proto.dists_short_side).to(device)
                yd = dists_prepare(g_in, proto.dists_short_side).to(device)
                extra["dists_size"] = [int(xd.shape[-2]), int(xd.shape[-1])]
            else:
                xd, yd = x, y
            values["dists"] = float(dists(xd, yd, default_net(device))[0])
        except (WeightsError, ValueError) as err:
            reasons["dists"] = str(err)
    return values, reasons, extra
