"""What a run records about where it ran: package versions, git revision, device, host."""

from __future__ import annotations

import platform
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


def device_info(device: str) -> dict[str, object]:
    info: dict[str, object] = {"requested": device, "platform": platform.platform(),
                               "processor": platform.processor() or platform.machine(),
                               "python": platform.python_version()}
    try:
        import os

        info["cpu_count"] = os.cpu_count()
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if device.startswith("cuda") and torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["cuda"] = torch.version.cuda
    except Exception:  # provenance must never stop a run
        pass
    return info
