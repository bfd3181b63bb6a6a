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
