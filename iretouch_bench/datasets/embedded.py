"""``embedded``: the suite's own set, built offline (by :mod:`iretouch_bench.synth.embedded`) into
the user cache on first use, then read like any manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..synth.embedded import build_embedded
from .base import CARDS, Dataset
from .manifest import find_manifest, load_manifest


def load_embedded(spec: str = "embedded", *, split: str | None = None, bad_rows: str = "record", **_: Any) -> Dataset:
    root = Path(build_embedded())
    manifest = root / "manifest.jsonl" if (root / "manifest.jsonl").is_file() else find_manifest(root)
    return load_manifest(manifest, name="embedded", spec=spec, card=CARDS["embedded"], split=split,
                         bad_rows=bad_rows)
