"""The shipped small InstantRetouch-style model (what ``ours`` runs without ``--weights``).

NOT the paper's distilled generator (no InstantRetouch weights are public). It keeps the
paper's bilateral design -- adapter, learned guidance map, full-resolution slice-and-apply --
and replaces the diffusion low-resolution branch by:

* a small CNN image encoder on a fixed ``lowres x lowres`` area-downsampled view of the input
  (so its cost does not depend on the input size), FiLM-conditioned on
* the instruction's conditioning vector :func:`text_features`: the paper's attribute bank
  (Sec. 3.4.2; :func:`iretouch_bench.vocab.attributes.attribute_vector`, one confidence per
  atomic attribute such as ``brightness:up`` or ``style:vintage``), two flags (the instruction
  names a region; a region mask is given) and a hashed bag-of-words embedding of the text
  (words and word bigrams, signed feature hashing, L2-normalised).

The attribute bank belongs to the harness and grows (``iretouch_bench.vocab``, versioned by
``VOCAB_VERSION``). The network's input size must not follow it: the config records the
vocabulary version and the attribute list the model was trained with, the conditioning vector
is built from that recorded list, and loading weights under another vocabulary is a one-line
:class:`~iretouch_bench.core.errors.WeightsError` naming the file and both versions.

Weights: ``models/weights/ours_small.safetensors`` + ``ours_small.json`` (the config), produced
by ``iretouch-bench train ours-small`` (:mod:`iretouch_bench.training.small`; see MODEL_CARD.md).
"""

from __future__ import annotations

import hashlib
import json
import re
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from iretouch_bench.core.errors import WeightsError
from iretouch_bench.vocab.attributes import ATTRIBUTES, VOCAB_VERSION, attribute_vector, match_attributes
from iretouch_bench.weights.store import load_safetensors, save_safetensors

from .adapter import BilateralAdapter
from .lowres import area_resize_hwc

__all__ = ["SmallConfig", "SmallRetouchNet", "hashed_bow", "text_features", "vocabulary_mismatch", "WEIGHTS_DIR",
           "SHIPPED_WEIGHTS", "SHIPPED_CONFIG", "read_config", "load_small", "save_small"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED_WEIGHTS = WEIGHTS_DIR / "ours_small.safetensors"
SHIPPED_CONFIG = WEIGHTS_DIR / "ours_small.json"

#: training-metadata keys that differ between identical runs (kept out of the safetensors file)
VOLATILE_METADATA = ("wall_seconds",)

_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)?")


def hashed_bow(text: str, dim: int = 256) -> np.ndarray:
    """Signed feature-hashing bag of words + bigrams of ``text`` -> float32 ``[dim]``, L2 norm 1
    (all zeros for empty text). Stable across processes (blake2b, not Python's salted hash)."""
    words = _WORD_RE.findall(text.lower())
    tokens = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
    vec = np.zeros(dim, np.float32)
    for tok in tokens:
        h = int.from_bytes(hashlib.blake2b(tok.encode("utf-8"), digest_size=8).digest(), "little")
        vec[h % dim] += 1.0 if (h >> 63) & 1 else -1.0
    n = float(np.linalg.norm(vec))
    return vec / n if n > 0 else vec


def text_features(instruction: str, has_mask: bool, hash_dim: int = 256,
                  attributes: tuple[str, ...] = ATTRIBUTES) -> np.ndarray:
    """Conditioning vector float32 ``[len(attributes) + 2 + hash_dim]``: ``[attribute
    confidences (0..1) in the order of ``attributes`` (a model passes the list it was trained
    with), names-a-region flag, mask-given flag, hashed BoW]``."""
    attrs = attribute_vector(instruction, tuple(attributes)).astype(np.float32)
    regional = float(any(m.region is not None for m in match_attributes(instruction)))
    return np.concatenate([attrs, np.array([regional, float(has_mask)], np.float32),
                           hashed_bow(instruction, hash_dim)]).astype(np.float32)


