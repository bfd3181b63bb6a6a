"""Tiny randomly-initialised diffusers editing pipelines, built in code from their real classes.

The hub's tiny test checkpoints (``hf-internal-testing/...``) are unreachable here, so every
component is made from a config, tokenizers included (transformers' tokenizers-backed classes
take a vocabulary and merges directly). The component sizes follow diffusers' own fast tests
(``tests/pipelines/...``), shrunk further where a layer count does not change the code path.

Each ``build_*`` returns the pipeline object; :func:`save_tiny` writes it with
``save_pretrained`` (the layout ``--weights DIR`` takes: ``model_index.json``, one folder per
component, tokenizers and scheduler included).

Outputs of these pipelines are noise: the tests check shapes, sizes, seeds and the adapter's
settings, never image content.
"""

from __future__ import annotations

from pathlib import Path

import torch

#: characters the tiny byte-level vocabularies cover (the GPT-2 byte-to-unicode table, so every
#: UTF-8 byte maps to a token and nothing falls to <unk>)


def _byte_chars() -> list[str]:
    """The 256 printable stand-ins GPT-2 style byte-level BPE uses for the bytes 0..255."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def clip_tokenizer():
    """A CLIPTokenizer over single byte-level characters (and their end-of-word forms), no merges.

    Vocabulary: 3 special tokens + 256 characters + 256 ``</w>`` forms = 515 ids (< 1000, the
    tiny CLIP text model's vocab_size)."""
    from transformers import CLIPTokenizer

    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1, "!!pad": 2}
    for ch in _byte_chars():
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def t5_tokenizer():
    """A T5Tokenizer (Unigram, tokenizers-backed) over ``▁`` + ASCII letters/digits/punctuation.

    ids: 0 ``<pad>``, 1 ``</s>``, 2 ``<unk>``, then the pieces; no sentinel ids (extra_ids=0)."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(chr(c), -3.0) for c in range(33, 127)]
    pieces += [("▁" + chr(c), -2.5) for c in range(ord("a"), ord("z") + 1)]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=512)


QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>"]


def qwen2_tokenizer():
    """A Qwen2Tokenizer: byte-level BPE over the 256 byte characters (no merges) plus the chat and
    vision special tokens Qwen2.5-VL's processor and the Qwen-Image-Edit prompt template use.

    ids: 0..255 bytes, 256.. the special tokens in :data:`QWEN_SPECIAL` order (263 ids)."""
    from transformers import Qwen2Tokenizer

    vocab = {ch: i for i, ch in enumerate(_byte_chars())}
    tok = Qwen2Tokenizer(vocab=vocab, merges=[], model_max_length=4096)
    tok.add_special_tokens({"additional_special_tokens": QWEN_SPECIAL[1:]})
    return tok


def build_instructpix2pix():
    """StableDiffusionInstructPix2PixPipeline (UNet 8 -> 4 channels, SD-shaped VAE, CLIP text encoder)."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionInstructPix2PixPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=8, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16, norm_num_groups=4, attention_head_dim=4)
    torch.manual_seed(0)
    # four levels, so vae_scale_factor is 8 as in SD: at the real working size (512) the latents are
    # 64x64 and the VAE's mid-block attention stays cheap (two levels would attend over 256x256)
    vae = AutoencoderKL(block_out_channels=[8, 8, 8, 8], in_channels=3, out_channels=3,
                        down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                        latent_channels=4, norm_num_groups=4, layers_per_block=1)
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=16, intermediate_size=32, layer_norm_eps=1e-5,
        num_attention_heads=2, num_hidden_layers=2, vocab_size=1000, max_position_embeddings=77))
    return StableDiffusionInstructPix2PixPipeline(
        unet=unet, scheduler=PNDMScheduler(skip_prk_steps=True), vae=vae, text_encoder=text_encoder,
        tokenizer=clip_tokenizer(), safety_checker=None, feature_extractor=None, image_encoder=None,
        requires_safety_checker=False)


