"""Stage 1, generate: run the model on each sample and write its output PNG.

One ``generate*.jsonl`` record per sample (status, latency, sizes, error). A sample whose
record exists is not generated again, so a killed run loses at most the sample in flight.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable

import numpy as np

from ..datasets.sample import Sample
from ..core.errors import error_line
from ..core.images import image_bit_depth, write_image
from ..adapters.base import RetouchModel
from .records import RecordWriter


def output_path(run_dir: Path, sample_id: str) -> Path:
    return run_dir / "outputs" / f"{sample_id}.png"


def _check_output(out: object, sample: Sample) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"model returned {type(out).__name__}, expected numpy.ndarray")
    if out.ndim != 3 or out.shape[2] != 3:
        raise ValueError(f"model returned shape {out.shape}, expected [H, W, 3]")
    if not np.isfinite(out).all():
        raise ValueError("model output holds NaN or infinite values")
    return np.clip(out.astype(np.float32, copy=False), 0.0, 1.0)


def generate_one(model: RetouchModel, sample: Sample, run_dir: Path, strength: float = 1.0) -> dict:
    rec: dict = {"id": sample.id, "stage": "generate"}
    if sample.problem is not None:  # a bad dataset row: recorded as failed, the model is never called
        rec.update(status="failed", error=sample.problem, row=sample.row)
        return rec
    try:
        image = sample.load_input()
        mask = sample.load_mask() if sample.mask_path is not None else None
        rec["input_size"] = list(image.shape[:2])
        t0 = time.perf_counter()
        out = model.retouch(image, sample.instruction, mask=mask, strength=strength)
        rec["latency_s"] = time.perf_counter() - t0
        out = _check_output(out, sample)
        path = output_path(run_dir, sample.id)
        # Outputs keep their input's precision: a 16-bit TIFF source gets a 16-bit PNG.
        write_image(path, out, bits=image_bit_depth(sample.input_path))
        rec.update(status="ok", output=str(path.relative_to(run_dir)), output_size=list(out.shape[:2]))
    except KeyboardInterrupt:
        raise
    except Exception as err:
        rec.update(status="failed", error=error_line(err))
    return rec


def generate(
    model: RetouchModel,
    samples: Iterable[Sample],
    run_dir: Path,
    writer: RecordWriter,
    done: dict[str, dict],
    strength: float = 1.0,
    progress=None,
) -> dict[str, dict]:
    """Generate every sample not in ``done``; returns ``done`` updated with the new records."""
    loaded = False
    for sample in samples:
        if sample.id in done:
            if progress is not None:
                progress.update(1)
            continue
        if not loaded:
            model.ensure_loaded()  # deferred: a fully generated run never loads the model
            loaded = True
        rec = generate_one(model, sample, run_dir, strength)
        writer.append(rec)
        done[sample.id] = rec
        if progress is not None:
            progress.update(1)
            if rec["status"] != "ok":
                progress.write(f"[failed] {sample.id}: {rec['error']}")
    return done
