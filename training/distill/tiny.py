"""``--tiny``: tiny random models of the real classes, written as the local folders the real
recipe reads, so every code path (loading, training, saving) is the one a GPU user runs.

* teacher: the tiny configuration of :meth:`InstantRetouchGenerator.tiny` (diffusers
  ``AutoencoderKL`` + 8-channel ``UNet2DConditionModel`` + ``CLIPTextModel`` + word-level
  tokenizer + ``DDPMScheduler``), saved as an InstructPix2Pix pipeline folder;
* CLIP: a random ``CLIPModel`` (32-px vision tower, the same tokenizer);
* LPIPS: the real LPIPS class with its shipped SqueezeNet linear layers on a random (seeded) trunk
  (:func:`.losses.lpips_vgg` with ``random_trunk=True``).

Nothing here is a trained network: ``--tiny`` shows the recipe runs, not that it works.
"""

from __future__ import annotations

from pathlib import Path

from iretouch_bench.core.atomic import atomic_path
from iretouch_bench.models.generator import InstantRetouchGenerator

from .nets import TeacherParts, save_teacher

__all__ = ["write_tiny_teacher", "write_tiny_clip", "ensure_tiny_weights"]


def write_tiny_teacher(folder: Path, seed: int = 0, lowres: int = 32):
    """The tiny teacher folder; returns its tokenizer (shared with the tiny CLIP)."""
    g = InstantRetouchGenerator.tiny(seed=seed, lowres=lowres)
    parts = TeacherParts(g.vae, g.unet, g.text_encoder, g.tokenizer, g.scheduler)
    save_teacher(parts, g.unet, folder)
    return g.tokenizer


def write_tiny_clip(folder: Path, tok, seed: int = 0) -> Path:
    import torch  # heavy: only when writing
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=16, pad_token_id=0, bos_token_id=2,
                         eos_token_id=3),
        vision_config=dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                           num_attention_heads=4),
        projection_dim=16)
    CLIPModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def ensure_tiny_weights(root: Path, lowres: int = 32) -> dict[str, str]:
    """``root/tiny-weights/{teacher-init,clip}`` (written once) -> ``{"teacher": ..., "clip": ...}``."""
    teacher, clip = root / "tiny-weights" / "teacher-init", root / "tiny-weights" / "clip"
    if not (teacher.is_dir() and clip.is_dir()):
        with atomic_path(teacher) as tmp:
            tok = write_tiny_teacher(tmp, lowres=lowres)
        with atomic_path(clip) as tmp:
            write_tiny_clip(tmp, tok)
    return {"teacher": str(teacher), "clip": str(clip)}
