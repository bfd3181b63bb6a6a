"""Stage 2, score: one final record per sample in ``samples*.jsonl``.

Reads outputs from disk (never from the model), so a crash while scoring never forces
regeneration. Local metrics run per sample; the judge runs on chunks of samples (its
own concurrency, cache and budget). A sample whose generation failed gets a final
record with status ``failed``, every metric null and the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from ..datasets.sample import Sample
from ..core.images import read_image
from ..judge import JudgeRequest
from ..metrics.keys import JUDGE_KEYS, SAMPLE_KEYS
from ..metrics.protocols import get_protocol
from ..core.errors import error_line
from .records import RecordWriter
from .scoring import score_pair


def wants_identity(mode: str, sample: Sample, dataset_name: str) -> bool:
    """``--identity auto`` scores faces on portrait samples and on PPR10K (all portraits)."""
    if mode == "on":
        return True
    if mode == "off":
        return False
    return sample.category == "portrait" or dataset_name == "ppr10k"


def failed_record(sample: Sample, gen: dict[str, Any], reason: str) -> dict[str, Any]:
    return {
        "id": sample.id, "status": "failed", "error": reason, "category": sample.category, "row": sample.row,
        "instruction": sample.instruction, "output": gen.get("output"),
        "metrics": {k: None for k in SAMPLE_KEYS},
        "null_reasons": {k: f"sample failed: {reason}" for k in SAMPLE_KEYS},
        "latency_s": gen.get("latency_s"), **_model_fields(gen),
    }


def _model_fields(gen: dict[str, Any]) -> dict[str, Any]:
    """What the generate record says about the model call (seed, meta, cache) for the final record."""
    return {k: gen[k] for k in ("seed", "model_meta", "cached") if k in gen}


def refused_record(sample: Sample, gen: dict[str, Any]) -> dict[str, Any]:
    """A sample the model refused: never scored (the input must not stand in for an output),
    every metric null with the refusal as the reason; counted apart from failures."""
    reason = gen.get("reason") or "refused without a reason"
    return {
        "id": sample.id, "status": "refused", "reason": reason, "error": None, "category": sample.category,
        "row": sample.row, "instruction": sample.instruction, "output": None,
        "metrics": {k: None for k in SAMPLE_KEYS},
        "null_reasons": {k: f"refused by the model: {reason}" for k in SAMPLE_KEYS},
        "input_size": gen.get("input_size"), "latency_s": gen.get("latency_s"), **_model_fields(gen),
    }


def judge_blocks(res) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A judge result -> (the record's ``judge`` block: the primary's answers, usage, cost, snapshots,
    spec and prompt hash; the record's ``judges`` map: every judge's block by spec)."""
    primary = res.block()
    per = res.per_judge or {res.spec or "judge": res}
    return ({k: primary[k] for k in ("spec", "raw", "usage", "cost_usd", "cached", "snapshots", "prompt_hash")},
            {spec: r.block() for spec, r in per.items()})


def _local_scores(sample: Sample, gen: dict, run_dir: Path, identity: bool, instruction_score: bool,
                  device: str, face_weights: str | None, metrics: tuple[str, ...],
                  scoring_options: dict[str, Any] | None = None) -> tuple[dict, Any, Any]:
    inp = sample.load_input()
    out = read_image(run_dir / gen["output"])
    tgt = sample.load_target()
    mask = sample.load_mask()
    scores = score_pair(inp, out, target_rgb=tgt, instruction=sample.instruction, mask=mask,
                        identity=identity, instruction_score=instruction_score, device=device,
                        face_weights=face_weights, metrics=metrics, **(scoring_options or {}))
    rec = {
        "id": sample.id, "status": "ok", "error": None, "category": sample.category,
        "instruction": sample.instruction, "output": gen["output"],
        "input_size": gen.get("input_size"), "output_size": gen.get("output_size"),
        "latency_s": gen.get("latency_s"), **_model_fields(gen),
        "metrics": scores.values, "null_reasons": scores.reasons, "details": scores.details,
        # which fidelity protocol made ssim/cw_ssim/gmsd/dists (name/version; metrics.protocols)
        "fidelity_protocol": get_protocol((scoring_options or {}).get("protocol")).label,
    }
    return rec, inp, out


