"""``result.json``: the versioned, validated result of one run (what leaderboards and submissions read).

Written by :func:`iretouch_bench.runner.run.aggregate` from ``run.json``, ``summary.json`` and the
per-sample records. The pydantic models below are the contract: unknown fields are rejected, NaN
and infinity are rejected, and ``leaderboard/schema/result.schema.json`` is their exported JSON
Schema (a test keeps the file equal to :func:`json_schema`). A change that readers must know about
bumps :data:`SCHEMA_VERSION`.

Every figure a leaderboard row shows comes from here, and every field here from a run-folder
file (``files`` names them), so a row is traceable to the records it summarises.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from ..core.errors import BenchError
from ..metrics.keys import LATENCY_KEYS, SAMPLE_KEYS

SCHEMA_VERSION = "1"
#: Statuses a final sample record may have (DESIGN.md run folder): ``refused`` is counted apart
#: and never scored (an API model that declined the edit).
STATUSES = ("ok", "failed", "refused")
#: Config fields that only say where things were on the machine that ran (never in a submission).
LOCAL_CONFIG_FIELDS = ("out", "judge_cache_dir", "judge_base_url")


class Strict(BaseModel):
    """Unknown fields and non-finite floats are errors, not silently kept."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=False)


def _check_finite(obj: Any, where: str = "") -> Any:
    """Free-form blocks (config, options) hold JSON of any shape: NaN/inf are refused there too."""
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"non-finite number {obj!r} at {where or 'top level'}")
    if isinstance(obj, dict):
        for k, v in obj.items():
            _check_finite(v, f"{where}.{k}" if where else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_finite(v, f"{where}[{i}]")
    return obj


class ConfidenceInterval(Strict):
    lo: Optional[float] = Field(description="lower bound (null with reason when fewer than 2 values)")
    hi: Optional[float]
    method: str = Field(description="e.g. 'bootstrap (percentile)'")
    level: float = Field(gt=0, lt=1)
    iterations: int = Field(ge=1, description="bootstrap resamples")
    seed: int
    reason: Optional[str] = None


class MetricStat(Strict):
    """Mean of one metric over the samples where it was computed, with its 95% interval."""

    mean: Optional[float]
    std: Optional[float] = None
    n: int = Field(ge=0, description="samples the mean is over")
    n_null: int = Field(ge=0, description="samples where the value is null (reasons below)")
    null_reasons: dict[str, int] = Field(default_factory=dict)
    ci: Optional[ConfidenceInterval] = None
    by_source: Optional[dict[str, int]] = Field(
        default=None, description="mixed weights/snapshots: counts per source (mean is then null)")


#: One optional field per per-sample metric key (DESIGN.md metric keys), so the schema names them.
MetricBlock = create_model(
    "MetricBlock", __base__=Strict,
    **{k: (Optional[MetricStat], None) for k in SAMPLE_KEYS},  # type: ignore[call-overload]
)


class CategoryBlock(Strict):
    n: int = Field(ge=0)
    metrics: MetricBlock  # type: ignore[valid-type]


class LatencyValue(Strict):
    median_s: Optional[float] = Field(description="median end-to-end seconds at this size")
    reason: Optional[str] = None


LatencyBlock = create_model(
    "LatencyBlock", __base__=Strict,
    **{k: (Optional[LatencyValue], None) for k in LATENCY_KEYS},  # type: ignore[call-overload]
)


class Suite(Strict):
    name: Literal["iretouch-bench"] = "iretouch-bench"
    version: str
    git_commit: Optional[str]
    git_dirty: Optional[bool]


class ModelIdentity(Strict):
    name: str
    adapter_class: Optional[str]
    weights: Optional[str] = Field(description="weights as given (a name, or a file's base name)")
    weights_sha256: Optional[str]
    options: dict[str, Any] = Field(default_factory=dict)
    api_model_id: Optional[str] = Field(default=None, description="the API model id requested (API editors)")
    api_snapshot: Optional[list[str]] = Field(default=None, description="API model snapshot(s) the provider returned")
    strength: float

    _finite = field_validator("options")(lambda v: _check_finite(v, "options"))


class DatasetRef(Strict):
    name: str
    spec: str
    content_hash: str = Field(min_length=8)
    n_samples: int = Field(ge=0, description="samples in the dataset")
    card: Optional[str] = None


class JudgeRef(Strict):
    spec: str
    kind: Optional[str] = None
    model_requested: Optional[str] = None
    snapshots: list[str] = Field(default_factory=list)
    prompt_version: Optional[str] = None
    prompt_hash: Optional[str] = None


class Protocols(Strict):
    fidelity_protocol: str = Field(description="name/version of the fidelity protocol")
    vocab_version: Optional[str]
    facenet_weights: list[str] = Field(default_factory=list, description="FaceNet weights the records used")
    dists_weights_sha256: Optional[str] = None
    judge: JudgeRef


class Environment(Strict):
    device: str
    platform: Optional[str] = None
    python: Optional[str] = None
    torch: Optional[str] = None
    cpu_count: Optional[int] = None
    gpu: Optional[str] = None
    packages: dict[str, Optional[str]] = Field(default_factory=dict)


class Counts(Strict):
    n_dataset: int = Field(ge=0)
    n_expected: Optional[int] = None
    n_records: int = Field(ge=0)
    n_ok: int = Field(ge=0)
    n_failed: int = Field(ge=0)
    n_refused: int = Field(ge=0)


class SubmissionInfo(Strict):
    """Filled in by ``iretouch-bench submit`` only."""

    submitted: str
    generated_by: str = Field(min_length=1, description="who ran the model")
    scored_by: str = Field(min_length=1, description="who ran the scoring")
    source_run: str = Field(description="the run folder's name (not its path)")
    checks: list[str] = Field(description="the checks the run passed")


class Result(Strict):
    schema_version: Literal["1"] = SCHEMA_VERSION
    kind: Literal["result", "submission"] = "result"
    created: str
    suite: Suite
    model: ModelIdentity
    dataset: DatasetRef
    protocols: Protocols
    config: dict[str, Any]
    environment: Environment
    counts: Counts
    metrics: MetricBlock  # type: ignore[valid-type]
    by_category: dict[str, CategoryBlock] = Field(default_factory=dict)
    latency: Optional[LatencyBlock] = None  # type: ignore[valid-type]
    failed: dict[str, Optional[str]] = Field(default_factory=dict, description="id -> error")
    refused: dict[str, Optional[str]] = Field(default_factory=dict, description="id -> reason")
    files: dict[str, str] = Field(default_factory=dict, description="run-folder files this result comes from")
    submission: Optional[SubmissionInfo] = None

    _finite = field_validator("config")(lambda v: _check_finite(v, "config"))


def json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`Result` (what ``leaderboard/schema/result.schema.json`` holds)."""
    schema = Result.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://iretouch-bench/schema/result-v{SCHEMA_VERSION}.json"
    return schema


def dumps(result: Result) -> str:
    """Canonical JSON text of a result (NaN/inf can never be written)."""
    return json.dumps(result.model_dump(mode="json"), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def load_result(path: str | Path) -> Result:
    """Read and validate a ``result.json`` or submission file; one line naming the file on error."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    except (OSError, ValueError) as err:
        raise BenchError(f"{path}: not a readable result ({err})") from err
    try:
        return Result.model_validate(data)
    except ValidationError as err:
        raise BenchError(f"{path}: {validation_problems(err)[0]} ({err.error_count()} problem(s))") from err


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def validation_problems(err: ValidationError) -> list[str]:
    """One readable line per pydantic error (``field.path: message``)."""
    return [f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in err.errors()]


def comparability_key(result: Result) -> tuple[str, str, str]:
    """Rows are ranked together only when all three agree: dataset content hash, fidelity
    protocol, and judge (snapshot(s) + prompt hash, or the offline judge)."""
    j = result.protocols.judge
    if j.snapshots or j.prompt_hash:
        judge = f"{','.join(j.snapshots) or j.model_requested or j.spec} prompt {(j.prompt_hash or '?')[:12]}"
    else:
        judge = j.spec  # offline / none: no VLM, the instruction score is attr_acc
    return (result.dataset.content_hash, result.protocols.fidelity_protocol, judge)


# --------------------------------------------------------------------------- building


def _weights_name(weights: Any) -> str | None:
    """A weights option as a name, never a local path (the file's base name)."""
    if weights is None:
        return None
    text = str(weights)
    return Path(text).name if ("/" in text or "\\" in text) else text


def _spec_name(spec: Any) -> str:
    """A dataset spec without its local path: ``iretouch:/data/x/manifest.jsonl`` -> ``iretouch:manifest.jsonl``."""
    text = str(spec or "")
    kind, sep, rest = text.partition(":")
    if sep and len(kind) > 1:  # not a Windows drive letter
        return f"{kind}:{_weights_name(rest)}"
    return _weights_name(text) or ""


def _public_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """The run's config without machine-local fields and with paths reduced to names."""
    out = {k: v for k, v in cfg.items() if k not in LOCAL_CONFIG_FIELDS}
    if out.get("weights") is not None:
        out["weights"] = _weights_name(out["weights"])
    if out.get("face_weights") is not None:
        out["face_weights"] = _weights_name(out["face_weights"])
    if "dataset" in out:
        out["dataset"] = _spec_name(out["dataset"])
    return out


def _stat_block(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: metrics[k] for k in SAMPLE_KEYS if k in metrics}


def build_result(run_dir: Path, info: dict[str, Any], summary: dict[str, Any],
                 records: list[dict[str, Any]]) -> Result:
    """``run.json`` + ``summary.json`` + final records -> a validated :class:`Result`.

    Raises:
        pydantic.ValidationError: the inputs do not make a valid result (a bug or a hand-edited run).
    """
    from ..core.provenance import now_iso

    cfg = info.get("config", {})
    model = info.get("model", {}) or {}
    judge = info.get("judge", {}) or {}
    scoring = info.get("scoring", {}) or {}
    device = info.get("device", {}) or {}
    snapshots = sorted({s for r in records for s in ((r.get("judge") or {}).get("snapshots") or [])}
                       | set(judge.get("model_snapshots") or []))
    facenet = sorted({w for r in records
                      for w in [((r.get("details") or {}).get("identity") or {}).get("weights")] if w})
    dists = scoring.get("dists_weights") or {}
    # failed records carry ``error``, refused ones ``reason`` (the model's own answer)
    statuses = {s: {r["id"]: r.get("reason") or r.get("error") for r in records if r.get("status") == s}
                for s in STATUSES}
    latency = summary.get("latency")
    lat_block = None
    if latency:
        lat_block = {k: {"median_s": v, "reason": None if v is not None else "not measured at this size"}
                     for k, v in latency.items() if k in LATENCY_KEYS}
    api_snap = model.get("model_snapshots") or model.get("snapshot") or model.get("api_snapshot")
    data = {
        "schema_version": SCHEMA_VERSION,
        "kind": "result",
        "created": info.get("updated") or now_iso(),  # the run's time, so re-aggregating changes nothing
        "suite": {"version": cfg.get("suite_version") or info.get("versions", {}).get("iretouch-bench") or "unknown",
                  "git_commit": (info.get("git") or {}).get("commit"), "git_dirty": (info.get("git") or {}).get("dirty")},
        "model": {"name": model.get("name") or cfg.get("model"), "adapter_class": model.get("class"),
                  "weights": _weights_name(model.get("weights") or cfg.get("weights")),
                  "weights_sha256": model.get("weights_sha256"),
                  "options": model.get("options") or {},
                  "api_model_id": model.get("model_id"),
                  "api_snapshot": ([api_snap] if isinstance(api_snap, str) else list(api_snap or [])) or None,
                  "strength": float(cfg.get("strength", 1.0))},
        "dataset": {"name": info["dataset"]["name"], "spec": _spec_name(info["dataset"].get("spec")),
                    "content_hash": info["dataset"]["content_hash"], "n_samples": info["dataset"]["n_samples"],
                    "card": info["dataset"].get("card")},
        "protocols": {"fidelity_protocol": cfg.get("fidelity_protocol") or _protocol_name(scoring),
                      "vocab_version": cfg.get("vocab_version") or scoring.get("vocab_version"),
                      "facenet_weights": facenet, "dists_weights_sha256": dists.get("sha256"),
                      "judge": {"spec": judge.get("spec") or cfg.get("judge") or "offline", "kind": judge.get("kind"),
                                "model_requested": judge.get("model_requested"), "snapshots": snapshots,
                                "prompt_version": judge.get("prompt_version"), "prompt_hash": judge.get("prompt_hash")}},
        "config": _public_config(cfg),
        "environment": {"device": device.get("requested_device") or cfg.get("device") or "unknown",
                        "platform": device.get("platform"), "python": device.get("python"),
                        "torch": device.get("torch"), "cpu_count": device.get("cpu_count"),
                        "gpu": device.get("gpu") or device.get("cuda_device"),
                        "packages": info.get("versions") or {}},
        "counts": {"n_dataset": info["dataset"]["n_samples"], "n_expected": summary.get("n_expected"),
                   "n_records": len(records), "n_ok": len(statuses["ok"]), "n_failed": len(statuses["failed"]),
                   "n_refused": len(statuses["refused"])},
        "metrics": _stat_block(summary["metrics"]),
        "by_category": {c: {"n": b["n"], "metrics": _stat_block(b["metrics"])}
                        for c, b in summary.get("by_category", {}).items()},
        "latency": lat_block,
        "failed": statuses["failed"],
        "refused": statuses["refused"],
        "files": {"run": "run.json", "summary": "summary.json", "samples": "samples*.jsonl",
                  **({"latency": "latency.json"} if latency else {})},
    }
    return Result.model_validate(data)


def _protocol_name(scoring: dict[str, Any]) -> str:
    p = scoring.get("fidelity_protocol") or {}
    return f"{p.get('name', 'unknown')}/{p.get('version', '?')}"
