"""The model registry: model names -> adapter classes (built-ins, run-time registrations, plug-ins).

Adding a model never touches the harness:

* inside the suite: subclass :class:`RetouchModel` in ``models/`` or ``baselines/`` and add
  one line to ``_BUILTIN`` below (lazy, so the CLI starts without importing torch);
* outside the suite (plug-in): expose the class under the entry-point group
  ``iretouch_bench.models`` in your own package's metadata, e.g. in ``pyproject.toml``::

      [project.entry-points."iretouch_bench.models"]
      mymodel = "mypkg.adapter:MyModel"

The contract itself is :mod:`iretouch_bench.adapters.base`.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any

from ..core.errors import ModelError
from .base import RetouchModel

ENTRY_POINT_GROUP = "iretouch_bench.models"


# name -> "module:Class", imported on first use.
_BUILTIN: dict[str, str] = {
    "identity": "iretouch_bench.baselines.identity:IdentityModel",
    "ours": "iretouch_bench.models.ours:OursModel",
    "gpt-image-1": "iretouch_bench.baselines.gpt_image:GptImageModel",
    "gemini-2.5-flash-image": "iretouch_bench.baselines.gemini_image:GeminiImageModel",
    "flux-kontext-pro": "iretouch_bench.baselines.flux_kontext:FluxKontextProModel",
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


def available_models() -> list[str]:
    """All names: built-in, registered at run time, and plug-ins."""
    return sorted(set(_BUILTIN) | set(_REGISTERED) | set(_entry_points()))


def get_model_class(name: str) -> type[RetouchModel]:
    if name in _REGISTERED:
        return _REGISTERED[name]
    target = _BUILTIN.get(name)
    if target is not None:
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
    """Instantiate (not yet load) the model ``name``."""
    return get_model_class(name)(device=device, weights=weights, **options)
