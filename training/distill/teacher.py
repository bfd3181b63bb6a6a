"""Teacher fine-tuning (paper Sec. 3.2, Eq. 1): InstructPix2Pix-style noise prediction.

``z0 = E(x*)`` (sampled, times the VAE scaling factor), ``z_t = alpha_t z0 + beta_t eps`` with
``t ~ U{0..T-1}``, conditioned on the input latent ``c_I = E(x)`` (the distribution's mode,
unscaled, concatenated to ``z_t`` as InstructPix2Pix does) and the instruction ``c_T``:

    L_teacher = || eps - eps_phi(z_t, t, c_I, c_T) ||^2          (v-prediction: the velocity)

InstructPix2Pix's conditioning dropout is kept (so classifier-free guidance works at
sampling): with ``q = cond_dropout`` and ``p ~ U[0, 1)`` per sample, the text is dropped when
``p < 2q`` and the image when ``q <= p < 3q`` (both in ``[q, 2q)``). Only the UNet trains;
the VAE and text encoder stay frozen. Output: ``DIR/teacher/final``, a
``StableDiffusionInstructPix2PixPipeline`` folder.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from iretouch_bench.core.errors import WeightsError

from .config import StageConfig
from .loop import stage_generator
from .nets import load_teacher, save_teacher

__all__ = ["TeacherStage", "encode_text", "build_teacher_stage"]


def encode_text(text_encoder, tokenizer, prompts: list[str], device) -> torch.Tensor:
    """CLIP text hidden states ``[B, T, C]`` (padded to the encoder's length), no gradient."""
    max_len = min(int(tokenizer.model_max_length), int(text_encoder.config.max_position_embeddings))
    ids = tokenizer(list(prompts), padding="max_length", truncation=True, max_length=max_len,
                    return_tensors="pt").input_ids.to(device)
    with torch.no_grad():
        return text_encoder(ids)[0]


class TeacherStage:
    def __init__(self, cfg: StageConfig, out: Path, accelerator) -> None:
        if not cfg.teacher:
            raise WeightsError("teacher stage: no initial teacher; pass --teacher PATH (a diffusers InstructPix2Pix "
                               "folder) or use --tiny")
        self.cfg, self.acc = cfg, accelerator
        self.parts = load_teacher(cfg.teacher)
        dev = accelerator.device
        self.wdtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(cfg.mixed_precision, torch.float32)
        p = self.parts
        p.vae.requires_grad_(False).to(dev, dtype=self.wdtype)
        p.text_encoder.requires_grad_(False).to(dev, dtype=self.wdtype)
        p.unet.train()
        opt = torch.optim.AdamW(p.unet.parameters(), lr=cfg.lr, betas=cfg.adam_betas, weight_decay=cfg.weight_decay)
        self.unet, self.opt = accelerator.prepare(p.unet, opt)
        self.models = [self.unet]
        self.sf = float(getattr(p.vae.config, "scaling_factor", 0.18215))
        self.null_text = encode_text(p.text_encoder, p.tokenizer, [""], dev)

    def ema_parameters(self):
        return self.acc.unwrap_model(self.unet).parameters()

    def set_lr(self, factor: float) -> None:
        for g in self.opt.param_groups:
            g["lr"] = self.cfg.lr * factor

    def train_step(self, batch, step: int) -> dict[str, torch.Tensor]:
        p, dev, cfg = self.parts, self.acc.device, self.cfg
        g = stage_generator(cfg, step, self.acc.process_index, purpose=1)
        x, xs = batch["input"].to(self.wdtype), batch["target"].to(self.wdtype)
        B = x.shape[0]
        with torch.no_grad():
            d = p.vae.encode(xs * 2 - 1).latent_dist
            z0 = (d.mean + d.std * torch.randn(d.mean.shape, generator=g).to(d.mean)) * self.sf
            c_img = p.vae.encode(x * 2 - 1).latent_dist.mode()
            text = encode_text(p.text_encoder, p.tokenizer, batch["instruction"], dev)
        noise = torch.randn(z0.shape, generator=g).to(z0)
        t = torch.randint(0, p.scheduler.config.num_train_timesteps, (B,), generator=g).to(dev)
        z_t = p.scheduler.add_noise(z0, noise, t)
        if cfg.cond_dropout > 0:
            u = torch.rand(B, generator=g).to(dev)
            q = cfg.cond_dropout
            drop_text = (u < 2 * q).view(B, 1, 1)
            text = torch.where(drop_text, self.null_text.expand_as(text), text)
            keep_img = 1.0 - ((u >= q) & (u < 3 * q)).to(c_img.dtype).view(B, 1, 1, 1)
            c_img = c_img * keep_img
        if p.scheduler.config.prediction_type == "v_prediction":
            target = p.scheduler.get_velocity(z0, noise, t)
        else:
            target = noise
        pred = self.unet(torch.cat([z_t, c_img], dim=1), t, encoder_hidden_states=text).sample
        loss = F.mse_loss(pred.float(), target.float())
        self.acc.backward(loss)
        if self.acc.sync_gradients:
            self.acc.clip_grad_norm_(self.unet.parameters(), cfg.max_grad_norm)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return {"teacher_mse": loss.detach(), "total": loss.detach()}

    def _pipeline(self):
        from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionInstructPix2PixPipeline

        p = self.parts
        return StableDiffusionInstructPix2PixPipeline(
            vae=p.vae, text_encoder=p.text_encoder, tokenizer=p.tokenizer, unet=self.acc.unwrap_model(self.unet),
            scheduler=EulerAncestralDiscreteScheduler.from_config(p.scheduler.config), safety_checker=None,
            feature_extractor=None, requires_safety_checker=False)

    def sample_columns(self, batch):
        """input | teacher edit (the pipeline, ``sample_steps`` steps, CFG) | target."""
        unet = self.acc.unwrap_model(self.unet)
        was = unet.training
        unet.eval()
        pipe = self._pipeline()
        pipe.set_progress_bar_config(disable=True)
        g = torch.Generator(device="cpu").manual_seed(self.cfg.seed)
        with self.acc.autocast():  # frozen parts are in the mixed-precision dtype, the trained UNet in fp32
            out = pipe(prompt=list(batch["instruction"]), image=batch["input"].to(self.wdtype),
                       num_inference_steps=self.cfg.sample_steps, guidance_scale=self.cfg.teacher_guidance_text,
                       image_guidance_scale=self.cfg.teacher_guidance_image, generator=g, output_type="pt").images
        unet.train(was)
        return [("input", batch["input"]), ("teacher", out.float()), ("target", batch["target"])]

    def save_final(self, folder: Path) -> None:
        p = self.parts
        p.vae.to(torch.float32)
        p.text_encoder.to(torch.float32)
        save_teacher(p, self.acc.unwrap_model(self.unet), folder)


def build_teacher_stage(cfg: StageConfig, out: Path, accelerator) -> TeacherStage:
    return TeacherStage(cfg, out, accelerator)
