"""Content hashes of datasets and of the files they reference.

The dataset content hash identifies *what was evaluated*: it goes into every run folder
(``run.json``) so two runs are comparable only when their hashes match.

Definition (version ``v1``; the data cards repeat it so anyone can recompute it)::

    row(s)  = json.dumps([s.id, s.instruction, s.category,
                          sha256(input bytes), sha256(target bytes) or null,
                          sha256(mask bytes) or null]
                         (+ ["bad-row:<row number>"] for a bad row kept as a failed sample),
                         ensure_ascii=True, separators=(",", ":"))
    hash    = sha256("iretouch-bench/dataset/v1\\n" + "\\n".join(sorted(row(s) for s in samples)))

File digests are of the raw file bytes (not decoded pixels), streamed in 1 MiB blocks, so
hundreds of 4K 16-bit TIFFs cost one read each. Digests are cached per
``(absolute path, size, mtime_ns, ctime_ns, inode)`` in a SQLite file in the user cache. As
git does for its index, a file modified within the last :data:`RACY_SECONDS` is hashed
but not cached: file-system timestamps are coarse (milliseconds), so a file rewritten twice
within one tick could otherwise keep a stale digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Sequence

from ..core.atomic import cache_dir

HASH_VERSION = "v1"
_PREFIX = f"iretouch-bench/dataset/{HASH_VERSION}\n".encode()
#: Files younger than this are hashed every time (see module docstring).
RACY_SECONDS = 3.0
_BLOCK = 1 << 20

_lock = threading.Lock()
_memo: dict[tuple, str] = {}


def _stat_key(path: Path) -> tuple:
    st = path.stat()
    return (str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _hash_stream(path: Path) -> str:
    h = hashlib.sha256()
    # hashlib releases the GIL on large updates, so several threads hash in parallel.
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(_BLOCK)
        view = memoryview(buf)
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


class _DiskCache:
    """``(path, size, mtime_ns, ctime_ns, inode) -> sha256`` in SQLite; silently off on errors."""

    def __init__(self) -> None:
        self._conn: sqlite3.Connection | None = None
        self._failed = False

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is not None or self._failed:
            return self._conn
        if os.environ.get("IRETOUCH_BENCH_NO_HASH_CACHE"):
            self._failed = True
            return None
        try:
            db = cache_dir("hashes") / "files-sha256.sqlite3"
            conn = sqlite3.connect(str(db), timeout=30, check_same_thread=False)
            conn.execute(
                "CREATE TABLE IF NOT EXISTS files (path TEXT, size INTEGER, mtime_ns INTEGER, "
                "ctime_ns INTEGER, ino INTEGER, sha256 TEXT, PRIMARY KEY (path, size, mtime_ns, ctime_ns, ino))"
            )
            conn.commit()
            self._conn = conn
        except (sqlite3.Error, OSError):
            # A read-only or full cache folder only costs speed, never correctness.
            self._failed = True
        return self._conn

    def get(self, key: tuple) -> str | None:
        with _lock:
            conn = self._connect()
            if conn is None:
                return None
            try:
                row = conn.execute(
                    "SELECT sha256 FROM files WHERE path=? AND size=? AND mtime_ns=? AND ctime_ns=? AND ino=?", key
                ).fetchone()
            except sqlite3.Error:
                return None
        return row[0] if row else None

    def put_many(self, items: Sequence[tuple[tuple, str]]) -> None:
        if not items:
            return
        with _lock:
            conn = self._connect()
            if conn is None:
                return
            try:
                conn.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)", [(*k, v) for k, v in items])
                conn.commit()
            except sqlite3.Error:
                pass


_disk = _DiskCache()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 hex digest of the file's bytes (cached per path, size and timestamps)."""
    return files_sha256([path])[Path(path).absolute()]


def files_sha256(paths: Iterable[str | os.PathLike], workers: int | None = None) -> dict[Path, str]:
    """sha256 of many files, keyed by absolute path; uncached files are hashed in threads.

    Raises ``FileNotFoundError``/``OSError`` for a file that cannot be read (callers check
    existence first and report it with the manifest row).
    """
    unique = list(dict.fromkeys(Path(p).absolute() for p in paths))
    out: dict[Path, str] = {}
    todo: list[tuple[Path, tuple]] = []
    for p in unique:
        key = _stat_key(p)
        hit = _memo.get(key) or _disk.get(key)
        if hit:
            out[p] = hit
            _memo[key] = hit
        else:
            todo.append((p, key))
    if todo:
        n = workers or min(8, (os.cpu_count() or 2), len(todo))
        if n > 1:
            with ThreadPoolExecutor(max_workers=n) as pool:
                digests = list(pool.map(lambda t: _hash_stream(t[0]), todo))
        else:
            digests = [_hash_stream(p) for p, _ in todo]
        now_ns = time.time_ns()
        cacheable = []
        for (p, key), digest in zip(todo, digests):
            # Re-stat: if the file changed while it was read, the digest belongs to no key.
            if _stat_key(p) != key:
                digest = _hash_stream(p)
                key = _stat_key(p)
            out[p] = digest
            if (now_ns - max(key[2], key[3])) / 1e9 > RACY_SECONDS:
                _memo[key] = digest
                cacheable.append((key, digest))
        _disk.put_many(cacheable)
    return out


def sample_row(sample, digests: dict[Path, str]) -> str:
    """The canonical text of one sample in the content hash (see module docstring)."""

    def d(p):
        return None if p is None else digests[Path(p).absolute()]

    row = [sample.id, sample.instruction, sample.category, d(sample.input_path), d(sample.target_path),
           d(sample.mask_path)]
    if getattr(sample, "problem", None) is not None:  # a bad row kept as a failed sample
        row.append(f"bad-row:{sample.row}")  # not the reason: it names the manifest's absolute path
    return json.dumps(
        row,
        ensure_ascii=True,
        separators=(",", ":"),
    )


def content_hash(samples: Sequence) -> str:
    """Dataset content hash (sha256 hex) over the sorted rows of ``samples`` (see module docstring)."""
    paths = [p for s in samples for p in (s.input_path, s.target_path, s.mask_path) if p is not None]
    digests = files_sha256(paths)
    h = hashlib.sha256(_PREFIX)
    h.update("\n".join(sorted(sample_row(s, digests) for s in samples)).encode("ascii"))
    return h.hexdigest()
