"""Step1X-Edit (Liu et al., 2025) through ``Step1XEditPipeline``, where the installed diffusers has it.

No diffusers release has this pipeline: it lives in the branch of an unmerged pull request
(:data:`INSTALL_HINT`). Where the installed diffusers lacks it, ``models list`` and
:meth:`preflight` say exactly what to install; nothing else changes.

Settings: the published ones (the Step1X-Edit README and its diffusers example): 28 steps, true
CFG 6.0 (the pipeline uses an empty negative prompt for an edit when none is given, so guidance
is on whenever ``true_cfg_scale > 1``). Weights ``stepfun-ai/Step1X-Edit-v1p1-diffusers``
(Apache-2.0), bf16 on CUDA.

Resolution: 1024² by area (the pipeline's ``size_level`` 1024) at the input's aspect ratio, sides
multiples of 16; the adapter brings the input there with the suite's resizer, so the pipeline's
own resize is a no-op, and brings the output back to the input size. The pipeline returns PIL
images resized to its input's size, so this adapter asks for PIL output (a numpy output would be
"resized" by ``ndarray.resize``).
"""

from __future__ import annotations

from typing import Any

from .diffusers_edit import DiffusersEditAdapter, accepted_kwargs, area_multiple

INSTALL_HINT = ("pip install 'diffusers @ git+https://github.com/Peyton-Chen/diffusers.git@step1xedit' "
                "(the branch of the unmerged diffusers pull request that adds Step1XEditPipeline; "
                "weights: hf download stepfun-ai/Step1X-Edit-v1p1-diffusers)")


class Step1XEditModel(DiffusersEditAdapter):
    name = "step1x-edit"
    description = ("Step1X-Edit v1.1 through Step1XEditPipeline (an unmerged diffusers branch): 28 steps, true "
                   "CFG 6.0, 1024² by area, output resized back (local; weights from --weights DIR or the HF cache)")
    license = "Apache-2.0 (weights stepfun-ai/Step1X-Edit-v1p1-diffusers)"
    paper_row = "Step1X-Edit"

    PIPELINE = "Step1XEditPipeline"
    HUB_ID = "stepfun-ai/Step1X-Edit-v1p1-diffusers"
    DEFAULTS = {"steps": 28, "true_cfg_scale": 6.0, "negative_prompt": None, "size_level": 1024}
    GUIDANCE_KEYS = ("true_cfg_scale", "negative_prompt")
    SETTINGS_SOURCE = ("Step1X-Edit README / diffusers example: num_inference_steps 28, true_cfg_scale 6.0, "
                       "size_level 1024")
    RESIZE_POLICY = "size_level² (1024²) pixels at the input's aspect ratio, sides multiples of 16"
    CUDA_DTYPE = "bfloat16"
    INSTALL_HINT = INSTALL_HINT
    OUTPUT_TYPE = "pil"

    def working_size(self, height: int, width: int) -> tuple[int, int]:
        level = int(self.settings["size_level"])
        return area_multiple(height, width, level * level, self.multiple)

    def call_kwargs(self, prompt: str, image: Any, size: tuple[int, int]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"true_cfg_scale": float(self.settings["true_cfg_scale"]),
                                  "size_level": int(self.settings["size_level"]),
                                  # the v1.2 branch's prompt rewriting and self-reflection loops are off:
                                  # one edit per request, as for every other editor
                                  "enable_thinking_mode": False, "enable_reflection_mode": False}
        if self.settings.get("negative_prompt") is not None:
            kwargs["negative_prompt"] = str(self.settings["negative_prompt"])
        return accepted_kwargs(self.pipe.__call__, kwargs) if self.pipe is not None else kwargs
