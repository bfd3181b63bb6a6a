"""Qwen-Image-Edit (Wu et al., Qwen-Image technical report, 2025) through diffusers.

Two registry names:

* ``qwen-image-edit``: ``QwenImageEditPipeline`` with ``Qwen/Qwen-Image-Edit`` (the paper's
  "Qwen-Image" row). Model card settings: ``true_cfg_scale`` 4.0 with a negative prompt of one
  space, 50 steps. The negative prompt matters: without one the pipeline skips classifier-free
  guidance silently (``true_cfg_scale > 1`` needs a negative prompt to take effect).
* ``qwen-image-edit-plus``: ``QwenImageEditPlusPipeline`` with ``Qwen/Qwen-Image-Edit-2509``
  (the multi-image "Plus" release; ``model=Qwen/Qwen-Image-Edit-2511`` selects the later one).
  Its model card: ``true_cfg_scale`` 4.0, negative prompt " ", 40 steps, ``guidance_scale`` 1.0.
  A different model from the paper's row, so a different leaderboard row.

Resolution: about 1 MP (``area`` = 1024²) at the input's aspect ratio, each side rounded to a
multiple of 32 (the pipelines' own ``calculate_dimensions``), passed as explicit height/width.
The pipelines encode the conditioning image at their own fixed sizes (1 MP for the VAE; 384²
for the vision-language encoder of Plus) whatever the output size.
"""

from __future__ import annotations

import math
from typing import Any

from .diffusers_edit import DiffusersEditAdapter, area_multiple

#: what calculate_dimensions in diffusers' Qwen-Image-Edit pipelines rounds each side to
QWEN_SIDE_MULTIPLE = 32


class QwenImageEditModel(DiffusersEditAdapter):
    name = "qwen-image-edit"
    description = ("Qwen-Image-Edit (20B MMDiT + Qwen2.5-VL) through diffusers: 50 steps, true CFG 4.0 with "
                   "negative prompt ' ', ~1 MP at the input's aspect, output resized back (local; weights "
                   "from --weights DIR or the HF cache)")
    license = "Apache-2.0 (weights Qwen/Qwen-Image-Edit)"
    paper_row = "Qwen-Image"

    PIPELINE = "QwenImageEditPipeline"
    HUB_ID = "Qwen/Qwen-Image-Edit"
    DEFAULTS = {"steps": 50, "true_cfg_scale": 4.0, "negative_prompt": " ", "area": 1024 * 1024}
    GUIDANCE_KEYS = ("true_cfg_scale", "negative_prompt")
    SETTINGS_SOURCE = ("Qwen/Qwen-Image-Edit model card: true_cfg_scale 4.0, negative_prompt ' ', "
                       "num_inference_steps 50")
    RESIZE_POLICY = "about `area` (1024x1024) pixels at the input's aspect ratio, sides multiples of 32"
    CUDA_DTYPE = "bfloat16"

    def working_size(self, height: int, width: int) -> tuple[int, int]:
        multiple = math.lcm(QWEN_SIDE_MULTIPLE, self.multiple)
        return area_multiple(height, width, int(self.settings["area"]), multiple)

    def call_kwargs(self, prompt: str, image: Any, size: tuple[int, int]) -> dict[str, Any]:
        h, w = size
        kwargs: dict[str, Any] = {"height": h, "width": w, "true_cfg_scale": float(self.settings["true_cfg_scale"])}
        negative = self.settings.get("negative_prompt")
        if negative is not None:
            kwargs["negative_prompt"] = str(negative)
        if "guidance_scale" in self.settings:
            kwargs["guidance_scale"] = float(self.settings["guidance_scale"])
        return kwargs


class QwenImageEditPlusModel(QwenImageEditModel):
    name = "qwen-image-edit-plus"
    description = ("Qwen-Image-Edit Plus (2509) through diffusers: 40 steps, true CFG 4.0 with negative prompt "
                   "' ', ~1 MP at the input's aspect, output resized back (local; model=Qwen/Qwen-Image-Edit-2511 "
                   "for the later release)")
    license = "Apache-2.0 (weights Qwen/Qwen-Image-Edit-2509)"
    paper_row = None  # the paper's row is the first Qwen-Image-Edit; this is a newer model

    PIPELINE = "QwenImageEditPlusPipeline"
    HUB_ID = "Qwen/Qwen-Image-Edit-2509"
    DEFAULTS = {"steps": 40, "true_cfg_scale": 4.0, "negative_prompt": " ", "guidance_scale": 1.0,
                "area": 1024 * 1024}
    GUIDANCE_KEYS = ("true_cfg_scale", "negative_prompt", "guidance_scale")
    SETTINGS_SOURCE = ("Qwen/Qwen-Image-Edit-2509 model card: true_cfg_scale 4.0, negative_prompt ' ', "
                       "num_inference_steps 40, guidance_scale 1.0")
