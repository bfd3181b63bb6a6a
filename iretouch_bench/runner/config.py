"""The configuration of a run and its ``run.json``.

A run folder belongs to one configuration. Rerunning the same command resumes it; a
command whose configuration differs in a way that changes results is refused with a
one-line message rather than silently mixing two configurations in one table.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import BenchError
from ..metrics.keys import SAMPLE_KEYS

#: Config fields that change outputs or scores: a resumed run must agree on these.
RESULT_KEYS = ("model", "weights", "strength", "dataset_hash", "judge", "judge_samples", "identity",
               "face_weights", "expert", "split", "device", "metrics", "judge_endpoint", "judge_max_side",
               "suite_version", "fidelity_protocol", "vocab_version")


@dataclass
class RunConfig:
    model: str
    dataset: str = "embedded"
    judge: str = "offline"
    limit: int | None = None
    out: str | None = None
    device: str = "cpu"
    weights: str | None = None
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
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["shard"] = None if self.shard is None else list(self.shard)
        d["resolutions"] = list(self.resolutions)
        d["metrics"] = list(self.metrics)
        return d


def default_run_dir(model: str, dataset_name: str, root: str | os.PathLike = "runs") -> Path:
    """``runs/<model>__<dataset>``: deterministic, so rerunning a command resumes its run."""
    safe = lambda s: re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("_") or "x"  # noqa: E731
    return Path(root) / f"{safe(model)}__{safe(dataset_name)}"


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
        if old.get(key) != new.get(key):
            raise BenchError(
                f"{run_dir}: holds a run with {key}={old.get(key)!r}, this command has {key}={new.get(key)!r}; "
                f"use another --out (or delete the folder) instead of mixing configurations"
            )
    return existing
