"""The ``embedded`` dataset: built offline and deterministically from photos shipped by
installed packages (scikit-image, scikit-learn, matplotlib), with the photo-finishing
pipeline and the instruction writer (:mod:`.synth`).

Layout (an iRetouch manifest folder, paths relative to it)::

    embedded-v1/
      manifest.jsonl        one row per pair (see below)
      dataset.json          name, version, counts per category, photos, seed; written last
      inputs/<id>.png       8-bit RGB
      targets/<id>.png      8-bit RGB
      masks/<id>.png        8-bit grayscale, only for local and portrait pairs

Manifest row keys: ``id``, ``input``, ``target``, ``instruction``, ``category``, ``mask``
(only when there is one), ``params`` (the pipeline parameters, JSON), ``attributes`` (the
attribute names the instruction intends), ``intents`` (with confidence and region) and
``photo`` (the source photo's registry name).

The build is atomic (everything is written to a temporary sibling folder that is renamed
into place at the end), so a killed build never leaves a half dataset under the final
name, and it is deterministic (fixed seeds, fixed order; Pillow writes PNGs without
timestamps): two builds give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..core.atomic import cache_dir
from ..core.fingerprint import code_fingerprint
from ..core.images import write_image
from .finishing import STYLE_PRESETS
from .instructions import InstructionError
from .pairs import make_pair
from .photos import EVAL_PHOTOS, PHOTOS, load_photo

__all__ = ["EMBEDDED_NAME", "EMBEDDED_VERSION", "MAX_SIDE", "BASE_SEED", "PLAN", "default_root",
           "build_embedded", "is_complete"]

EMBEDDED_NAME = "embedded"
EMBEDDED_VERSION = "v1"
#: Source photos are downsampled (Lanczos, 8-bit) so the long side is at most this.
MAX_SIDE = 512
BASE_SEED = 20260605

#: (photo, category, count): 7 pairs per photo (3 global, 2 style, 2 local) and 5 portrait
#: pairs for each of the two portraits -> 45 pairs.
PLAN: tuple[tuple[str, str, int], ...] = tuple(
    [(p, c, n) for p in EVAL_PHOTOS for c, n in (("global", 3), ("style", 2), ("local", 2))]
    + [(p, "portrait", 5) for p in EVAL_PHOTOS if PHOTOS[p].face is not None]
)


#: Packages whose versions can change the pixels (resampling, colour conversion, sample photos).
_BUILDER_PACKAGES = ("numpy", "pillow", "scikit-image", "scikit-learn", "matplotlib", "scipy")


def builder_fingerprint() -> str:
    """sha256 of the builder's source code and the versions of the packages that shape the pixels.

    The code is the whole import closure of this module within the suite. Recorded in
    ``dataset.json``; a cached build made by other code (an upgrade, a local edit) is
    not complete for this code and is rebuilt, so a run never scores a stale dataset under the
    current code's name.
    """
    h = hashlib.sha256()
    # every suite module the builder imports, followed transitively (core.fingerprint)
    h.update(code_fingerprint(__name__).encode() + b"\0")
    for pkg in _BUILDER_PACKAGES:
        try:
            version = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            version = "absent"
        h.update(f"{pkg}=={version}\0".encode())
    return h.hexdigest()


def default_root() -> Path:
    """``<cache>/datasets/embedded-v1`` (cache: ``$IRETOUCH_BENCH_CACHE`` or the platform
    user cache; the folder itself is created only by a build)."""
    return cache_dir("datasets") / f"{EMBEDDED_NAME}-{EMBEDDED_VERSION}"


def is_complete(root: Path) -> bool:
    """True when ``root`` holds a finished build: ``dataset.json`` (written last) agrees with
    ``manifest.jsonl`` and every file a row names exists."""
    root = Path(root)
    info_p, man_p = root / "dataset.json", root / "manifest.jsonl"
    if not info_p.is_file() or not man_p.is_file():
        return False
    try:
        info = json.loads(info_p.read_text())
        rows = [json.loads(line) for line in man_p.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return False
    if info.get("version") != EMBEDDED_VERSION or info.get("count") != len(rows):
        return False
    if info.get("builder") != builder_fingerprint():
        return False  # made by other code or package versions: stale
    for r in rows:
        for k in ("input", "target", "mask"):
            if r.get(k) and not (root / r[k]).is_file():
                return False
    return True


def _write_mask(path: Path, mask: np.ndarray) -> None:
    arr = np.clip(np.rint(np.asarray(mask, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode="L").save(path, format="PNG")


def _build_into(folder: Path) -> dict[str, Any]:
    seen: list[str] = []
    rows: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    style_names = list(STYLE_PRESETS)
    style_slot = 0
    photos = {}
    for pi, (photo_name, category, n) in enumerate(PLAN):
        if photo_name not in photos:
            photos[photo_name] = load_photo(photo_name, max_side=MAX_SIDE)
        photo = photos[photo_name]
        for k in range(n):
            rng = np.random.default_rng([BASE_SEED, pi, k])
            kw: dict[str, Any] = {"face": PHOTOS[photo_name].face, "seen": seen}
            pair = None
            if category == "style":
                # walk through the presets so every look appears; fall back to any look
                # that verifies on this photo
                kw["styles"] = [style_names[style_slot % len(style_names)]]
                style_slot += 1
                try:
                    pair = make_pair(photo, rng, category, **kw)
                except InstructionError:
                    kw["styles"] = None
            if pair is None:
                pair = make_pair(photo, rng, category, **kw)
            pid = f"{category}-{photo_name}-{k:02d}"
            write_image(folder / "inputs" / f"{pid}.png", pair["input"])
            write_image(folder / "targets" / f"{pid}.png", pair["target"])
            row: dict[str, Any] = {
                "id": pid,
                "input": f"inputs/{pid}.png",
                "target": f"targets/{pid}.png",
                "instruction": pair["instruction"],
                "category": category,
            }
            if pair["mask"] is not None:
                _write_mask(folder / "masks" / f"{pid}.png", pair["mask"])
                row["mask"] = f"masks/{pid}.png"
            row.update(params=pair["params"], attributes=pair["attributes"], intents=pair["intents"], photo=photo_name)
            rows.append(row)
            seen.append(pair["instruction"])
            counts[category] = counts.get(category, 0) + 1
    with open(folder / "manifest.jsonl", "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    info = {
        "name": EMBEDDED_NAME,
        "version": EMBEDDED_VERSION,
        "count": len(rows),
        "categories": dict(sorted(counts.items())),
        "photos": sorted(photos),
        "max_side": MAX_SIDE,
        "seed": BASE_SEED,
        "card": "data_cards/embedded.md",
        "builder": builder_fingerprint(),
    }
    # written last: its presence marks a finished build
    (folder / "dataset.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _remove_stale(root: Path) -> None:
    """Remove temporary folders of builds whose process is gone (killed with SIGKILL)."""
    for p in root.parent.glob(f".{root.name}.*-*-*"):
        parts = p.name.rsplit("-", 2)
        if len(parts) == 3 and parts[1].isdigit() and not _pid_alive(int(parts[1])):
            shutil.rmtree(p, ignore_errors=True)


def build_embedded(root: Path | None = None, force: bool = False) -> Path:
    """Build the embedded dataset (once) and return its folder.

    Args:
        root: target folder; default :func:`default_root` (respects ``IRETOUCH_BENCH_CACHE``).
        force: rebuild even when a complete build is present.
    Returns:
        The folder holding ``manifest.jsonl``. If it already holds a complete build (and
        not ``force``), nothing is done.
    """
    root = Path(root) if root is not None else default_root()
    if is_complete(root) and not force:
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(root)
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        _build_into(tmp)
        old = None
        if root.exists():
            if is_complete(root) and not force:  # another process finished first
                shutil.rmtree(tmp, ignore_errors=True)
                return root
            old = root.parent / f".{root.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.replace(root, old)
        try:
            os.replace(tmp, root)
        except OSError:
            # a concurrent build renamed its folder into place between our check and rename
            if is_complete(root):
                shutil.rmtree(tmp, ignore_errors=True)
                return root
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root
