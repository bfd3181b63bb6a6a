"""``3dlut``: image-adaptive 3D lookup tables (Zeng et al., TPAMI 2020), the paper's "3D-LUT" row.

An automatic enhancer (:mod:`.enhancer`: the instruction is ignored). Architecture, LUT
application and losses: :mod:`.lut3d_net`.

* ``weights=None`` (default): the model trained in this repository
  (``baselines/weights/lut3d.safetensors``; ``baselines/MODEL_CARD_3DLUT.md``), reproduced by
  ``iretouch-bench train 3dlut``.
* ``weights=<file>.safetensors``: another checkpoint in this suite's format.
* ``weights=<folder, or classifier[_N].pth, or LUTs[_N].pth>``: the official release (legacy
  torch pickles saved on CUDA), read through torch's restricted unpickler
  (``weights_only=True``, ``map_location="cpu"``) and converted once to safetensors in the
  user cache (:func:`~.lut3d_net.convert_official`); never an unrestricted ``torch.load``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .enhancer import WEIGHTS_DIR, AutoEnhancerModel

__all__ = ["Lut3DModel"]


class Lut3DModel(AutoEnhancerModel):
    name = "3dlut"
    description = ("Image-adaptive 3D-LUT (Zeng et al. 2020): CNN-weighted 33^3 basis LUTs, trilinear at full "
                   "resolution; trained here on synthetic pairs (official weights via --weights); ignores the "
                   "instruction")
    license = ("Apache-2.0 (shipped weights trained in this repository; the official code and weights are "
               "Apache-2.0 too)")
    paper_row = "3D-LUT"
    shipped_file = "lut3d.safetensors"

    @property
    def source(self) -> str:
        """``"shipped"``, ``"safetensors"`` (a suite-format file) or ``"official"`` (converted)."""
        if self.weights is None:
            return "shipped"
        return "safetensors" if str(self.weights).endswith(".safetensors") else "official"

    def _resolve(self) -> Path:
        if self._file is None and self.source == "official":
            from .lut3d_net import convert_official  # torch: only when the model is really used

            self._file = convert_official(self.weights)
        return super()._resolve() if self._file is None else self._file

    def _load_net(self, path: Path):
        from .lut3d_net import load_lut3d

        return load_lut3d(path)

    def info(self) -> dict[str, Any]:
        d = super().info()
        d["source"] = self.source
        if self.source == "official":
            d["official_weights"] = str(self.weights)
        return d


# The shipped file's location, for tests and the model card.
SHIPPED_WEIGHTS = WEIGHTS_DIR / Lut3DModel.shipped_file
