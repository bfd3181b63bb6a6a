"""The model registry: model names -> adapter classes (built-ins, run-time registrations, plug-ins).

Adding a model never touches the harness:

* inside the suite: subclass :class:`RetouchModel` in ``models/`` or ``baselines/`` and add
  one line to ``_BUILTIN`` below (lazy, so the CLI starts without importing torch);
* outside the suite (plug-in): expose the class under the entry-point group
  ``iretouch_bench.models`` in your own package's metadata, e.g. in ``pyproject.toml``::

      [project.entry-points."iretouch_bench.models"]
      mymodel = "mypkg.adapter:MyModel"

* from a file, without packaging: ``--model path/to/file.py:ClassName`` (see
  ``docs/adapter_template.py``).

The contract itself is :mod:`iretouch_bench.adapters.base`.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from ..core.errors import ModelError
from .base import RetouchModel

ENTRY_POINT_GROUP = "iretouch_bench.models"


# name -> "module:Class", imported on first use.
_BUILTIN: dict[str, str] = {
    "identity": "iretouch_bench.baselines.identity:IdentityModel",
    "ours": "iretouch_bench.models.ours:OursModel",
    "3dlut": "iretouch_bench.baselines.lut3d:Lut3DModel",
    "rsfnet": "iretouch_bench.baselines.rsfnet:RSFNetModel",
    "gpt-image-1": "iretouch_bench.baselines.gpt_image:GptImageModel",
    "gemini-2.5-flash-image": "iretouch_bench.baselines.gemini_image:GeminiImageModel",
    "flux-kontext-pro": "iretouch_bench.baselines.flux_kontext:FluxKontextProModel",
    "instructpix2pix": "iretouch_bench.baselines.instructpix2pix:InstructPix2PixModel",
    "qwen-image-edit": "iretouch_bench.baselines.qwen_image_edit:QwenImageEditModel",
    "qwen-image-edit-plus": "iretouch_bench.baselines.qwen_image_edit:QwenImageEditPlusModel",
    "flux-kontext-dev": "iretouch_bench.baselines.flux_kontext_dev:FluxKontextDevModel",
    "step1x-edit": "iretouch_bench.baselines.step1x_edit:Step1XEditModel",
}
_REGISTERED: dict[str, type[RetouchModel]] = {}


def register_model(cls: type[RetouchModel]) -> type[RetouchModel]:
    """Class decorator registering ``cls`` under ``cls.name`` (for models defined at run time)."""
    if not cls.name:
        raise ModelError(f"{cls.__qualname__}: a registered model needs a non-empty `name`")
    _REGISTERED[cls.name] = cls
    return cls


def _entry_points() -> dict[str, metadata.EntryPoint]:
    try:
        eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    except TypeError:  # Python < 3.10 API
        eps = metadata.entry_points().get(ENTRY_POINT_GROUP, [])
    return {ep.name: ep for ep in eps}


def is_file_spec(name: str) -> bool:
    """``path/to/file.py:ClassName`` (a model defined in a file, outside any package)."""
    path, sep, attr = name.rpartition(":")
    return bool(sep and attr and path.endswith(".py"))


def _load_file_class(spec: str) -> Any:
    path_text, _, attr = spec.rpartition(":")
    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise ModelError(f"{path_text}: model file not found (--model FILE.py:ClassName)")
    # One module name per file content: two files never share a module, and the same file
    # loaded twice (registry, then the runner) is imported once.
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    mod_name = f"iretouch_bench_plugin_{digest}"
    module = sys.modules.get(mod_name)
    if module is None:
        mspec = importlib.util.spec_from_file_location(mod_name, path)
        if mspec is None or mspec.loader is None:
            raise ModelError(f"{path}: not importable as a Python module")
        module = importlib.util.module_from_spec(mspec)
        sys.modules[mod_name] = module  # before exec: dataclasses and pickling look the module up
        try:
            mspec.loader.exec_module(module)
        except Exception as err:
            sys.modules.pop(mod_name, None)
            raise ModelError(f"{path}: failed to import ({type(err).__name__}: {err})") from err
    if not hasattr(module, attr):
        raise ModelError(f"{path}: defines no {attr!r} (--model FILE.py:ClassName)")
    return getattr(module, attr)


def model_source(name: str) -> dict[str, Any]:
    """Where the adapter called ``name`` comes from, for ``run.json``: ``{"kind": "builtin" |
    "registered" | "entry_point" | "file", "target": ..., "sha256": (file plug-ins)}``."""
    if is_file_spec(name):
        path = Path(name.rpartition(":")[0]).expanduser().resolve()
        sha = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        return {"kind": "file", "target": f"{path}:{name.rpartition(':')[2]}", "sha256": sha}
    if name in _REGISTERED:
        cls = _REGISTERED[name]
        return {"kind": "registered", "target": f"{cls.__module__}:{cls.__qualname__}"}
    if name in _BUILTIN:
        return {"kind": "builtin", "target": _BUILTIN[name]}
    ep = _entry_points().get(name)
    if ep is not None:
        dist = getattr(ep, "dist", None)
        return {"kind": "entry_point", "target": ep.value,
                "distribution": f"{dist.name} {dist.version}" if dist is not None else None}
    return {"kind": "unknown", "target": name}


def available_models() -> list[str]:
    """All names: built-in, registered at run time, and plug-ins."""
    return sorted(set(_BUILTIN) | set(_REGISTERED) | set(_entry_points()))


def get_model_class(name: str) -> type[RetouchModel]:
    """The adapter class for a registry name or a ``FILE.py:ClassName`` spec (one-line ModelError if none)."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    target = _BUILTIN.get(name)
    if is_file_spec(name):
        cls = _load_file_class(name)
    elif target is not None:
        module, _, attr = target.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except ImportError as err:
            raise ModelError(f"model '{name}': cannot import {module} ({err})") from err
    else:
        ep = _entry_points().get(name)
        if ep is None:
            raise ModelError(f"unknown model '{name}'; known: {', '.join(available_models())}")
        try:
            cls = ep.load()
        except Exception as err:  # a broken plug-in must not take the CLI down with a traceback
            raise ModelError(f"model '{name}': plug-in {ep.value} failed to load ({err})") from err
    if not (isinstance(cls, type) and issubclass(cls, RetouchModel)):
        raise ModelError(f"model '{name}': {cls!r} is not a RetouchModel subclass")
    return cls


