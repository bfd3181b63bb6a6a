"""Per-resolution latency of a retouching model (the runtime columns of the paper's Table 1).

Sizes
-----
:data:`RESOLUTIONS` (width x height): 720p = 1280x720, 1K = 1920x1080, 2K = 2560x1440,
4K = 3840x2160. The paper (arXiv 2606.05071) reports runtimes at 720p/1K/2K/4K but the text
available to us does not give pixel sizes, so these are the common 16:9 definitions, chosen
here and recorded in every result (``width``/``height`` per record). Other sizes can be asked
for as ``"WIDTHxHEIGHT"``.

What is timed
-------------
End to end, image in memory to image in memory: one ``model.retouch(image, instruction)``
call on a float32 ``[H, W, 3]`` array in [0, 1] (scikit-image's astronaut photo resized to the
size, so content-adaptive models see a real photo) until the returned array is in hand. For
``device="cuda"`` the device is synchronised before the clock starts and after the call
returns. Model loading is outside the timings (reported once as ``load_s``). ``warmup``
untimed calls run at every size first (shapes change per size: allocator, cuDNN autotuning,
lazy compilation). API models (``model.kind == "api"``) are timed the same way, so the figure
includes encoding, upload, queueing, generation and download.

Memory
------
``peak_mem_bytes``: the extra memory the edit needs at that size, above what was in use just
before the size's first call (weights already loaded are not counted). CUDA:
``torch.cuda.max_memory_allocated()`` minus ``memory_allocated()`` at the start (after
``reset_peak_memory_stats``). CPU: the process's resident set size sampled every
:data:`RSS_SAMPLE_S` seconds by a background thread during the warm-up and timed calls, peak
minus the value before (``/proc/self/statm``; where that is missing, ``None`` with the
reason in ``mem_method``). ``mem_method`` names which was used.

A size the model cannot run (``MemoryError``, ``RuntimeError`` -- CUDA out-of-memory included --,
``NotImplementedError``, or the suite's ``BenchError``) records ``None`` timings with the error
as the reason: the paper's blank cells.
"""

from __future__ import annotations

import gc
import json
import os
import re
import threading
import time
from typing import Any

import numpy as np
import torch
from skimage import data

from ..core.errors import BenchError, error_line
from ..core.provenance import environment
from ..core.resize import resize
from ..core.timing import time_calls

RESOLUTIONS: dict[str, tuple[int, int]] = {
    "720p": (1280, 720),
    "1k": (1920, 1080),
    "2k": (2560, 1440),
    "4k": (3840, 2160),
}
RESOLUTION_SOURCE = ("common 16:9 sizes (720p 1280x720, 1K 1920x1080, 2K 2560x1440, 4K 3840x2160); "
                     "the paper's text available to us does not state its pixel sizes")
#: metric key (DESIGN.md) per named size
METRIC_KEY = {name: f"latency_{name}" for name in RESOLUTIONS}
RSS_SAMPLE_S = 0.002
DEFAULT_INSTRUCTION = "Brighten the image a little"
_CAUGHT = (MemoryError, RuntimeError, NotImplementedError, BenchError)


def resolve_resolution(name: str) -> tuple[str, int, int]:
    """``"720p"``/``"1K"``/... or ``"WIDTHxHEIGHT"`` -> ``(label, width, height)``."""
    key = name.strip().lower()
    if key in RESOLUTIONS:
        return (key, *RESOLUTIONS[key])
    m = re.fullmatch(r"(\d+)\s*[x×]\s*(\d+)", key)
    if m and int(m.group(1)) > 0 and int(m.group(2)) > 0:
        return (f"{int(m.group(1))}x{int(m.group(2))}", int(m.group(1)), int(m.group(2)))
    raise BenchError(f"unknown resolution '{name}'; use {', '.join(RESOLUTIONS)} or WIDTHxHEIGHT")


