"""Shared test setup.

Tests never touch the network except the package registry (weights that ship inside
registry packages); datasets and weights go to the user cache, built once per machine.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

# Keep torch from oversubscribing the 2-core CI machine when tests run subprocesses.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def write_manifest(root, rows, name="manifest.jsonl"):
    """Write an iRetouch JSONL manifest of ``rows`` under ``root``; returns its path."""
    import json

    path = root / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def tiny_manifest(tmp_path):
    """Six small pairs in the suite's manifest format (PNG inputs/targets), one portrait."""
    from iretouch_bench.core.images import write_image

    rng = np.random.default_rng(1)
    rows = []
    instr = ["Brighten the photo", "Make it warmer", "Add more contrast", "Lift the shadows",
             "Make the colours more vivid", "Darken it a little"]
    for i in range(6):
        base = rng.random((24 + i, 32 + 2 * i, 3)).astype(np.float32) * 0.6 + 0.2
        write_image(tmp_path / f"in_{i}.png", base * 0.8)
        write_image(tmp_path / f"tg_{i}.png", base)
        rows.append({"id": f"s{i}", "input": f"in_{i}.png", "target": f"tg_{i}.png", "instruction": instr[i],
                     "category": "portrait" if i == 0 else "global"})
    return write_manifest(tmp_path, rows)
