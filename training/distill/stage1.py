"""Stage 1 (paper Sec. 3.4.1-3.4.3, 3.4.5; Eq. 2-7, 9): the low-resolution one-step branch.

Models: the generator ``G_theta`` (:class:`~iretouch_bench.models.generator.InstantRetouchGenerator`,
UNet initialised from the teacher, frozen VAE and text encoder, adapter frozen at the
identity), the frozen teacher ``eps_phi`` and the trainable regulariser ``eps_phi'``
(initialised from the teacher too, as in DMD).

One optimiser step:

1. Eq. 2: ``z_T ~ N(0, I)``; ``z0 = (z_T - beta_T eps_theta(z_T, T, c_I, c_T)) / alpha_T``;
   ``x_hat = D(z0)`` (the frozen decoder, used only in training).
2. Eq. 3 (VSD): ``t ~ U[t_hi(step), t_max]`` (the progressive curriculum lowers ``t_hi``);
   ``z_t = alpha_t sg(z0) + beta_t eps``; the gradient ``omega(t) (eps_phi(z_t) - eps_phi'(z_t))``
   is pushed into ``z0`` through the surrogate of :func:`.losses.vsd_surrogate`.
3. Eq. 7 (data): ``||x_hat - x*||^2 + lambda_LPIPS LPIPS(x_hat, x*)``.
4. Eq. 5-6 (prompt alignment): attribute InfoNCE on CLIP similarities of ``x_hat``.
5. Eq. 9: ``L = L_data + lambda_VSD L_VSD + lambda_align L_align`` -> AdamW on the UNet.
6. Eq. 4: ``eps_phi'`` learns the generator's distribution: ``||eps_phi'(z_t', t') - eps'||^2`` on
   fresh noise and ``t' ~ U[t_min, t_max]`` around ``sg(z0)`` (``regularizer_updates`` times).

Output: ``DIR/stage1/final`` (generator folder, EMA weights) and ``DIR/stage1/regularizer``
(``eps_phi'``, so stage 2 continues the VSD game where stage 1 left it).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
import torch.nn.functional as F

from iretouch_bench.core.errors import WeightsError

from .config import StageConfig, t_hi_at
from .losses import PromptAlignment, lpips_vgg, vsd_grad, vsd_surrogate, vsd_weight
from .loop import stage_generator
from .nets import generator_from_teacher, load_clip, load_teacher
from .teacher import encode_text

__all__ = ["Stage1", "build_stage1", "teacher_folder"]


def teacher_folder(cfg: StageConfig, out: Path) -> Path:
    """``cfg.teacher`` or ``DIR/teacher/final`` (the teacher stage's result)."""
    path = Path(cfg.teacher) if cfg.teacher else out / "teacher" / "final"
    if not path.is_dir():
        raise WeightsError(f"{path}: no teacher; run `iretouch-bench train distill --stage teacher --out {out}` first "
                           "or pass --teacher PATH (a diffusers InstructPix2Pix folder)")
    return path


class Stage1:
    #: which parts of the generator train (stage 2 adds the adapter)
    train_adapter = False

    def __init__(self, cfg: StageConfig, out: Path, accelerator, *, generator=None, regularizer=None) -> None:
        self.cfg, self.acc, self.out = cfg, accelerator, out
        dev = accelerator.device
        self.wdtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(cfg.mixed_precision, torch.float32)
        parts = load_teacher(teacher_folder(cfg, out))
        self.sched = parts.scheduler
        abar = self.sched.alphas_cumprod.to(dev)
        self.alpha, self.beta = abar.sqrt(), (1 - abar).sqrt()
        # generator and regulariser start as copies of the teacher's UNet (Sec. 3.4.1, DMD) ...
        if generator is None:
            generator = generator_from_teacher(parts, lowres=cfg.resolution, grid_depth=cfg.adapter_grid_depth,
                                               grid_size=tuple(cfg.adapter_grid_size), hidden=cfg.adapter_hidden,
                                               n_knots=cfg.adapter_knots)
        if regularizer is None:
            regularizer = copy.deepcopy(parts.unet)
        # ... and the teacher eps_phi itself is frozen (kept in the mixed-precision dtype)
        self.teacher = parts.unet.requires_grad_(False).eval().to(dev, dtype=self.wdtype)
        gen = generator
        gen.vae.requires_grad_(False).to(dev)
        gen.text_encoder.requires_grad_(False).to(dev, dtype=self.wdtype)
        gen.adapter.requires_grad_(self.train_adapter)
        gen.unet.requires_grad_(True)
        gen.train()
        self.sf = float(getattr(gen.vae.config, "scaling_factor", 0.18215))
        self._null_text = encode_text(gen.text_encoder, gen.tokenizer, [""], dev).float()  # CFG's empty prompt
        params = [p for p in gen.parameters() if p.requires_grad]
        opt_g = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.adam_betas, weight_decay=cfg.weight_decay)
        regularizer.requires_grad_(True).train()
        opt_r = torch.optim.AdamW(regularizer.parameters(), lr=cfg.lr_regularizer, betas=cfg.adam_betas,
                                  weight_decay=cfg.weight_decay)
        self.gen, self.reg, self.opt_g, self.opt_r = accelerator.prepare(gen, regularizer, opt_g, opt_r)
        self.models = [self.gen, self.reg]
        # frozen critics of the losses
        self.lpips = lpips_vgg(cfg.lpips_vgg, random_trunk=cfg.tiny).to(dev)
        if not cfg.clip:
            raise WeightsError("prompt alignment needs CLIP: pass --clip PATH (a local transformers CLIPModel folder)")
        clip, ctok, size, mean, std = load_clip(cfg.clip)
        self.align = PromptAlignment(clip, ctok, tau=cfg.tau, image_size=size, mean=mean, std=std).to(dev)

    # ------------------------------------------------------------------ loop interface
    def ema_parameters(self):
        return [p for p in self.acc.unwrap_model(self.gen).parameters() if p.requires_grad]

    def set_lr(self, factor: float) -> None:
        for g in self.opt_g.param_groups:
            g["lr"] = self.cfg.lr * factor
        for g in self.opt_r.param_groups:
            g["lr"] = self.cfg.lr_regularizer * factor

    # ------------------------------------------------------------------ pieces
    def _noise_eps(self, unet, z_t, t, c_img, text, guidance_text: float = 1.0, guidance_image: float = 1.0):
        """``eps(z_t, t, c_I, c_T)``, with InstructPix2Pix classifier-free guidance when a scale is not 1."""
        x = torch.cat([z_t, c_img], dim=1).to(self.wdtype)
        if guidance_text == 1.0 and guidance_image == 1.0:
            return unet(x, t, encoder_hidden_states=text.to(self.wdtype)).sample.float()
        B = z_t.shape[0]
        null = self._null_text.expand_as(text)
        xs = torch.cat([x, x, torch.cat([z_t, torch.zeros_like(c_img)], dim=1).to(self.wdtype)])
        texts = torch.cat([text, null, null]).to(self.wdtype)
        e_full, e_img, e_none = unet(xs, t.repeat(3), encoder_hidden_states=texts).sample.float().split(B)
        return e_none + guidance_image * (e_img - e_none) + guidance_text * (e_full - e_img)

    def one_step(self, batch, step: int):
        """Eq. 2: ``(grid, guide_delta, z0, c_I, text, x_hat)`` for the batch."""
        cfg, dev = self.cfg, self.acc.device
        unwrapped = self.acc.unwrap_model(self.gen)
        text = encode_text(unwrapped.text_encoder, unwrapped.tokenizer, batch["instruction"], dev).float()
        x = batch["input"]
        noise = None
        if cfg.noise == "random":
            g = stage_generator(cfg, step, self.acc.process_index, purpose=2)
            lat = cfg.resolution // (2 ** (len(unwrapped.vae.config.block_out_channels) - 1))
            noise = torch.randn((x.shape[0], unwrapped.unet.config.out_channels, lat, lat), generator=g).to(dev)
        grid, gd, lat_out = self.gen(x, text, noise=noise, return_latents=True)
        z0 = lat_out["z0"]
        # the frozen fp32 decoder (outside the autocast of the prepared forward): decode in fp32
        x_hat = (unwrapped.vae.decode(z0.float() / self.sf).sample.float() + 1) / 2
        return grid, gd, z0, lat_out["image_latents"], text, x_hat

    def stage1_terms(self, batch, step: int, z0, c_img, text, x_hat) -> dict[str, torch.Tensor]:
        cfg, dev = self.cfg, self.acc.device
        B = z0.shape[0]
        g = stage_generator(cfg, step, self.acc.process_index, purpose=3)
        # Eq. 3: VSD on a noisy copy of the generator's latent, t from the curriculum range
        t_hi = t_hi_at(cfg, step)
        t = torch.randint(t_hi, cfg.t_max + 1, (B,), generator=g).to(dev)
        eps = torch.randn(z0.shape, generator=g).to(dev)
        a, b = self.alpha[t].view(B, 1, 1, 1), self.beta[t].view(B, 1, 1, 1)
        z_t = a * z0.detach() + b * eps
        with torch.no_grad():
            e_real = self._noise_eps(self.teacher, z_t, t, c_img, text, cfg.teacher_guidance_text,
                                     cfg.teacher_guidance_image)
            e_fake = self._noise_eps(self.acc.unwrap_model(self.reg), z_t, t, c_img, text)
            omega = vsd_weight(z0.detach().float(), e_real, z_t.float(), a, b, cfg.vsd_weighting)
        l_vsd = vsd_surrogate(z0, vsd_grad(e_real, e_fake, omega))
        # Eq. 7: data term on the decoded low-resolution output
        target = batch["target"]
        l_mse = F.mse_loss(x_hat, target)
        l_lpips = self.lpips(x_hat, target)
        # Eq. 5-6: prompt alignment
        l_align = self.align(x_hat, batch["attrs"], batch["attr_weights"])
        return {"vsd": l_vsd, "data_mse": l_mse, "data_lpips": l_lpips, "align": l_align}

    def stage1_total(self, terms) -> torch.Tensor:
        c = self.cfg
        return (terms["data_mse"] + c.lambda_lpips * terms["data_lpips"] + c.lambda_vsd * terms["vsd"]
                + c.lambda_align * terms["align"])

    def update_regularizer(self, step: int, z0, c_img, text) -> torch.Tensor:
        """Eq. 4 on ``sg(z0)``: ``regularizer_updates`` denoising steps of eps_phi'."""
        cfg, dev = self.cfg, self.acc.device
        B = z0.shape[0]
        total = torch.zeros((), device=dev)
        for k in range(cfg.regularizer_updates):
            g = stage_generator(cfg, step, self.acc.process_index, purpose=10 + k)
            t = torch.randint(cfg.t_min, cfg.t_max + 1, (B,), generator=g).to(dev)
            eps = torch.randn(z0.shape, generator=g).to(dev)
            z_t = self.alpha[t].view(B, 1, 1, 1) * z0.detach() + self.beta[t].view(B, 1, 1, 1) * eps
            pred = self.reg(torch.cat([z_t, c_img], dim=1), t, encoder_hidden_states=text).sample
            loss = F.mse_loss(pred.float(), eps)
            self.acc.backward(loss)
            if self.acc.sync_gradients:
                self.acc.clip_grad_norm_(self.reg.parameters(), cfg.max_grad_norm)
            self.opt_r.step()
            self.opt_r.zero_grad(set_to_none=True)
            total = total + loss.detach() / cfg.regularizer_updates
        return total

    def generator_update(self, loss: torch.Tensor) -> None:
        self.acc.backward(loss)
        if self.acc.sync_gradients:
            self.acc.clip_grad_norm_([p for p in self.gen.parameters() if p.requires_grad], self.cfg.max_grad_norm)
        self.opt_g.step()
        self.opt_g.zero_grad(set_to_none=True)

    # ------------------------------------------------------------------ one step
    def train_step(self, batch, step: int) -> dict[str, torch.Tensor]:
        _, _, z0, c_img, text, x_hat = self.one_step(batch, step)
        terms = self.stage1_terms(batch, step, z0, c_img, text, x_hat)
        total = self.stage1_total(terms)
        self.generator_update(total)
        terms["regularizer"] = self.update_regularizer(step, z0, c_img, text)
        return {**{k: v.detach() for k, v in terms.items()}, "total": total.detach()}

    def sample_columns(self, batch):
        gen = self.acc.unwrap_model(self.gen)
        was = gen.training
        gen.eval()
        text = encode_text(gen.text_encoder, gen.tokenizer, batch["instruction"], self.acc.device).float()
        grid, gd, lat = gen(batch["input"], text, return_latents=True)
        x_hat = (gen.vae.decode(lat["z0"].float() / self.sf).sample.float() + 1) / 2
        gen.train(was)
        cols = [("input", batch["input"]), ("lowres_output", x_hat)]
        if self.train_adapter:
            cols.append(("bilateral_output", self.bilateral_output(gen, grid, gd, batch["input_full"])))
        return cols + [("target", batch["target"])]

    def save_final(self, folder: Path) -> None:
        gen = self.acc.unwrap_model(self.gen)
        gen.text_encoder.to(torch.float32)
        gen.save_pretrained(folder)
        reg_dir = Path(folder).parent / "regularizer"
        self.acc.unwrap_model(self.reg).save_pretrained(reg_dir)


def build_stage1(cfg: StageConfig, out: Path, accelerator) -> Stage1:
    return Stage1(cfg, out, accelerator)
