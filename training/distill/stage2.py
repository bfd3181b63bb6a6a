"""Stage 2 (paper Sec. 3.4.4-3.4.5; Eq. 8, 10): joint bilateral distillation.

Starts from stage 1's result in the same folder (``DIR/stage1/final``: the generator, EMA
weights; ``DIR/stage1/regularizer``: ``eps_phi'``), unfreezes the bilateral adapter and trains
the whole generator (UNet + adapter) with Eq. 10, ``L_stage2 = L_stage1 + lambda_bila L_bila``:

    L_bila = l1 ||x_B - x*||_1 + l2 LPIPS(x_B, x*) + l3 LPIPS(x_B, x_hat)
             + l4 ||Laplacian3(Gamma)||^2 + l5 Psi(x_B)                         (Eq. 8)

``x_B`` is the full-resolution output: the predicted grid ``Gamma`` sliced with the learned
guidance map and applied to the ``full_resolution`` view of the input (the suite's
differentiable reference slice-and-apply, so training and inference share one convention).
The agreement term compares ``x_B`` area-downsampled to the low-res size with ``sg(x_hat)``
(the low-res branch is not pulled towards the bilateral output). The L1 term sees ``x_B``
clamped to [0, 1] (what a user sees) and ``Psi`` the unclamped values (the suite's
:func:`~iretouch_bench.training.losses.gamut_penalty`); the Laplacian is the suite's
:func:`~iretouch_bench.training.losses.laplacian_smoothness` (zero for any affine grid).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from iretouch_bench.core.errors import WeightsError
from iretouch_bench.models.generator import InstantRetouchGenerator
from iretouch_bench.models.guidance import evaluate_guidance
from iretouch_bench.models.kernels.reference import slice_apply_reference

from ..losses import gamut_penalty, l1_loss, laplacian_smoothness
from .config import StageConfig
from .stage1 import Stage1

__all__ = ["Stage2", "build_stage2", "bilateral_terms"]


def bilateral_terms(x_b: torch.Tensor, target: torch.Tensor, x_hat: torch.Tensor, grid: torch.Tensor,
                    lpips) -> dict[str, torch.Tensor]:
    """The five parts of Eq. 8 (unweighted). ``x_b``/``target`` ``[B, 3, H, W]`` (``x_b`` unclamped),
    ``x_hat`` ``[B, 3, h, w]``, ``grid`` ``[B, 12, D, Hg, Wg]``."""
    low = F.adaptive_avg_pool2d(x_b, x_hat.shape[-2:])
    return {"bila_l1": l1_loss(x_b.clamp(0, 1), target), "bila_lpips": lpips(x_b.clamp(0, 1), target),
            "bila_lpips_lowres": lpips(low.clamp(0, 1), x_hat.detach()),
            "bila_laplacian": laplacian_smoothness(grid), "bila_gamut": gamut_penalty(x_b)}


class Stage2(Stage1):
    train_adapter = True

    def __init__(self, cfg: StageConfig, out: Path, accelerator) -> None:
        from diffusers import UNet2DConditionModel  # heavy: only when training

        s1 = out / "stage1"
        if not (s1 / "final").is_dir() or not (s1 / "regularizer").is_dir():
            raise WeightsError(f"{s1}: no stage-1 result; run `iretouch-bench train distill --stage stage1 --out {out}` "
                               "first")
        gen = InstantRetouchGenerator.from_pretrained(s1 / "final")
        if gen.lowres != cfg.resolution:
            raise WeightsError(f"{s1 / 'final'}: trained at {gen.lowres} px, this config says resolution {cfg.resolution}")
        reg = UNet2DConditionModel.from_pretrained(s1 / "regularizer", local_files_only=True)
        super().__init__(cfg, out, accelerator, generator=gen, regularizer=reg)

    @staticmethod
    def bilateral_output(gen, grid, guide_delta, image_full) -> torch.Tensor:
        knots, mix, bias = gen.adapter.guidance_params(guide_delta.float())
        guide = evaluate_guidance(image_full, knots, mix, bias)
        return slice_apply_reference(grid.float(), guide, image_full.float(), 1.0)

    def train_step(self, batch, step: int) -> dict[str, torch.Tensor]:
        c = self.cfg
        grid, gd, z0, c_img, text, x_hat = self.one_step(batch, step)
        terms = self.stage1_terms(batch, step, z0, c_img, text, x_hat)
        gen = self.acc.unwrap_model(self.gen)
        x_b = self.bilateral_output(gen, grid, gd, batch["input_full"])
        terms.update(bilateral_terms(x_b, batch["target_full"], x_hat, grid, self.lpips))
        bila = (c.bila_l1 * terms["bila_l1"] + c.bila_lpips * terms["bila_lpips"]
                + c.bila_lpips_lowres * terms["bila_lpips_lowres"] + c.bila_laplacian * terms["bila_laplacian"]
                + c.bila_gamut * terms["bila_gamut"])
        terms["bila"] = bila
        total = self.stage1_total(terms) + c.lambda_bila * bila  # Eq. 10
        self.generator_update(total)
        terms["regularizer"] = self.update_regularizer(step, z0, c_img, text)
        return {**{k: v.detach() for k, v in terms.items()}, "total": total.detach()}

def build_stage2(cfg: StageConfig, out: Path, accelerator) -> Stage2:
    return Stage2(cfg, out, accelerator)
