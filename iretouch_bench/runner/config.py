"""The configuration of a run and its ``run.json``.

A run folder belongs to one configuration. Rerunning the same command resumes it; a
command whose configuration differs in a way that changes results is refused with a
one-line message rather than silently mixing two configurations in one table.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..clients import sanitise_url
from ..core.errors import BenchError
from ..metrics.keys import SAMPLE_KEYS

#: Config fields that change outputs or scores: a resumed run must agree on these.
RESULT_KEYS = ("model", "model_args", "seed", "weights", "strength", "dataset_hash", "judge", "judge_samples", "identity",
               "face_weights", "expert", "split", "device", "metrics", "judge_endpoint", "judge_max_side",
               "suite_version", "fidelity_protocol", "vocab_version",
               # scoring protocols (issue 13): judge prompt set and what the judge is shown, FaceNet options
               "judge_prompt_hash", "judge_image_format", "judge_image_quality", "judge_temperature", "judge_seed",
               "face_margin", "face_choice")


@dataclass
class RunConfig:
    model: str
    dataset: str = "embedded"
    judge: str = "offline"
    limit: int | None = None
    out: str | None = None
    device: str = "cpu"
    weights: str | None = None
    #: ``--model-args key=value,...`` (parsed by :func:`parse_model_args`), the adapter's constructor options
    model_args: dict[str, Any] = field(default_factory=dict)
    #: run seed; each sample's seed is derived from it and the sample id (runner.generate.sample_seed)
    seed: int = 0
    #: API editors: stop generating before spending more than this many USD (None: no limit)
    model_budget: float | None = None
    #: API editors' output cache: use | refresh (call again, overwrite) | off
    model_cache: str = "use"
    model_cache_dir: str | None = None  # default: the user cache's model-outputs/ folder
    strength: float = 1.0
    identity: str = "auto"  # auto | on | off
    face_weights: str | None = None  # auto | vggface2 | casia-webface | PATH
    expert: str = "a"
    split: str | None = None
    shard: tuple[int, int] | None = None  # (k, n), k in 0..n-1
    judge_base_url: str | None = None
    judge_samples: int = 1
    judge_cache: str = "use"
    judge_budget: float | None = None
    judge_concurrency: int = 4
    judge_rpm: float | None = None
    judge_max_side: int = 1024
    judge_timeout: float = 120.0
    judge_retries: int = 5
    judge_cache_dir: str | None = None  # default: the user cache's judge/ folder
    #: ``--judge-prompts FILE``: a prompt-set file (judge/prompts.py format); None = the suite's set
    judge_prompts: str | None = None
    judge_image_format: str = "png"  # png | jpeg
    judge_image_quality: int | None = None  # jpeg quality (default 90)
    judge_temperature: float = 0.0
    judge_seed: int | None = None  # None: the judge's default (20260527)
    #: ``--protocol``: the fidelity protocol's name (metrics/protocols.py); ``fidelity_protocol`` holds name/version
    protocol: str = "paper"
    face_margin: int = 32  # FaceNet crop margin (px in the 160 px crop)
    face_choice: str = "confident"  # confident | largest: the subject when the input shows several faces
    latency: bool = False
    resolutions: tuple[str, ...] = ("720p", "1k", "2k", "4k")
    latency_repeats: int = 3
    #: per-sample keys to compute (``--metrics`` / ``--skip``, resolved by metrics.keys.select_metrics)
    metrics: tuple[str, ...] = SAMPLE_KEYS
    dataset_hash: str | None = None  # filled once the dataset is loaded
    #: filled by the runner: the judge's endpoint (no credentials), the suite, protocol and vocabulary versions
    judge_endpoint: str | None = None
    suite_version: str | None = None
    fidelity_protocol: str | None = None
    vocab_version: str | None = None
    #: filled by the runner: the judge prompt set's sha256 (None without a VLM judge)
    judge_prompt_hash: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["shard"] = None if self.shard is None else list(self.shard)
        d["resolutions"] = list(self.resolutions)
        d["metrics"] = list(self.metrics)
        # judge endpoints (SPEC@URL, --judge-base-url) are recorded without user info or query
        d["judge"] = ",".join(f"{p.partition('@')[0]}@{sanitise_url(p.partition('@')[2])}" if "@" in p else p
                              for p in self.judge.split(","))
        d["judge_base_url"] = sanitise_url(self.judge_base_url)
        # a URL option (base_url=...) is recorded without user info or query: what may carry a credential
        d["model_args"] = {k: sanitise_url(v) if isinstance(v, str) and "://" in v else v
                           for k, v in self.model_args.items()}
        return d


def _parse_value(text: str) -> Any:
    """lm-evaluation-harness's rule: ``true``/``false`` -> bool, then int, then float, else the string."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text  # "nan"/"inf" are not JSON: kept as text


#: option names that would carry a credential; keys come from the environment only, never
#: from the command line (which lands in run.json, shell history and process lists)
_SECRET_ARG = re.compile(r"(^|_)(api_?key|key|secret|password|token)$", re.IGNORECASE)


def parse_model_args(text: str | None) -> dict[str, Any]:
    """``"quality=high,steps=28,fast=true"`` -> ``{"quality": "high", "steps": 28, "fast": True}``.

    The convention of lm-evaluation-harness's ``--model_args``: comma-separated ``key=value``
    pairs, values read as bool, int, float or string. A pair without ``=`` is one clear error."""
    out: dict[str, Any] = {}
    if not text or not text.strip():
        return out
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or not key:
            raise BenchError(f"--model-args: expected key=value, got {part!r} (in {text!r})")
        if key in out:
            raise BenchError(f"--model-args: {key!r} given twice (in {text!r})")
        if _SECRET_ARG.search(key):
            raise BenchError(f"--model-args: {key!r} looks like a credential; API keys are read from the "
                             "environment only (see `iretouch-bench models list` for the variable)")
        out[key] = _parse_value(value.strip())
    return out


def default_run_dir(model: str, dataset_name: str, root: str | os.PathLike = "runs") -> Path:
    """``runs/<model>__<dataset>``: deterministic, so rerunning a command resumes its run."""
    safe = lambda s: re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("_") or "x"  # noqa: E731
    return Path(root) / f"{safe(model)}__{safe(dataset_name)}"


def device_kind(device: str) -> str:
    """``"cuda:3"`` -> ``"cuda"``: what the resume guard compares (ranks differ only in the index)."""
    return device.split(":", 1)[0]


def check_compatible(run_dir: Path, config: RunConfig) -> dict[str, Any] | None:
    """Return the existing run.json (or None) after checking it was made by the same configuration."""
    path = run_dir / "run.json"
    if not path.exists():
        return None
    try:
        existing = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise BenchError(f"{path}: unreadable run.json ({err}); remove the folder or choose another --out") from err
    old = existing.get("config", {})
    new = config.to_json()
    for key in RESULT_KEYS:
        a, b = old.get(key), new.get(key)
        if key == "device" and isinstance(a, str) and isinstance(b, str):
            # the ranks of one run use cuda:0, cuda:1, ...: the kind of device is what changes numbers
            a, b = device_kind(a), device_kind(b)
        if a != b:
            raise BenchError(
                f"{run_dir}: holds a run with {key}={old.get(key)!r}, this command has {key}={new.get(key)!r}; "
                f"use another --out (or delete the folder) instead of mixing configurations"
            )
    return existing