def create_model(name: str, device: str = "cpu", weights: str | None = None, **options: Any) -> RetouchModel:
    """Instantiate (not yet load) the model ``name``; ``options`` are its ``--model-args``."""
    cls = get_model_class(name)
    try:
        return cls(device=device, weights=weights, **options)
    except TypeError as err:  # an option the adapter does not take: say so in one line
        given = ", ".join(f"{k}={v!r}" for k, v in options.items()) or "none"
        raise ModelError(f"model '{name}': bad --model-args ({given}): {err}") from err


def list_models() -> list[dict[str, Any]]:
    """One row per known model for ``models list``: name, kind, status, license, paper_row,
    description (and ``error`` for one that cannot be imported). Cheap: nothing is loaded;
    ``status()`` looks at the environment, installed packages and files only."""
    rows: list[dict[str, Any]] = []
    for name in available_models():
        try:
            cls = get_model_class(name)
        except ModelError as err:
            rows.append({"name": name, "kind": "?", "status": f"unavailable: {err}", "license": "",
                         "paper_row": None, "description": "", "error": str(err)})
            continue
        try:
            status = cls().status()
        except Exception as err:  # a model that cannot even be constructed says why, the list goes on
            status = f"unavailable: {type(err).__name__}: {err}"
        rows.append({"name": name, "kind": cls.kind, "status": status, "license": cls.license,
                     "paper_row": cls.paper_row, "description": cls.description})
    return rows