def score(
    samples: Iterable[Sample],
    generated: dict[str, dict],
    run_dir: Path,
    writer: RecordWriter,
    final: dict[str, dict],
    *,
    dataset_name: str,
    identity_mode: str = "auto",
    judge=None,
    judge_spec: str = "offline",
    device: str = "cpu",
    face_weights: str | None = None,
    metrics: tuple[str, ...] = SAMPLE_KEYS,
    chunk: int = 8,
    progress=None,
    scoring_options: dict[str, Any] | None = None,
) -> dict[str, dict]:
    """Score each generated sample that has no final record yet.

    ``scoring_options``: ``protocol``, ``face_margin``, ``face_choice`` for
    :func:`~.scoring.score_pair`."""
    # attr_acc is the offline instruction score: computed unless instruction scoring is off.
    instruction_score = judge_spec != "none"
    pending: list[tuple[dict, Any, Any]] = []

    def flush() -> None:
        if not pending:
            return
        if judge is not None:
            reqs = [JudgeRequest(id=r["id"], input_rgb=i, output_rgb=o, instruction=r["instruction"])
                    for r, i, o in pending]
            try:
                results = judge.score_batch(reqs)
            except Exception as err:  # judge outage: record, never fill
                results = None
                reason = f"judge error: {error_line(err)}"
            for k, (rec, _, _) in enumerate(pending):
                if results is None:
                    for key in JUDGE_KEYS:
                        rec["metrics"][key] = None
                        rec["null_reasons"][key] = reason
                    continue
                res = results[k]
                for key in JUDGE_KEYS:
                    v = res.values.get(key)
                    rec["metrics"][key] = v
                    if v is None:
                        rec["null_reasons"][key] = res.reasons.get(key, "judge gave no score")
                    else:
                        rec["null_reasons"].pop(key, None)
                if res.raw or res.usage or res.per_judge:  # a VLM answered (offline/none judges keep nothing)
                    # ``judge``: the primary's answers (snapshots: aggregation never averages two into
                    # one cell); ``judges``: every judge's scores and answers by spec
                    rec["judge"], rec["judges"] = judge_blocks(res)
        for rec, _, _ in pending:
            writer.append(rec)
            final[rec["id"]] = rec
            if progress is not None:
                progress.update(1)
        pending.clear()

    def record_failure(sample: Sample, gen: dict, reason: str) -> None:
        rec = failed_record(sample, gen, reason)
        writer.append(rec)
        final[sample.id] = rec
        if progress is not None:
            progress.update(1)
            progress.write(f"[failed] {sample.id}: {reason}")

    for sample in samples:
        if sample.id in final:
            if progress is not None:
                progress.update(1)
            continue
        gen = generated.get(sample.id)
        if gen is None:
            continue  # not generated (e.g. interrupted before it); the next run does it
        if gen.get("status") == "refused":
            rec = refused_record(sample, gen)
            writer.append(rec)
            final[sample.id] = rec
            if progress is not None:
                progress.update(1)
            continue
        if gen.get("status") != "ok":
            record_failure(sample, gen, gen.get("error") or "generation failed")
            continue
        identity = wants_identity(identity_mode, sample, dataset_name)
        try:
            pending.append(_local_scores(sample, gen, run_dir, identity, instruction_score, device,
                                         face_weights, metrics, scoring_options))
        except KeyboardInterrupt:
            raise
        except Exception as err:
            record_failure(sample, gen, f"scoring: {error_line(err)}")
            continue
        if len(pending) >= chunk:
            flush()
    flush()
    return final
