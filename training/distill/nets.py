"""The networks of the recipe, loaded from local folders only (``local_files_only=True``).

* :func:`load_teacher`: an InstructPix2Pix-style diffusers folder (``vae/``, ``unet/`` with 8
  input channels, ``text_encoder/``, ``tokenizer/``, ``scheduler/``), e.g. the
  ``timbrooks/instruct-pix2pix`` snapshot or ``DIR/teacher/final``.
* :func:`save_teacher`: the fine-tuned teacher as a ``StableDiffusionInstructPix2PixPipeline``
  folder (loadable with ``DiffusionPipeline.from_pretrained``).
* :func:`generator_from_teacher`: the one-step generator of Sec. 3.4.1, initialised from the
  teacher (VAE and text encoder shared, UNet copied, a fresh zero-initialised bilateral adapter).
* :func:`load_clip`: a transformers ``CLIPModel`` folder (``--clip PATH``) for Eq. 5.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iretouch_bench.core.errors import WeightsError
from iretouch_bench.models.adapter import BilateralAdapter
from iretouch_bench.models.generator import InstantRetouchGenerator

__all__ = ["TeacherParts", "load_teacher", "save_teacher", "generator_from_teacher", "load_clip", "CLIP_MEAN",
           "CLIP_STD"]

#: OpenAI CLIP's normalisation (CLIPImageProcessor's defaults), used when a folder has no preprocessor config.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class TeacherParts:
    vae: Any
    unet: Any
    text_encoder: Any
    tokenizer: Any
    scheduler: Any  # a DDPMScheduler with the teacher's noise schedule (training noise)


def load_teacher(folder: str | Path) -> TeacherParts:
    """Load the parts of an InstructPix2Pix-style diffusers folder; one-line WeightsError otherwise."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel  # heavy: only when loading
    from transformers import AutoTokenizer, CLIPTextModel

    folder = Path(folder)
    for sub in ("vae", "unet", "text_encoder", "tokenizer", "scheduler"):
        if not (folder / sub).is_dir():
            raise WeightsError(f"{folder}: not a diffusers InstructPix2Pix folder ({sub}/ missing)")
    try:
        parts = TeacherParts(
            vae=AutoencoderKL.from_pretrained(folder / "vae", local_files_only=True),
            unet=UNet2DConditionModel.from_pretrained(folder / "unet", local_files_only=True),
            text_encoder=CLIPTextModel.from_pretrained(folder / "text_encoder", local_files_only=True),
            tokenizer=AutoTokenizer.from_pretrained(folder / "tokenizer", local_files_only=True),
            # the sampler of the folder may be any (IP2P ships Euler ancestral); training needs the
            # forward process, which DDPMScheduler reads from the same betas
            scheduler=DDPMScheduler.from_config(json.loads((folder / "scheduler" / "scheduler_config.json").read_text())),
        )
    except Exception as err:  # noqa: BLE001 - one clear line naming the folder
        raise WeightsError(f"{folder}: cannot load the teacher ({type(err).__name__}: {err})") from None
    if parts.unet.config.in_channels != 8:
        raise WeightsError(f"{folder}/unet: expected an InstructPix2Pix-style 8-channel UNet "
                           f"(in_channels={parts.unet.config.in_channels})")
    return parts


def save_teacher(parts: TeacherParts, unet, folder: Path) -> Path:
    """Write ``unet`` with the teacher's other parts as a diffusers IP2P pipeline folder."""
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionInstructPix2PixPipeline

    pipe = StableDiffusionInstructPix2PixPipeline(
        vae=parts.vae, text_encoder=parts.text_encoder, tokenizer=parts.tokenizer, unet=unet,
        scheduler=EulerAncestralDiscreteScheduler.from_config(parts.scheduler.config),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def generator_from_teacher(parts: TeacherParts, *, lowres: int, grid_depth: int, grid_size: tuple[int, int],
                           hidden: int, n_knots: int) -> InstantRetouchGenerator:
    """Sec. 3.4.1: the student's UNet starts as a copy of the teacher's; VAE and text encoder are
    the teacher's (frozen); the adapter is new (zero-initialised: the identity edit)."""
    unet = copy.deepcopy(parts.unet)
    lc, gc = InstantRetouchGenerator.adapter_channels(unet)
    adapter = BilateralAdapter(lc, gc, grid_depth=grid_depth, grid_size=tuple(grid_size), hidden=hidden,
                               n_knots=n_knots)
    return InstantRetouchGenerator(parts.vae, unet, parts.text_encoder, parts.tokenizer, parts.scheduler, adapter,
                                   lowres=lowres)


def load_clip(folder: str | Path):
    """``(CLIPModel, tokenizer, image_size, mean, std)`` from a local folder."""
    from transformers import AutoTokenizer, CLIPModel  # heavy: only when loading

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise WeightsError(f"{folder}: not a transformers CLIPModel folder (config.json missing); pass --clip PATH")
    try:
        model = CLIPModel.from_pretrained(folder, local_files_only=True)
        tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as err:  # noqa: BLE001 - one clear line naming the folder
        raise WeightsError(f"{folder}: cannot load CLIP ({type(err).__name__}: {err})") from None
    mean, std = CLIP_MEAN, CLIP_STD
    pp = folder / "preprocessor_config.json"
    if pp.is_file():
        cfg = json.loads(pp.read_text())
        mean, std = tuple(cfg.get("image_mean", mean)), tuple(cfg.get("image_std", std))
    return model, tok, int(model.config.vision_config.image_size), mean, std
