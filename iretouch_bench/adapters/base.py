"""The adapter contract every retouching model implements.

Two ways in
-----------
**Simple models** implement only ``retouch(image, instruction, *, mask=None, strength=1.0) -> image``:

* ``image``: float32 ``numpy.ndarray`` ``[H, W, 3]`` in [0, 1] at native resolution.
* ``instruction``: the edit in words.
* ``mask``: optional float32 ``[H, W]`` in [0, 1], the region a local edit is limited to.
* ``strength``: edit strength; 1 is the model's normal edit, 0 must return the input
  where the model supports it (``supports_strength``).
* returns float32 ``[H, W', 3]`` in [0, 1]. A model that cannot keep the size returns what
  it made; the scorer resizes back to the input size and records that it did.

**Editors that say more** (diffusion pipelines, API editors) override :meth:`RetouchModel.run`,
which takes a :class:`RetouchRequest` (the above plus a per-sample ``seed`` and the
``sample_id``) and returns a :class:`RetouchResult`: the image, a ``status`` (``"ok"``, or
``"refused"`` with the ``reason``: moderation, safety filter, an answer without an image) and
``meta`` (working size and resize policy, seed, steps, snapshot, request id, cost, tokens,
timing). The runner always calls :meth:`run`; its default wraps :meth:`retouch`, so simple
adapters keep working unchanged. ``meta`` lands in the sample record as is (JSON values only;
never a credential).

How the runner calls a model: ``batch_size`` requests per :meth:`run_batch` call (default 1,
which loops :meth:`run`), and up to ``max_concurrency`` calls in flight at once from a thread
pool (API editors; the adapter must then be thread-safe in :meth:`run`). Options come from
``--model-args key=value,...`` as constructor keyword arguments (``self.options``).

Device handling: the constructor receives ``device`` (``"cpu"`` or ``"cuda"``); heavy state
is built in :meth:`load`, called once by the runner before the first sample, so
``models list`` stays cheap. :meth:`preflight` is called before any run folder or output is
made (a missing key or package fails in the first second with one line). Everything that
identifies the weights or the remote model goes into :meth:`info` (recorded in ``run.json``).
"""

from __future__ import annotations

import importlib.util
import os
import time
from abc import ABC
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..core.errors import ModelError

#: values of :attr:`RetouchResult.status`
STATUS_OK = "ok"
STATUS_REFUSED = "refused"


@dataclass
class RetouchRequest:
    """One edit to make. ``image`` float32 ``[H, W, 3]`` in [0, 1]; ``mask`` float32 ``[H, W]``."""

    image: np.ndarray  # float32 [H, W, 3] in [0, 1]
    instruction: str
    mask: np.ndarray | None = None
    strength: float = 1.0
    #: per-sample seed the runner derives from ``--seed`` and the sample id (deterministic
    #: across resumes and shards); a stochastic model seeds its generator with it
    seed: int | None = None
    sample_id: str | None = None


@dataclass
class RetouchResult:
    """What a model made of one :class:`RetouchRequest`.

    ``image`` is float32 ``[H, W', 3]`` in [0, 1], or ``None`` when ``status == "refused"``
    (``reason`` then says why, in one line: "moderated: ...", "no image in the answer: ...").
    A refusal is counted apart and never scored. A failure (network down, bad answer) is an
    exception, not a result.

    ``meta`` keys the suite knows (all optional, JSON values only, never a credential):
    ``working_size`` ``[h, w]`` the model worked at, ``resize_policy`` (how it got there and
    back), ``seed``, ``steps``, ``snapshot`` (remote model version), ``request_id``,
    ``cost_usd``, ``tokens`` (dict), ``timing`` ``{upload_s, queue_s, generate_s, download_s}``.
    """

    image: np.ndarray | None  # None when refused
    status: str = STATUS_OK  # "ok" | "refused"
    reason: str | None = None
    meta: dict = field(default_factory=dict)

    @classmethod
    def refused(cls, reason: str, **meta: Any) -> "RetouchResult":
        return cls(image=None, status=STATUS_REFUSED, reason=reason, meta=dict(meta))


