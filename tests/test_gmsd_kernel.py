"""The fused GMSD kernel against the torch path it replaces (same levels, same formula)."""

import numpy as np
import pytest
import torch

from iretouch_bench.metrics import _gmsd_kernel
from iretouch_bench.metrics.gmsd import _gmsd_torch, gmsd

pytestmark = pytest.mark.skipif(not _gmsd_kernel.AVAILABLE, reason="numba not importable")


@pytest.mark.parametrize("shape", [(2, 2), (5, 7), (8, 8), (33, 64), (121, 90), (480, 641)])
def test_kernel_equals_torch_path(shape):
    g = torch.Generator().manual_seed(sum(shape))
    x = torch.rand(2, 1, *shape, generator=g)
    y = (x * 0.8 + 0.1 + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    fast, ref = gmsd(x, y), _gmsd_torch(x, y)
    if min(shape) < 4:  # one pooled pixel: std of one value is NaN on both paths
        assert torch.isnan(fast).all() and torch.isnan(ref).all()
    else:
        torch.testing.assert_close(fast, ref, rtol=0, atol=1e-13)
        assert (fast > 0).all()


def test_exact_half_levels_round_as_torch():
    # values whose x*255 in float32 lands on .5: round half-to-even on both paths
    lv = torch.tensor([0.5, 1.5, 2.5, 127.5, 254.5], dtype=torch.float32) / 255
    x = lv.repeat(16, 4)[None, None, :16, :16].contiguous()
    y = torch.flip(x, dims=[-1]).contiguous()
    torch.testing.assert_close(gmsd(x, y), _gmsd_torch(x, y), rtol=0, atol=1e-13)


def test_identical_is_zero_and_nonfinite_refused():
    x = torch.rand(1, 1, 40, 30)
    assert gmsd(x, x.clone()).item() == 0.0
    for r, c in [(0, 0), (39, 29), (17, 5)]:
        bad = x.clone()
        bad[0, 0, r, c] = float("inf") if r else float("nan")
        with pytest.raises(ValueError, match="NaN or infinite"):
            gmsd(bad, x)
        with pytest.raises(ValueError, match="NaN or infinite"):
            gmsd(x, bad)


def test_odd_sizes_check_the_dropped_row_and_column():
    x = torch.rand(1, 1, 9, 11)
    bad = x.clone()
    bad[0, 0, 8, 3] = float("nan")  # the last row, which 2x2 pooling drops
    with pytest.raises(ValueError):
        gmsd(bad, x)


def test_thread_count_does_not_change_the_value():
    import numba

    x = torch.rand(1, 1, 300, 200)
    y = (x ** 1.3).contiguous()
    a = gmsd(x, y)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        b = gmsd(x, y)
    finally:
        numba.set_num_threads(old)
    assert a.item() == b.item()