def parse_resolutions(spec: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"720p,1k,2k,4k"`` (or a list) -> validated labels, in the given order, duplicates dropped."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for item in items:
        if item.strip():
            label = resolve_resolution(item)[0]
            if label not in out:
                out.append(label)
    if not out:
        raise BenchError("no resolution given; use e.g. --resolutions 720p,1k,2k,4k")
    return out


_TEST_IMAGES: dict[tuple[int, int], np.ndarray] = {}


def sample_image(width: int, height: int) -> np.ndarray:
    """float32 ``[height, width, 3]`` in [0, 1]: scikit-image's astronaut, bicubic-resized (cached)."""
    key = (width, height)
    if key not in _TEST_IMAGES:
        im = resize(data.astronaut(), (height, width), "bicubic")
        _TEST_IMAGES.clear()  # keep one size at a time: a 4K float32 frame is 100 MB
        _TEST_IMAGES[key] = np.asarray(im, dtype=np.float32) / 255.0
    return _TEST_IMAGES[key]


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


class _RssPeak:
    """Background sampler of the resident set size (CPU peak memory)."""

    def __init__(self, interval: float = RSS_SAMPLE_S) -> None:
        self.interval = interval
        self.base = _rss_bytes()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            v = _rss_bytes()
            if v is not None and (self.peak is None or v > self.peak):
                self.peak = v
            self._stop.wait(self.interval)

    def __enter__(self) -> "_RssPeak":
        if self.base is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        v = _rss_bytes()
        if v is not None and self.peak is not None:
            self.peak = max(self.peak, v)

    @property
    def extra(self) -> int | None:
        return None if self.base is None or self.peak is None else max(0, self.peak - self.base)


def _is_cuda(device: str) -> bool:
    return str(device).startswith("cuda")


def _sync(device: str) -> None:
    if _is_cuda(device):
        torch.cuda.synchronize()


def _check_output(out: Any) -> tuple[int, int]:
    arr = np.asarray(out)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise RuntimeError(f"model returned shape {arr.shape}, expected [H, W, 3]")
    return int(arr.shape[1]), int(arr.shape[0])


def _measure_one(model, label: str, width: int, height: int, repeats: int, warmup: int, device: str,
                 instruction: str) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "resolution": label, "width": width, "height": height,
        "megapixels": round(width * height / 1e6, 4),
        "median_s": None, "min_s": None, "max_s": None, "mean_s": None, "std_s": None, "iqr_s": None,
        "repeats": 0, "warmup": warmup, "times_s": [], "peak_mem_bytes": None, "mem_method": None,
        "output_width": None, "output_height": None, "error": None,
    }
    image = sample_image(width, height)
    cuda = _is_cuda(device)
    times: list[float] = []
    sampler = None
    try:
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base_alloc = torch.cuda.memory_allocated()
            rec["mem_method"] = "torch.cuda.max_memory_allocated - memory_allocated before"
        else:
            sampler = _RssPeak().__enter__()
            rec["mem_method"] = (f"process RSS sampled every {RSS_SAMPLE_S * 1e3:g} ms, peak - before"
                                 if sampler.base is not None else "unavailable (no /proc/self/statm)")
        def call() -> None:
            rec["output_width"], rec["output_height"] = _check_output(model.retouch(image, instruction))

        times = time_calls(call, repeats, warmup=warmup, sync=lambda: _sync(device))["wall_s"]
        if cuda:
            rec["peak_mem_bytes"] = int(max(0, torch.cuda.max_memory_allocated() - base_alloc))
    except _CAUGHT as err:
        rec["error"] = error_line(err, limit=300)
        times = []  # a size that failed on any call has no figure (partial timings would mislead)
    finally:
        if sampler is not None:
            sampler.__exit__(None, None, None)
            if rec["error"] is None:
                rec["peak_mem_bytes"] = sampler.extra
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    if times:
        t = np.asarray(times, dtype=np.float64)
        q1, q3 = np.percentile(t, [25, 75])
        rec.update(median_s=float(np.median(t)), min_s=float(t.min()), max_s=float(t.max()),
                   mean_s=float(t.mean()), std_s=float(t.std(ddof=1)) if len(t) > 1 else 0.0,
                   iqr_s=float(q3 - q1), repeats=len(t), times_s=[float(x) for x in t])
    return rec


def measure_latency(
    model,
    resolutions: list[str],
    repeats: int = 5,
    warmup: int = 1,
    device: str = "cpu",
    instruction: str = DEFAULT_INSTRUCTION,
) -> dict:
    """Time ``model.retouch`` end to end at each size (see the module docstring).

    ``model``: an :class:`iretouch_bench.adapters.registry.RetouchModel` (loaded here if not yet).
    ``resolutions``: labels of :data:`RESOLUTIONS` or ``"WxH"``. ``repeats`` timed calls after
    ``warmup`` untimed ones per size. Returns::

        {"model", "kind", "device", "instruction", "repeats", "warmup", "input",
         "resolution_source", "load_s", "environment",
         "records": [{"resolution", "width", "height", "megapixels", "median_s", "min_s",
                      "max_s", "mean_s", "std_s", "iqr_s", "repeats", "warmup", "times_s",
                      "peak_mem_bytes", "mem_method", "output_width", "output_height",
                      "error": None | "ExcType: message"}, ...],
         "metrics": {"latency_720p": median seconds | None, ...},   # named sizes only
         "reasons": {"latency_4k": "why it is None", ...}}

    Times are seconds (float), memory bytes (int).
    """
    if repeats < 1:
        raise BenchError(f"--repeats must be >= 1, got {repeats}")
    if warmup < 0:
        raise BenchError(f"warm-up count must be >= 0, got {warmup}")
    labels = parse_resolutions(resolutions)
    t0 = time.perf_counter()
    model.ensure_loaded()
    _sync(device)
    load_s = time.perf_counter() - t0
    records = []
    for label in labels:
        _, w, h = resolve_resolution(label)
        records.append(_measure_one(model, label, w, h, repeats, warmup, device, instruction))
    result = {
        "model": getattr(model, "name", type(model).__name__),
        "kind": getattr(model, "kind", "local"),
        "device": device,
        "instruction": instruction,
        "repeats": repeats,
        "warmup": warmup,
        "input": "skimage.data.astronaut() bicubic-resized to each size, float32 [H, W, 3] in [0, 1]",
        "resolution_source": RESOLUTION_SOURCE,
        "load_s": load_s,
        "environment": environment(device),
        # what ran, as the adapter reports it: for ``ours`` the slice-and-apply backend (numba,
        # triton, or the reference with the reason), so a slow fallback shows in latency.json too
        "model_info": json.loads(json.dumps(model.info(), default=str)),  # JSON-safe whatever the adapter holds
        "records": records,
    }
    result["metrics"], result["reasons"] = latency_metrics(result)
    return result


def latency_metrics(result: dict) -> tuple[dict[str, float | None], dict[str, str]]:
    """``({"latency_720p": median_s | None, ...}, {key: reason})`` for the named sizes measured."""
    metrics: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    for rec in result.get("records", []):
        key = METRIC_KEY.get(rec["resolution"])
        if key is None:
            continue
        metrics[key] = rec["median_s"]
        if rec["median_s"] is None:
            reasons[key] = rec.get("error") or "not measured"
    return metrics, reasons