class RetouchModel(ABC):
    """Base class of every adapter (see the module docstring for the contract).

    A subclass implements :meth:`retouch` (simple models) or :meth:`run` (editors with
    seeds, refusals and meta), or both."""

    #: registry name, e.g. ``"ours"``
    name: ClassVar[str] = ""
    #: one line for ``iretouch-bench models list``
    description: ClassVar[str] = ""
    #: what the model needs beyond the base install, checked by :meth:`status` / :meth:`preflight`:
    #: ``"gpu"``, ``"env:OPENAI_API_KEY"`` (``"env:GEMINI_API_KEY|GOOGLE_API_KEY"``: any one of them),
    #: ``"package:diffusers"`` (import name), ``"weights:ours"`` (the adapter checks those itself)
    requires: ClassVar[tuple[str, ...]] = ()
    #: where ``strength`` is honoured (0 returns the input exactly)
    supports_strength: ClassVar[bool] = False
    #: where ``mask`` limits the edit to a region
    supports_mask: ClassVar[bool] = False
    #: ``"local"`` (runs here) or ``"api"`` (latency includes the network round trip; outputs cached)
    kind: ClassVar[str] = "local"
    #: requests per :meth:`run_batch` call
    batch_size: ClassVar[int] = 1
    #: :meth:`run_batch` calls the runner may have in flight at once (threads)
    max_concurrency: ClassVar[int] = 1
    #: license of the weights / terms of the service, for ``models list``
    license: ClassVar[str] = ""
    #: which row of the paper's Table 1 this is (e.g. ``"GPT-Image-1"``), None if none
    paper_row: ClassVar[str | None] = None
    #: the adapter keeps its own response cache, switched by a ``cache=use|refresh|off`` option. The
    #: runner turns it off unless ``--model-args cache=...`` says otherwise: in a run the runner's
    #: output cache answers reruns (one copy per output), and latency must time real calls.
    own_cache: ClassVar[bool] = False
    #: False for models that never read the instruction (3D-LUT, RSFNet): a VLM judge is not asked
    #: about them and their SC/PQ/O stay null, as the paper's Table 1 leaves them blank
    instruction_driven: ClassVar[bool] = True

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

    def retouch(
        self,
        image: np.ndarray,
        instruction: str,
        *,
        mask: np.ndarray | None = None,
        strength: float = 1.0,
    ) -> np.ndarray:
        """Edit ``image`` (float32 ``[H, W, 3]`` in [0, 1]) as ``instruction`` says.

        An adapter implements this or :meth:`run`. For one that implements only :meth:`run`,
        this calls it (seed None) and raises :class:`ModelError` on a refusal, so the simple
        callers (latency, sweeps, notebooks) work with every adapter."""
        if type(self).run is RetouchModel.run:
            raise NotImplementedError(f"{type(self).__qualname__}: implement retouch() or run()")
        result = self.run(RetouchRequest(image=image, instruction=instruction, mask=mask, strength=strength))
        if result.status != STATUS_OK or result.image is None:
            raise ModelError(f"model '{self.name}' refused: {result.reason or 'no reason given'}")
        return result.image

    def run(self, request: RetouchRequest) -> RetouchResult:
        """One request -> one result. Default: :meth:`retouch`, timed as ``meta.timing.generate_s``."""
        if type(self).retouch is RetouchModel.retouch:
            raise NotImplementedError(f"{type(self).__qualname__}: implement retouch() or run()")
        t0 = time.perf_counter()
        out = self.retouch(request.image, request.instruction, mask=request.mask, strength=request.strength)
        return RetouchResult(image=out, meta={"timing": {"generate_s": time.perf_counter() - t0}})

    def run_batch(self, requests: list[RetouchRequest]) -> list[RetouchResult]:
        """``batch_size`` requests at once, results in the same order. Default: :meth:`run` on each."""
        return [self.run(r) for r in requests]

    # ------------------------------------------------------------------ readiness
    def missing(self) -> list[str]:
        """What :attr:`requires` names that this machine lacks, as ``models list`` words it
        (``"needs the key in $OPENAI_API_KEY"``, ``"needs package diffusers"``, ``"needs a GPU"``).
        ``weights:`` entries are the adapter's to check (override and extend)."""
        out: list[str] = []
        for req in self.requires:
            kind, _, arg = req.partition(":")
            if kind == "env":
                names = [n for n in arg.split("|") if n]
                if not any(os.environ.get(n) for n in names):
                    out.append("needs the key in " + " or ".join(f"${n}" for n in names))
            elif kind == "package":
                if importlib.util.find_spec(arg) is None:
                    out.append(f"needs package {arg}")
            elif kind == "gpu":
                if not _cuda_available():
                    out.append("needs a GPU")
        return out

    def status(self) -> str:
        """``"ready"`` or what is missing, e.g. ``"needs the key in $BFL_API_KEY"`` (for ``models list``)."""
        missing = self.missing()
        return "ready" if not missing else "; ".join(missing)

    def preflight(self) -> None:
        """Raise :class:`~iretouch_bench.core.errors.ModelError` (one line) if this model cannot
        run here. Called before any run folder or output is made. Default: :meth:`missing`."""
        missing = self.missing()
        if missing:
            raise ModelError(f"model '{self.name}' {'; '.join(missing)}")

    def estimate(self, n_samples: int) -> dict[str, Any]:
        """For ``--dry-run``: ``{"calls": int, "est_cost_usd": float | None, "note": str}``.
        Default: one call per sample, no cost (a local model). API adapters give their price."""
        return {"calls": int(n_samples), "est_cost_usd": 0.0, "note": "local model: no per-call cost"}

    def info(self) -> dict[str, Any]:
        """What identifies this model in a run (name, weights and their hash, options).
        API adapters add the model id and snapshot; the output cache key includes all of it."""
        return {"name": self.name, "class": f"{type(self).__module__}.{type(self).__qualname__}",
                "weights": self.weights, "device": self.device, "options": dict(self.options)}

    def cache_identity(self) -> dict[str, Any]:
        """What, besides the request, decides this model's output: part of the output-cache key
        of API models (``kind == "api"``). Default: :meth:`info` without the device. An API adapter
        makes sure the model id (and a pinned snapshot) is in it, and may drop options that
        cannot change an answer (timeouts, retries)."""
        ident = dict(self.info())
        ident.pop("device", None)
        return ident

    def close(self) -> None:
        """Release resources (GPU memory, HTTP sessions)."""


def _cuda_available() -> bool:
    """True when torch is installed and sees a CUDA device (torch is imported only if installed)."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())
