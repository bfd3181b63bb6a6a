"""``ours`` with the shipped small model: loads, keeps the adapter contract, beats identity."""

from __future__ import annotations

import json

import numpy as np
import pytest

from iretouch_bench.adapters.registry import create_model, get_model_class
from iretouch_bench.core.errors import BenchError, WeightsError
from iretouch_bench.core.hashing import sha256_file
from iretouch_bench.models import slicing
from iretouch_bench.models.kernels import numba_cpu
from iretouch_bench.models.small import SHIPPED_CONFIG, SHIPPED_WEIGHTS
from iretouch_bench.vocab.attributes import ATTRIBUTES, VOCAB_VERSION


@pytest.fixture(scope="module")
def ours():
    m = create_model("ours")
    m.load()
    return m


def _img(h, w, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xx / max(w, 1), yy / max(h, 1), 0.5 + 0.2 * np.sin(xx / 5.0)], -1)
    return np.clip(0.1 + 0.8 * base + 0.05 * rng.random((h, w, 3)), 0, 1).astype(np.float32)


def test_registry_and_flags():
    cls = get_model_class("ours")
    assert cls.__name__ == "OursModel" and cls.name == "ours"
    assert cls.supports_strength and cls.supports_mask


def test_shipped_weights_are_small_and_identified(ours):
    assert SHIPPED_WEIGHTS.is_file() and SHIPPED_CONFIG.is_file()
    assert SHIPPED_WEIGHTS.stat().st_size < 5 * 2**20  # "a few MB" at most
    info = ours.info()
    assert info["variant"] == "small"
    assert info["weights_sha256"] == sha256_file(SHIPPED_WEIGHTS)
    assert info["config"]["vocab_version"] == VOCAB_VERSION and tuple(info["config"]["attributes"]) == ATTRIBUTES
    meta = json.loads(SHIPPED_CONFIG.read_text())["metadata"]
    from iretouch_bench.synth.photos import EVAL_PHOTOS

    assert not set(meta["train_photos"].split(",")) & set(EVAL_PHOTOS)  # trained off the eval photos


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (64, 97)])
def test_output_contract(ours, shape):
    img = _img(*shape)
    out = ours.retouch(img, "Make it warmer and brighter.")
    assert out.shape == img.shape and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


def test_strength_and_mask(ours):
    img = _img(48, 64, 1)
    instr = "Brighten it a lot."
    assert np.array_equal(ours.retouch(img, instr, strength=0.0), img)
    full = ours.retouch(img, instr)
    assert np.abs(full - img).max() > 0.01  # it edits
    half = ours.retouch(img, instr, strength=0.5)
    inside = (full > 0.001) & (full < 0.999)  # away from the clamp, strength is linear
    np.testing.assert_allclose((half - img)[inside], 0.5 * (full - img)[inside], atol=2e-5)
    assert np.array_equal(ours.retouch(img, instr, mask=np.zeros((48, 64), np.float32)), img)
    m = np.zeros((48, 64), np.float32)
    m[:, 32:] = 1.0
    local = ours.retouch(img, instr, mask=m)
    assert np.array_equal(local[:, :32], img[:, :32])
    assert np.abs(local[:, 32:] - img[:, 32:]).max() > 0.01
    with pytest.raises(BenchError):
        ours.retouch(img, instr, mask=np.ones((3, 3), np.float32))


def test_brighten_and_warm_go_the_right_way(ours):
    img = _img(64, 96, 2) * 0.8
    luma = lambda a: float((a @ np.array([0.2126, 0.7152, 0.0722], np.float32)).mean())  # noqa: E731
    assert luma(ours.retouch(img, "Brighten the photo a lot.")) > luma(img) + 0.01
    assert luma(ours.retouch(img, "Darken the photo a lot.")) < luma(img) - 0.01
    warm = ours.retouch(img, "Make it much warmer.")
    cool = ours.retouch(img, "Make it much cooler.")
    rb = lambda a: float((a[..., 0] - a[..., 2]).mean())  # noqa: E731
    assert rb(warm) > rb(img) > rb(cool)


