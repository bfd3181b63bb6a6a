"""FLUX.1 Kontext [dev] (Black Forest Labs, 2025) through diffusers' ``FluxKontextPipeline``.

Settings: the model card's: 28 steps, guidance 2.5 (guidance-distilled: one pass per step, no
negative prompt). Weights ``black-forest-labs/FLUX.1-Kontext-dev`` (FLUX.1 [dev] Non-Commercial
License, gated on the hub), bf16 on CUDA.

Resolution: Kontext is trained on a fixed list of resolutions (diffusers'
``PREFERRED_KONTEXT_RESOLUTIONS``, about 1 MP each, aspect 0.43 to 2.33). The adapter takes the
one nearest the input's aspect ratio (scaled by ``sqrt(max_area / 1024²)`` when ``max_area`` is
changed), brings the input there with the suite's resizer and passes that height and width
explicitly, with ``max_area`` equal to their product and the pipeline's own auto-resize off. Why
explicit: without height and width the pipeline generates 1024x1024 whatever the input's shape.
An input whose aspect ratio lies outside the list's range by more than
``max_aspect_distortion`` is refused with the reason.
"""

from __future__ import annotations

import math
from typing import Any

from .diffusers_edit import DiffusersEditAdapter, accepted_kwargs


def preferred_resolutions() -> list[tuple[int, int]]:
    """``[(width, height), ...]`` Kontext was trained on, from the installed diffusers."""
    from diffusers.pipelines.flux.pipeline_flux_kontext import PREFERRED_KONTEXT_RESOLUTIONS

    return [(int(w), int(h)) for w, h in PREFERRED_KONTEXT_RESOLUTIONS]


def kontext_size(height: int, width: int, max_area: int, multiple: int) -> tuple[int, int]:
    """``(h, w)``: the preferred resolution nearest the input's aspect ratio (the pipeline's own rule),
    scaled to ``max_area`` when that is not 1024², sides floored to ``multiple`` (at least one)."""
    ratio = width / height
    _, w, h = min((abs(ratio - pw / ph), pw, ph) for pw, ph in preferred_resolutions())
    scale = math.sqrt(max_area / (1024 * 1024))
    return (max(multiple, int(h * scale) // multiple * multiple),
            max(multiple, int(w * scale) // multiple * multiple))


class FluxKontextDevModel(DiffusersEditAdapter):
    name = "flux-kontext-dev"
    description = ("FLUX.1 Kontext [dev] (12B) through diffusers: 28 steps, guidance 2.5, the preferred "
                   "Kontext resolution nearest the input's aspect, output resized back (local; weights from "
                   "--weights DIR or the HF cache)")
    license = "FLUX.1 [dev] Non-Commercial License (weights black-forest-labs/FLUX.1-Kontext-dev, gated)"
    paper_row = None  # the paper's Table 1 has the API model (flux-kontext-pro); dev is its open-weights sibling

    PIPELINE = "FluxKontextPipeline"
    HUB_ID = "black-forest-labs/FLUX.1-Kontext-dev"
    DEFAULTS = {"steps": 28, "guidance_scale": 2.5, "max_area": 1024 * 1024}
    GUIDANCE_KEYS = ("guidance_scale",)
    SETTINGS_SOURCE = "black-forest-labs/FLUX.1-Kontext-dev model card: guidance_scale 2.5, 28 steps"
    RESIZE_POLICY = ("the preferred Kontext resolution nearest the input's aspect ratio (diffusers "
                     "PREFERRED_KONTEXT_RESOLUTIONS, scaled to max_area), explicit height/width")
    CUDA_DTYPE = "bfloat16"

    def working_size(self, height: int, width: int) -> tuple[int, int]:
        return kontext_size(height, width, int(self.settings["max_area"]), self.multiple)

    def call_kwargs(self, prompt: str, image: Any, size: tuple[int, int]) -> dict[str, Any]:
        h, w = size
        kwargs = {"height": h, "width": w, "max_area": h * w, "_auto_resize": False,
                  "guidance_scale": float(self.settings["guidance_scale"])}
        # _auto_resize is a private argument: pass it only where this diffusers has it
        return accepted_kwargs(self.pipe.__call__, kwargs) if self.pipe is not None else kwargs
