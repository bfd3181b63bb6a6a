"""The one atomic write of the suite, and the user cache folder.

Every file the suite writes that another process (or a resumed run) may read is written to a
temporary name in the same folder and renamed over the final name, so a killed process
never leaves a truncated file under the final name. :func:`atomic_path` is that pattern;
the helpers below are it for bytes, text and JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any, Iterator

import platformdirs

ENV_CACHE = "IRETOUCH_BENCH_CACHE"


def cache_dir(*parts: str) -> Path:
    """``$IRETOUCH_BENCH_CACHE`` or platformdirs' user cache folder for ``iretouch-bench``."""
    root = os.environ.get(ENV_CACHE)
    if not root:
        root = platformdirs.user_cache_dir("iretouch-bench", appauthor=False)
    path = Path(root).joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _tmp_name(path: Path) -> Path:
    # pid + thread + random: two threads or processes writing one name never share a temp file.
    tag = f"{os.getpid()}.{threading.get_ident()}.{uuid.uuid4().hex[:8]}"
    return path.with_name(f".{path.name}.{tag}.tmp{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, mkdir: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    On an exception the temporary file (or folder) is removed and ``path`` is untouched.
    The temporary name keeps ``path``'s suffix, so writers that pick a format by suffix
    (PIL, matplotlib, tifffile) write the right one.
    """
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink()
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path: str | os.PathLike, obj: Any, *, indent: int | None = 2) -> Path:
    """JSON (UTF-8, NaN and infinity refused: they are not JSON) written atomically."""
    text = json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False)
    return write_text_atomic(path, text + "\n")


def create_json_exclusive(path: str | os.PathLike, obj: Any, *, indent: int | None = 2) -> bool:
    """Write ``obj`` to ``path`` only if no file is there yet, atomically; True if this call created it.

    For files that several processes may race to create, of which the first wins (a sharded
    run's ``run.json``): the content is written to a temporary name, then hard-linked to the final
    name, which fails if the name exists (also over NFS), so a reader sees a complete file or none."""
    path = Path(path)
    text = json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
