"""On-disk cache of judge answers, so a rerun of the same judging makes no API call.

One JSON file per answer, ``<root>/<key[:2]>/<key>.json``, written atomically (temporary file +
rename) so concurrent workers and killed processes never leave a torn entry. The key is the
sha256 of a canonical JSON of everything that determines the answer (see :func:`answer_key`).
Only valid, parsed answers are stored: failures are not cached, so a rerun tries them again.

Entries hold the answer text, parsed scores, model id the API returned, usage and cost; never a
request header or credential (the judge redacts the API key from every string it stores).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

CACHE_MODES = ("use", "refresh", "off")


def array_digest(image: np.ndarray) -> str:
    """sha256 of an image array's dtype, shape and bytes (what the judge is shown, before encoding)."""
    arr = np.ascontiguousarray(image)
    h = hashlib.sha256()
    h.update(f"{arr.dtype.str}|{arr.shape}|".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def answer_key(fields: dict[str, Any]) -> str:
    """sha256 of ``fields`` as canonical JSON (sorted keys, no whitespace)."""
    blob = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class AnswerCache:
    """A folder of cached answers. ``mode``: ``use`` (read and write), ``refresh`` (write only:
    every answer is asked again and replaces the stored one), ``off`` (neither)."""

    def __init__(self, root: str | os.PathLike, mode: str = "use"):
        if mode not in CACHE_MODES:
            raise ValueError(f"judge cache mode {mode!r}: expected one of {', '.join(CACHE_MODES)}")
        self.root = Path(root)
        self.mode = mode
        self._lock = threading.Lock()
        self.hits = 0
        self.writes = 0

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        if self.mode != "use":
            return None
        path = self._path(key)
        try:
            with open(path, encoding="utf-8") as f:
                entry = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError):
            # A damaged entry is treated as absent and will be overwritten by a fresh answer.
            return None
        if not isinstance(entry, dict) or entry.get("key") != key:
            return None
        with self._lock:
            self.hits += 1
        return entry

    def put(self, key: str, entry: dict[str, Any]) -> None:
        if self.mode == "off":
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({**entry, "key": key}, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
        with self._lock:
            self.writes += 1
