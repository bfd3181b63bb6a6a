"""Packaging: the wheel installs and runs on its own, and every package folder is listed.

Every other test imports the checkout; these check what a user gets from ``pip install .``:

* ``test_wheel_installs_and_runs``: build the wheel from a clean copy of the working tree,
  install it non-editable into a private ``site`` folder, and from an empty folder run
  ``python -m iretouch_bench run --model ours --limit 2`` with only that folder on
  ``PYTHONPATH`` (so the installed copy shadows the checkout and the virtualenv's install).
  The run must succeed, print its table, write ``run.json`` and load the shipped ``ours``
  weights from the installed package; nothing generic (``models``, ``baselines``,
  ``training``) may land at the top of ``site``.
* ``test_every_package_folder_is_listed``: every folder with an ``__init__.py`` under
  ``iretouch_bench/``, ``models/``, ``training/`` and ``baselines/`` is in pyproject's
  ``[tool.setuptools] packages`` (a folder that is not is silently left out of the wheel).

The run uses the same user cache as the other tests (``$IRETOUCH_BENCH_CACHE`` when set, else
the platform cache), so the embedded dataset and the DISTS weights are built once per machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "iretouch_bench"
#: Top-level source folders and the installed package each becomes (DESIGN.md: nothing generic
#: reaches site-packages).
SOURCE_ROOTS = {
    "iretouch_bench": "iretouch_bench",
    "models": "iretouch_bench.models",
    "training": "iretouch_bench.training",
    "baselines": "iretouch_bench.baselines",
    "leaderboard": "iretouch_bench.leaderboard",  # data package: published tables, submissions, schema
}
GENERIC_NAMES = ("models", "baselines", "training")
SHIPPED_WEIGHTS = Path("iretouch_bench") / "models" / "weights" / "ours_small.safetensors"


def _pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- package listing


def _package_folders() -> dict[str, Path]:
    """``{installed package name: source folder}`` for every folder holding an ``__init__.py``."""
    found: dict[str, Path] = {}
    for src, dest in SOURCE_ROOTS.items():
        base = ROOT / src
        if not base.is_dir():
            continue
        for init in sorted(base.rglob("__init__.py")):
            rel = init.parent.relative_to(base)
            if any(part.startswith(".") or part == "__pycache__" or not part.isidentifier() for part in rel.parts):
                continue
            found[".".join((dest, *rel.parts))] = init.parent.relative_to(ROOT)
    return found


def test_every_package_folder_is_listed():
    setuptools_cfg = _pyproject()["tool"]["setuptools"]
    listed = set(setuptools_cfg["packages"])
    folders = _package_folders()
    assert "iretouch_bench" in folders and "iretouch_bench.models" in folders, folders
    missing = {name: str(path) for name, path in folders.items() if name not in listed}
    assert not missing, (
        "package folders missing from pyproject.toml [tool.setuptools] packages (they would not be "
        "installed): " + ", ".join(f"{name} (folder {path}/)" for name, path in sorted(missing.items())))
    # The mapping that makes models/ etc. install as iretouch_bench.models: every top-level source
    # folder that exists is mapped to its package name.
    package_dir = setuptools_cfg.get("package-dir", {})
    for src, dest in SOURCE_ROOTS.items():
        if src != PACKAGE and (ROOT / src / "__init__.py").is_file():
            assert package_dir.get(dest) == src, (
                f"pyproject.toml [tool.setuptools] package-dir must map {dest!r} = {src!r} (has {package_dir.get(dest)!r})")
    # Listed but gone: the wheel build would fail.
    stale = sorted(name for name in listed if name not in folders)
    assert not stale, f"pyproject.toml lists packages with no folder/__init__.py: {stale}"


# --------------------------------------------------------------------------- the wheel


def _copy_tree(dest: Path) -> None:
    """Copy the files git would commit (tracked and untracked-not-ignored) to ``dest``.

    Building from a copy keeps a stale ``build/`` folder (setuptools reuses ``build/lib``, so a
    deleted module would still be shipped) and the ``*.egg-info`` out of the wheel, and writes
    nothing into the checkout that others are working in.
    """
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, check=True, timeout=60).stdout
        files = [f for f in out.decode().split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = []
    if files:
        for rel in files:
            src = ROOT / rel
            if src.is_file():  # tracked but deleted in the working tree: skip
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / rel)
    else:  # not a git checkout (an unpacked sdist)
        shutil.copytree(ROOT, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "runs", "__pycache__", "*.egg-info", ".pytest_cache"))


def _build_without_isolation_possible() -> bool:
    """setuptools >= 68 (pyproject's build requirement) with a bdist_wheel: built in since 70.1,
    else from the ``wheel`` package."""
    from packaging.version import Version

    try:
        st = Version(metadata.version("setuptools"))
    except metadata.PackageNotFoundError:
        return False
    if st < Version("68"):
        return False
    if st >= Version("70.1"):
        return True
    try:
        metadata.version("wheel")
        return True
    except metadata.PackageNotFoundError:
        return False


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """Build the wheel from a copy of the tree and install it into ``site`` (no dependencies)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src, wheels, site = tmp / "src", tmp / "wheels", tmp / "site"
    src.mkdir()
    _copy_tree(src)
    # No build isolation when the virtualenv has the backend: nothing to fetch. A fresh virtualenv
    # may only have ensurepip's old setuptools; then pip builds in isolation, fetching setuptools
    # from the package registry exactly as `pip install .` in scripts/install-test-deps.sh does.
    isolation = ["--no-build-isolation"] if _build_without_isolation_possible() else []
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w", str(wheels), "."],
        cwd=src, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, f"pip wheel failed:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}"
    built = sorted(wheels.glob("iretouch_bench-*.whl"))
    assert len(built) == 1, f"expected one iretouch_bench wheel, got {[p.name for p in wheels.iterdir()]}"
    inst = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(site), str(built[0])],
        capture_output=True, text=True, timeout=300)
    assert inst.returncode == 0, f"pip install --target failed:\n{inst.stdout[-3000:]}\n{inst.stderr[-3000:]}"
    empty = tmp / "empty"
    empty.mkdir()
    env = dict(os.environ, PYTHONPATH=str(site))
    env.pop("PYTHONSAFEPATH", None)
    return {"tmp": tmp, "site": site, "wheel": built[0], "cwd": empty, "env": env}


