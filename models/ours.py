"""``ours``: the InstantRetouch model adapter (registry name ``ours``).

* ``weights=None`` (default): the small model shipped inside the package
  (``models/weights/ours_small.safetensors``; see ``models/MODEL_CARD.md`` -- trained here on
  synthetic pairs, NOT the paper's distilled generator).
* ``weights=<file>.safetensors``: another small-model checkpoint (``<file>.json`` beside it),
  e.g. the output of ``iretouch-bench train ours-small``.
* ``weights=<folder>``: a full generator in diffusers layout plus ``adapter.safetensors``
  (:class:`~.generator.InstantRetouchGenerator`).

Both paths end in the same full-resolution branch: the predicted bilateral grid and guidance
map are sliced and applied to the native-resolution input (:mod:`.slicing`: the fused kernel
of the device, or the reference with a warning, and ``info()["backend"]`` says which), with
``strength`` scaling the affine edit (0 returns the input exactly) and ``mask`` blending the
edit with the identity per pixel (regional control).

This module imports torch and the engine only in :meth:`OursModel.load` / :meth:`preflight`:
the registry imports it for ``iretouch-bench models list``, which must stay fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from iretouch_bench.adapters.base import RetouchModel
from iretouch_bench.core.errors import ModelError, WeightsError
from iretouch_bench.core.hashing import sha256_file

__all__ = ["OursModel"]

_SHIPPED = Path(__file__).resolve().parent / "weights" / "ours_small.safetensors"


class OursModel(RetouchModel):
    name = "ours"
    description = ("InstantRetouch-style bilateral-grid retouching: shipped small model trained here "
                   "(not the paper's weights), or a full generator via --weights")
    supports_strength = True
    supports_mask = True

    def __init__(self, device: str = "cpu", weights: str | None = None, **options: Any) -> None:
        super().__init__(device=device, weights=weights, **options)
        self._net = None
        self._gen = None
        self._slicing = None

    # ------------------------------------------------------------------ what the weights are
    @property
    def variant(self) -> str:
        """``"small"`` (a ``.safetensors`` checkpoint, shipped by default) or ``"generator"`` (a folder)."""
        return "small" if self.weights is None or str(self.weights).endswith(".safetensors") else "generator"

    @property
    def weights_file(self) -> Path:
        if self.weights is None:
            return _SHIPPED
        return Path(self.weights) if self.variant == "small" else Path(self.weights) / "adapter.safetensors"

    def preflight(self) -> None:
        """Fail before any work on missing weights or weights trained under another vocabulary."""
        super().preflight()
        if self.variant == "small":
            # Imported here: torch-heavy, and this module must import fast (see the docstring).
            from .small import read_config

            read_config(self.weights_file)
        elif not Path(self.weights).is_dir():
            raise WeightsError(f"{self.weights}: --weights for ours must be a generator folder (diffusers layout + "
                               "adapter.safetensors) or a small-model .safetensors file")

    # ------------------------------------------------------------------ loading
    def load(self) -> None:
        # Imported here: torch and the engine are heavy, and this module must import fast.
        import torch

        from . import slicing

        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelError("ours: --device cuda requested but CUDA is not available")
        self.preflight()
        if self.variant == "small":
            from .small import load_small  # heavy (torch); see above

            self._net = load_small(self.weights_file).to(self.device)
        else:
            from .generator import InstantRetouchGenerator  # heavy (diffusers, transformers); optional

            self._gen = InstantRetouchGenerator.from_pretrained(Path(self.weights)).to(self.device).eval()
        self._slicing = slicing
        # Compile / load from numba's cache now so the first timed sample pays no JIT.
        slicing.warmup(full=False)
        self._loaded = True

    # ------------------------------------------------------------------ inference
    def retouch(self, image: np.ndarray, instruction: str, *, mask: np.ndarray | None = None,
                strength: float = 1.0) -> np.ndarray:
        """``image`` float32 ``[H, W, 3]`` in [0, 1] -> float32 ``[H, W, 3]`` in [0, 1]."""
        self.ensure_loaded()
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3:
            raise ModelError(f"ours: image must be [H, W, 3], got {img.shape}")
        img = np.ascontiguousarray(img, dtype=np.float32)
        if mask is not None:
            mask = np.ascontiguousarray(np.clip(np.asarray(mask, np.float32), 0.0, 1.0))
            if mask.shape != img.shape[:2]:
                raise ModelError(f"ours: mask shape {mask.shape} does not match image {img.shape[:2]}")
        s = float(strength)
        if s == 0.0:
            return img.copy()
        # Low-resolution branch -> (grid [12, D, Hg, Wg], (knots [3, K], mix [3], bias [1])) numpy.
        if self._net is not None:
            grid, guidance = self._net.predict(img, instruction, mask is not None)
        else:
            grid, guidance = self._gen.predict(img, instruction)
        return self._slicing.apply_to_image(grid, img, guidance, strength=s, mask=mask, device=self.device)

    # ------------------------------------------------------------------ identity
    def info(self) -> dict[str, Any]:
        """Adds ``variant``, ``weights_file`` and its ``weights_sha256``, the small model's
        ``config`` (architecture and instruction vocabulary), and ``backend``: the
        slice-and-apply backend inference runs here (``numba``, ``triton`` or ``reference``,
        the last with ``backend_note`` saying why the fused kernel could not run)."""
        from . import slicing  # imported here: torch-heavy, and info() may come before load()

        d = super().info()
        d["variant"] = self.variant
        wf = self.weights_file
        d["weights_file"] = str(wf)
        d["weights_sha256"] = sha256_file(wf) if wf.is_file() else None
        if d["weights_sha256"] is None:
            d["weights_sha256_reason"] = f"{wf} not found"
        if self._net is not None:
            d["config"] = self._net.config.to_json()
        d["backend"], note = slicing.backend_for(self.device)
        if note:
            d["backend_note"] = note
        d["note"] = ("shipped small model trained in this repository on synthetic pairs; not the paper's distilled "
                     "InstantRetouch weights (see models/MODEL_CARD.md)") if self.weights is None else ""
        return d

    def close(self) -> None:
        self._net = None
        self._gen = None
        self._loaded = False
