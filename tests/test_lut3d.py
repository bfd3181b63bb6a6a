"""3D-LUT baseline: LUT maths against an independent reference, regularisers on known LUTs, the
official weight layout through the restricted unpickler, training, the adapter, shipped weights."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from iretouch_bench.adapters.registry import create_model
from iretouch_bench.baselines import lut3d_net as L
from iretouch_bench.baselines.lut3d import SHIPPED_WEIGHTS, Lut3DModel
from iretouch_bench.core.errors import WeightsError


def _numpy_trilinear(lut: np.ndarray, img: np.ndarray) -> np.ndarray:
    """Independent reference: ``lut [3, D, D, D]`` ([c, b, g, r]), ``img [N, 3]`` -> ``[N, 3]``,
    the eight lattice corners weighted explicitly."""
    D = lut.shape[-1]
    pos = np.clip(img, 0, 1).astype(np.float64) * (D - 1)
    i0 = np.minimum(np.floor(pos).astype(int), D - 2)
    f = pos - i0
    out = np.zeros((img.shape[0], 3))
    for dr in (0, 1):
        for dg in (0, 1):
            for db in (0, 1):
                w = ((f[:, 0] if dr else 1 - f[:, 0]) * (f[:, 1] if dg else 1 - f[:, 1])
                     * (f[:, 2] if db else 1 - f[:, 2]))
                corner = lut[:, i0[:, 2] + db, i0[:, 1] + dg, i0[:, 0] + dr]  # [3, N]
                out += w[:, None] * corner.T
    return out


def test_identity_lut_returns_input():
    rng = np.random.default_rng(0)
    img = rng.random((1, 3, 31, 17)).astype(np.float32)
    img[0, :, 0, 0], img[0, :, 0, 1] = 0.0, 1.0  # the lattice's ends
    out = L.apply_lut(L.identity_lut(33), torch.from_numpy(img)).numpy()
    assert np.abs(out - img).max() <= 1e-6


@pytest.mark.parametrize("dim", [5, 33])
def test_trilinear_matches_numpy_reference(dim):
    rng = np.random.default_rng(dim)
    lut = rng.random((3, dim, dim, dim)).astype(np.float32)
    img = rng.random((1, 3, 23, 19)).astype(np.float32)
    got = L.apply_lut(torch.from_numpy(lut), torch.from_numpy(img)).numpy()[0].reshape(3, -1).T
    ref = _numpy_trilinear(lut, img[0].reshape(3, -1).T)
    assert np.abs(got - ref).max() < 2e-6
    # the layout is [c, b, g, r]: a LUT that reads only the blue axis outputs blue
    only_b = np.zeros_like(lut)
    only_b[0] = np.linspace(0, 1, dim)[:, None, None]
    red_out = L.apply_lut(torch.from_numpy(only_b), torch.from_numpy(img)).numpy()[0, 0]
    assert np.abs(red_out - img[0, 2]).max() < 1e-6


def test_regularisers_on_known_luts():
    D = 33
    ident = L.identity_lut(D)[None]
    # one output channel in three moves 1/(D-1) per lattice step along each axis
    assert L.smoothness(ident).item() == pytest.approx(1 / (D - 1) ** 2, rel=1e-5)
    assert L.monotonicity(ident).item() == 0.0
    # reversed along every axis: each channel falls 1/(D-1) per step along its own axis
    assert L.monotonicity(ident.flip(2, 3, 4)).item() == pytest.approx(1 / (D - 1), rel=1e-5)
    assert L.smoothness(torch.zeros(3, 3, D, D, D)).item() == 0.0
    w = torch.tensor([[1.0, 2.0, -2.0]])
    assert (L.smoothness(ident, w) - L.smoothness(ident)).item() == pytest.approx(3.0, rel=1e-6)


# --------------------------------------------------------------------------- official weights
def _save_legacy_on_cuda(obj, path):
    """torch.save in the legacy (pre-1.6, non-zip) format with every storage tagged 'cuda:0', as
    the official files were saved; falls back to the plain tag if torch's tagger API moved."""
    from torch import serialization as ser

    entry = (1, lambda storage: "cuda:0", lambda storage, location: None)
    registry = getattr(ser, "_package_registry", None)
    try:
        if registry is not None:
            registry.insert(0, entry)
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    finally:
        if registry is not None and entry in registry:
            registry.remove(entry)


