"""Adapters the contract tests run through the real runner, loaded as file plug-ins
(``--model tests/fake_adapters.py:ClassName``), in process and in subprocesses.

Every model call appends one JSON line to ``$FAKE_CALL_LOG`` (when set), so a test can count
calls across processes and see what each request carried.
"""

from __future__ import annotations

import json
import os
import threading
import time

import numpy as np

from iretouch_bench.adapters.base import RetouchModel, RetouchRequest, RetouchResult


def _log(**fields) -> None:
    path = os.environ.get("FAKE_CALL_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(fields) + "\n")


class Scaler(RetouchModel):
    """Multiplies by ``gain``; takes only the options it names (a wrong --model-args fails)."""

    name = "fake-scaler"
    description = "test model: image * gain"
    license = "test-only"

    def __init__(self, device: str = "cpu", weights: str | None = None, gain: float = 1.0, tag: str = "") -> None:
        super().__init__(device=device, weights=weights, gain=gain, tag=tag)
        self.gain = float(gain)

    def run(self, request: RetouchRequest) -> RetouchResult:
        _log(model=self.name, id=request.sample_id, seed=request.seed, strength=request.strength,
             options=self.options)
        return RetouchResult(image=np.clip(request.image * self.gain, 0, 1),
                             meta={"seed": request.seed, "steps": 3, "working_size": list(request.image.shape[:2]),
                                   "resize_policy": "none"})


class Refuser(RetouchModel):
    """Refuses every instruction that mentions warmth (as a moderation filter would), edits the rest."""

    name = "fake-refuser"

    def run(self, request: RetouchRequest) -> RetouchResult:
        _log(model=self.name, id=request.sample_id)
        if "warm" in request.instruction.lower():
            return RetouchResult.refused("moderated: request flagged by the safety system", request_id="req-1")
        return RetouchResult(image=request.image * 0.9 + 0.05, meta={"request_id": "req-2"})


class SlowOutOfOrder(RetouchModel):
    """Four calls in flight; sample ``sK`` sleeps less the larger K, so calls finish out of order."""

    name = "fake-slow"
    max_concurrency = 4
    _lock = threading.Lock()
    _in_flight = 0

    def run(self, request: RetouchRequest) -> RetouchResult:
        cls = type(self)
        with cls._lock:
            cls._in_flight += 1
            now = cls._in_flight
        try:
            k = int(str(request.sample_id).lstrip("s") or 0)
            time.sleep(float(os.environ.get("FAKE_SLOW_S", "0.25")) * (6 - k) / 6)
            _log(model=self.name, id=request.sample_id, in_flight=now, t=time.time())
            return RetouchResult(image=request.image * 0.8 + 0.1, meta={"seed": request.seed})
        finally:
            with cls._lock:
                cls._in_flight -= 1


class PaidApi(RetouchModel):
    """An API editor: key from the environment, $0.01 a call, two calls in flight, cached outputs."""

    name = "fake-paid"
    kind = "api"
    requires = ("env:FAKE_EDIT_KEY",)
    max_concurrency = 2
    license = "test terms of service"
    paper_row = "Fake-Editor-1"
    PRICE = 0.01

    def run(self, request: RetouchRequest) -> RetouchResult:
        key = os.environ["FAKE_EDIT_KEY"]  # would go in a header; never into meta or a log
        assert key
        _log(model=self.name, id=request.sample_id, seed=request.seed)
        if "warm" in request.instruction.lower():
            return RetouchResult.refused("no image in the answer: I can't help with that", cost_usd=self.PRICE)
        rng = np.random.default_rng(request.seed)  # seeded like a sampler: same seed, same output
        out = np.clip(request.image * 0.9 + rng.random(request.image.shape, dtype=np.float32) * 0.05, 0, 1)
        return RetouchResult(image=out, meta={"cost_usd": self.PRICE, "snapshot": "fake-editor-2026-01-01",
                                              "request_id": f"r-{request.sample_id}", "tokens": {"input": 10},
                                              "timing": {"upload_s": 0.0, "queue_s": 0.0, "generate_s": 0.0,
                                                         "download_s": 0.0}})

    def estimate(self, n_samples: int) -> dict:
        return {"calls": n_samples, "est_cost_usd": n_samples * self.PRICE, "note": "fake price"}


class Batcher(RetouchModel):
    """Takes three requests per call."""

    name = "fake-batcher"
    batch_size = 3

    def retouch(self, image, instruction, *, mask=None, strength=1.0):
        return image

    def run_batch(self, requests):
        _log(model=self.name, batch=[r.sample_id for r in requests])
        return [RetouchResult(image=r.image * 0.5) for r in requests]
