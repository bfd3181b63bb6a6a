"""Where a number was made: package versions, git revision, machine and device.

:func:`environment` is the one environment record of the suite; ``run.json`` and
``latency.json`` both store it, so the two can be compared field by field.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

#: Packages whose versions can change a number in a run.
TRACKED_PACKAGES = (
    "iretouch-bench", "torch", "torchvision", "numpy", "scipy", "scikit-image", "pillow",
    "diffusers", "transformers", "facenet-pytorch", "openai", "datasets", "safetensors",
)


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_revision() -> dict[str, str | None]:
    """The suite's git commit and whether the tree was dirty; null with a reason when not a checkout."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return {"commit": None, "reason": "not a git checkout (installed package)"}
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
        return {"commit": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError) as err:
        return {"commit": None, "reason": f"git unavailable ({type(err).__name__})"}


def now_iso() -> str:
    """UTC time to the second, ISO 8601 (``2026-12-02T08:00:00+00:00``)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def environment(device: str) -> dict[str, object]:
    """The machine and device a number was measured on (never raises: provenance must not stop a run)."""
    info: dict[str, object] = {"requested_device": device, "host": socket.gethostname(),
                               "platform": platform.platform(), "python": platform.python_version(),
                               "processor": platform.processor() or platform.machine(),
                               "cpu_count": os.cpu_count()}
    try:  # lazy: core stays importable without torch (`iretouch-bench --help`, `models list`)
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if device.startswith("cuda") and torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(torch.device(device))
            info["cuda"] = torch.version.cuda
    except Exception:  # noqa: BLE001 - provenance must never stop a run
        pass
    return info
