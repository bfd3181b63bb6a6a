"""Training losses of the bilateral model; the small model's text conditioning and recorded vocabulary."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from iretouch_bench.core.errors import WeightsError
from iretouch_bench.models import small
from iretouch_bench.models.kernels.reference import identity_grid
from iretouch_bench.models.small import (
    SHIPPED_WEIGHTS,
    SmallConfig,
    SmallRetouchNet,
    hashed_bow,
    load_small,
    save_small,
    text_features,
)
from iretouch_bench.training import losses
from iretouch_bench.vocab.attributes import ATTRIBUTES, VOCAB_VERSION

TINY = dict(lowres=32, widths=(8, 8, 16), grid_size=4, grid_depth=4, hidden=16, n_knots=5)


def test_laplacian_zero_for_affine_grids_positive_for_noise():
    D, H, W = 6, 5, 7
    z, y, x = torch.meshgrid(torch.arange(D).float(), torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
    affine = (0.3 * z - 0.2 * y + 0.1 * x + 1.0).expand(2, 12, D, H, W)
    assert losses.laplacian_smoothness(identity_grid(2, D, H, W)).item() == 0.0
    assert losses.laplacian_smoothness(affine).item() < 1e-10
    noise = torch.randn(2, 12, D, H, W)
    assert losses.laplacian_smoothness(noise).item() > 0.5
    # hand-computed: one spike of height 1 in a 3x3x3 grid -> Laplacian -6 at the only interior cell
    spike = torch.zeros(1, 12, 3, 3, 3)
    spike[0, 0, 1, 1, 1] = 1.0
    assert abs(losses.laplacian_smoothness(spike).item() - 36.0 / 12) < 1e-6
    # degenerate axes (depth 1) do not break it
    assert losses.laplacian_smoothness(torch.randn(1, 12, 1, 4, 4)).item() > 0
    g = noise.clone().requires_grad_(True)
    losses.laplacian_smoothness(g).backward()
    assert g.grad.abs().sum() > 0


def test_gamut_penalty_zero_inside_quadratic_outside():
    x = torch.rand(2, 3, 8, 8)
    assert losses.gamut_penalty(x).item() == 0.0
    y = x.clone()
    y[0, 0, 0, 0] = 1.5
    y[1, 2, 3, 3] = -0.5
    expect = (0.25 + 0.25) / y.numel()
    assert abs(losses.gamut_penalty(y).item() - expect) < 1e-9


def test_bilateral_loss_parts_and_l1():
    out = torch.full((1, 3, 4, 4), 1.2)
    tgt = torch.full((1, 3, 4, 4), 0.9)
    grid = identity_grid(1, 2, 2, 2)
    total, parts = losses.bilateral_loss(out, tgt, grid, identity=grid)
    assert abs(parts["l1"] - 0.1) < 1e-6  # L1 on the clamped output
    assert abs(parts["gamut"] - 0.04) < 1e-6
    assert parts["smooth"] == 0.0
    assert abs(total.item() - (0.1 + 0.04)) < 1e-6


def test_text_features_attribute_bank_and_hashing():
    from iretouch_bench.vocab.attributes import ATTRIBUTES

    f = text_features("Make it warmer and brighten the sky a little", has_mask=True)
    n = len(ATTRIBUTES)
    assert f.shape == (n + 2 + 256,) and f.dtype == np.float32
    assert f[ATTRIBUTES.index("temperature:warm")] > 0 and f[ATTRIBUTES.index("brightness:up")] > 0
    assert f[ATTRIBUTES.index("temperature:cool")] == 0
    assert f[n] == 1.0 and f[n + 1] == 1.0  # names a region; mask given
    b1, b2 = hashed_bow("Warmer please"), hashed_bow("warmer PLEASE")
    assert np.array_equal(b1, b2) and abs(np.linalg.norm(b1) - 1) < 1e-6
    assert not np.array_equal(b1, hashed_bow("cooler please"))
    assert not hashed_bow("").any()


def test_small_net_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    net = SmallRetouchNet(SmallConfig(**TINY))
    with torch.no_grad():
        net.adapter.to_grid.weight.normal_(0, 0.1)
    save_small(net, tmp_path / "m")
    net2 = load_small(tmp_path / "m.safetensors")
    img = np.random.default_rng(0).random((20, 30, 3), dtype=np.float32)
    g1, p1 = net.eval().predict(img, "brighter", False)
    g2, p2 = net2.predict(img, "brighter", False)
    assert np.array_equal(g1, g2) and all(np.array_equal(a, b) for a, b in zip(p1, p2))
    assert net.config.lowres == net2.config.lowres == 32


def test_text_features_follow_the_attribute_list_given():
    f = text_features("Make it warmer and brighter", False, attributes=("temperature:warm", "brightness:down"))
    assert f.shape == (2 + 2 + 256,)
    assert f[0] > 0 and f[1] == 0  # warm matched; "brighter" is brightness:up, not in this list


def test_config_records_the_vocabulary_and_sizes_the_input_from_it(tmp_path):
    cfg = SmallConfig(**TINY)
    assert cfg.vocab_version == VOCAB_VERSION and cfg.attributes == ATTRIBUTES
    narrow = SmallRetouchNet(SmallConfig(**TINY, attributes=("brightness:up", "brightness:down")))
    assert narrow.cond[0].in_features == 2 + 2 + 256  # input size from the recorded list, not the bank
    save_small(narrow, tmp_path / "n")
    saved = json.loads((tmp_path / "n.json").read_text())["config"]
    assert saved["vocab_version"] == VOCAB_VERSION and saved["attributes"] == ["brightness:up", "brightness:down"]
    assert "n_attributes" not in saved
    # a list that is not the suite's, under the suite's own version: refused, not silently misread
    with pytest.raises(WeightsError, match="attribute list"):
        load_small(tmp_path / "n.safetensors")


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_weights_from_another_vocabulary_are_a_one_line_error(tmp_path, monkeypatch):
    net = SmallRetouchNet(SmallConfig(**TINY))
    st, cj = save_small(net, tmp_path / "m")
    d = json.loads(cj.read_text())
    d["config"]["vocab_version"] = "v0"
    cj.write_text(json.dumps(d))
    with pytest.raises(WeightsError) as err:
        load_small(st)
    msg = _one_line(err)
    assert str(st) in msg and "v0" in msg and VOCAB_VERSION in msg
    # the suite's vocabulary moves on (an attribute appended, version bumped): the shipped model
    # says so in one line instead of failing on a tensor shape
    monkeypatch.setattr(small, "VOCAB_VERSION", "v999")
    monkeypatch.setattr(small, "ATTRIBUTES", ATTRIBUTES + ("clarity:up",))
    with pytest.raises(WeightsError) as err:
        load_small()
    msg = _one_line(err)
    assert str(SHIPPED_WEIGHTS) in msg and VOCAB_VERSION in msg and "v999" in msg
    # a config that records no vocabulary is refused too (its input size would follow today's bank)
    del d["config"]["vocab_version"], d["config"]["attributes"]
    cj.write_text(json.dumps(d))
    with pytest.raises(WeightsError, match="records no instruction vocabulary"):
        load_small(st)
