"""What the automatic-enhancer adapters (``3dlut``, ``rsfnet``) share.

They look at the image only: the instruction is ignored (``instruction_driven = False``: a VLM
judge's SC/PQ/O mean nothing for them and stay blank, as in the paper; ``attr_acc`` is still
computed). ``strength`` s blends linearly, ``I + s (f(I) - I)`` (0 returns the input exactly);
no mask. Weights: the file shipped in ``baselines/weights/`` or ``--weights FILE``. torch is
imported only when a model loads, so ``models list`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from iretouch_bench.adapters.base import RetouchModel
from iretouch_bench.core.errors import ModelError
from iretouch_bench.core.hashing import sha256_file

__all__ = ["AutoEnhancerModel", "WEIGHTS_DIR"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


class AutoEnhancerModel(RetouchModel):
    """Base of an image-only enhancer whose network has ``enhance(image, device) -> image``."""

    supports_strength = True
    supports_mask = False
    #: the instruction is ignored (the runner may leave a VLM judge's cells blank for such models)
    instruction_driven: ClassVar[bool] = False
    #: file name of the shipped weights inside ``baselines/weights/``
    shipped_file: ClassVar[str] = ""

    def __init__(self, device: str = "cpu", weights: str | None = None, **options: Any) -> None:
        super().__init__(device=device, weights=weights, **options)
        self._net = None
        self._file: Path | None = None

    # ------------------------------------------------------------------ subclass hooks
    def _load_net(self, path: Path):
        """The network from a suite-format weight file (one-line WeightsError if it cannot)."""
        raise NotImplementedError

    def _resolve(self) -> Path:
        """The suite-format file to load: the shipped one, or ``--weights``."""
        if self._file is None:
            self._file = WEIGHTS_DIR / self.shipped_file if self.weights is None else Path(self.weights)
        return self._file

    # ------------------------------------------------------------------ contract
    def preflight(self) -> None:
        super().preflight()
        self._load_net(self._resolve())  # a missing or malformed file fails here, in one line

    def load(self) -> None:
        import torch  # heavy: only when the model is really used

        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelError(f"{self.name}: --device cuda requested but CUDA is not available")
        self._net = self._load_net(self._resolve()).to(self.device)
        self._loaded = True

    def retouch(self, image: np.ndarray, instruction: str, *, mask: np.ndarray | None = None,
                strength: float = 1.0) -> np.ndarray:
        """float32 ``[H, W, 3]`` in [0, 1] -> float32 ``[H, W, 3]`` in [0, 1]; instruction and mask ignored."""
        self.ensure_loaded()
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3:
            raise ModelError(f"{self.name}: image must be [H, W, 3], got {img.shape}")
        img = np.ascontiguousarray(img, dtype=np.float32)
        s = float(strength)
        if s == 0.0:
            return img.copy()
        out = self._net.enhance(img, device=self.device)
        if s != 1.0:
            out = np.clip(img + np.float32(s) * (out - img), 0.0, 1.0).astype(np.float32)
        return out

    def info(self) -> dict[str, Any]:
        d = super().info()
        d["instruction_driven"] = False
        try:
            wf = self._resolve()
            d["weights_file"] = str(wf)
            d["weights_sha256"] = sha256_file(wf)
        except Exception as err:  # info() never fails: it records why the hash is missing
            d["weights_file"], d["weights_sha256"] = None, None
            d["weights_sha256_reason"] = str(err)
        d["note"] = ("shipped weights trained in this repository on synthetic pairs from the training photos "
                     "(see the model card)") if self.weights is None else ""
        return d

    def close(self) -> None:
        self._net = None
        self._loaded = False
