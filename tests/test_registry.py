"""The model registry: built-ins, run-time registration, entry-point plug-ins, clear errors."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

from iretouch_bench.core.errors import ModelError
from iretouch_bench.adapters.base import RetouchModel
from iretouch_bench.adapters.registry import available_models, create_model, register_model


def test_identity_returns_input_copy():
    m = create_model("identity")
    m.ensure_loaded()
    img = np.random.default_rng(0).random((5, 7, 3)).astype(np.float32)
    out = m.retouch(img, "anything")
    assert out is not img and np.array_equal(out, img)
    assert m.info()["name"] == "identity"


def test_unknown_model_lists_known():
    with pytest.raises(ModelError, match="identity"):
        create_model("nope")


def test_register_at_run_time():
    @register_model
    class Half(RetouchModel):
        name = "test-half"

        def retouch(self, image, instruction, *, mask=None, strength=1.0):
            return image * 0.5

    assert "test-half" in available_models()
    assert create_model("test-half").retouch(np.ones((2, 2, 3), np.float32), "x").max() == 0.5


def test_entry_point_plugin(tmp_path, monkeypatch):
    pkg = tmp_path / "plug_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        from iretouch_bench.adapters.base import RetouchModel
        class Inv(RetouchModel):
            name = "plug-invert"
            description = "inverts"
            def retouch(self, image, instruction, *, mask=None, strength=1.0):
                return 1.0 - image
        class NotAModel:
            pass
    """))
    dist = tmp_path / "plug_pkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: plug-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[iretouch_bench.models]\nplug-invert = plug_pkg:Inv\nplug-bad = plug_pkg:NotAModel\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "plug-invert" in available_models()
    m = create_model("plug-invert")
    assert np.allclose(m.retouch(np.zeros((1, 1, 3), np.float32), ""), 1.0)
    with pytest.raises(ModelError, match="not a RetouchModel"):
        create_model("plug-bad")
    sys.modules.pop("plug_pkg", None)


_PLUGIN_SRC = """
import numpy as np
from iretouch_bench.adapters.base import RetouchModel, RetouchResult

class Darken(RetouchModel):
    name = "plug-darken"
    description = "darkens by a factor"
    license = "MIT"
    paper_row = None

    def __init__(self, device="cpu", weights=None, factor=0.5):
        super().__init__(device=device, weights=weights, factor=factor)
        self.factor = factor

    def run(self, request):
        return RetouchResult(image=request.image * self.factor, meta={"seed": request.seed})
"""


def test_plugin_registered_both_ways_runs_the_same(tiny_manifest, tmp_path, monkeypatch):
    """One adapter, registered as an entry point (a fake installed distribution) and given as a
    file: both route through the registry, take --model-args, run, and give the same numbers."""
    import json

    from iretouch_bench.adapters.registry import model_source
    from iretouch_bench.api import run_benchmark
    from iretouch_bench.runner.config import RunConfig

    pkg = tmp_path / "site" / "darken_pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(_PLUGIN_SRC)
    dist = tmp_path / "site" / "darken_pkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: darken-pkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[iretouch_bench.models]\nplug-darken = darken_pkg:Darken\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    plugin_file = tmp_path / "my_adapter.py"
    plugin_file.write_text(_PLUGIN_SRC)
    file_spec = f"{plugin_file}:Darken"

    assert "plug-darken" in available_models()
    assert model_source("plug-darken") == {"kind": "entry_point", "target": "darken_pkg:Darken",
                                           "distribution": "darken-pkg 0.1"}
    assert model_source(file_spec)["kind"] == "file"
    results = {}
    for name in ("plug-darken", file_spec):
        cfg = RunConfig(model=name, dataset=f"iretouch:{tiny_manifest}", out=str(tmp_path / f"run{len(results)}"),
                        model_args={"factor": 0.25}, metrics=("l1", "l2"))
        res = run_benchmark(cfg, progress=False, log=lambda *a: None)
        info = json.loads((res.run_dir / "run.json").read_text())
        assert info["model"]["options"] == {"factor": 0.25} and info["model"]["name"] == "plug-darken"
        assert res.summary["n_ok"] == 6
        results[name] = res.summary["metrics"]["l1"]["mean"]
    assert results["plug-darken"] == results[file_spec] and results[file_spec] > 0
    sys.modules.pop("darken_pkg", None)


def test_file_plugin_errors_are_one_line(tmp_path):
    with pytest.raises(ModelError, match="nope.py: model file not found"):
        create_model(str(tmp_path / "nope.py") + ":X")
    f = tmp_path / "m.py"
    f.write_text("class NotAModel:\n    pass\n")
    with pytest.raises(ModelError, match="defines no 'Missing'"):
        create_model(f"{f}:Missing")
    with pytest.raises(ModelError, match="is not a RetouchModel subclass"):
        create_model(f"{f}:NotAModel")
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom at import')\n")
    with pytest.raises(ModelError, match="broken.py: failed to import \\(RuntimeError: boom at import\\)"):
        create_model(f"{broken}:X")
