"""InstructPix2Pix (Brooks et al., CVPR 2023) through diffusers' ``StableDiffusionInstructPix2PixPipeline``.

Settings: the original ones (the paper's and its ``edit_cli.py`` defaults): 100 steps, text
guidance 7.5, image guidance 1.5, the input brought to a long side of 512 with each side a
multiple of 64 (the model was trained at 256 and fine-tuned at 512; SD's UNet needs multiples of
8, the reference script uses 64). Weights ``timbrooks/instruct-pix2pix`` (CreativeML Open RAIL-M),
fp16 on CUDA. The pipeline's scheduler is whatever the weights folder ships (the hub folder
ships Euler ancestral, as the reference script uses); its safety checker, where the folder
has one, turns a flagged output into a refusal.
"""

from __future__ import annotations

from typing import Any

from .diffusers_edit import DiffusersEditAdapter, long_side_multiple


class InstructPix2PixModel(DiffusersEditAdapter):
    name = "instructpix2pix"
    description = ("InstructPix2Pix (SD 1.5 fine-tune) through diffusers: 100 steps, text/image guidance "
                   "7.5/1.5, long side 512 in multiples of 64, output resized back (local; weights from "
                   "--weights DIR or the HF cache)")
    license = "CreativeML Open RAIL-M (weights timbrooks/instruct-pix2pix)"
    paper_row = "InstructPix2Pix"

    PIPELINE = "StableDiffusionInstructPix2PixPipeline"
    HUB_ID = "timbrooks/instruct-pix2pix"
    DEFAULTS = {"steps": 100, "guidance_scale": 7.5, "image_guidance_scale": 1.5, "long_side": 512, "multiple": 64}
    GUIDANCE_KEYS = ("guidance_scale", "image_guidance_scale")
    SETTINGS_SOURCE = ("Brooks et al. 2023 and the reference edit_cli.py: 100 steps, cfg-text 7.5, cfg-image 1.5, "
                       "resolution 512 with sides multiples of 64")
    RESIZE_POLICY = ("long side to long_side (512) in multiples of 64: the short side rounded up, the long side "
                     "down (the reference edit_cli.py rule, stretched instead of centre-cropped)")
    CUDA_DTYPE = "float16"

    def working_size(self, height: int, width: int) -> tuple[int, int]:
        return long_side_multiple(height, width, int(self.settings["long_side"]), int(self.settings["multiple"]))

    def call_kwargs(self, prompt: str, image: Any, size: tuple[int, int]) -> dict[str, Any]:
        # The pipeline works at the image's own size (no height/width arguments): the adapter has
        # already brought the image to the working size.
        return {"guidance_scale": float(self.settings["guidance_scale"]),
                "image_guidance_scale": float(self.settings["image_guidance_scale"])}
