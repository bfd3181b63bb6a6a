"""A retouching model for iretouch-bench in one file: copy it, rename the class, fill in the edit.

Run it without packaging anything::

    iretouch-bench run --model path/to/adapter_template.py:TemplateModel --limit 5
    iretouch-bench run --model path/to/adapter_template.py:TemplateModel --model-args gain=1.3 --seed 1

or publish it from your own package under the entry-point group ``iretouch_bench.models``::

    [project.entry-points."iretouch_bench.models"]
    my-model = "my_package.adapter:TemplateModel"

The contract (``iretouch_bench.adapters.base``): implement ``retouch()`` for a simple model, or
``run()`` as here to return a seed-aware result with ``meta`` and, for an editor that can refuse,
``status="refused"`` with the reason (counted apart, never scored). ``--model-args key=value,...``
arrive as constructor keyword arguments (values already int/float/bool/str).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from iretouch_bench.adapters.base import RetouchModel, RetouchRequest, RetouchResult


class TemplateModel(RetouchModel):
    name = "template"                      # the registry name when published as a plug-in
    description = "Template: brightens or darkens by a gain (replace with your model)"
    kind = "local"                         # "api" for a remote editor: outputs are then cached and budgeted
    requires = ()                          # e.g. ("gpu",), ("package:diffusers",), ("env:MY_API_KEY",)
    supports_strength = True               # strength 0 returns the input
    supports_mask = True                   # a mask limits the edit to a region
    batch_size = 1                         # requests per run_batch() call
    max_concurrency = 1                    # calls in flight (API editors: > 1, and run() must be thread-safe)
    license = "Apache-2.0"                 # of your weights or the service's terms, for `models list`
    paper_row = None                       # the paper's Table 1 row this reproduces, e.g. "GPT-Image-1"

    def __init__(self, device: str = "cpu", weights: str | None = None, gain: float = 1.2, **options: Any) -> None:
        super().__init__(device=device, weights=weights, gain=gain, **options)
        self.gain = float(gain)

    def load(self) -> None:
        """Load weights or open a client here (once, before the first sample); keep __init__ cheap."""
        super().load()

    def preflight(self) -> None:
        """Raise iretouch_bench.core.errors.ModelError (one line) if this model cannot run here.
        The default checks `requires`; extend it for weights files and the like."""
        super().preflight()

    def run(self, request: RetouchRequest) -> RetouchResult:
        t0 = time.perf_counter()
        image = request.image                               # float32 [H, W, 3] in [0, 1]
        rng = np.random.default_rng(request.seed)          # the per-sample seed: deterministic
        gain = self.gain if "dark" not in request.instruction.lower() else 1.0 / self.gain
        edited = np.clip(image * gain + rng.normal(0.0, 1e-3, image.shape), 0.0, 1.0)
        out = image + request.strength * (edited - image)  # strength 0 returns the input
        if request.mask is not None:                       # [H, W] in [0, 1]
            out = image + request.mask[..., None] * (out - image)
        return RetouchResult(
            image=out.astype(np.float32),
            meta={"working_size": list(image.shape[:2]), "resize_policy": "none (native size)",
                  "seed": request.seed, "timing": {"generate_s": time.perf_counter() - t0}},
        )
        # an editor that declines: return RetouchResult.refused("moderated: <the service's words>")

    # retouch(image, instruction, *, mask, strength) -- the simple path that latency and notebooks
    # use -- comes from the base class, which calls run() (and raises on a refusal).
