"""The bilateral-grid engine: fused paths against the grid_sample reference (DESIGN.md convention)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from iretouch_bench.models import guidance as gm
from iretouch_bench.models import slicing as sl
from iretouch_bench.models.kernels import numba_cpu
from iretouch_bench.models.kernels import reference as rk
from iretouch_bench.models.lowres import area_resize_hwc, area_resize_torch

needs_numba = pytest.mark.skipif(numba_cpu.nb is None, reason="numba not installed")

# (B, D, Hg, Wg, H, W): odd sizes, degenerate grid axes, images smaller than the grid.
SHAPES = [(2, 8, 16, 16, 37, 53), (1, 1, 1, 1, 5, 7), (1, 3, 5, 2, 1, 1), (3, 4, 3, 7, 64, 9),
          (1, 8, 16, 16, 130, 97), (1, 2, 9, 11, 4, 300)]


def _rand(shape, seed):
    B, D, Hg, Wg, H, W = shape
    g = torch.Generator().manual_seed(seed)
    grid = torch.randn(B, 12, D, Hg, Wg, generator=g)
    guide = torch.rand(B, H, W, generator=g) * 1.4 - 0.2  # also outside [0, 1]: border clamp
    image = torch.rand(B, 3, H, W, generator=g)
    return grid, guide, image


def test_reference_matches_the_design_definition_by_hand():
    # One pixel, grid with a known linear ramp: the reference must equal grid_sample's definition
    # written out (HDRNet layout, pixel centres, align_corners=False).
    B, D, Hg, Wg, H, W = 1, 4, 3, 5, 6, 10
    grid, guide, image = _rand((B, D, Hg, Wg, H, W), 0)
    out = rk.slice_apply_reference(grid, guide, image)
    y, x = 4, 7
    g = torch.tensor([(x + 0.5) / W * 2 - 1, (y + 0.5) / H * 2 - 1, float(guide[0, y, x]) * 2 - 1])
    A = F.grid_sample(grid, g.view(1, 1, 1, 1, 3), mode="bilinear", padding_mode="border",
                      align_corners=False).view(3, 4)
    expect = A[:, :3] @ image[0, :, y, x] + A[:, 3]
    assert torch.allclose(out[0, :, y, x], expect, atol=1e-6)


def test_identity_grid_returns_input():
    grid = rk.identity_grid(2, 4, 3, 3)
    _, guide, image = _rand((2, 4, 3, 3, 11, 13), 1)
    assert torch.allclose(rk.slice_apply_reference(grid, guide, image), image, atol=1e-6)


@needs_numba
@pytest.mark.parametrize("shape", SHAPES)
def test_numba_matches_reference(shape):
    grid, guide, image = _rand(shape, 2)
    for s in (1.0, 0.6, 1.7):
        ref = rk.slice_apply_reference(grid, guide, image, s)
        fast = sl.slice_apply(grid, guide, image, s, backend="numba")
        assert fast.shape == ref.shape and fast.dtype == torch.float32
        assert (fast - ref).abs().max().item() <= 1e-5


@needs_numba
def test_numba_strength_map_mask_and_per_batch_strength():
    grid, guide, image = _rand((2, 8, 16, 16, 33, 47), 3)
    mask = torch.rand(2, 33, 47)
    strength = torch.tensor([0.5, 1.3])
    ref = rk.slice_apply_reference(grid, guide, image, strength, mask=mask)
    fast = sl.slice_apply(grid, guide, image, strength, mask=mask, backend="numba")
    assert (fast - ref).abs().max().item() <= 1e-5
    smap = torch.rand(2, 33, 47) * 2
    ref = rk.slice_apply_reference(grid, guide, image, smap)
    fast = sl.slice_apply(grid, guide, image, smap, backend="numba")
    assert (fast - ref).abs().max().item() <= 1e-5


@needs_numba
@pytest.mark.parametrize("shape", SHAPES[:4])
def test_hwc_path_with_explicit_guide_and_fused_guidance(shape):
    grid, guide, image = _rand(shape, 4)
    B = shape[0]
    rng = np.random.default_rng(0)
    K = 9
    knots = np.sort(rng.random((3, K)), axis=1).astype(np.float32)
    mix = np.array([0.3, 0.5, 0.25], np.float32)
    bias = np.array([-0.05], np.float32)
    for b in range(B):
        img = image[b].permute(1, 2, 0).contiguous().numpy()
        ref = rk.slice_apply_reference(grid[b:b + 1], guide[b:b + 1], image[b:b + 1], 0.8)[0].permute(1, 2, 0).numpy()
        got = sl.slice_apply_hwc(grid[b], img, guide=guide[b].numpy(), strength=0.8)
        assert np.abs(got - ref).max() <= 1e-5
        # fused guidance == reference sliced at the torch-evaluated guidance map
        z = gm.evaluate_guidance(image[b:b + 1], torch.from_numpy(knots), torch.from_numpy(mix), torch.from_numpy(bias))
        ref2 = rk.slice_apply_reference(grid[b:b + 1], z, image[b:b + 1], 0.8)[0].permute(1, 2, 0).numpy()
        got2 = sl.slice_apply_hwc(grid[b], img, guidance=(knots, mix, bias), strength=0.8)
        assert np.abs(got2 - ref2).max() <= 1e-5
        got3 = sl.slice_apply_hwc(grid[b], img, guidance=(knots, mix, bias), strength=0.8, clamp=True)
        assert np.array_equal(got3, np.clip(got2, 0, 1))


@needs_numba
def test_strength_zero_is_exact_identity_and_strength_is_linear():
    grid, guide, image = _rand((2, 8, 16, 16, 29, 31), 5)
    for backend in ("auto", "numba", "reference"):
        out0 = sl.slice_apply(grid, guide, image, 0.0, backend=backend)
        assert torch.equal(out0, image), backend
    img = image[0].permute(1, 2, 0).contiguous().numpy()
    assert np.array_equal(sl.slice_apply_hwc(grid[0], img, guide=guide[0].numpy(), strength=0.0), img)
    # s=0 through the kernel (mask path): still exact
    out_m = sl.slice_apply(grid, guide, image, 0.0, mask=torch.rand(2, 29, 31), backend="numba")
    assert torch.equal(out_m, image)
    one = sl.slice_apply(grid, guide, image, 1.0, backend="numba")
    amp = sl.slice_apply(grid, guide, image, 2.0, backend="numba")
    assert torch.allclose(amp - image, 2.0 * (one - image), atol=1e-5)
    # strength in image space == strength applied to the grid (linearity of slicing)
    via_grid = rk.slice_apply_reference(rk.apply_strength_to_grid(grid, 0.4), guide, image)
    assert torch.allclose(sl.slice_apply(grid, guide, image, 0.4, backend="numba"), via_grid, atol=1e-5)


def test_gradients_flow_to_grid_guide_and_guidance_params():
    grid, guide, image = _rand((1, 4, 3, 3, 9, 11), 6)
    grid = grid.double().requires_grad_(True)
    guide = guide.clamp(0.05, 0.95).double().requires_grad_(True)
    image = image.double()
    assert torch.autograd.gradcheck(lambda g, z: sl.slice_apply(g, z, image, 0.7), (grid, guide), eps=1e-6, atol=1e-5)
    # through the learned guidance map
    gmap = gm.GuidanceMap(n_knots=8)
    g2, _, img2 = _rand((1, 8, 4, 4, 16, 16), 7)
    g2.requires_grad_(True)
    out = sl.slice_apply(g2, gmap(img2), img2)
    out.square().mean().backward()
    assert g2.grad is not None and g2.grad.abs().sum() > 0
    for p in (gmap.knots, gmap.mix, gmap.bias):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_auto_uses_reference_when_grad_is_needed_and_fused_otherwise(monkeypatch):
    grid, guide, image = _rand((1, 4, 3, 3, 9, 11), 8)
    grid.requires_grad_(True)
    assert sl.slice_apply(grid, guide, image).requires_grad
    with torch.no_grad():
        assert not sl.slice_apply(grid, guide, image).requires_grad


def test_chunked_reference_equals_reference():
    grid, guide, image = _rand((2, 8, 16, 16, 37, 53), 9)
    mask = torch.rand(2, 37, 53)
    ref = rk.slice_apply_reference(grid, guide, image, 0.9, mask=mask)
    assert torch.equal(rk.slice_apply_reference_chunked(grid, guide, image, 0.9, mask, rows=7), ref)


@needs_numba
def test_regional_blending():
    grid_a, guide, image = _rand((1, 8, 16, 16, 40, 50), 10)
    grid_b = torch.randn_like(grid_a)
    mask = torch.zeros(1, 40, 50)
    mask[:, 10:30, 15:40] = 1.0
    mask = F.avg_pool2d(mask.unsqueeze(1), 5, 1, 2).squeeze(1)  # soft edge
    # two grids: per-pixel coefficient blend computed from reference coefficients
    Aa = rk.slice_coeffs_reference(grid_a, guide).view(1, 3, 4, 40, 50)
    Ab = rk.slice_coeffs_reference(grid_b, guide).view(1, 3, 4, 40, 50)
    m = mask.view(1, 1, 1, 40, 50)
    A = m * Aa + (1 - m) * Ab
    expect = (A[:, :, :3] * image.unsqueeze(1)).sum(2) + A[:, :, 3]
    got = sl.slice_apply_regional(grid_a, grid_b, guide, image, mask)
    assert (got - expect).abs().max().item() <= 1e-5
    # grid + identity: outside the mask the input is untouched exactly
    local = sl.slice_apply_regional(grid_a, None, guide, image, mask)
    outside = mask == 0
    assert torch.equal(local[:, :, outside[0]], image[:, :, outside[0]])
    # grid-space blend: full mask gives grid_a, empty mask gives the identity
    assert torch.allclose(rk.blend_grids(grid_a, None, torch.ones(1, 16, 16)), grid_a, atol=1e-6)
    assert torch.allclose(rk.blend_grids(grid_a, None, torch.zeros(1, 40, 50)), rk.identity_grid(1, 8, 16, 16))


def test_guidance_initialised_to_luma_and_numpy_twin_agrees():
    gmap = gm.GuidanceMap()
    img = torch.rand(2, 3, 17, 19)
    luma = (torch.tensor(gm.LUMA_709).view(1, 3, 1, 1) * img).sum(1)
    assert torch.allclose(gmap(img), luma, atol=1e-6)
    rng = np.random.default_rng(1)
    knots = np.sort(rng.random((3, 7)), axis=1).astype(np.float32)
    mix, bias = np.array([0.2, 0.5, 0.3], np.float32), np.array([0.1], np.float32)
    hwc = rng.random((13, 21, 3), dtype=np.float32)
    z_np = gm.evaluate_guidance_numpy(hwc, knots, mix, bias)
    pwl = sum(mix[c] * np.interp(hwc[..., c], np.linspace(0, 1, 7), knots[c]) for c in range(3))
    assert np.abs(z_np - np.clip(pwl + bias[0], 0, 1)).max() < 1e-5
    z_t = gm.evaluate_guidance(torch.from_numpy(hwc).permute(2, 0, 1)[None], torch.from_numpy(knots),
                               torch.from_numpy(mix), torch.from_numpy(bias))[0].numpy()
    assert np.abs(z_np - z_t).max() < 1e-5


def test_area_resize_matches_adaptive_avg_pool():
    rng = np.random.default_rng(2)
    for H, W, oh, ow in [(37, 53, 8, 8), (100, 60, 10, 12), (5, 7, 8, 8)]:
        img = rng.random((H, W, 3), dtype=np.float32)
        ref = area_resize_torch(torch.from_numpy(img).permute(2, 0, 1)[None], (oh, ow))[0].permute(1, 2, 0).numpy()
        assert np.abs(area_resize_hwc(img, oh, ow) - ref).max() < 1e-5


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        sl.slice_apply(torch.zeros(1, 11, 2, 2, 2), torch.zeros(1, 4, 4), torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError):
        sl.slice_apply(torch.zeros(1, 12, 2, 2, 2), torch.zeros(1, 4, 5), torch.zeros(1, 3, 4, 4))


def _fallback_warnings(fn):
    """Run ``fn`` recording every warning; return (result, [messages of slice_apply fallback warnings])."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fn()
    return res, [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)
                 and "grid_sample reference" in str(w.message)]


