"""The model registry and the adapter interface every retouching model implements.

Adding a model never touches the harness:

* inside the suite: subclass :class:`RetouchModel` in ``models/`` or ``baselines/`` and add
  one line to ``_BUILTIN`` below (lazy, so the CLI starts without importing torch);
* outside the suite (plug-in): expose the class under the entry-point group
  ``iretouch_bench.models`` in your own package's metadata, e.g. in ``pyproject.toml``::

      [project.entry-points."iretouch_bench.models"]
      mymodel = "mypkg.adapter:MyModel"

The adapter contract
--------------------
``retouch(image, instruction, *, mask=None, strength=1.0) -> image``

* ``image``: float32 ``numpy.ndarray`` ``[H, W, 3]`` in [0, 1] at native resolution.
* ``instruction``: the edit in words.
* ``mask``: optional float32 ``[H, W]`` in [0, 1], the region a local edit is limited to.
* ``strength``: edit strength; 1 is the model's normal edit, 0 must return the input
  where the model supports it (``supports_strength``).
* returns float32 ``[H, W', 3]`` in [0, 1]. A model that cannot keep the size returns what
  it made; the scorer resizes back to the input size and records that it did.

Device handling: the constructor receives ``device`` (``"cpu"`` or ``"cuda"``); heavy state
is built in :meth:`load`, called once by the runner before the first sample, so
``models list`` stays cheap. Everything that identifies the weights goes into :meth:`info`
(recorded in ``run.json``).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from importlib import metadata
from typing import Any, ClassVar

import numpy as np

from .core.errors import ModelError

ENTRY_POINT_GROUP = "iretouch_bench.models"


class RetouchModel(ABC):
    """Base class of every adapter (see the module docstring for the contract)."""

    #: registry name, e.g. ``"ours"``
    name: ClassVar[str] = ""
    #: one line for ``iretouch-bench models list``
    description: ClassVar[str] = ""
    #: what the model needs beyond the base install, e.g. ``("gpu",)``, ``("env:OPENAI_API_KEY",)``,
    #: ``("weights:ours",)``, ``("package:diffusers",)``
    requires: ClassVar[tuple[str, ...]] = ()
    #: where ``strength`` is honoured (0 returns the input exactly)
    supports_strength: ClassVar[bool] = False
    #: where ``mask`` limits the edit to a region
    supports_mask: ClassVar[bool] = False
    #: ``"local"`` (runs here) or ``"api"`` (latency includes the network round trip)
    kind: ClassVar[str] = "local"

    def __init__(self, device: str = "cpu", weights: str | None = None, **options: Any) -> None:
        self.device = device
        self.weights = weights
        self.options = options
        self._loaded = False

    def load(self) -> None:
        """Build heavy state (weights, pipelines). Called once; idempotent."""
        self._loaded = True

    def ensure_loaded(self) -> None:
        if not self._loaded:
            self.load()
            self._loaded = True

    @abstractmethod
    def retouch(
        self,
        image: np.ndarray,
        instruction: str,
        *,
        mask: np.ndarray | None = None,
        strength: float = 1.0,
    ) -> np.ndarray:
        """Edit ``image`` (float32 ``[H, W, 3]`` in [0, 1]) as ``instruction`` says."""

    def info(self) -> dict[str, Any]:
        """What identifies this model in a run (name, weights and their hash, options)."""
        return {"name": self.name, "class": f"{type(self).__module__}.{type(self).__qualname__}",
                "weights": self.weights, "device": self.device, "options": dict(self.options)}

    def close(self) -> None:
        """Release resources (GPU memory, HTTP sessions)."""


# name -> "module:Class", imported on first use.
_BUILTIN: dict[str, str] = {
    "identity": "iretouch_bench.baselines.identity:IdentityModel",
    "ours": "iretouch_bench.models.ours:OursModel",
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
