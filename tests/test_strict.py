"""Strict mode (``IRETOUCH_BENCH_STRICT=1``, set by ``.ci/run``): an unexpected skip fails.

The hooks live in ``tests/conftest.py``; these tests run small pytest sessions (``pytester``)
with a copy of that conftest, with and without the flag, and check every way a test can skip.
Beside them, the hard dependencies of ``pyproject.toml`` and the test-time references are
checked to be installed: a missing one fails (a reference only skips, which strict mode fails).
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest

from conftest import STRICT_ENV

ROOT = Path(__file__).resolve().parents[1]
CONFTEST = Path(__file__).with_name("conftest.py")

# One module with every kind of skip. "no_such_module_xyz" stands in for a reference
# implementation that did not install (pytest.importorskip("pyiqa")).
INNER_TESTS = '''
import pytest

@pytest.fixture
def reference():
    return pytest.importorskip("no_such_module_xyz")

def test_passes():
    pass

def test_importorskip_in_body():
    pytest.importorskip("no_such_module_xyz")

def test_skip_in_fixture(reference):
    pass

@pytest.mark.skipif(True, reason="reference missing")
def test_skipif_mark():
    pass

@pytest.mark.gpu
def test_gpu_marked_skip():
    pytest.skip("needs CUDA")

@pytest.mark.gpu
class TestGpuClass:
    def test_inherits_marker(self):
        pytest.skip("needs CUDA")

def test_allowed_by_node_id():
    pytest.skip("legitimate here")

@pytest.mark.xfail(reason="known bug", strict=True)
def test_xfail():
    assert False
'''

# A module that skips while it is imported: a hard dependency that did not install.
INNER_MODULE_SKIP = '''
import pytest
pytest.importorskip("no_such_module_xyz")

def test_never_collected():
    pass
'''


@pytest.fixture
def session(pytester, monkeypatch):
    """A pytester folder holding the suite's conftest (plus one allow-list entry) and the tests."""
    text = CONFTEST.read_text(encoding="utf-8")
    text += '\nALLOWED_SKIPS["test_inner.py::test_allowed_by_node_id"] = "allowed in this test"\n'
    pytester.makeconftest(text)
    pytester.makeini('[pytest]\nmarkers =\n    gpu: needs a CUDA device\n')
    pytester.makepyfile(test_inner=INNER_TESTS, test_module_skip=INNER_MODULE_SKIP)

    def run(strict: str | None):
        if strict is None:
            monkeypatch.delenv(STRICT_ENV, raising=False)
        else:
            monkeypatch.setenv(STRICT_ENV, strict)
        # A subprocess: the copied conftest must not meet this session's conftest module.
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", "-rs", "-W", "error::pytest.PytestUnknownMarkWarning")

    return run


def _outcomes(result) -> dict[str, str]:
    """``{test name: PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS}`` from the ``-v`` progress lines."""
    out: dict[str, str] = {}
    for line in result.outlines:
        m = re.match(r"^\S+?\.py::(.+?) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b", line)
        if m:
            # a setup error shows as "ERROR" (pytest -v prints one line per phase that reports)
            out[m.group(1)] = "ERROR" if out.get(m.group(1)) == "ERROR" else m.group(2)
    return out


@pytest.mark.parametrize("flag", [None, "0"])
def test_without_the_flag_skips_are_skips(session, flag):
    result = session(flag)
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=1, skipped=7, xfailed=1)


def test_under_the_flag_a_skip_fails(session):
    result = session("1")
    text = result.stdout.str()
    assert result.ret == 1, text
    # call-time skips fail; setup-time skips (fixture, skipif) are setup errors; the module that
    # skipped at import fails as one stand-in item, and the rest of the run goes on.
    result.assert_outcomes(passed=1, failed=2, errors=2, skipped=3, xfailed=1)
    got = _outcomes(result)
    assert got.get("test_importorskip_in_body") == "FAILED", got
    assert got.get("<collection skipped>") == "FAILED", got
    assert got.get("test_skip_in_fixture") == "ERROR", got
    assert got.get("test_skipif_mark") == "ERROR", got
    assert got.get("test_passes") == "PASSED", got
    assert got.get("test_xfail") == "XFAIL", got
    # The failure says why: the flag, and the original skip reason and where it came from.
    assert f"{STRICT_ENV} is set" in text
    assert "could not import 'no_such_module_xyz'" in text
    assert "Skipped: reference missing" in text
    assert "test_module_skip.py" in text