@dataclass
class SmallConfig:
    """Architecture of :class:`SmallRetouchNet` (saved next to the weights as JSON), including
    the instruction vocabulary it reads: ``vocab_version`` and ``attributes`` (the attribute
    list, in input order), by default the suite's current ones."""

    lowres: int = 128
    widths: tuple[int, ...] = (16, 32, 64, 64)
    cond_dim: int = 64
    hash_dim: int = 256
    vocab_version: str = VOCAB_VERSION
    attributes: tuple[str, ...] = ATTRIBUTES
    grid_depth: int = 8
    grid_size: int = 16
    n_knots: int = 16
    hidden: int = 64
    extra: dict = field(default_factory=dict)

    @property
    def n_attributes(self) -> int:
        return len(self.attributes)

    @property
    def cond_in(self) -> int:
        return self.n_attributes + 2 + self.hash_dim

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"] = list(self.widths)
        d["attributes"] = list(self.attributes)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "SmallConfig":
        """Inverse of :meth:`to_json`. The vocabulary is never defaulted: a config that does not
        record it raises ``ValueError`` (its input size would otherwise follow today's bank)."""
        d = dict(d)
        if not isinstance(d.get("vocab_version"), str) or not isinstance(d.get("attributes"), list):
            raise ValueError("records no instruction vocabulary (config.vocab_version and config.attributes)")
        d["widths"] = tuple(d.get("widths", cls.widths))
        d["attributes"] = tuple(d["attributes"])
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


def vocabulary_mismatch(config: SmallConfig) -> str | None:
    """None when ``config``'s recorded vocabulary is the suite's, else what differs (a phrase)."""
    if config.vocab_version == VOCAB_VERSION and tuple(config.attributes) == ATTRIBUTES:
        return None
    if config.vocab_version == VOCAB_VERSION:
        return (f"its attribute list ({config.n_attributes} attributes) differs from this suite's "
                f"vocabulary {VOCAB_VERSION} ({len(ATTRIBUTES)} attributes) under the same version")
    return (f"trained with instruction vocabulary {config.vocab_version} ({config.n_attributes} attributes), "
            f"this suite has {VOCAB_VERSION} ({len(ATTRIBUTES)} attributes)")


class _Stage(nn.Module):
    """conv3x3 stride 2 -> FiLM(cond) -> SiLU -> conv3x3 -> SiLU."""

    def __init__(self, cin: int, cout: int, cond_dim: int) -> None:
        super().__init__()
        self.down = nn.Conv2d(cin, cout, 3, stride=2, padding=1)
        self.film = nn.Linear(cond_dim, 2 * cout)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.conv = nn.Conv2d(cout, cout, 3, padding=1)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        x = self.down(x)
        gamma, beta = self.film(c).chunk(2, dim=1)
        x = x * (1 + gamma[..., None, None]) + beta[..., None, None]
        return F.silu(self.conv(F.silu(x)))