def build_flux_kontext():
    """FluxKontextPipeline (1+1 Flux blocks, CLIP + T5 text encoders, one-level VAE: vae_scale_factor 1)."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxKontextPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=4, num_layers=1, num_single_layers=1,
                                         attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                         pooled_projection_dim=32, axes_dims_rope=[4, 4, 8])
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32, intermediate_size=37, layer_norm_eps=1e-5,
        num_attention_heads=4, num_hidden_layers=2, vocab_size=1000, hidden_act="gelu", projection_dim=32,
        max_position_embeddings=77))
    torch.manual_seed(0)
    text_encoder_2 = T5EncoderModel(T5Config(vocab_size=160, d_model=32, d_ff=37, d_kv=8, num_layers=2, num_heads=4,
                                             relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1,
                                             decoder_start_token_id=0))
    torch.manual_seed(0)
    vae = AutoencoderKL(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1,
                        latent_channels=1, norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False,
                        shift_factor=0.0609, scaling_factor=1.5035)
    return FluxKontextPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), text_encoder=text_encoder,
                               text_encoder_2=text_encoder_2, tokenizer=clip_tokenizer(), tokenizer_2=t5_tokenizer(),
                               transformer=transformer, vae=vae, image_encoder=None, feature_extractor=None)


def _qwen_components():
    """Transformer, VAE, scheduler, Qwen2.5-VL text encoder, tokenizer and processor shared by the
    two Qwen-Image-Edit pipelines (diffusers' fast-test sizes; the VAE at a third of its width and
    the vocabulary cut to 263 ids)."""
    from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImageTransformer2DModel
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessor,
                              Qwen2VLProcessor, Qwen2VLVideoProcessor)

    tokenizer = qwen2_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL}
    torch.manual_seed(0)
    transformer = QwenImageTransformer2DModel(patch_size=2, in_channels=16, out_channels=4, num_layers=2,
                                              attention_head_dim=16, num_attention_heads=3, joint_attention_dim=16,
                                              guidance_embeds=False, axes_dims_rope=(8, 4, 4))
    torch.manual_seed(0)
    z_dim = 4
    vae = AutoencoderKLQwenImage(base_dim=z_dim * 2, z_dim=z_dim, dim_mult=[1, 2, 4], num_res_blocks=1,
                                 temperal_downsample=[False, True], latents_mean=[0.0] * z_dim,
                                 latents_std=[1.0] * z_dim)
    torch.manual_seed(0)
    config = Qwen2_5_VLConfig(
        text_config={"hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "num_key_value_heads": 2, "vocab_size": 272,
                     "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
                     "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
                     "rope_theta": 1000000.0},
        vision_config={"depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16},
        hidden_size=16, vocab_size=272, vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"], image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"], vision_token_id=ids["<|image_pad|>"])
    text_encoder = Qwen2_5_VLForConditionalGeneration(config).eval()
    # the vision tower sees at most 4x4 merged patches (112x112 px): the smallest useful grid
    image_processor = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=112 * 112)
    processor = Qwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                 video_processor=Qwen2VLVideoProcessor())
    return {"transformer": transformer, "vae": vae, "scheduler": FlowMatchEulerDiscreteScheduler(),
            "text_encoder": text_encoder, "tokenizer": tokenizer, "processor": processor}


def build_qwen_image_edit():
    """QwenImageEditPipeline (Qwen-Image-Edit, the first release)."""
    from diffusers import QwenImageEditPipeline

    return QwenImageEditPipeline(**_qwen_components())


def build_qwen_image_edit_plus():
    """QwenImageEditPlusPipeline (Qwen-Image-Edit-2509 and later)."""
    from diffusers import QwenImageEditPlusPipeline

    return QwenImageEditPlusPipeline(**_qwen_components())


BUILDERS = {
    "instructpix2pix": build_instructpix2pix,
    "flux-kontext-dev": build_flux_kontext,
    "qwen-image-edit": build_qwen_image_edit,
    "qwen-image-edit-plus": build_qwen_image_edit_plus,
}


def save_tiny(name: str, folder: str | Path) -> Path:
    """Build the tiny pipeline for model ``name`` and ``save_pretrained`` it into ``folder``."""
    folder = Path(folder)
    BUILDERS[name]().save_pretrained(folder)
    return folder
