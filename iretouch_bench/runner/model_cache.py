"""The API editors' output cache, so a paid call is made once.

The runner consults it for API editors (``kind == "api"``): a rerun, a resumed run or a run
into a new folder with the same model, options and requests makes no call and pays nothing.
Storage is :class:`iretouch_bench.clients.ResponseCache` (atomic entries, damaged ones read as
absent); this module decides the key and what an entry holds.

Key: :func:`~iretouch_bench.clients.stable_key` of the adapter's
:meth:`~iretouch_bench.adapters.base.RetouchModel.cache_identity` (class, name, weights,
options such as the model id and base URL; never the device) and the request: a digest of the
input pixels (float32 ``[H, W, 3]``), the instruction, a digest of the mask, the seed and the
strength. The sample id is not in it: two samples with the same content share an answer.

Entry: JSON ``{status, reason, meta, latency_s}`` plus, for an ``ok`` result, the float32
output ``[H, W', 3]`` exactly as the model returned it (``.npy`` bytes), so a cached run
writes the same PNG bit for bit. Refusals are cached too (a rerun must not pay to be refused
again); failures are not. No credential is in a key or an entry: keys come from the
environment, and adapters never put them in ``info()`` or ``meta``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from ..adapters.base import RetouchModel, RetouchRequest, RetouchResult
from ..clients import CACHE_MODES, ResponseCache, array_digest, stable_key
from ..core.atomic import cache_dir

#: bump when the key or the entry layout changes (old entries then simply miss)
CACHE_VERSION = 1
MODES = CACHE_MODES


def _digest(a: np.ndarray | None) -> str | None:
    return None if a is None else array_digest(np.asarray(a, dtype=np.float32))


def cache_key(model: RetouchModel, request: RetouchRequest) -> str:
    """The cache key of ``request`` to ``model`` (hex sha256)."""
    return stable_key({
        "v": CACHE_VERSION,
        "model": model.cache_identity(),
        "input": _digest(request.image),
        "instruction": request.instruction,
        "mask": _digest(request.mask),
        "seed": request.seed,
        "strength": float(request.strength),
    })


class OutputCache:
    """``get`` / ``put`` of :class:`RetouchResult` by :func:`cache_key`; safe across threads and processes.

    ``mode``: ``use`` (read and write), ``refresh`` (never read, overwrite), ``off`` (neither).
    ``root`` defaults to the user cache's ``model-outputs/`` folder.
    """

    def __init__(self, root: str | os.PathLike | None = None, mode: str = "use") -> None:
        self.root = Path(root) if root is not None else cache_dir("model-outputs")
        self.store = ResponseCache(self.root, mode=mode, label="model output cache")
        self.mode = mode

    def has(self, key: str) -> bool:
        """Whether ``get`` would answer (for ``--dry-run``; reads only the small JSON part)."""
        return self.store.get(key) is not None

    def get(self, key: str) -> tuple[RetouchResult, float | None] | None:
        """``(result, seconds the original call took)`` or None on a miss."""
        entry = self.store.get(key)
        if entry is None:
            return None
        image = None
        if "npy" in entry.get("files", []):
            data = self.store.read_file(key, "npy")
            try:
                image = np.load(io.BytesIO(data or b""), allow_pickle=False).astype(np.float32, copy=False)
            except (OSError, ValueError, EOFError):
                return None  # damaged: a miss; the fresh answer overwrites it
        result = RetouchResult(image=image, status=entry.get("status", "ok"), reason=entry.get("reason"),
                               meta=dict(entry.get("meta") or {}))
        return result, entry.get("latency_s")

    def put(self, key: str, result: RetouchResult, latency_s: float | None = None) -> None:
        files = {}
        if result.image is not None:
            buf = io.BytesIO()
            np.save(buf, np.ascontiguousarray(result.image, dtype=np.float32), allow_pickle=False)
            files["npy"] = buf.getvalue()
        self.store.put(key, {"status": result.status, "reason": result.reason, "meta": result.meta,
                             "latency_s": latency_s}, files=files)