class SmallRetouchNet(nn.Module):
    """Low-resolution branch of the shipped model.

    ``forward(lowres [B, 3, L, L] in [0, 1], cond [B, cond_in]) -> (grid [B, 12, D, G, G],
    guide_delta [B, P])``; :meth:`guidance_params` turns ``guide_delta`` into
    ``(knots [B, 3, K], mix [B, 3], bias [B, 1])``.
    """

    def __init__(self, config: SmallConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or SmallConfig()
        self.cond = nn.Sequential(nn.Linear(cfg.cond_in, cfg.cond_dim), nn.SiLU(),
                                  nn.Linear(cfg.cond_dim, cfg.cond_dim), nn.SiLU())
        stages, cin = [], 3
        for w in cfg.widths:
            stages.append(_Stage(cin, w, cfg.cond_dim))
            cin = w
        self.stages = nn.ModuleList(stages)
        # The local features come from the stage whose resolution is closest to the grid size.
        self._local_stage = int(np.argmin([abs(cfg.lowres / 2 ** (i + 1) - cfg.grid_size) for i in range(len(cfg.widths))]))
        glob_dim = cfg.widths[-1] + cfg.cond_dim
        self.glob = nn.Sequential(nn.Linear(glob_dim, cfg.hidden), nn.SiLU())
        self.adapter = BilateralAdapter(cfg.widths[self._local_stage], cfg.hidden, grid_depth=cfg.grid_depth,
                                        grid_size=(cfg.grid_size, cfg.grid_size), hidden=cfg.hidden,
                                        n_knots=cfg.n_knots)

    def forward(self, lowres: torch.Tensor, cond: torch.Tensor):
        c = self.cond(cond)
        x = lowres * 2 - 1
        local = None
        for i, st in enumerate(self.stages):
            x = st(x, c)
            if i == self._local_stage:
                local = x
        g = self.glob(torch.cat([x.mean(dim=(2, 3)), c], dim=1))
        return self.adapter(local, g)

    def guidance_params(self, guide_delta: torch.Tensor):
        return self.adapter.guidance_params(guide_delta)

    def text_features(self, instruction: str, has_mask: bool) -> np.ndarray:
        """:func:`text_features` with this model's recorded vocabulary: float32 ``[cond_in]``."""
        return text_features(instruction, has_mask, self.config.hash_dim, self.config.attributes)

    @torch.no_grad()
    def predict(self, image: np.ndarray, instruction: str, has_mask: bool):
        """One ``[H, W, 3]`` float32 image -> (grid ``[12, D, G, G]``, (knots ``[3, K]``,
        mix ``[3]``, bias ``[1]``)) as float32 numpy arrays, on the device the net is on. Cost independent of ``H, W`` apart
        from one area-downsampling pass."""
        dev = self.adapter.to_grid.weight.device
        L = self.config.lowres
        low = torch.from_numpy(area_resize_hwc(image, L, L)).permute(2, 0, 1).unsqueeze(0).to(dev)
        cond = torch.from_numpy(self.text_features(instruction, has_mask)).unsqueeze(0).to(dev)
        with _torch_threads(1) if dev.type == "cpu" else nullcontext():
            grid, gd = self(low, cond)
        knots, mix, bias = self.guidance_params(gd)
        return grid[0].cpu().numpy(), (knots[0].cpu().numpy(), mix[0].cpu().numpy(), bias[0].cpu().numpy())


@contextmanager
def _torch_threads(n: int):
    """Run a block with ``n`` torch intra-op threads, restoring the previous count after.

    The small net is ~3 ms of tiny ops on one core. With torch's default OpenMP threads, when
    another process holds a core, every op's barrier waits for a descheduled thread: measured
    2.7 ms -> 280 ms on this 2-core machine. One thread costs ~1 ms more when idle and cannot
    be starved that way.
    """
    old = torch.get_num_threads()
    if old == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def save_small(net: SmallRetouchNet, path: str | Path, metadata: dict[str, str] | None = None) -> tuple[Path, Path]:
    """Write ``<path>.safetensors`` (float32 state dict) and ``<path>.json`` (config + metadata)."""
    path = Path(path)
    st = path.with_suffix(".safetensors")
    cfg = path.with_suffix(".json")
    # Run-dependent fields (timings) stay out of the weights file so that retraining with the
    # same seed reproduces it byte for byte; they are kept in the JSON.
    stable = {k: v for k, v in (metadata or {}).items() if k not in VOLATILE_METADATA}
    # One metadata key holding sorted JSON: safetensors writes its metadata map in an arbitrary
    # order, which would make otherwise identical files differ.
    save_safetensors({k: v.detach().float().cpu() for k, v in net.state_dict().items()}, st,
                     metadata={"iretouch_bench": json.dumps({"format": "ours_small", **stable}, sort_keys=True)})
    cfg.write_text(json.dumps({"config": net.config.to_json(), **({"metadata": metadata} if metadata else {})},
                              indent=2, sort_keys=True) + "\n")
    return st, cfg


def read_config(weights: str | Path | None = None, config: str | Path | None = None) -> SmallConfig:
    """The config recorded next to ``weights`` (default: the shipped model), checked against the
    suite's instruction vocabulary. Raises a one-line WeightsError naming the file on any problem."""
    st = Path(weights) if weights is not None else SHIPPED_WEIGHTS
    cfg_path = Path(config) if config is not None else st.with_suffix(".json")
    if not st.is_file():
        raise WeightsError(f"{st}: small-model weights not found (train them: iretouch-bench train ours-small)")
    if not cfg_path.is_file():
        raise WeightsError(f"{cfg_path}: small-model config not found next to {st.name}")
    try:
        cfg = SmallConfig.from_json(json.loads(cfg_path.read_text())["config"])
    except (ValueError, KeyError, TypeError) as err:
        raise WeightsError(f"{cfg_path}: malformed small-model config ({err})") from err
    why = vocabulary_mismatch(cfg)
    if why is not None:
        raise WeightsError(f"{st}: {why}; retrain it (iretouch-bench train ours-small) or use the suite "
                           f"version it was trained with")
    return cfg


def load_small(weights: str | Path | None = None, config: str | Path | None = None) -> SmallRetouchNet:
    """Load the small model (default: the shipped weights). Raises WeightsError on problems."""
    st = Path(weights) if weights is not None else SHIPPED_WEIGHTS
    net = SmallRetouchNet(read_config(st, config))
    try:
        net.load_state_dict(load_safetensors(st), strict=True)
    except Exception as err:
        raise WeightsError(f"{st}: cannot load small-model weights ({err})") from err
    return net.eval()