@needs_numba
def test_without_numba_the_reference_runs_says_so_once_and_is_reported(monkeypatch):
    grid, guide, image = _rand((1, 8, 16, 16, 37, 53), 11)
    img = image[0].permute(1, 2, 0).contiguous().numpy()
    curve = (np.sort(np.random.default_rng(3).random((3, 6)), axis=1).astype(np.float32),
             np.array([0.3, 0.5, 0.2], np.float32), np.array([0.02], np.float32))
    mask = np.random.default_rng(4).random((37, 53), dtype=np.float32)
    fast = sl.slice_apply_hwc(grid[0], img, guidance=curve, strength=0.7, mask=mask, clamp=True)
    assert sl.backend_for("cpu") == ("numba", None)

    monkeypatch.setattr(numba_cpu, "UNAVAILABLE_REASON", "numba unavailable (simulated)")
    monkeypatch.setattr(sl, "_warned", set())
    backend, why = sl.backend_for("cpu")
    assert backend == "reference" and "simulated" in why
    slow, said = _fallback_warnings(lambda: sl.slice_apply_hwc(grid[0], img, guidance=curve, strength=0.7, mask=mask,
                                                               clamp=True))
    assert len(said) == 1 and "simulated" in said[0]
    assert np.abs(slow - fast).max() <= 1e-5  # same numbers, slower path
    _, said_again = _fallback_warnings(lambda: sl.slice_apply_hwc(grid[0], img, guide=guide[0].numpy()))
    assert said_again == []  # once per process, not per image
    _, said_torch = _fallback_warnings(lambda: sl.slice_apply(grid, guide, image, 0.5))
    assert said_torch == []  # same reason: already said
    with pytest.raises(RuntimeError, match="simulated"):
        sl.slice_apply(grid, guide, image, 0.5, backend="numba")  # asked for explicitly: an error


