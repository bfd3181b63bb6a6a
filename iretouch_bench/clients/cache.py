"""On-disk cache of remote answers, so a rerun of the same calls sends nothing and pays nothing.

One JSON entry per key, ``<root>/<key[:2]>/<key>.json``, and optional binary files beside it
(``<key>.<name>``, e.g. the PNG an image API returned). Every file is written atomically
(:mod:`iretouch_bench.core.atomic`); the binary files first, the JSON last, so an entry that
can be read always has its files. The key is the sha256 of a canonical JSON of everything
that determines the answer (:func:`stable_key`); callers put the endpoint in it, so two servers
serving one model name never share answers. Entries hold answers, usage and cost, never a
request header or credential (callers redact before storing).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..core.atomic import write_bytes_atomic, write_json_atomic

#: ``use``: read and write; ``refresh``: write only (ask again, replace); ``off``: neither.
CACHE_MODES = ("use", "refresh", "off")
_FILE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


def array_digest(array: np.ndarray | None) -> str | None:
    """sha256 of an array's dtype, shape and bytes (None for None)."""
    if array is None:
        return None
    arr = np.ascontiguousarray(array)
    h = hashlib.sha256()
    h.update(f"{arr.dtype.str}|{arr.shape}|".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def stable_key(fields: dict[str, Any]) -> str:
    """sha256 of ``fields`` as canonical JSON (sorted keys, no whitespace)."""
    blob = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """A folder of cached answers (see the module docstring). ``label`` names it in errors."""

    def __init__(self, root: str | os.PathLike, mode: str = "use", label: str = "response cache"):
        if mode not in CACHE_MODES:
            raise ValueError(f"{label} mode {mode!r}: expected one of {', '.join(CACHE_MODES)}")
        self.root = Path(root)
        self.mode = mode
        self.label = label
        self._lock = threading.Lock()
        self.hits = 0
        self.writes = 0

    def _path(self, key: str, suffix: str = "json") -> Path:
        return self.root / key[:2] / f"{key}.{suffix}"

    def get(self, key: str) -> dict[str, Any] | None:
        """The entry stored under ``key`` with all its files present, or None (mode ``use`` only)."""
        if self.mode != "use":
            return None
        try:
            with open(self._path(key), encoding="utf-8") as f:
                entry = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # a damaged entry is treated as absent and overwritten by a fresh answer
        if not isinstance(entry, dict) or entry.get("key") != key:
            return None
        if any(not self._path(key, name).is_file() for name in entry.get("files", [])):
            return None
        with self._lock:
            self.hits += 1
        return entry

    def read_file(self, key: str, name: str) -> bytes | None:
        try:
            return self._path(key, name).read_bytes()
        except OSError:
            return None

    def put(self, key: str, entry: dict[str, Any], files: dict[str, bytes] | None = None) -> None:
        """Store ``entry`` (JSON-able, no NaN) and ``files`` (name -> bytes) under ``key``."""
        if self.mode == "off":
            return
        files = files or {}
        for name, data in files.items():
            if not _FILE_NAME.match(name) or name == "json":
                raise ValueError(f"{self.label}: bad file name {name!r}")
            write_bytes_atomic(self._path(key, name), data)
        write_json_atomic(self._path(key), {**entry, "key": key, "files": sorted(files)}, indent=1)
        with self._lock:
            self.writes += 1
