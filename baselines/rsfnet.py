"""``rsfnet``: RSFNet, map variant (after Ouyang et al., ICCV 2023), the paper's "RSFNet" row.

An automatic enhancer (:mod:`.enhancer`: the instruction is ignored): a light backbone predicts
per-pixel strength maps for seven colour filters (contrast, saturation, hue, temperature, lift,
gamma, gain) plus a global RGB shift; the filter increments are summed at full resolution.
Filters and architecture: :mod:`.rsfnet_net` (implemented from the paper; the official code is
GPL-3.0 and non-commercial and was not used).

* ``weights=None`` (default): the model trained in this repository
  (``baselines/weights/rsfnet.safetensors``; ``baselines/MODEL_CARD_RSFNET.md``), reproduced by
  ``iretouch-bench train rsfnet``.
* ``weights=<file>.safetensors``: another checkpoint in this suite's format. The official
  RSFNet weights belong to a different (region-mask) architecture and are not loadable.
"""

from __future__ import annotations

from pathlib import Path

from .enhancer import WEIGHTS_DIR, AutoEnhancerModel

__all__ = ["RSFNetModel"]


class RSFNetModel(AutoEnhancerModel):
    name = "rsfnet"
    description = ("RSFNet map variant (after Ouyang et al. 2023): per-pixel strengths of 7 colour filters + global "
                   "shift, summed at full resolution; trained here on synthetic pairs; ignores the instruction")
    license = "Apache-2.0 (implemented and trained in this repository; no official RSFNet code or weights used)"
    paper_row = "RSFNet"
    shipped_file = "rsfnet.safetensors"

    def _load_net(self, path: Path):
        from .rsfnet_net import load_rsfnet  # torch: only when the model is really used

        return load_rsfnet(path)


SHIPPED_WEIGHTS = WEIGHTS_DIR / RSFNetModel.shipped_file
