"""Shared test setup.

Tests never touch the network except the package registry (weights that ship inside
registry packages); datasets and weights go to the user cache, built once per machine.

Strict mode (``IRETOUCH_BENCH_STRICT=1``, set by ``.ci/run``): a skipped test is a *failure*,
not a skip, unless the skip is legitimate on a CPU-only machine: the test is marked
``@pytest.mark.gpu`` (such tests are skipped here when no CUDA device is visible), or its node
id is in :data:`ALLOWED_SKIPS` with the reason. So a reference implementation that is missing
(``pytest.importorskip("pyiqa")``), weights that could not be fetched, or a hard dependency that
did not install fail CI instead of quietly shrinking it. A module that skips while being
imported (a module-level ``importorskip``) fails as one item, ``<module>::<collection skipped>``,
and the rest of the run goes on. Expected failures (``xfail``) are left as they are.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

# Keep torch from oversubscribing the 2-core CI machine when tests run subprocesses.
os.environ.setdefault("OMP_NUM_THREADS", "2")

# The pytester fixture (tests/test_strict.py runs small pytest sessions under the strict flag).
pytest_plugins = ["pytester"]

#: Environment variable that turns skips into failures (any value but "", 0, false, no, off).
STRICT_ENV = "IRETOUCH_BENCH_STRICT"

#: Skips that stay skips under strict mode, beside tests marked ``gpu``: node id (a test, or a
#: module / class prefix) -> why the skip is legitimate on a CPU-only machine. Keep it short;
#: prefer marking the test ``@pytest.mark.gpu``.
ALLOWED_SKIPS: dict[str, str] = {
    "tests/test_latency.py::test_cuda_memory_recorded": "needs a CUDA device",
}


def strict_mode() -> bool:
    """Whether :data:`STRICT_ENV` asks for strict skips."""
    return os.environ.get(STRICT_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


_CUDA: list[bool] = []


def cuda_available() -> bool:
    """Whether torch sees a CUDA device (asked once, and only when a ``gpu`` test runs)."""
    if not _CUDA:
        try:
            import torch

            _CUDA.append(bool(torch.cuda.is_available()))
        except Exception:  # noqa: BLE001 - no torch, or a broken CUDA runtime: no GPU tests
            _CUDA.append(False)
    return _CUDA[0]


def _allowed_skip(nodeid: str, node=None) -> str | None:
    """Why a skip of ``nodeid`` is legitimate under strict mode, or None if it is not."""
    if node is not None and node.get_closest_marker("gpu") is not None:
        return "marked gpu"
    for key, why in ALLOWED_SKIPS.items():
        if nodeid == key or nodeid.startswith(key + "::") or nodeid.startswith(key + "["):
            return why
    return None


def _skip_reason(longrepr) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        path, lineno, message = longrepr
        where = f" ({path}:{lineno + 1 if isinstance(lineno, int) else lineno})" if path else ""
        return f"{message}{where}"
    return str(longrepr)


def _strict_message(what: str, reason: str) -> str:
    return (f"{STRICT_ENV} is set: {what} skipped, and strict mode counts an unexpected skip as a "
            f"failure (allowed: tests marked gpu, and tests/conftest.py ALLOWED_SKIPS). Skip: {reason}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("gpu") is not None and not cuda_available():
        pytest.skip("marked gpu: needs a CUDA device, none is visible")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    rep = yield
    if rep.skipped and not hasattr(rep, "wasxfail") and strict_mode() and _allowed_skip(item.nodeid, item) is None:
        rep.outcome = "failed"
        rep.longrepr = _strict_message(f"this test ({rep.when})", _skip_reason(rep.longrepr))
    return rep


class StrictCollectionSkip(Exception):
    """A module skipped while being collected, under strict mode."""


class _CollectionSkipItem(pytest.Item):
    """Stands in for the tests of a module that skipped at import time; fails when run."""

    def __init__(self, *, reason: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.reason = reason

    def runtest(self) -> None:
        raise StrictCollectionSkip(self.reason)

    def repr_failure(self, excinfo, style=None):
        if excinfo.errisinstance(StrictCollectionSkip):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, self.name


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    rep = yield
    if rep.outcome != "skipped" or not strict_mode() or _allowed_skip(rep.nodeid) is not None:
        return rep
    message = _strict_message(f"the whole of {rep.nodeid or collector.name} (at collection)",
                              _skip_reason(rep.longrepr))
    item = _CollectionSkipItem.from_parent(collector, name="<collection skipped>", reason=message)
    return pytest.CollectReport(rep.nodeid, "passed", None, [item])


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
