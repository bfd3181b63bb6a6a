"""Image-adaptive 3D-LUT (Zeng et al., TPAMI 2020): architecture, LUT application, weight files.

Written from the paper; the official code (Apache-2.0) was read only to learn the layout of
its released weight files, so :func:`convert_official` can load them.

The model
---------
* A small CNN (:class:`LutClassifier`, ~270 K parameters) looks at a 256x256 resize of the
  input and predicts ``n_luts`` weights ``w [B, n]``. Five stride-2 3x3 convolutions
  (3 -> 16 -> 32 -> 64 -> 128 -> 128 channels; LeakyReLU 0.2, instance norm after the first
  four), dropout, and an 8x8 convolution to ``n`` outputs (the paper's design).
* ``n_luts`` learned basis LUTs, each ``[3, D, D, D]`` with ``D = 33`` (the first
  initialised to the identity, the others to zero) are fused per image,
  ``LUT = sum_n w_n LUT_n``, and applied to the full-resolution input by trilinear
  interpolation (:func:`apply_lut`).

LUT layout (the official one): ``lut[c, b, g, r]`` is output channel ``c`` at the lattice
point ``(r, g, b) = (r, g, b) / (D - 1)``; the identity LUT has ``lut[0, b, g, r] = r/(D-1)``,
``lut[1] = g/(D-1)``, ``lut[2] = b/(D-1)``. Red indexes the last (fastest) axis, so the LUT
is a 5-D ``grid_sample`` input ``[B, C=3, D=b, H=g, W=r]`` sampled at ``(x, y, z) = (r, g, b)``.

Regularisers (paper Sec. 3.3, written here with means so they do not depend on ``D``):

* smoothness ``R_s = sum_n sum_axis mean((LUT_n[.., i+1] - LUT_n[.., i])^2) + mean(w^2)``;
* monotonicity ``R_m = sum_n sum_axis mean(relu(LUT_n[.., i] - LUT_n[.., i+1]))`` (every
  output channel must not decrease along any input axis).

Loss (the paper's): ``MSE + 1e-4 R_s + 10 R_m``.

This module imports torch; the adapter (:mod:`.lut3d`) imports it only when a model loads.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from iretouch_bench.core.atomic import cache_dir, write_text_atomic
from iretouch_bench.core.errors import WeightsError
from iretouch_bench.core.hashing import sha256_bytes, sha256_file
from iretouch_bench.core.resize import resize
from iretouch_bench.weights.store import load_safetensors, save_safetensors

__all__ = ["Lut3DConfig", "LutClassifier", "Lut3DNet", "identity_lut", "apply_lut", "smoothness",
           "monotonicity", "low_view", "save_lut3d", "load_lut3d", "convert_official", "SHIPPED_WEIGHTS",
           "OFFICIAL_CLASSIFIER_KEYS"]

SHIPPED_WEIGHTS = Path(__file__).resolve().parent / "weights" / "lut3d.safetensors"
#: side of the square view the classifier sees
LOW_SIZE = 256
#: pixels per grid_sample call at full resolution (bounds peak memory at 4K to ~100 MB)
_CHUNK = 1 << 21
#: training-time fields kept out of the weights file (so a retrain is byte-identical)
VOLATILE_METADATA = {"wall_seconds", "pool_seconds"}


@dataclass(frozen=True)
class Lut3DConfig:
    """Architecture: ``n_luts`` basis LUTs of ``dim``^3 lattice points, classifier ``width``."""

    n_luts: int = 3
    dim: int = 33
    width: int = 16
    dropout: float = 0.5

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Lut3DConfig":
        return cls(**{k: d[k] for k in ("n_luts", "dim", "width", "dropout") if k in d})


# --------------------------------------------------------------------------- LUT maths
def identity_lut(dim: int = 33, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The identity LUT ``[3, dim, dim, dim]`` in the ``[c, b, g, r]`` layout."""
    v = torch.linspace(0.0, 1.0, dim, dtype=torch.float64)
    b, g, r = torch.meshgrid(v, v, v, indexing="ij")
    return torch.stack([r, g, b]).to(dtype)


