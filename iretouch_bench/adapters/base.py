"""The adapter contract every retouching model implements.

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

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np


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
