r"""RSFNet, map variant (after Ouyang et al., ICCV 2023): architecture, filters, weight files.

Implemented from the paper's idea only (per-pixel strengths of interpretable colour filters,
predicted at low resolution and applied at full resolution); the official code (GPL-3.0,
non-commercial) was not read. The filters below are this suite's own definitions.

The model
---------
A light backbone (four stride-2 convolutions, one decoder stage with a skip connection, and a
global branch fed with pooled features plus simple image statistics, :func:`image_stats`) looks
at a 256x256 view of the input (the suite's resizer, bilinear) and predicts seven strength maps ``m_k`` at 32x32 (``tanh``, so each lies in (-1, 1)) and one
per-image RGB shift ``b`` (``tanh``). The maps are upsampled bilinearly to the input's size and
the seven filter increments, each computed from the *same* input ``I``, are summed:

    ``O = clip(I + sum_k Delta_k(I, m_k) + 0.1 b, 0, 1)``

Filters (``I`` an RGB pixel in [0, 1]; ``Y = 0.2126 R + 0.7152 G + 0.0722 B`` its Rec. 709
luma; ``mu`` the mean of ``Y`` over the whole image; ``c = I - (R+G+B)/3`` its chroma about
the grey axis; ``k = (1, 1, 1)/sqrt(3)`` the grey axis). Every increment is exactly zero
when its map is zero, so zero maps and a zero shift return the input unchanged.

=============  =====================================================  ===========================
filter         increment ``Delta``                                    at ``m = +1`` / ``m = -1``
=============  =====================================================  ===========================
contrast       ``0.5 m (I - mu)``                                     contrast x1.5 / x0.5 about the mean
saturation     ``m (I - Y)``                                          chroma x2 / grey
hue            ``(cos t - 1) c + sin t (k x c)``, ``t = (pi/6) m``    chroma rotated +30 / -30 deg about grey
temperature    ``0.2 m I * (1, 0, -1)``                               red x1.2, blue x0.8 (warmer) / cooler
lift           ``0.25 m (1 - I)``                                     blacks raised to 0.25 / lowered
gamma          ``J^(2^-m) - J``, ``J = max(I, 1e-4)``                 gamma 0.5 (brighter mid-tones) / 2
gain           ``0.5 m I``                                            exposure x1.5 / x0.5
shift          ``0.1 b`` (one RGB vector per image)                   +-0.1 per channel
=============  =====================================================  ===========================

Training loss: MSE to the target (``training/rsfnet.py``).

This module imports torch; the adapter (:mod:`.rsfnet`) imports it only when a model loads.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from iretouch_bench.core.atomic import write_text_atomic
from iretouch_bench.core.errors import WeightsError
from iretouch_bench.core.resize import resize
from iretouch_bench.weights.store import load_safetensors, save_safetensors

__all__ = ["FILTERS", "RSFConfig", "RSFNet", "apply_filters", "low_view", "save_rsfnet", "load_rsfnet"]

#: the per-pixel filters, in map-channel order
FILTERS = ("contrast", "saturation", "hue", "temperature", "lift", "gamma", "gain")
LOW_SIZE = 256
SHIFT_SCALE = 0.1
_LUMA = (0.2126, 0.7152, 0.0722)
#: rows per chunk at full resolution (bounds the filters' temporaries)
_CHUNK_PIXELS = 1 << 20
VOLATILE_METADATA = {"wall_seconds", "pool_seconds"}


@dataclass(frozen=True)
class RSFConfig:
    """Backbone width ``width`` (first stage; then 2x, 4x, 4x) and map resolution ``map_size``."""

    width: int = 16
    map_size: int = 32

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "RSFConfig":
        return cls(**{k: d[k] for k in ("width", "map_size") if k in d})


def _luma(img: torch.Tensor) -> torch.Tensor:
    """``[B, 3, H, W]`` -> ``[B, 1, H, W]`` Rec. 709 luma."""
    w = img.new_tensor(_LUMA).view(1, 3, 1, 1)
    return (img * w).sum(1, keepdim=True)


def apply_filters(image: torch.Tensor, maps: torch.Tensor, shift: torch.Tensor,
                  mean_luma: torch.Tensor | None = None) -> torch.Tensor:
    """``O = clip(I + sum_k Delta_k + 0.1 b, 0, 1)`` (the module docstring defines each filter).

    Args:
        image: ``[B, 3, H, W]`` in [0, 1].
        maps: ``[B, 7, H, W]`` strengths in (-1, 1), channels in :data:`FILTERS` order.
        shift: ``[B, 3]`` in (-1, 1).
        mean_luma: ``[B]`` mean luma of the *whole* image (pass it when ``image`` is a chunk);
            default: computed from ``image``.
    Returns:
        ``[B, 3, H, W]`` in [0, 1].
    """
    I = image
    y = _luma(I)
    mu = y.mean((1, 2, 3)) if mean_luma is None else mean_luma
    m = {name: maps[:, i:i + 1] for i, name in enumerate(FILTERS)}
    c = I - I.mean(1, keepdim=True)
    t = (math.pi / 6.0) * m["hue"]
    k_cross_c = torch.stack([c[:, 2] - c[:, 1], c[:, 0] - c[:, 2], c[:, 1] - c[:, 0]], 1) / math.sqrt(3.0)
    warm = I.new_tensor([1.0, 0.0, -1.0]).view(1, 3, 1, 1)
    J = I.clamp_min(1e-4)
    delta = (0.5 * m["contrast"] * (I - mu.view(-1, 1, 1, 1))
             + m["saturation"] * (I - y)
             + (torch.cos(t) - 1.0) * c + torch.sin(t) * k_cross_c
             + 0.2 * m["temperature"] * I * warm
             + 0.25 * m["lift"] * (1.0 - I)
             + (J.pow(torch.exp2(-m["gamma"])) - J)
             + 0.5 * m["gain"] * I
             + SHIFT_SCALE * shift.view(-1, 3, 1, 1))
    return (I + delta).clamp(0.0, 1.0)


#: length of :func:`image_stats`
N_STATS = 11
_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def image_stats(low: torch.Tensor) -> torch.Tensor:
    """``[B, 3, h, w]`` -> ``[B, 11]``: per-channel mean and standard deviation, and the 5/25/50/75/95%
    quantiles of luma. The global branch gets them directly: exposure, white balance, contrast
    and saturation are image-level statistics a small CNN would otherwise have to learn to pool."""
    y = _luma(low).flatten(1)
    q = torch.quantile(y, y.new_tensor(_QUANTILES), dim=1).T
    return torch.cat([low.mean((2, 3)), low.std((2, 3)), q], 1)


class RSFNet(nn.Module):
    """``low [B, 3, 256, 256]`` -> (maps ``[B, 7, s, s]`` in (-1, 1), shift ``[B, 3]`` in (-1, 1))."""

    def __init__(self, config: RSFConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or RSFConfig()
        w = cfg.width
        self.enc1 = nn.Conv2d(3, w, 3, stride=2, padding=1)            # 128
        self.enc2 = nn.Conv2d(w, 2 * w, 3, stride=2, padding=1)        # 64
        self.enc3 = nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1)    # 32
        self.enc4 = nn.Conv2d(4 * w, 4 * w, 3, stride=2, padding=1)    # 16
        self.glob = nn.Linear(4 * w + N_STATS, 4 * w)                  # image-level context
        self.dec = nn.Conv2d(8 * w, 4 * w, 3, padding=1)               # 32, with the skip from enc3
        self.dec_glob = nn.Linear(4 * w, 4 * w)
        self.maps_head = nn.Conv2d(4 * w, len(FILTERS), 3, padding=1)
        self.shift_head = nn.Linear(4 * w, 3)
        # zero heads: a new network is the identity (zero maps, zero shift)
        for head in (self.maps_head, self.shift_head):
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def forward(self, low: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e1 = F.relu(self.enc1(low))
        e2 = F.relu(self.enc2(e1))
        e3 = F.relu(self.enc3(e2))
        e4 = F.relu(self.enc4(e3))
        g = F.relu(self.glob(torch.cat([e4.mean((2, 3)), image_stats(low)], 1)))
        up = F.interpolate(e4, size=e3.shape[-2:], mode="bilinear", align_corners=False)
        d = F.relu(self.dec(torch.cat([up, e3], 1)) + self.dec_glob(g)[:, :, None, None])
        maps = torch.tanh(self.maps_head(d))
        if maps.shape[-1] != self.config.map_size:
            maps = F.interpolate(maps, size=(self.config.map_size,) * 2, mode="bilinear", align_corners=False)
        return maps, torch.tanh(self.shift_head(g))

    @staticmethod
    def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Strength maps brought to the image's ``(H, W)`` (bilinear, ``align_corners=False``)."""
        return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)

    def forward_full(self, low: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Training path: ``low [B, 3, 256, 256]``, ``image [B, 3, H, W]`` -> output ``[B, 3, H, W]``."""
        maps, shift = self(low)
        return apply_filters(image, self.upsample(maps, image.shape[-2:]), shift)

    @torch.no_grad()
    def enhance(self, image: np.ndarray, device: str = "cpu") -> np.ndarray:
        """Inference: float32 ``[H, W, 3]`` in [0, 1] -> float32 ``[H, W, 3]`` in [0, 1]."""
        H, W = image.shape[:2]
        low = torch.from_numpy(low_view(image)).permute(2, 0, 1)[None].to(device)
        maps, shift = self(low)
        full = torch.from_numpy(np.ascontiguousarray(image, np.float32)).permute(2, 0, 1)[None].to(device)
        mu = _luma(full).mean((1, 2, 3))
        maps = self.upsample(maps, (H, W))
        out = torch.empty_like(full)
        rows = max(1, _CHUNK_PIXELS // W)
        for r in range(0, H, rows):  # chunks bound the temporaries of the seven filters
            out[:, :, r:r + rows] = apply_filters(full[:, :, r:r + rows], maps[:, :, r:r + rows], shift, mu)
        return out[0].permute(1, 2, 0).cpu().numpy()


def low_view(image: np.ndarray) -> np.ndarray:
    """The backbone's view: float32 ``[256, 256, 3]`` (the suite's resizer, bilinear)."""
    return np.clip(resize(np.asarray(image, np.float32), (LOW_SIZE, LOW_SIZE), "bilinear"), 0.0, 1.0)


def save_rsfnet(net: RSFNet, path: str | Path, metadata: dict[str, str] | None = None) -> tuple[Path, Path]:
    """``<path>.safetensors`` (float32; config and stable metadata in one sorted-JSON header key,
    so a retrain with the same seed is byte-identical) and ``<path>.json``."""
    path = Path(path)
    st, cj = path.with_suffix(".safetensors"), path.with_suffix(".json")
    stable = {k: v for k, v in (metadata or {}).items() if k not in VOLATILE_METADATA}
    header = {"format": "rsfnet-maps", "config": net.config.to_json(), **stable}
    save_safetensors({k: v.detach().float().cpu() for k, v in net.state_dict().items()}, st,
                     metadata={"iretouch_bench": json.dumps(header, sort_keys=True)})
    write_text_atomic(cj, json.dumps({"config": net.config.to_json(), **({"metadata": metadata} if metadata else {})},
                                     indent=2, sort_keys=True) + "\n")
    return st, cj


def load_rsfnet(path: str | Path) -> RSFNet:
    """An :class:`RSFNet` from a suite-format safetensors file (config from its header).
    Raises a one-line WeightsError naming the file."""
    from safetensors import safe_open

    st = Path(path)
    if not st.is_file():
        raise WeightsError(f"{st}: RSFNet weights not found (train them: iretouch-bench train rsfnet)")
    try:
        with safe_open(str(st), framework="pt") as f:
            head = json.loads((f.metadata() or {}).get("iretouch_bench", "{}"))
        if head.get("format") != "rsfnet-maps":
            raise ValueError(f"not an RSFNet weight file (format {head.get('format')!r})")
        net = RSFNet(RSFConfig.from_json(head["config"]))
        net.load_state_dict(load_safetensors(st), strict=True)
    except Exception as err:
        raise WeightsError(f"{st}: cannot load RSFNet weights ({type(err).__name__}: {err})") from err
    return net.eval()
