"""The paper's generator (Sec. 3.3, Eq. 2): one-step diffusion features -> bilateral grid.

Low-resolution branch (fixed ``lowres x lowres`` view of the input, so its cost does not
depend on the input size):

1. a **frozen** VAE encoder (diffusers ``AutoencoderKL``; the decoder is never run) maps the
   low-res image to latents ``c_I = E(I)`` (``latent_dist.mode()``, unscaled, as
   InstructPix2Pix conditions on them);
2. the instruction is embedded by a CLIP text encoder (transformers ``CLIPTextModel``);
3. a one-step UNet (diffusers ``UNet2DConditionModel`` with InstructPix2Pix-style 8-channel
   input ``[z_T, c_I]``) is evaluated once at ``t = T`` on pure noise ``z_T ~ N(0, I)`` (a fixed
   seeded draw, so inference is deterministic), giving ``eps``; Eq. 2's one-step estimate
   ``z0 = (z_T - sqrt(1 - abar_T) * eps) / sqrt(abar_T)``;
4. the light bilateral adapter (:class:`~.adapter.BilateralAdapter`) reads the UNet's last
   decoder features (the input of ``conv_norm_out``) concatenated with ``z0`` as the local
   feature map and the pooled mid-block features as the global vector, and predicts the grid
   ``[12, D, Hg, Wg]`` and the guidance-map parameters.

Full-resolution branch: slice-and-apply at native resolution (:mod:`.slicing`).

diffusers, transformers and tokenizers are imported inside the functions that build or load
the networks: they take seconds to import and only this generator needs them.

Storage (``save_pretrained`` / ``from_pretrained``): a folder in diffusers layout --
``vae/``, ``unet/``, ``text_encoder/``, ``tokenizer/``, ``scheduler/``, ``model_index.json`` --
plus ``adapter.safetensors`` and ``adapter_config.json``. Everything is loaded from local
files only. :meth:`InstantRetouchGenerator.tiny` builds a random tiny configuration for tests.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from iretouch_bench.core.errors import WeightsError
from iretouch_bench.weights.store import load_safetensors, save_safetensors

from .adapter import BilateralAdapter
from .lowres import area_resize_hwc
from .slicing import apply_to_image

__all__ = ["InstantRetouchGenerator", "TINY_WORDS"]

#: Vocabulary of the tiny test tokenizer (a word-level tokenizer; real folders ship CLIP's BPE).
TINY_WORDS = ("make it the photo image brighter darker warmer cooler more less contrast saturation "
              "vivid vintage look sky face skin shadows highlights a bit little lot slightly strongly "
              "and then brighten darken warm cool up down boost reduce lift give").split()


def _tiny_tokenizer(max_length: int = 16):
    """A word-level ``PreTrainedTokenizerFast`` (built with the ``tokenizers`` library)."""
    # Imported here: slow to import, and only this generator needs them (module docstring).
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, "[BOS]": 2, "[EOS]": 3}
    for w in TINY_WORDS:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="[BOS] $A [EOS]", special_tokens=[("[BOS]", 2), ("[EOS]", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", bos_token="[BOS]",
                                   eos_token="[EOS]", model_max_length=max_length, do_lower_case=True)


class InstantRetouchGenerator(nn.Module):
    """VAE encoder + text encoder + one-step UNet + bilateral adapter (see module docstring).

    ``forward(lowres [B, 3, L, L] in [0, 1], input_ids [B, T]) -> (grid [B, 12, D, Hg, Wg],
    guide_delta [B, P])``; :meth:`predict` runs one ``[H, W, 3]`` numpy image + instruction.
    """

    def __init__(self, vae, unet, text_encoder, tokenizer, scheduler, adapter: BilateralAdapter,
                 *, lowres: int = 512, timestep: Optional[int] = None, noise_seed: int = 0) -> None:
        super().__init__()
        self.vae = vae
        self.unet = unet
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.scheduler = scheduler
        self.adapter = adapter
        self.lowres = int(lowres)
        n_train = int(scheduler.config.num_train_timesteps)
        self.timestep = int(timestep if timestep is not None else n_train - 1)
        self.noise_seed = int(noise_seed)
        abar = scheduler.alphas_cumprod[self.timestep].item()
        self._sqrt_abar, self._sqrt_1m_abar = math.sqrt(abar), math.sqrt(1.0 - abar)
        # Frozen VAE (paper: the encoder is frozen; the decoder is never used at inference).
        self.vae.requires_grad_(False)
        self._feats: dict[str, torch.Tensor] = {}
        self._hooks = [
            self.unet.mid_block.register_forward_hook(lambda m, i, o: self._feats.__setitem__("mid", o)),
            self.unet.conv_norm_out.register_forward_pre_hook(lambda m, i: self._feats.__setitem__("last", i[0])),
        ]

    # ------------------------------------------------------------------ construction
    @staticmethod
    def adapter_channels(unet) -> tuple[int, int]:
        """(local, global) input channels of the adapter for this UNet."""
        return unet.config.block_out_channels[0] + unet.config.out_channels, unet.config.block_out_channels[-1]

    @classmethod
    def tiny(cls, seed: int = 0, lowres: int = 32) -> "InstantRetouchGenerator":
        """Random tiny configuration (a few hundred k parameters) for tests."""
        # Imported here: slow to import, and only this generator needs them (module docstring).
        from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
        from transformers import CLIPTextConfig, CLIPTextModel

        torch.manual_seed(seed)
        tok = _tiny_tokenizer()
        vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                            up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16),
                            layers_per_block=1, latent_channels=4, norm_num_groups=4, sample_size=lowres)
        unet = UNet2DConditionModel(sample_size=lowres // 2, in_channels=8, out_channels=4, layers_per_block=1,
                                    block_out_channels=(16, 32), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                                    norm_num_groups=8, attention_head_dim=4)
        text = CLIPTextModel(CLIPTextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=37,
                                            num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=16,
                                            pad_token_id=0, bos_token_id=2, eos_token_id=3))
        sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085,
                              beta_end=0.012)
        lc, gc = cls.adapter_channels(unet)
        adapter = BilateralAdapter(lc, gc, grid_depth=8, grid_size=(8, 8), hidden=16, n_knots=8)
        return cls(vae, unet, text, tok, sched, adapter, lowres=lowres)

    def adapter_config(self) -> dict[str, Any]:
        a = self.adapter
        return {"in_channels": a.local.in_channels, "global_channels": a.glob.in_features, "grid_depth": a.grid_depth,
                "grid_size": list(a.grid_size), "hidden": a.glob.out_features, "n_knots": a.guidance.n_knots,
                "lowres": self.lowres, "timestep": self.timestep, "noise_seed": self.noise_seed}

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write the diffusers-layout folder + ``adapter.safetensors`` / ``adapter_config.json``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.vae.save_pretrained(folder / "vae")
        self.unet.save_pretrained(folder / "unet")
        self.text_encoder.save_pretrained(folder / "text_encoder")
        self.tokenizer.save_pretrained(folder / "tokenizer")
        self.scheduler.save_pretrained(folder / "scheduler")
        save_safetensors({k: v.detach().cpu().contiguous() for k, v in self.adapter.state_dict().items()},
                         folder / "adapter.safetensors", metadata={"format": "iretouch-bench bilateral adapter"})
        (folder / "adapter_config.json").write_text(json.dumps(self.adapter_config(), indent=2) + "\n")
        (folder / "model_index.json").write_text(json.dumps({
            "_class_name": "InstantRetouchGenerator", "_iretouch_bench": "iretouch_bench.models.generator",
            "vae": ["diffusers", "AutoencoderKL"], "unet": ["diffusers", "UNet2DConditionModel"],
            "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", type(self.tokenizer).__name__],
            "scheduler": ["diffusers", type(self.scheduler).__name__]}, indent=2) + "\n")
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "InstantRetouchGenerator":
        """Load from a local folder (no network). Raises WeightsError naming what is missing."""
        # Imported here: slow to import, and only this generator needs them (module docstring).
        from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
        from transformers import AutoTokenizer, CLIPTextModel

        folder = Path(folder)
        for sub in ("vae", "unet", "text_encoder", "tokenizer", "adapter.safetensors", "adapter_config.json"):
            if not (folder / sub).exists():
                raise WeightsError(f"{folder}: not an InstantRetouch generator folder ({sub} missing; expected a "
                                   "diffusers layout vae/ unet/ text_encoder/ tokenizer/ plus adapter.safetensors)")
        try:
            vae = AutoencoderKL.from_pretrained(folder / "vae", local_files_only=True)
            unet = UNet2DConditionModel.from_pretrained(folder / "unet", local_files_only=True)
            text = CLIPTextModel.from_pretrained(folder / "text_encoder", local_files_only=True)
            tok = AutoTokenizer.from_pretrained(folder / "tokenizer", local_files_only=True)
            if (folder / "scheduler").exists():
                sched = DDPMScheduler.from_pretrained(folder / "scheduler", local_files_only=True)
            else:
                sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear",
                                      beta_start=0.00085, beta_end=0.012)
            cfg = json.loads((folder / "adapter_config.json").read_text())
        except Exception as err:  # noqa: BLE001 - one clear line naming the folder
            raise WeightsError(f"{folder}: cannot load generator ({type(err).__name__}: {err})") from err
        if unet.config.in_channels != 8:
            raise WeightsError(f"{folder}/unet: expected an InstructPix2Pix-style 8-channel UNet, "
                               f"got in_channels={unet.config.in_channels}")
        adapter = BilateralAdapter(cfg["in_channels"], cfg["global_channels"], grid_depth=cfg["grid_depth"],
                                   grid_size=tuple(cfg["grid_size"]), hidden=cfg["hidden"], n_knots=cfg["n_knots"])
        try:
            adapter.load_state_dict(load_safetensors(folder / "adapter.safetensors"), strict=True)
        except Exception as err:
            raise WeightsError(f"{folder}/adapter.safetensors: does not match adapter_config.json ({err})") from err
        return cls(vae, unet, text, tok, sched, adapter, lowres=cfg.get("lowres", 512),
                   timestep=cfg.get("timestep"), noise_seed=cfg.get("noise_seed", 0))

    # ------------------------------------------------------------------ forward
    def encode_text(self, instructions: list[str]) -> torch.Tensor:
        dev = next(self.text_encoder.parameters()).device
        max_len = min(int(self.tokenizer.model_max_length),
                      int(self.text_encoder.config.max_position_embeddings))
        ids = self.tokenizer(list(instructions), padding="max_length", truncation=True, max_length=max_len,
                             return_tensors="pt").input_ids.to(dev)
        return self.text_encoder(ids)[0]

    def forward(self, lowres: torch.Tensor, text_emb: torch.Tensor, noise: Optional[torch.Tensor] = None,
                return_latents: bool = False):
        """``lowres`` ``[B, 3, L, L]`` in [0, 1], ``text_emb`` ``[B, T, C]`` -> (grid, guide_delta).

        Training (``iretouch_bench.training.distill``) passes ``noise`` ``[B, 4, l, l]`` (a fresh
        ``z_T`` draw; default: the fixed seeded draw of inference) and ``return_latents=True`` to
        also get ``{"z0": Eq. 2's estimate, "image_latents": c_I}`` as a third value.
        """
        B = lowres.shape[0]
        with torch.no_grad():  # frozen encoder; the decoder is never called
            img_lat = self.vae.encode(lowres * 2 - 1).latent_dist.mode()
        if noise is not None:
            z_t = noise.to(img_lat)
        else:
            g = torch.Generator(device="cpu").manual_seed(self.noise_seed)
            z_t = torch.randn(img_lat.shape[1:], generator=g).to(img_lat).expand(B, -1, -1, -1)
        t = torch.full((B,), self.timestep, dtype=torch.long, device=lowres.device)
        self._feats.clear()
        eps = self.unet(torch.cat([z_t, img_lat], dim=1), t, encoder_hidden_states=text_emb).sample
        z0 = (z_t - self._sqrt_1m_abar * eps) / self._sqrt_abar  # Eq. 2: one-step estimate
        last, mid = self._feats["last"], self._feats["mid"]
        local = torch.cat([last, torch.nn.functional.interpolate(z0, size=last.shape[-2:], mode="bilinear",
                                                                 align_corners=False)], dim=1)
        grid, guide_delta = self.adapter(local, mid.mean(dim=(2, 3)))
        if return_latents:
            return grid, guide_delta, {"z0": z0, "image_latents": img_lat}
        return grid, guide_delta

    @torch.no_grad()
    def predict(self, image: np.ndarray, instruction: str):
        """``[H, W, 3]`` float32 image -> (grid ``[12, D, Hg, Wg]``, (knots, mix, bias)) numpy."""
        dev = next(self.unet.parameters()).device
        L = self.lowres
        low = torch.from_numpy(area_resize_hwc(image, L, L)).permute(2, 0, 1)[None].to(dev)
        grid, gd = self(low, self.encode_text([instruction]))
        k, m, b = self.adapter.guidance_params(gd)
        return grid[0].cpu().numpy(), (k[0].cpu().numpy(), m[0].cpu().numpy(), b[0].cpu().numpy())

    def retouch(self, image: np.ndarray, instruction: str, *, mask: Optional[np.ndarray] = None,
                strength: float = 1.0) -> np.ndarray:
        """Full pipeline on the model's device: low-res branch + full-res slice-and-apply -> ``[H, W, 3]``."""
        img = np.ascontiguousarray(image, dtype=np.float32)
        if float(strength) == 0.0:
            return img.copy()
        grid, guidance = self.predict(img, instruction)
        dev = next(self.unet.parameters()).device
        return apply_to_image(grid, img, guidance, strength=float(strength), mask=mask, device=str(dev))