def test_under_the_flag_gpu_marked_skips_do_not_fail(session):
    result = session("1")
    got = _outcomes(result)
    # A gpu-marked test (or class) that skips - here, or because no CUDA device is visible - and
    # an allow-listed test stay skips; they are the only skips.
    assert got.get("test_gpu_marked_skip") == "SKIPPED", got
    assert got.get("TestGpuClass::test_inherits_marker") == "SKIPPED", got
    assert got.get("test_allowed_by_node_id") == "SKIPPED", got
    assert sorted(k for k, v in got.items() if v == "SKIPPED") == [
        "TestGpuClass::test_inherits_marker", "test_allowed_by_node_id", "test_gpu_marked_skip"], got


def test_allow_list_entries_name_real_tests():
    """Every ALLOWED_SKIPS entry names a test file that exists (a stale entry hides nothing)."""
    from conftest import ALLOWED_SKIPS

    for key, why in ALLOWED_SKIPS.items():
        assert why.strip(), key
        path = ROOT / key.split("::", 1)[0]
        assert path.is_file(), f"ALLOWED_SKIPS entry {key!r}: {path} does not exist"
        if "::" in key:
            name = key.split("::")[-1].split("[", 1)[0]
            assert re.search(rf"\bdef {re.escape(name)}\b|\bclass {re.escape(name)}\b", path.read_text()), (
                f"ALLOWED_SKIPS entry {key!r}: no {name} in {path}")


def _read_pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _check_installed(requirement: str) -> str | None:
    """None if ``requirement`` is satisfied by an installed distribution, else what is wrong."""
    from packaging.requirements import Requirement

    req = Requirement(requirement)
    if req.marker is not None and not req.marker.evaluate():
        return None
    try:
        version = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        return f"{req.name} is not installed (needs {requirement})"
    if req.specifier and not req.specifier.contains(version, prereleases=True):
        return f"{req.name} {version} is installed, {requirement} is required"
    return None


def test_hard_dependencies_installed():
    """Every dependency and test extra of pyproject.toml is installed at a matching version."""
    project = _read_pyproject()["project"]
    reqs = list(project["dependencies"]) + list(project.get("optional-dependencies", {}).get("test", []))
    assert reqs
    problems = [p for p in map(_check_installed, reqs) if p]
    assert not problems, "missing or mismatched dependencies (run bash scripts/install-test-deps.sh):\n" + "\n".join(problems)


def test_reference_implementations_installed():
    """The references scripts/install-test-deps.sh installs (pyiqa) are there, at the pinned version.

    Without them the reference tests skip; this skip, like theirs, is a failure in CI.
    """
    script = (ROOT / "scripts" / "install-test-deps.sh").read_text(encoding="utf-8")
    pins = re.findall(r'"([A-Za-z0-9_.\-]+==[^"\s]+)"', script)
    assert any(p.startswith("pyiqa==") for p in pins), f"no pyiqa pin found in install-test-deps.sh: {pins}"
    problems = [p for p in map(_check_installed, pins) if p]
    if problems:
        pytest.skip("; ".join(problems))


def test_strict_flag_is_set_in_ci():
    """.ci/run exports the flag, so CI runs the suite strictly."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(rf"^\s*export\s+{STRICT_ENV}=1\s*$", ci, re.M), ci
    assert "scripts/test.sh" in ci
    # pytest's "no tests collected" (exit 5) is handled as a failure, not passed through silently.
    assert re.search(r"^\s*5\)[^\n]*exit 1", ci, re.M), ci