def test_numba_import_failure_falls_back_with_a_warning():
    """numba really missing (its import fails in a fresh interpreter), not only flagged off."""
    code = textwrap.dedent("""
        import sys, warnings
        sys.modules["numba"] = None  # makes `import numba` raise ImportError
        import numpy as np, torch
        from iretouch_bench.models import slicing
        from iretouch_bench.models.kernels import numba_cpu, reference
        from iretouch_bench.models.lowres import area_resize_hwc
        assert numba_cpu.nb is None, numba_cpu.nb
        print("BACKEND", slicing.backend_for("cpu"))
        grid = torch.randn(1, 12, 4, 5, 6); guide = torch.rand(1, 9, 11); image = torch.rand(1, 3, 9, 11)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = slicing.slice_apply_hwc(grid[0], image[0].permute(1, 2, 0).contiguous().numpy(),
                                          guide=guide[0].numpy(), strength=0.8)
        expect = reference.slice_apply_reference(grid, guide, image, 0.8)[0].permute(1, 2, 0).numpy()
        print("WARNINGS", sum("grid_sample reference" in str(w.message) for w in caught))
        print("ERR", float(np.abs(out - expect).max()))
        print("AREA", area_resize_hwc(np.random.rand(20, 30, 3).astype(np.float32), 4, 4).shape)
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in res.stdout.splitlines() if " " in line)
    assert lines["BACKEND"].startswith("('reference', 'fused CPU kernel unavailable: numba unavailable (")
    assert lines["WARNINGS"] == "1"
    assert float(lines["ERR"]) <= 1e-5
    assert lines["AREA"] == "(4, 4, 3)"


def test_triton_kernel_under_interpreter():
    """The CUDA kernel's logic, run on CPU by Triton's interpreter (no GPU here)."""
    pytest.importorskip("triton")
    code = textwrap.dedent("""
        import torch
        from iretouch_bench.models.kernels import reference, triton_cuda
        torch.manual_seed(0)
        worst = 0.0
        for (B, D, Hg, Wg, H, W) in [(2, 8, 16, 16, 37, 53), (1, 1, 1, 1, 5, 7), (1, 3, 5, 2, 3, 300)]:
            grid = torch.randn(B, 12, D, Hg, Wg); guide = torch.rand(B, H, W) * 1.2 - 0.1
            image = torch.rand(B, 3, H, W); mask = torch.rand(B, H, W)
            ref = reference.slice_apply_reference(grid, guide, image, 0.7, mask=mask)
            out = triton_cuda.slice_apply_triton(grid, guide, image, 0.7, mask)
            worst = max(worst, (ref - out).abs().max().item())
            ref = reference.slice_apply_reference(grid, guide, image, 1.3)
            out = triton_cuda.slice_apply_triton(grid, guide, image, 1.3, None)
            worst = max(worst, (ref - out).abs().max().item())
        print("WORST", worst)
    """)
    env = dict(os.environ, TRITON_INTERPRET="1")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=240)
    if res.returncode != 0 and "interpret" in res.stderr.lower() and "not supported" in res.stderr.lower():
        pytest.skip(f"triton interpreter unavailable: {res.stderr[-300:]}")
    assert res.returncode == 0, res.stderr[-2000:]
    worst = float(res.stdout.split("WORST")[-1])
    assert worst <= 1e-5
