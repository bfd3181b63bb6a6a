"""``ours``: the InstantRetouch model adapter (registry name ``ours``).

* ``weights=None`` (default): the small model shipped inside the package
  (``models/weights/ours_small.safetensors``; see ``models/MODEL_CARD.md`` -- trained here on
  synthetic pairs, NOT the paper's distilled generator).
* ``weights=<file>.safetensors``: another small-model checkpoint (``<file>.json`` beside it),
  e.g. the output of ``python -m iretouch_bench.models.train``.
* ``weights=<folder>``: a full generator in diffusers layout plus ``adapter.safetensors``
  (:class:`~.generator.InstantRetouchGenerator`).

Both paths end in the same full-resolution branch: the predicted bilateral grid and guidance
map are sliced and applied to the native-resolution input by the fused kernel
(:mod:`.bilateral`), with ``strength`` scaling the affine edit (0 returns the input exactly)
and ``mask`` blending the edit with the identity per pixel (regional control).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from iretouch_bench.core.errors import ModelError, WeightsError
from iretouch_bench.adapters.base import RetouchModel

__all__ = ["OursModel"]


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
        self._kind = None
        self._weights_file: Path | None = None

    # ------------------------------------------------------------------ loading
    def load(self) -> None:
        import torch

        from . import bilateral

        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelError("ours: --device cuda requested but CUDA is not available")
        w = self.weights
        if w is None or str(w).endswith(".safetensors"):
            from .small import SHIPPED_WEIGHTS, load_small

            self._weights_file = Path(w) if w is not None else SHIPPED_WEIGHTS
            self._net = load_small(self._weights_file).to(self.device)
            self._kind = "small"
        else:
            folder = Path(w)
            if not folder.is_dir():
                raise WeightsError(f"{folder}: --weights for ours must be a generator folder (diffusers layout + "
                                   "adapter.safetensors) or a small-model .safetensors file")
            from .generator import InstantRetouchGenerator

            self._gen = InstantRetouchGenerator.from_pretrained(folder).to(self.device).eval()
            self._weights_file = folder / "adapter.safetensors"
            self._kind = "generator"
        # Compile / load from numba's cache now so the first timed sample pays no JIT.
        bilateral.warmup(full=False)
        self._loaded = True

    # ------------------------------------------------------------------ inference
    def _predict(self, image: np.ndarray, instruction: str, has_mask: bool):
        """(grid [12, D, Hg, Wg], (knots [3, K], mix [3], bias [1])) as numpy float32."""
        import torch

        if self._kind == "small":
            if self.device == "cpu":
                return self._net.predict(image, instruction, has_mask)
            from .lowres import area_resize_hwc
            from .small import text_features

            L = self._net.config.lowres
            with torch.no_grad():
                low = torch.from_numpy(area_resize_hwc(image, L, L)).permute(2, 0, 1)[None].to(self.device)
                cond = torch.from_numpy(text_features(instruction, has_mask, self._net.config.hash_dim))[None].to(self.device)
                grid, gd = self._net(low, cond)
                k, m, b = self._net.guidance_params(gd)
            return grid[0].cpu().numpy(), (k[0].cpu().numpy(), m[0].cpu().numpy(), b[0].cpu().numpy())
        return self._gen.predict(image, instruction)

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
        grid, guidance = self._predict(img, instruction, mask is not None)
        if self.device == "cpu":
            from .bilateral import slice_apply_hwc

            return slice_apply_hwc(grid, img, guidance=guidance, strength=s, mask=mask, clamp=True)
        import torch

        from .bilateral import slice_apply
        from .guidance import evaluate_guidance

        with torch.no_grad():
            im = torch.from_numpy(img).to(self.device).permute(2, 0, 1)[None].contiguous()
            k, m, b = (torch.from_numpy(np.asarray(a)).to(self.device) for a in guidance)
            guide = evaluate_guidance(im, k[None], m[None], b.reshape(1, 1))
            mk = None if mask is None else torch.from_numpy(mask).to(self.device)[None]
            out = slice_apply(torch.from_numpy(grid).to(self.device)[None], guide, im, s, mask=mk)
            return out.clamp_(0.0, 1.0)[0].permute(1, 2, 0).contiguous().cpu().numpy()

    # ------------------------------------------------------------------ identity
    def info(self) -> dict[str, Any]:
        from iretouch_bench.core.hashing import sha256_file

        from . import bilateral

        d = super().info()
        d["variant"] = self._kind or ("small" if self.weights is None or str(self.weights).endswith(".safetensors")
                                      else "generator")
        wf = self._weights_file
        if wf is None:
            from .small import SHIPPED_WEIGHTS

            wf = SHIPPED_WEIGHTS if d["variant"] == "small" and self.weights is None else (
                Path(self.weights) / "adapter.safetensors" if d["variant"] == "generator" else Path(self.weights))
        d["weights_file"] = str(wf)
        d["weights_sha256"] = sha256_file(wf) if wf.is_file() else None
        if d["weights_sha256"] is None:
            d["weights_sha256_reason"] = f"{wf} not found"
        if self._net is not None:
            d["config"] = self._net.config.to_json()
        ok, why = bilateral.fast_backend_available("cuda" if self.device.startswith("cuda") else "cpu")
        d["slice_backend"] = why if ok else f"reference (fused path unavailable: {why})"
        d["note"] = ("shipped small model trained in this repository on synthetic pairs; not the paper's distilled "
                     "InstantRetouch weights (see models/MODEL_CARD.md)") if d["variant"] == "small" and self.weights is None else ""
        return d

    def close(self) -> None:
        self._net = None
        self._gen = None
        self._loaded = False