def apply_lut(lut: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Trilinear interpolation of ``lut`` at the colours of ``image``.

    Args:
        lut: ``[3, D, D, D]`` (one LUT for the batch) or ``[B, 3, D, D, D]``, ``[c, b, g, r]`` layout.
        image: ``[B, 3, H, W]`` RGB; values are clamped to [0, 1] (the lattice's domain).
    Returns:
        ``[B, 3, H, W]``, the LUT's output (not clamped: a learned LUT may overshoot).

    One 5-D ``grid_sample`` (``mode="bilinear"`` is trilinear in 5-D) with
    ``align_corners=True``, so colour ``v`` lands exactly on lattice coordinate ``v (D - 1)``.
    """
    B, _, H, W = image.shape
    if lut.dim() == 4:
        lut = lut.unsqueeze(0).expand(B, *lut.shape)
    # (x, y, z) = (r, g, b) indexes (W, H, D) of the LUT volume
    grid = image.clamp(0.0, 1.0).permute(0, 2, 3, 1).reshape(B, 1, 1, H * W, 3) * 2.0 - 1.0
    out = F.grid_sample(lut.to(image.dtype), grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.reshape(B, 3, H, W)


def _axis_diffs(lut: torch.Tensor) -> list[torch.Tensor]:
    """Forward differences of ``lut [..., 3, D, D, D]`` along r, g and b."""
    return [lut[..., :, :, 1:] - lut[..., :, :, :-1],   # along r
            lut[..., :, 1:, :] - lut[..., :, :-1, :],   # along g
            lut[..., 1:, :, :] - lut[..., :-1, :, :]]   # along b


def smoothness(luts: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """``R_s``: per basis LUT the mean squared difference of neighbours summed over the three
    axes, summed over LUTs (``luts [N, 3, D, D, D]``), plus ``mean(weights^2)`` if given.
    The identity LUT scores ``1/(D-1)^2`` (one channel in three moves ``1/(D-1)`` per step)."""
    total = sum(d.pow(2).flatten(1).mean(1) for d in _axis_diffs(luts)).sum()
    if weights is not None:
        total = total + weights.pow(2).mean()
    return total


def monotonicity(luts: torch.Tensor) -> torch.Tensor:
    """``R_m``: per basis LUT the mean of ``relu(LUT[i] - LUT[i+1])`` along each axis, summed
    over axes and LUTs (``luts [N, 3, D, D, D]``). Zero for any non-decreasing LUT."""
    return sum(F.relu(-d).flatten(1).mean(1) for d in _axis_diffs(luts)).sum()


# --------------------------------------------------------------------------- networks
class LutClassifier(nn.Module):
    """``[B, 3, 256, 256]`` in [0, 1] -> LUT weights ``[B, n_luts]`` (the paper's small CNN)."""

    def __init__(self, n_luts: int = 3, width: int = 16, dropout: float = 0.5) -> None:
        super().__init__()
        w = width
        chans = [3, w, 2 * w, 4 * w, 8 * w, 8 * w]
        self.conv1, self.conv2, self.conv3, self.conv4, self.conv5 = (
            nn.Conv2d(chans[i], chans[i + 1], 3, stride=2, padding=1) for i in range(5))
        self.norm1, self.norm2, self.norm3, self.norm4 = (nn.InstanceNorm2d(c, affine=True) for c in chans[1:5])
        self.dropout = nn.Dropout(dropout)
        # 256 / 2^5 = 8: an 8x8 kernel sees the whole remaining map
        self.head = nn.Conv2d(8 * w, n_luts, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
        # conv -> activation -> norm, the order of the paper's network (and its weights)
        x = self.norm1(act(self.conv1(x)))
        x = self.norm2(act(self.conv2(x)))
        x = self.norm3(act(self.conv3(x)))
        x = self.norm4(act(self.conv4(x)))
        x = act(self.conv5(x))
        return self.head(self.dropout(x)).flatten(1)


class Lut3DNet(nn.Module):
    """Classifier + basis LUTs. ``forward(low, image) -> (output, weights)``."""

    def __init__(self, config: Lut3DConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or Lut3DConfig()
        self.classifier = LutClassifier(cfg.n_luts, cfg.width, cfg.dropout)
        luts = torch.zeros(cfg.n_luts, 3, cfg.dim, cfg.dim, cfg.dim)
        luts[0] = identity_lut(cfg.dim)
        self.luts = nn.Parameter(luts)

    def init_for_training(self) -> None:
        """Start near the identity: small random head weights (never zero: a zero weight and a
        zero LUT would give each other zero gradient forever) and bias (1, 0, ..., 0)."""
        nn.init.normal_(self.classifier.head.weight, std=1e-3)
        with torch.no_grad():
            self.classifier.head.bias.zero_()
            self.classifier.head.bias[0] = 1.0

    def fused(self, low: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``low [B, 3, 256, 256]`` -> (fused LUTs ``[B, 3, D, D, D]``, weights ``[B, n]``)."""
        w = self.classifier(low)
        return torch.einsum("bn,ncxyz->bcxyz", w, self.luts), w

    def forward(self, low: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lut, w = self.fused(low)
        return apply_lut(lut, image), w

    @torch.no_grad()
    def enhance(self, image: np.ndarray, device: str = "cpu") -> np.ndarray:
        """Inference: float32 ``[H, W, 3]`` in [0, 1] -> float32 ``[H, W, 3]`` in [0, 1]."""
        low = torch.from_numpy(low_view(image)).permute(2, 0, 1)[None].to(device)
        lut, _ = self.fused(low)
        flat = torch.from_numpy(np.ascontiguousarray(image, np.float32).reshape(1, -1, 3))
        out = torch.empty_like(flat)
        for s in range(0, flat.shape[1], _CHUNK):  # chunks bound the grid tensor's memory
            part = flat[:, s:s + _CHUNK].to(device).permute(0, 2, 1)[..., None]  # [1, 3, n, 1]
            out[:, s:s + _CHUNK] = apply_lut(lut, part)[..., 0].permute(0, 2, 1).clamp(0.0, 1.0).cpu()
        return out.reshape(image.shape).numpy()


def low_view(image: np.ndarray) -> np.ndarray:
    """The classifier's view: float32 ``[256, 256, 3]`` (the suite's resizer, bilinear)."""
    return np.clip(resize(np.asarray(image, np.float32), (LOW_SIZE, LOW_SIZE), "bilinear"), 0.0, 1.0)


# --------------------------------------------------------------------------- weight files
def save_lut3d(net: Lut3DNet, path: str | Path, metadata: dict[str, str] | None = None) -> tuple[Path, Path]:
    """Write ``<path>.safetensors`` (float32) and ``<path>.json`` (config + metadata).

    Run-dependent fields (:data:`VOLATILE_METADATA`) stay in the JSON only, and the
    safetensors metadata is one key of sorted JSON, so retraining with the same seed gives
    the same bytes."""
    path = Path(path)
    st, cj = path.with_suffix(".safetensors"), path.with_suffix(".json")
    stable = {k: v for k, v in (metadata or {}).items() if k not in VOLATILE_METADATA}
    header = {"format": "lut3d", "config": net.config.to_json(), **stable}
    save_safetensors({k: v.detach().float().cpu() for k, v in net.state_dict().items()}, st,
                     metadata={"iretouch_bench": json.dumps(header, sort_keys=True)})
    write_text_atomic(cj, json.dumps({"config": net.config.to_json(), **({"metadata": metadata} if metadata else {})},
                                     indent=2, sort_keys=True) + "\n")
    return st, cj


def _header(path: Path) -> dict[str, Any]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    return json.loads(meta.get("iretouch_bench", "{}"))


def load_lut3d(path: str | Path | None = None) -> Lut3DNet:
    """A :class:`Lut3DNet` from a suite-format safetensors file (default: the shipped one).
    The config comes from the file's own header. Raises a one-line WeightsError naming the file."""
    st = Path(path) if path is not None else SHIPPED_WEIGHTS
    if not st.is_file():
        raise WeightsError(f"{st}: 3D-LUT weights not found (train them: iretouch-bench train 3dlut)")
    try:
        head = _header(st)
        if head.get("format") != "lut3d":
            raise ValueError(f"not a 3D-LUT weight file (format {head.get('format')!r})")
        net = Lut3DNet(Lut3DConfig.from_json(head["config"]))
        net.load_state_dict(load_safetensors(st), strict=True)
    except WeightsError:
        raise
    except Exception as err:
        raise WeightsError(f"{st}: cannot load 3D-LUT weights ({type(err).__name__}: {err})") from err
    return net.eval()


# --------------------------------------------------------------------------- official weights
#: state_dict keys of the official ``Classifier`` (an ``nn.Sequential`` named ``model``) -> ours
OFFICIAL_CLASSIFIER_KEYS: dict[str, str] = {
    "model.1": "conv1", "model.3": "norm1", "model.4": "conv2", "model.6": "norm2", "model.7": "conv3",
    "model.9": "norm3", "model.10": "conv4", "model.12": "norm4", "model.13": "conv5", "model.16": "head",
}


def _official_pair(path: Path) -> tuple[Path, Path]:
    """(classifier file, LUTs file) from a folder holding both, or from either file (the
    other one beside it: ``classifier[_N].pth`` <-> ``LUTs[_N].pth``)."""
    if path.is_dir():
        cls, luts = path / "classifier.pth", path / "LUTs.pth"
    elif path.name.startswith("classifier"):
        cls, luts = path, path.with_name("LUTs" + path.name[len("classifier"):])
    elif path.name.startswith("LUTs"):
        cls, luts = path.with_name("classifier" + path.name[len("LUTs"):]), path
    else:
        raise WeightsError(f"{path}: not an official 3D-LUT file (expected classifier[_N].pth and LUTs[_N].pth "
                           f"side by side, or a folder holding them, or a .safetensors file)")
    for p in (cls, luts):
        if not p.is_file():
            raise WeightsError(f"{p}: not found (the official 3D-LUT release is two files, classifier.pth and "
                               f"LUTs.pth, in one folder)")
    return cls, luts


def _restricted_torch_load(path: Path) -> Any:
    """``torch.load`` with ``weights_only=True``: torch's restricted unpickler, which rebuilds
    tensors and plain containers only and refuses any other global (so a pickle's
    ``__reduce__`` payload never runs). CUDA-saved tensors land on the CPU."""
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = " ".join(str(err).split())[:200]
        raise WeightsError(f"{path}: refused by the restricted unpickler (holds more than tensors: {first})") from err
    except Exception as err:
        raise WeightsError(f"{path}: unreadable as a torch weight file ({type(err).__name__}: {err})") from err


def official_state_dict(classifier_file: Path, luts_file: Path) -> tuple[dict[str, torch.Tensor], Lut3DConfig]:
    """Map the two official files to a :class:`Lut3DNet` state dict (and its config)."""
    cls_sd = _restricted_torch_load(classifier_file)
    lut_sd = _restricted_torch_load(luts_file)
    if not isinstance(cls_sd, dict) or not all(isinstance(v, torch.Tensor) for v in cls_sd.values()):
        raise WeightsError(f"{classifier_file}: expected a state dict of tensors")
    out: dict[str, torch.Tensor] = {}
    for key, val in cls_sd.items():
        prefix, _, leaf = key.rpartition(".")
        if prefix not in OFFICIAL_CLASSIFIER_KEYS:
            raise WeightsError(f"{classifier_file}: unexpected key {key!r} for the official 3D-LUT classifier")
        out[f"classifier.{OFFICIAL_CLASSIFIER_KEYS[prefix]}.{leaf}"] = val.float()
    if not isinstance(lut_sd, dict) or not lut_sd:
        raise WeightsError(f"{luts_file}: expected a dict {{'0': {{'LUT': tensor}}, '1': ...}}")
    try:
        order = sorted(lut_sd, key=int)
        luts = torch.stack([lut_sd[k]["LUT"].float() for k in order])
    except (ValueError, KeyError, TypeError) as err:
        raise WeightsError(f"{luts_file}: not the official LUT layout ({type(err).__name__}: {err})") from err
    if luts.dim() != 5 or luts.shape[1] != 3 or len(set(luts.shape[2:])) != 1:
        raise WeightsError(f"{luts_file}: LUTs have shape {tuple(luts.shape)}, expected [N, 3, D, D, D]")
    out["luts"] = luts
    width = int(out.get("classifier.conv1.weight", torch.empty(16)).shape[0])
    cfg = Lut3DConfig(n_luts=int(luts.shape[0]), dim=int(luts.shape[2]), width=width)
    expected = set(Lut3DNet(cfg).state_dict())
    if set(out) != expected:
        missing = sorted(expected - set(out))
        raise WeightsError(f"{classifier_file}: missing official keys for {', '.join(missing[:4])}")
    return out, cfg


def convert_official(path: str | Path) -> Path:
    """The official release (``classifier.pth`` + ``LUTs.pth``, legacy torch pickles saved on
    CUDA) converted once to a suite-format safetensors file in the user cache; later calls
    return the cached file. Keyed by the sha256 of both files."""
    cls_file, luts_file = _official_pair(Path(path))
    key = sha256_bytes((sha256_file(cls_file) + sha256_file(luts_file)).encode())[:16]
    target = cache_dir("weights", "3dlut") / f"official-{key}.safetensors"
    if target.is_file():
        return target
    sd, cfg = official_state_dict(cls_file, luts_file)
    net = Lut3DNet(cfg)
    net.load_state_dict(sd, strict=True)
    save_lut3d(net, target.with_suffix(""), metadata={
        "source": "official release (Zeng et al.), converted by iretouch-bench",
        "classifier_sha256": sha256_file(cls_file), "luts_sha256": sha256_file(luts_file)})
    return target