def test_improves_on_identity_on_held_out_pairs(ours):
    """Pairs synthesised from a photo the model never saw (an evaluation photo)."""
    from iretouch_bench.synth.pairs import make_pair
    from iretouch_bench.synth.photos import EVAL_PHOTOS, load_photo

    photo = load_photo(EVAL_PHOTOS[2], max_side=160)
    rng = np.random.default_rng(123)
    l1_id, l1_ours = [], []
    for cat in ("global", "global", "global", "style", "style", "global", "style", "global"):
        p = make_pair(photo, rng, cat)
        out = ours.retouch(p["input"], p["instruction"], mask=p["mask"])
        l1_id.append(np.abs(p["input"] - p["target"]).mean())
        l1_ours.append(np.abs(out - p["target"]).mean())
    assert np.mean(l1_ours) < 0.85 * np.mean(l1_id), (np.mean(l1_ours), np.mean(l1_id))


def test_bad_weights_are_one_line_errors(tmp_path):
    with pytest.raises(BenchError):
        create_model("ours", weights=str(tmp_path / "nope.safetensors")).load()
    with pytest.raises(BenchError):
        create_model("ours", weights=str(tmp_path)).load()  # empty folder: not a generator


def test_info_names_the_backend_that_runs(ours, monkeypatch):
    """No silent slow path: without the fused CPU kernel, ``ours`` still edits (same numbers),
    warns, and its info (recorded in run.json) says the reference ran and why."""
    img = _img(40, 56, 3)
    if numba_cpu.nb is not None:
        assert ours.info()["backend"] == "numba" and "backend_note" not in ours.info()
    fast = ours.retouch(img, "Make it warmer.")
    monkeypatch.setattr(numba_cpu, "UNAVAILABLE_REASON", "numba unavailable (simulated)")
    monkeypatch.setattr(slicing, "_warned", set())
    with pytest.warns(RuntimeWarning, match="grid_sample reference"):
        slow = ours.retouch(img, "Make it warmer.")
    assert np.abs(slow - fast).max() <= 1e-5
    info = ours.info()
    assert info["backend"] == "reference" and "simulated" in info["backend_note"]


def test_weights_from_another_vocabulary_fail_in_preflight(tmp_path):
    from iretouch_bench.models.small import SmallConfig, SmallRetouchNet, save_small

    st, cj = save_small(SmallRetouchNet(SmallConfig(lowres=32, widths=(8, 8, 16), grid_size=4, grid_depth=4,
                                                    hidden=16, n_knots=5)), tmp_path / "old")
    d = json.loads(cj.read_text())
    d["config"]["vocab_version"] = "v0"
    cj.write_text(json.dumps(d))
    with pytest.raises(WeightsError, match=f"old.safetensors: trained with instruction vocabulary v0 .*{VOCAB_VERSION}"):
        create_model("ours", weights=str(st)).preflight()


def test_training_command_is_deterministic_and_writes_its_outputs(tmp_path):
    """A miniature run of the training that produced the shipped weights: same seed, same bytes."""
    from iretouch_bench.models.small import SmallConfig, load_small
    from iretouch_bench.training.small import train_ours

    cfg = SmallConfig(lowres=32, widths=(8, 8, 16), grid_size=4, grid_depth=4, hidden=16, n_knots=5)
    runs = []
    for name in ("a", "b"):
        r = train_ours(tmp_path / name, steps=3, seed=5, batch=2, pool_size=4, max_side=96, threads=1,
                       progress=False, config=cfg)
        runs.append(r)
        assert (tmp_path / name / "loss_curve.png").stat().st_size > 0
        assert len(json.loads((tmp_path / name / "train_log.json").read_text())["history"]) == 3
    assert sha256_file(runs[0]["weights"]) == sha256_file(runs[1]["weights"])
    out = create_model("ours", weights=runs[0]["weights"]).retouch(_img(20, 30), "brighter")
    assert out.shape == (20, 30, 3)
    assert load_small(runs[0]["weights"]).config.lowres == 32


def test_train_is_a_group_and_ours_small_keeps_its_flags():
    from click.testing import CliRunner

    from iretouch_bench.cli import cli

    res = CliRunner().invoke(cli, ["train"])
    assert "ours-small" in res.output and "Usage: " in res.output  # no subcommand: the group's help
    res = CliRunner().invoke(cli, ["train", "ours-small", "--help"])
    assert res.exit_code == 0
    for flag in ("--out", "--steps", "--seed", "--threads", "--batch", "--pool"):
        assert flag in res.output
