"""The table of weight sets behind ``iretouch-bench weights list|fetch``.

Each weight module (``vgg16.py``, ``facenet.py``, ...) exposes a :class:`WeightSet`; add it
to ``_MODULES`` below. ``status()`` must be cheap (no download, no conversion);
``fetch()`` resolves, verifies, converts and returns the cached safetensors path, or raises
:class:`iretouch_bench.core.errors.WeightsError` whose one-line message says how to get it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..core.errors import WeightsError


@dataclass(frozen=True)
class WeightSet:
    name: str
    description: str
    used_by: str
    license: str
    #: () -> dict with at least {"ready": bool, "path": str|None, "source": str|None}
    status: Callable[[], dict]
    #: (path: str|None = None) -> Path of the verified safetensors file
    fetch: Callable[..., Path]


# weight-set name -> module holding `WEIGHT_SET`
_MODULES: dict[str, str] = {
    "vgg16-dists": "iretouch_bench.weights.vgg16",
    "facenet": "iretouch_bench.weights.facenet",
}


def _load(name: str) -> WeightSet:
    try:
        return importlib.import_module(_MODULES[name]).WEIGHT_SET
    except KeyError:
        raise WeightsError(f"unknown weight set '{name}'; known: {', '.join(sorted(_MODULES))}") from None


def get_weight_set(name: str) -> WeightSet:
    return _load(name)


class _LazyTable(dict):
    def __missing__(self, key):
        ws = _load(key)
        self[key] = ws
        return ws

    def names(self) -> list[str]:
        return sorted(_MODULES)


WEIGHT_SETS = _LazyTable()
