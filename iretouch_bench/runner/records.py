"""Append-only JSONL record files that survive SIGKILL.

Each record is one JSON object on one line, written with a single ``os.write`` on a file
opened with ``O_APPEND`` and then fsync'd: on a local POSIX file system concurrent
appenders (shards) never interleave, and a kill leaves at most one torn last line, which
:func:`read_records` ignores and :class:`RecordWriter` cuts off before appending again.

Shards write their own files (``samples-<k>of<n>.jsonl``); aggregation reads every
``samples*.jsonl`` in the run folder, so N processes can run N shards of one dataset.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np


def _json_default(obj: Any):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _sanitise(obj: Any) -> Any:
    """NaN/inf are not JSON; they must never reach a record as a number."""
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"non-finite value {obj!r} in a record; record null with a reason instead")
    if isinstance(obj, dict):
        return {k: _sanitise(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_sanitise(v) for v in obj]
    return obj


def dumps(record: dict[str, Any]) -> str:
    return json.dumps(_sanitise(record), default=_json_default, ensure_ascii=False, allow_nan=False)


def shard_suffix(shard: tuple[int, int] | None) -> str:
    """``None`` -> ``""``; ``(k, n)`` -> ``"-{k}of{n}"``."""
    return "" if shard is None else f"-{shard[0]}of{shard[1]}"


class RecordWriter:
    """Appends records to one JSONL file, atomically per record."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()

    def _repair_tail(self) -> None:
        """Cut a torn last line left by a killed writer, so the next append starts clean."""
        if not self.path.exists():
            return
        with open(self.path, "rb+") as f:
            data = f.read()
            if data and not data.endswith(b"\n"):
                f.truncate(data.rfind(b"\n") + 1)

    def append(self, record: dict[str, Any]) -> None:
        line = (dumps(record) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, line)
            if written != len(line):  # pragma: no cover - regular files write fully
                raise OSError(f"{self.path}: short write ({written} of {len(line)} bytes)")
            os.fsync(fd)
        finally:
            os.close(fd)


def read_records(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Yield records of one JSONL file, skipping a torn or empty line."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break  # torn last line from a killed writer
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def read_all(run_dir: str | os.PathLike, stem: str) -> dict[str, dict[str, Any]]:
    """Merge ``{stem}.jsonl`` and ``{stem}-*.jsonl`` of a run folder into ``{id: record}``.

    The first record of an id wins (the writer never writes a second final record; if two
    shards were misconfigured to overlap, the first is kept and the rest ignored).
    """
    merged: dict[str, dict[str, Any]] = {}
    run_dir = Path(run_dir)
    for path in sorted(run_dir.glob(f"{stem}.jsonl")) + sorted(run_dir.glob(f"{stem}-*.jsonl")):
        for rec in read_records(path):
            rid = rec.get("id")
            if rid is not None and rid not in merged:
                merged[rid] = rec
    return merged
