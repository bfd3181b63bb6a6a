"""Winograd F(4x4, 3x3) conv + bias + ReLU (DISTS's CPU path) against float64 convolution."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from iretouch_bench.metrics import _winograd_kernel as wk

pytestmark = pytest.mark.skipif(not wk.AVAILABLE, reason="numba not importable")


def _layer(C, K, H, W, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.relu(torch.randn(1, C, H, W, generator=g)).contiguous(memory_format=torch.channels_last)
    w = torch.randn(K, C, 3, 3, generator=g) * (2 / (9 * C)) ** 0.5  # He init: activations stay O(1)
    b = torch.randn(K, generator=g) * 0.1
    ref = F.relu(F.conv2d(x.double(), w.double(), b.double(), padding=(0, 1))) if H >= 3 else None
    return x, w, b, ref


@pytest.mark.parametrize("pad_top,pad_bottom", [(False, False), (True, False), (False, True), (True, True)])
def test_every_tile_remainder_matches_float64_convolution(pad_top, pad_bottom):
    """Rows: the strip's halo as given, plus a zero row at each side flagged as the image border;
    columns: one zero each side. Every H, W remainder mod 4, down to a single output row and column
    (partial tiles, edge tile rows read from zero-extended copies)."""
    ws = wk.Workspace()
    pt, pb = int(pad_top), int(pad_bottom)
    for H in range(max(1, 3 - pt - pb), 12):
        for W in (1, 2, 3, 4, 5, 6, 7, 9, 14):
            x, w, b, _ = _layer(19, 6, H, W, seed=H * 100 + W)
            ref = F.relu(F.conv2d(F.pad(x.double(), (0, 0, pt, pb)), w.double(), b.double(), padding=(0, 1)))
            y = wk.conv3x3_relu(x, wk.filter_transform(w), b, ws, pad_top, pad_bottom)
            assert y.shape == ref.shape == (1, 6, H - 2 + pt + pb, W)
            assert y.is_contiguous(memory_format=torch.channels_last)
            # float32 Winograd: rounding of order 1e-5 of the activations' scale (O(1) here); a wrong
            # matrix entry, tile offset or border would be off by O(1)
            assert (y.double() - ref).abs().max().item() < 1e-4, (H, W)


def test_too_few_rows_is_refused():
    x, w, b, _ = _layer(4, 2, 2, 5, seed=1)
    with pytest.raises(ValueError, match="too few"):
        wk.conv3x3_relu(x, wk.filter_transform(w), b)


@pytest.mark.parametrize("C,K,H,W", [(128, 128, 38, 61), (256, 64, 21, 40), (512, 512, 10, 17)])
def test_rounding_stays_within_a_few_times_the_direct_convolution(C, K, H, W):
    x, w, b, ref = _layer(C, K, H, W, seed=C + H)
    y = wk.conv3x3_relu(x, wk.filter_transform(w), b)
    direct = F.relu(F.conv2d(x, w, b, padding=(0, 1)))
    err_w = (y.double() - ref).abs().max().item()
    err_d = (direct.double() - ref).abs().max().item()
    scale = ref.abs().max().item()
    assert err_w <= 3e-5 * scale and err_w <= 20 * err_d + 1e-7, (err_w, err_d, scale)


def test_filter_transform_layout():
    w = torch.zeros(3, 2, 3, 3)
    w[1, 0, 1, 1] = 1.0  # a centred delta from channel 0 to output 1
    u = wk.filter_transform(w)
    assert u.shape == (36, 2, 3) and u.dtype == torch.float32
    # G e_1 = [0, -1/6, 1/6, 1/12, -1/12, 0]: U[6a + b, 0, 1] is its outer product
    g = np.array([0, -1 / 6, 1 / 6, 1 / 12, -1 / 12, 0])
    np.testing.assert_allclose(u[:, 0, 1].numpy(), np.outer(g, g).reshape(36), rtol=1e-6, atol=0)
    assert u[:, 1].abs().sum() == 0 and u[:, 0, 0].abs().sum() == 0


def test_workspace_reuses_and_grows():
    ws = wk.Workspace()
    a = ws.get("v", (2, 3, 4))
    b = ws.get("v", (4, 5))
    assert b.data_ptr() == a.data_ptr()  # smaller request: same memory
    c = ws.get("v", (10, 10))
    assert c.shape == (10, 10) and c.numel() == 100
    # results do not depend on what a reused buffer held before
    x, w, b_, ref = _layer(8, 4, 9, 10, seed=3)
    ws.get("v", (1000,)).fill_(float("nan"))
    ws.get("m", (1000,)).fill_(float("nan"))
    y = wk.conv3x3_relu(x, wk.filter_transform(w), b_, ws)
    assert torch.isfinite(y).all() and (y.double() - ref).abs().max().item() < 1e-4
