"""The paper's one-step bilateral distillation recipe (Sec. 3.1-3.4), on ``accelerate``.

``iretouch-bench train data`` builds the Sec. 3.1 triplets (:mod:`.data`);
``iretouch-bench train distill --stage teacher|stage1|stage2 --out DIR`` runs one stage
(:mod:`.teacher` Eq. 1, :mod:`.stage1` Eq. 2-7 and 9, :mod:`.stage2` Eq. 8 and 10) in the
shared loop (:mod:`.loop`) with a config from :mod:`.config`; ``--tiny`` builds tiny random
models of the real classes (:mod:`.tiny`). ``DIR/stage2/final`` is what
``iretouch-bench run --model ours --weights DIR/stage2/final`` loads. See docs/training.md.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

__all__ = ["run_distill"]


def _wait_for(paths: list[Path], timeout: float = 600.0) -> None:
    t0 = time.time()
    while not all(p.exists() for p in paths):
        if time.time() - t0 > timeout:
            raise TimeoutError(f"rank {os.environ.get('RANK')}: rank 0 did not write {', '.join(map(str, paths))}")
        time.sleep(0.5)


def run_distill(stage: str, out: str | Path, *, config: str | Path | None = None, tiny: bool = False,
                overrides: dict[str, Any] | None = None, progress: bool = True) -> dict[str, Any]:
    """Resolve the config, fill in the folder's defaults (data, teacher; tiny weights) and train
    ``stage`` into ``out/<stage>/``. Returns the loop's summary."""
    from .config import resolve_config
    from .data import build_triplets
    from .loop import run_stage
    from .tiny import ensure_tiny_weights

    out = Path(out)
    cfg = resolve_config(stage, file=config, tiny=tiny, overrides=overrides)
    fill: dict[str, Any] = {}
    if cfg.tiny:
        import torch

        torch.set_num_threads(1)  # tiny models gain nothing from threads; on a busy machine they thrash
        # under a launcher only rank 0 writes the tiny weights and data; the others wait for them
        first = int(os.environ.get("RANK", "0")) == 0
        if first:
            w = ensure_tiny_weights(out, lowres=cfg.resolution)
            if cfg.data is None and not (out / "data" / "dataset.json").is_file():
                build_triplets(out / "data", None, per_photo=3, max_side=96, progress=progress)
        else:
            _wait_for([out / "tiny-weights" / "clip", out / "tiny-weights" / "teacher-init"]
                      + ([out / "data" / "dataset.json"] if cfg.data is None else []))
            w = {"clip": str(out / "tiny-weights" / "clip"), "teacher": str(out / "tiny-weights" / "teacher-init")}
        fill["clip"] = cfg.clip or w["clip"]
        if stage == "teacher":
            fill["teacher"] = cfg.teacher or w["teacher"]
    if cfg.data is None:
        fill["data"] = str(out / "data")
    if fill:
        cfg = cfg.model_copy(update=fill)
        cfg = type(cfg).model_validate(cfg.to_json())
    if stage == "teacher":
        from .teacher import build_teacher_stage as build
    elif stage == "stage1":
        from .stage1 import build_stage1 as build
    else:
        from .stage2 import build_stage2 as build
    return run_stage(cfg, out, build, progress=progress)