def _py(installed, *args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=installed["cwd"], env=installed["env"],
                          capture_output=True, text=True, timeout=timeout)


def test_wheel_holds_only_the_package(installed):
    site = installed["site"]
    top = sorted(p.name for p in site.iterdir())
    generic = [n for n in top if n in GENERIC_NAMES or n.split(".")[0] in GENERIC_NAMES]
    assert not generic, f"generic top-level names installed into site-packages: {generic} (all: {top})"
    # Only the package, its metadata and pip's bin/ (the console script).
    others = [n for n in top if n != PACKAGE and not n.endswith(".dist-info") and n != "bin"]
    assert not others, f"unexpected top-level entries in the wheel: {others}"
    dist_info = [n for n in top if n.endswith(".dist-info")]
    assert len(dist_info) == 1 and dist_info[0].startswith("iretouch_bench-"), top
    weights = site / SHIPPED_WEIGHTS
    assert weights.is_file(), f"{SHIPPED_WEIGHTS} not in the wheel"
    assert _sha256(weights) == _sha256(ROOT / "models" / "weights" / "ours_small.safetensors")
    # Every module of every listed package made it in (a package listed without its files, or a
    # module setuptools dropped, would fail at import time for users only).
    for name, folder in _package_folders().items():
        inst = site.joinpath(*name.split("."))
        for py in (ROOT / folder).glob("*.py"):
            assert (inst / py.name).is_file(), f"{folder}/{py.name} is not installed as {name}.{py.stem}"


def test_installed_copy_shadows_the_checkout(installed):
    site = installed["site"]
    code = (
        "import json, importlib.util, iretouch_bench, iretouch_bench.models, iretouch_bench.baselines\n"
        "print(json.dumps({'pkg': iretouch_bench.__file__, 'models': iretouch_bench.models.__file__,"
        " 'baselines': iretouch_bench.baselines.__file__,"
        " 'generic': {n: getattr(importlib.util.find_spec(n), 'origin', None) for n in ('models', 'baselines', 'training')}}))"
    )
    res = _py(installed, "-c", code, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    for key in ("pkg", "models", "baselines"):
        assert Path(got[key]).resolve().is_relative_to(site.resolve()), (key, got[key], str(site))
    for name, origin in got["generic"].items():
        assert origin is None or not Path(origin).resolve().is_relative_to(site.resolve()), (name, origin)


@pytest.mark.slow
def test_wheel_installs_and_runs(installed):
    """The installed wheel, run from an empty folder, scores two embedded pairs with `ours`."""
    site, out = installed["site"], installed["tmp"] / "run"
    res = _py(installed, "-m", "iretouch_bench", "run", "--model", "ours", "--limit", "2", "--out", str(out),
              "--quiet", timeout=1800)
    log = f"stdout:\n{res.stdout[-3000:]}\nstderr:\n{res.stderr[-3000:]}"
    assert res.returncode == 0, log
    # The results table was printed: its header and one `ours` row per subset.
    lines = res.stdout.splitlines()
    header = [ln for ln in lines if ln.startswith("| model |")]
    assert header and "ssim" in header[0] and "attr_acc" in header[0], log
    rows = [ln for ln in lines if ln.startswith("| ours | embedded |")]
    assert rows, log
    assert (out / "run.json").is_file(), log
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["config"]["model"] == "ours" and run["dataset"]["n_selected"] == 2, run
    # The shipped weights were loaded from the installed package, not from the checkout.
    weights = Path(run["model"]["weights_file"]).resolve()
    assert weights == (site / SHIPPED_WEIGHTS).resolve(), (str(weights), str(site))
    assert run["model"]["weights_sha256"] == _sha256(site / SHIPPED_WEIGHTS)
    # Each of the two samples has a final ok record.
    records = [json.loads(ln) for p in sorted(out.glob("samples*.jsonl"))
               for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
    assert len(records) == 2 and all(r.get("status") == "ok" for r in records), records
