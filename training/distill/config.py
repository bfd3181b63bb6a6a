"""Stage configs as data: one validated model per run, read from JSON, saved beside the weights.

Resolution order for ``iretouch-bench train distill --stage S``:

1. the shipped file ``training/configs/<S>.json`` (the GPU recipe: 512 px, AdamW, EMA, bf16);
2. with ``--tiny``, :data:`TINY_OVERRIDES` (32 px, a handful of steps, CPU, fp32);
3. the user's ``--config FILE`` (any subset of the fields; unknown fields are an error);
4. command-line flags (``--data``, ``--teacher``, ``--clip``, ``--steps``).

The resolved config is written to ``DIR/<S>/config.json`` when a stage starts and checked on
resume (:func:`check_resume`): only the fields in :data:`RESUMABLE_CHANGES` may differ, so a
resumed run never silently mixes two recipes. The final weights folder holds a copy too
(``training_config.json``).

Paper values vs. ours: the paper gives the losses and the curriculum's shape but not every
weight, temperature or schedule length; the defaults below are our reading and are labelled
as such in ``docs/training.md``.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from iretouch_bench.core.errors import BenchError

__all__ = ["STAGES", "StageConfig", "ConfigError", "TINY_OVERRIDES", "RESUMABLE_CHANGES", "shipped_config",
           "resolve_config", "check_resume", "t_hi_at"]

STAGES = ("teacher", "stage1", "stage2")

#: What ``--tiny`` changes: tiny random models (:mod:`.tiny`), 32 px, a few steps, fp32 on CPU.
TINY_OVERRIDES: dict[str, Any] = {
    "tiny": True, "resolution": 32, "full_resolution": 48, "batch_size": 2, "grad_accum": 1, "steps": 4,
    "mixed_precision": "no", "lr": 1e-3, "lr_regularizer": 1e-3, "warmup_steps": 0, "ema_decay": 0.9,
    "checkpoint_every": 2, "keep_checkpoints": 2, "sample_every": 2, "n_samples": 2, "sample_steps": 2,
    "log_every": 1, "num_workers": 0, "adapter_grid_depth": 8, "adapter_grid_size": [8, 8],
    "adapter_hidden": 16, "adapter_knots": 8,
}

#: Fields that may change between a stopped run and its resumption (length and bookkeeping).
RESUMABLE_CHANGES = frozenset({"steps", "checkpoint_every", "keep_checkpoints", "sample_every", "log_every",
                               "num_workers", "n_samples", "sample_steps"})


class ConfigError(BenchError):
    """A config file or field that cannot be used (one line naming the file and the field)."""


class StageConfig(BaseModel):
    """Every knob of one stage. Units: resolutions in pixels, timesteps in the scheduler's
    ``[0, num_train_timesteps)`` range, learning rates per optimiser step."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    stage: Literal["teacher", "stage1", "stage2"]
    tiny: bool = False
    seed: int = 0
    # --- inputs (local paths only; None = the defaults of docs/training.md)
    data: Optional[str] = Field(None, description="triplet manifest (JSONL) or its folder; default DIR/data")
    teacher: Optional[str] = Field(None, description="diffusers InstructPix2Pix-style folder; stage1/2 default "
                                                     "DIR/teacher/final")
    clip: Optional[str] = Field(None, description="local transformers CLIPModel folder (prompt alignment)")
    lpips_vgg: Optional[str] = Field(None, description="VGG16 source for LPIPS (None: the suite's weight cache)")
    # --- data
    resolution: int = Field(512, ge=8, description="low-resolution branch size (square)")
    full_resolution: int = Field(1024, ge=8, description="stage-2 full-resolution crop size (square)")
    # --- optimisation
    steps: int = Field(10000, ge=1)
    batch_size: int = Field(4, ge=1, description="per process, per micro-batch")
    grad_accum: int = Field(1, ge=1)
    lr: float = Field(1e-5, gt=0)
    lr_regularizer: float = Field(1e-5, gt=0)
    adam_betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(1e-2, ge=0)
    warmup_steps: int = Field(500, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    mixed_precision: Literal["no", "fp16", "bf16"] = "bf16"
    ema_decay: float = Field(0.9999, ge=0, lt=1)
    # --- bookkeeping
    checkpoint_every: int = Field(1000, ge=1)
    keep_checkpoints: int = Field(3, ge=1)
    sample_every: int = Field(500, ge=1)
    n_samples: int = Field(4, ge=1)
    sample_steps: int = Field(20, ge=1, description="teacher samples: sampler steps")
    log_every: int = Field(10, ge=1)
    num_workers: int = Field(4, ge=0)
    # --- teacher (Eq. 1)
    cond_dropout: float = Field(0.05, ge=0, le=1 / 3, description="InstructPix2Pix conditioning dropout")
    # --- stage 1 / 2 (Eq. 2-10)
    regularizer_updates: int = Field(1, ge=1, description="eps_phi' updates per generator update (Eq. 4)")
    t_min: int = Field(20, ge=0)
    t_max: int = Field(980, ge=1)
    curriculum: list[tuple[float, int]] = Field(
        default_factory=lambda: [(0.0, 700), (0.34, 400), (0.67, 20)],
        description="(fraction of steps, t_hi): VSD draws t in [t_hi, t_max]; t_hi is lowered at each fraction")
    vsd_weighting: Literal["dmd", "sigma_over_alpha", "one"] = "dmd"
    teacher_guidance_text: float = Field(1.0, ge=0, description="teacher CFG on the text (1 = off)")
    teacher_guidance_image: float = Field(1.0, ge=0, description="teacher CFG on the image (1 = off)")
    noise: Literal["random", "fixed"] = Field("random", description="z_T per step: a fresh draw (paper) or the "
                                                                      "generator's fixed inference draw")
    lambda_lpips: float = 1.0
    lambda_vsd: float = 1.0
    lambda_align: float = 0.1
    tau: float = Field(0.07, gt=0, description="InfoNCE temperature (Eq. 5)")
    # stage 2 (Eq. 8, 10)
    lambda_bila: float = 1.0
    bila_l1: float = 1.0
    bila_lpips: float = 1.0
    bila_lpips_lowres: float = 0.5
    bila_laplacian: float = 0.05
    bila_gamut: float = 1.0
    # generator / adapter (built in stage 1 from the teacher's UNet)
    adapter_grid_depth: int = Field(8, ge=2)
    adapter_grid_size: tuple[int, int] = (16, 16)
    adapter_hidden: int = Field(64, ge=1)
    adapter_knots: int = Field(16, ge=2)

    @model_validator(mode="after")
    def _check(self) -> "StageConfig":
        if not self.t_min < self.t_max:
            raise ValueError(f"t_min ({self.t_min}) must be below t_max ({self.t_max})")
        fr = [f for f, _ in self.curriculum]
        if not self.curriculum or fr[0] != 0.0 or fr != sorted(fr) or not all(0 <= f < 1 for f in fr):
            raise ValueError("curriculum must start at fraction 0.0 and increase within [0, 1)")
        for _, t_hi in self.curriculum:
            if not self.t_min <= t_hi < self.t_max:
                raise ValueError(f"curriculum t_hi {t_hi} outside [t_min, t_max)")
        return self

    def to_json(self) -> dict[str, Any]:
        return json.loads(self.model_dump_json())


def t_hi_at(cfg: StageConfig, step: int) -> int:
    """The curriculum's ``t_hi`` at optimiser step ``step`` (0-based; high t first)."""
    frac = step / max(1, cfg.steps)
    t_hi = cfg.curriculum[0][1]
    for f, t in cfg.curriculum:
        if frac >= f:
            t_hi = t
    return int(t_hi)


def _one_line(err: ValidationError, where: str) -> str:
    first = err.errors()[0]
    loc = ".".join(str(x) for x in first["loc"]) or "config"
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{where}: field {loc!r}: {first['msg']}{more}"


def shipped_config(stage: str) -> dict[str, Any]:
    """The shipped GPU recipe for ``stage`` (``training/configs/<stage>.json``) as a dict."""
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
    text = resources.files("iretouch_bench.training").joinpath("configs", f"{stage}.json").read_text("utf-8")
    return json.loads(text)


def resolve_config(stage: str, *, file: str | Path | None = None, tiny: bool = False,
                   overrides: dict[str, Any] | None = None) -> StageConfig:
    """Shipped recipe -> tiny overrides -> ``file`` -> ``overrides`` (None values ignored)."""
    data = shipped_config(stage)
    if tiny:
        data.update(TINY_OVERRIDES)
    where = "config"
    if file is not None:
        where = str(file)
        try:
            user = json.loads(Path(file).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{file}: no such config file") from None
        except (OSError, ValueError) as err:
            raise ConfigError(f"{file}: not a readable JSON config ({err})") from None
        if not isinstance(user, dict):
            raise ConfigError(f"{file}: a config is a JSON object, got {type(user).__name__}")
        if user.get("stage", stage) != stage:
            raise ConfigError(f"{file}: is a config for stage {user['stage']!r}, not {stage!r}")
        data.update(user)
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    data["stage"] = stage
    try:
        return StageConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_one_line(err, where)) from None


def check_resume(saved: Path, cfg: StageConfig) -> None:
    """Refuse to resume ``saved`` (a stage's ``config.json``) under a different recipe."""
    try:
        old = StageConfig.model_validate_json(saved.read_text(encoding="utf-8")).to_json()
    except (OSError, ValidationError) as err:
        raise ConfigError(f"{saved}: unreadable saved config ({type(err).__name__}); move the folder away") from None
    new = cfg.to_json()
    diff = sorted(k for k in new if k not in RESUMABLE_CHANGES and old.get(k) != new.get(k))
    if diff:
        raise ConfigError(f"{saved}: this stage was started with another config ({', '.join(diff)} differ); "
                          "resume with the same config or use a new --out")