def _official_fixture(folder, seed=0):
    """The official release's two files (key names and shapes of Zeng et al.'s Classifier and
    Generator3DLUT modules: classifier.pth a state dict of ``model.N.*``, LUTs.pth
    ``{"0": {"LUT": [3, 33, 33, 33]}, "1": ..., "2": ...}``), random values."""
    torch.manual_seed(seed)
    net = L.Lut3DNet()
    ours_to_official = {v: k for k, v in L.OFFICIAL_CLASSIFIER_KEYS.items()}
    cls = {}
    for key, val in net.classifier.state_dict().items():
        mod, _, leaf = key.rpartition(".")
        cls[f"{ours_to_official[mod]}.{leaf}"] = val.clone()
    luts = {str(i): {"LUT": L.identity_lut() * (1 - 0.1 * i) + 0.01 * i} for i in (2, 1, 0)}
    folder.mkdir(parents=True, exist_ok=True)
    _save_legacy_on_cuda(cls, folder / "classifier.pth")
    _save_legacy_on_cuda(luts, folder / "LUTs.pth")
    return cls, luts


def test_official_layout_loads_through_the_restricted_path(tmp_path, monkeypatch):
    monkeypatch.setenv("IRETOUCH_BENCH_CACHE", str(tmp_path / "cache"))
    cls, luts = _official_fixture(tmp_path / "official")
    raw = (tmp_path / "official" / "LUTs.pth").read_bytes()
    assert not raw.startswith(b"PK")  # legacy pickle, not the zip format
    assert b"cuda:0" in raw

    model = Lut3DModel(weights=str(tmp_path / "official" / "classifier.pth"))
    model.preflight()
    converted = list((tmp_path / "cache" / "weights" / "3dlut").glob("official-*.safetensors"))
    assert len(converted) == 1 and model.info()["source"] == "official"

    net = L.load_lut3d(converted[0])
    assert torch.equal(net.luts[1], luts["1"]["LUT"]) and torch.equal(net.luts[2], luts["2"]["LUT"])
    assert torch.equal(net.classifier.head.weight, cls["model.16.weight"])
    assert torch.equal(net.classifier.norm2.bias, cls["model.6.bias"])

    # the adapter computes what the official forward computes with these tensors
    img = np.random.default_rng(1).random((21, 34, 3)).astype(np.float32)
    out = model.retouch(img, "ignored")
    with torch.no_grad():
        w = net.classifier(torch.from_numpy(L.low_view(img)).permute(2, 0, 1)[None])[0]
        lut = sum(w[i] * luts[str(i)]["LUT"] for i in range(3))
        ref = L.apply_lut(lut, torch.from_numpy(img).permute(2, 0, 1)[None])[0].permute(1, 2, 0).clamp(0, 1)
    assert np.abs(out - ref.numpy()).max() < 1e-5

    # converted once: a second model (given the folder this time) reuses the cached file
    mtime = converted[0].stat().st_mtime_ns
    Lut3DModel(weights=str(tmp_path / "official")).preflight()
    assert converted[0].stat().st_mtime_ns == mtime


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # what a malicious weight file does: run code while unpickling
        return (open, (str(self.marker), "w"))


def test_malicious_pickle_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("IRETOUCH_BENCH_CACHE", str(tmp_path / "cache"))
    _official_fixture(tmp_path / "evil")
    marker = tmp_path / "pwned"
    with open(tmp_path / "evil" / "classifier.pth", "wb") as f:
        pickle.dump({"model.1.weight": _Payload(marker)}, f, protocol=2)
    with pytest.raises(WeightsError) as err:
        Lut3DModel(weights=str(tmp_path / "evil")).preflight()
    msg = str(err.value)
    assert "classifier.pth" in msg and "restricted unpickler" in msg and "\n" not in msg
    assert not marker.exists()


def test_official_loader_names_a_missing_partner(tmp_path):
    (tmp_path / "classifier.pth").write_bytes(b"")
    with pytest.raises(WeightsError, match="LUTs.pth"):
        L.convert_official(tmp_path / "classifier.pth")


