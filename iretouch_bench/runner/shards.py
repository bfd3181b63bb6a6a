"""Provenance per shard, and whether every shard of a run has finished.

A run folder may be filled by several processes at once (``--shard K/N``, or the ranks of a
launcher, see :mod:`.launch`), on several hosts over a shared filesystem. Each process writes
only its own files: its record files (``samples-KofN.jsonl``, ``generate-KofN.jsonl``) and
``shards/KofN.json``, which says where and when it ran::

    {"shard": [K, N] | null, "status": "running" | "finished", "host", "pid", "device",
     "environment": {...}, "launcher": {"source", "rank", "world_size", "local_rank"} | null,
     "n_selected", "n_done", "passes": [{"started", "finished", "suite_version", "git",
     "samples_to_score"}, ...]}

An unsharded run writes ``shards/all.json``. ``run.json`` is written once, by the first process
to get there (:func:`iretouch_bench.core.atomic.create_json_exclusive`); the others check that
their configuration agrees with it. :func:`shard_status` tells aggregation which shards are
still missing or running.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

from ..core.atomic import write_json_atomic

SHARDS_DIR = "shards"
_NAME = re.compile(r"^(\d+)of(\d+)\.json$")


def shard_name(shard: tuple[int, int] | None) -> str:
    """``None`` -> ``all.json``; ``(k, n)`` -> ``"{k}of{n}.json"``."""
    return "all.json" if shard is None else f"{shard[0]}of{shard[1]}.json"


def shard_path(run_dir: Path, shard: tuple[int, int] | None) -> Path:
    return Path(run_dir) / SHARDS_DIR / shard_name(shard)


def read_shard(run_dir: Path, shard: tuple[int, int] | None) -> dict[str, Any] | None:
    path = shard_path(run_dir, shard)
    return json.loads(path.read_text()) if path.exists() else None


def write_shard(run_dir: Path, shard: tuple[int, int] | None, info: dict[str, Any]) -> Path:
    """Write this process's shard file (only this process writes it: no lock needed)."""
    return write_json_atomic(shard_path(run_dir, shard), info)


def start_shard(run_dir: Path, shard: tuple[int, int] | None, *, device: str, environment: dict[str, Any],
                launcher: dict[str, Any] | None, n_selected: int, n_done: int, pass_info: dict[str, Any] | None
                ) -> dict[str, Any]:
    """Record that this process starts working on its shard (a resumed shard keeps its history)."""
    info = read_shard(run_dir, shard) or {"shard": list(shard) if shard else None, "passes": []}
    info.update(status="running", host=socket.gethostname(), device=device, environment=environment,
                launcher=launcher, n_selected=n_selected, n_done=n_done)
    if pass_info is not None:
        info["passes"].append(pass_info)
    write_shard(run_dir, shard, info)
    return info


def finish_shard(run_dir: Path, shard: tuple[int, int] | None, info: dict[str, Any], *, n_done: int,
                 finished: str) -> None:
    info.update(status="finished", n_done=n_done, finished=finished)
    if info["passes"]:
        info["passes"][-1]["finished"] = finished
    write_shard(run_dir, shard, info)


def shard_status(run_dir: Path) -> dict[str, Any]:
    """What the shard files of a run say: ``{"world_size": N | None, "finished": [K...],
    "running": [K...], "missing": [K...], "ranks": count of shard files, "hosts": [...]}``.

    ``world_size`` is None for an unsharded run (or an old run folder without shard files)."""
    folder = Path(run_dir) / SHARDS_DIR
    found: dict[int, dict[str, Any]] = {}
    sizes: set[int] = set()
    unsharded = None
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            if path.name == "all.json":
                unsharded = json.loads(path.read_text())
                continue
            m = _NAME.match(path.name)
            if m:
                k, n = int(m.group(1)), int(m.group(2))
                sizes.add(n)
                found[k] = json.loads(path.read_text())
    if len(sizes) > 1:
        return {"world_size": None, "error": f"shard files of several launch sizes ({sorted(sizes)}) in one run folder",
                "finished": [], "running": [], "missing": [], "ranks": len(found), "hosts": []}
    n = next(iter(sizes)) if sizes else None
    infos = list(found.values()) + ([unsharded] if unsharded else [])
    return {
        "world_size": n,
        "finished": sorted(k for k, i in found.items() if i.get("status") == "finished"),
        "running": sorted(k for k, i in found.items() if i.get("status") != "finished"),
        "missing": sorted(set(range(n)) - set(found)) if n else [],
        "ranks": len(infos),
        "hosts": sorted({i.get("host") for i in infos if i.get("host")}),
    }
