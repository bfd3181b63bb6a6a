"""RSFNet (map variant): each filter against its stated formula, zero maps = identity, training,
the adapter on an odd size, chunked full-resolution application, shipped weights."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from iretouch_bench.adapters.registry import create_model
from iretouch_bench.baselines import rsfnet_net as R
from iretouch_bench.baselines.rsfnet import SHIPPED_WEIGHTS
from iretouch_bench.core.errors import WeightsError


def _img(h=9, w=7, seed=0, lo=0.05, hi=0.6):
    return torch.from_numpy(np.random.default_rng(seed).uniform(lo, hi, (1, 3, h, w)).astype(np.float32))


def _one(name, value, shape):
    maps = torch.zeros(1, len(R.FILTERS), *shape)
    maps[:, R.FILTERS.index(name)] = value
    return maps


def test_zero_maps_and_shift_are_the_identity():
    x = _img(lo=0.0, hi=1.0)
    out = R.apply_filters(x, torch.zeros(1, 7, 9, 7), torch.zeros(1, 3))
    assert torch.equal(out, x)
    # a new network has zero heads: it returns its input at any size
    img = np.random.default_rng(1).random((33, 47, 3)).astype(np.float32)
    assert np.abs(R.RSFNet().enhance(img) - img).max() <= 1e-6


def test_each_filter_follows_its_formula():
    x = _img(lo=0.3, hi=0.6)  # mid-tones: no filter below clips, so each formula shows unclipped
    zero = torch.zeros(1, 3)
    f = lambda name, v: R.apply_filters(x, _one(name, v, x.shape[-2:]), zero)  # noqa: E731
    y = (x * torch.tensor([0.2126, 0.7152, 0.0722]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    assert torch.allclose(f("gain", 1.0), (1.5 * x).clamp(0, 1), atol=1e-6)
    assert torch.allclose(f("saturation", -1.0), y.expand_as(x), atol=1e-6)  # fully desaturated: grey at luma
    assert torch.allclose(f("contrast", 1.0), (x + 0.5 * (x - y.mean())).clamp(0, 1), atol=1e-6)
    assert torch.allclose(f("lift", 1.0), x + 0.25 * (1 - x), atol=1e-6)
    assert torch.allclose(f("gamma", 1.0), x.sqrt(), atol=1e-6)
    assert torch.allclose(f("temperature", 1.0), x * torch.tensor([1.2, 1.0, 0.8]).view(1, 3, 1, 1), atol=1e-6)
    # hue: chroma rotated about the grey axis; the grey component and the chroma length are kept
    h = f("hue", 1.0)
    c_in, c_out = x - x.mean(1, keepdim=True), h - h.mean(1, keepdim=True)
    assert torch.allclose(h.mean(1), x.mean(1), atol=1e-6)
    assert torch.allclose(c_in.norm(dim=1), c_out.norm(dim=1), atol=1e-6)
    cos = (c_in * c_out).sum(1) / (c_in.norm(dim=1) * c_out.norm(dim=1))
    assert torch.allclose(cos, torch.full_like(cos, math.cos(math.pi / 6)), atol=1e-5)
    # global shift: 0.1 per unit
    s = R.apply_filters(x, torch.zeros(1, 7, 9, 7), torch.tensor([[1.0, 0.0, -1.0]]))
    assert torch.allclose(s, (x + torch.tensor([0.1, 0.0, -0.1]).view(1, 3, 1, 1)).clamp(0, 1), atol=1e-6)


def test_increments_are_summed():
    x = _img(seed=3, lo=0.3, hi=0.6)  # no clipping in either filter alone
    a, b = _one("gain", 0.4, x.shape[-2:]), _one("lift", -0.3, x.shape[-2:])
    zero = torch.zeros(1, 3)
    both = R.apply_filters(x, a + b, zero)
    expected = x + (R.apply_filters(x, a, zero) - x) + (R.apply_filters(x, b, zero) - x)
    assert torch.allclose(both, expected.clamp(0, 1), atol=1e-6)


def test_a_few_training_steps_lower_the_loss_on_a_fixed_batch():
    from iretouch_bench.training.rsfnet import train_step

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(2):
        inp = rng.uniform(0.05, 0.7, (40, 30, 3)).astype(np.float32)
        pairs.append((inp, np.clip(inp * 1.3, 0, 1).astype(np.float32)))  # an exposure edit
    net = R.RSFNet()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = [train_step(net, opt, pairs, rng)["mse"] for _ in range(8)]
    assert losses[-1] < 0.7 * losses[0]


def test_shipped_weights_load_and_are_described():
    net = R.load_rsfnet(SHIPPED_WEIGHTS)
    assert net.maps_head.out_channels == len(R.FILTERS)
    meta = json.loads(SHIPPED_WEIGHTS.with_suffix(".json").read_text())["metadata"]
    assert meta["trained_by"] == "iretouch-bench train rsfnet"
    # trained on the training photos only, never on the embedded evaluation photos
    from iretouch_bench.synth.photos import EVAL_PHOTOS, TRAIN_PHOTOS

    assert set(meta["train_photos"].split(",")) == set(TRAIN_PHOTOS)
    assert not set(meta["train_photos"].split(",")) & set(EVAL_PHOTOS)
    assert int(meta["steps"]) > 0 and meta["seed"] == "0" and meta["threads"] == "1"


def test_adapter_keeps_an_odd_size_and_ignores_the_instruction():
    model = create_model("rsfnet")
    assert model.paper_row == "RSFNet" and model.license and model.description
    assert getattr(model, "instruction_driven", True) is False
    img = np.random.default_rng(2).random((37, 53, 3)).astype(np.float32)
    out = model.retouch(img, "make it warmer")
    assert out.shape == img.shape and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert np.array_equal(out, model.retouch(img, "make it cooler"))
    assert np.array_equal(model.retouch(img, "x", strength=0.0), img)
    assert len(model.info()["weights_sha256"]) == 64


def test_full_resolution_chunks_agree(monkeypatch):
    net = R.load_rsfnet(SHIPPED_WEIGHTS)
    img = np.random.default_rng(3).random((45, 31, 3)).astype(np.float32)
    whole = net.enhance(img)
    monkeypatch.setattr(R, "_CHUNK_PIXELS", 100)  # 3 rows a chunk: the mean luma must stay the image's
    assert np.abs(net.enhance(img) - whole).max() < 1e-6


def test_a_bad_weight_file_is_one_line(tmp_path):
    bad = tmp_path / "rsfnet.safetensors"
    bad.write_bytes(b"not safetensors")
    with pytest.raises(WeightsError) as err:
        create_model("rsfnet", weights=str(bad)).preflight()
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