# --------------------------------------------------------------------------- training
def test_a_few_training_steps_lower_the_loss_on_a_fixed_batch():
    from iretouch_bench.training.lut3d import train_step

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(2):
        inp = rng.random((40, 30, 3)).astype(np.float32)
        pairs.append((inp, np.clip(inp ** 0.6 * 1.05, 0, 1).astype(np.float32)))  # brighter, like an edit
    net = L.Lut3DNet(L.Lut3DConfig(dropout=0.0))
    net.init_for_training()
    opt = torch.optim.Adam([{"params": net.classifier.parameters(), "lr": 1e-4}, {"params": [net.luts], "lr": 1e-3}])
    # the same pixels every step (a fresh generator with one seed): only the model changes
    losses = [train_step(net, opt, pairs, np.random.default_rng(1), 512)["mse"] for _ in range(8)]
    assert np.mean(losses[-3:]) < 0.8 * losses[0]


# --------------------------------------------------------------------------- adapter + shipped weights
def test_shipped_weights_load_and_are_described():
    net = L.load_lut3d(SHIPPED_WEIGHTS)
    assert net.luts.shape == (3, 3, 33, 33, 33)
    meta = json.loads(SHIPPED_WEIGHTS.with_suffix(".json").read_text())["metadata"]
    assert meta["trained_by"] == "iretouch-bench train 3dlut"
    # trained on the training photos only, never on the embedded evaluation photos
    from iretouch_bench.synth.photos import EVAL_PHOTOS, TRAIN_PHOTOS

    assert set(meta["train_photos"].split(",")) == set(TRAIN_PHOTOS)
    assert not set(meta["train_photos"].split(",")) & set(EVAL_PHOTOS)
    assert int(meta["steps"]) > 0 and meta["seed"] == "0" and meta["threads"] == "1"


def test_adapter_keeps_an_odd_size_and_ignores_the_instruction():
    model = create_model("3dlut")
    assert model.paper_row == "3D-LUT" and model.license and model.description
    assert getattr(model, "instruction_driven", True) is False
    img = np.random.default_rng(2).random((37, 53, 3)).astype(np.float32)
    out = model.retouch(img, "make it warmer")
    assert out.shape == img.shape and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert np.array_equal(out, model.retouch(img, "make it cooler"))
    assert np.array_equal(model.retouch(img, "x", strength=0.0), img)
    info = model.info()
    assert info["source"] == "shipped" and len(info["weights_sha256"]) == 64


def test_full_resolution_chunks_agree(monkeypatch):
    net = L.load_lut3d(SHIPPED_WEIGHTS)
    img = np.random.default_rng(3).random((45, 31, 3)).astype(np.float32)
    whole = net.enhance(img)
    monkeypatch.setattr(L, "_CHUNK", 97)
    assert np.array_equal(net.enhance(img), whole)


def test_vlm_judge_is_not_asked_about_a_model_that_ignores_the_instruction(tiny_manifest, tmp_path, monkeypatch):
    from iretouch_bench import api
    from iretouch_bench.core.errors import BenchError
    from iretouch_bench.runner.config import RunConfig

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-never-sent")
    # an endpoint nobody listens on: a request would fail the sample's judge scores with a reason
    cfg = RunConfig(model="3dlut", dataset=f"iretouch:{tiny_manifest}", out=str(tmp_path / "r"), limit=2,
                    judge="openai:gpt-4o-2024-08-06", judge_base_url="http://127.0.0.1:9/v1", judge_retries=0,
                    metrics=("ssim", "l1", "sc", "pq", "o", "attr_acc"))
    res = api.run_benchmark(cfg, progress=False, log=lambda *a: None)
    st = res.summary["metrics"]["sc"]
    assert st["n"] == 0 and any("not instruction-driven" in r for r in st["null_reasons"])
    assert res.summary["metrics"]["attr_acc"]["n"] == 2
    with pytest.raises(BenchError, match="not instruction-driven"):
        api.judge_run(res.run_dir, "openai:gpt-4o-2024-08-06", progress=False, log=lambda *a: None)
