"""The open editors run through diffusers (InstructPix2Pix, Qwen-Image-Edit (+Plus),
FLUX.1-Kontext-dev, Step1X-Edit): resolution policies, settings, seeds, weights lookup, and
each real pipeline class built tiny in code (tests/tiny_pipelines.py), saved with
``save_pretrained``, loaded back through ``--weights`` and run for two steps on the CPU.

Offline throughout (``HF_HUB_OFFLINE=1``, an empty Hugging Face cache): nothing is downloaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tiny_pipelines
from iretouch_bench.adapters.base import RetouchRequest
from iretouch_bench.adapters.registry import create_model, list_models
from iretouch_bench.baselines import diffusers_edit
from iretouch_bench.baselines.diffusers_edit import aspect_distortion, area_multiple, long_side_multiple
from iretouch_bench.baselines.flux_kontext_dev import kontext_size, preferred_resolutions
from iretouch_bench.core.errors import BenchError, ModelError

ODD = (37, 53)       # h, w: odd sides, landscape
PORTRAIT = (53, 37)  # portrait


@pytest.fixture(scope="module", autouse=True)
def offline(tmp_path_factory):
    """No network, and a Hugging Face cache that holds nothing (so the hub route must say so)."""
    mp = pytest.MonkeyPatch()
    cache = tmp_path_factory.mktemp("hf-cache")
    mp.setenv("HF_HUB_OFFLINE", "1")
    from huggingface_hub import constants

    mp.setattr(constants, "HF_HUB_CACHE", str(cache))
    mp.setattr(constants, "HF_HUB_OFFLINE", True)
    yield cache
    mp.undo()


@pytest.fixture(scope="module")
def qwen_small_conditioning():
    """The Qwen-Image-Edit pipelines encode their conditioning image at a fixed 1 MP for the VAE
    whatever the output size (their own policy, untouched in the adapter). A tiny VAE still takes
    ~20 s per 1 MP encode on a shared CPU, so here, and only here, those module constants are
    shrunk to 64x64; the adapter's own sizes are what the tests check."""
    from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit as edit
    from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit_plus as plus

    mp = pytest.MonkeyPatch()
    real = edit.calculate_dimensions
    mp.setattr(edit, "calculate_dimensions", lambda area, ratio: real(min(area, 64 * 64), ratio))
    mp.setattr(plus, "VAE_IMAGE_SIZE", 64 * 64)
    mp.setattr(plus, "CONDITION_IMAGE_SIZE", 56 * 56)
    yield
    mp.undo()


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    """name -> a save_pretrained folder of that editor's tiny pipeline (built once per module)."""
    root = tmp_path_factory.mktemp("tiny-pipelines")
    return {name: tiny_pipelines.save_tiny(name, root / name) for name in tiny_pipelines.BUILDERS}


def _image(h, w, seed=0):
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


# ----------------------------------------------------------------------------- policies
@pytest.mark.parametrize("h, w, expect", [(1080, 1920, (320, 512)), (1920, 1080, (512, 320)), (37, 53, (384, 512)),
                                          (512, 512, (512, 512)), (3000, 4000, (384, 512))])
def test_instructpix2pix_long_side_512_multiples_of_64(h, w, expect):
    assert long_side_multiple(h, w, 512, 64) == expect
    m = create_model("instructpix2pix")
    assert m.plan(h, w) == expect


@pytest.mark.parametrize("h, w", [(1080, 1920), (1920, 1080), (37, 53), (53, 37), (1000, 1000), (2160, 3840)])
def test_qwen_about_one_megapixel_at_input_aspect(h, w):
    for name in ("qwen-image-edit", "qwen-image-edit-plus"):
        wh, ww = create_model(name).plan(h, w)
        assert wh % 32 == 0 and ww % 32 == 0
        assert 0.9 < wh * ww / 1024 ** 2 < 1.1
        assert aspect_distortion(h, w, wh, ww) < 0.03
    assert area_multiple(1080, 1920, 1024 ** 2, 32) == (768, 1376)


@pytest.mark.parametrize("h, w, expect", [(1080, 1920, (752, 1392)), (1920, 1080, (1392, 752)), (37, 53, (832, 1248)),
                                          (1000, 1000, (1024, 1024)), (3000, 2000, (1248, 832))])
def test_kontext_preferred_resolution_nearest_aspect(h, w, expect):
    assert create_model("flux-kontext-dev").plan(h, w) == expect
    assert (expect[1], expect[0]) in preferred_resolutions()


def test_kontext_scaled_area_keeps_the_multiple():
    h, w = kontext_size(37, 53, 48 * 48, 2)
    assert (h, w) == (38, 58) and h % 2 == 0 and w % 2 == 0


@pytest.mark.parametrize("h, w", [(1080, 1920), (53, 37), (4000, 3000)])
def test_step1x_1024_by_area(h, w):
    wh, ww = create_model("step1x-edit").plan(h, w)
    assert wh % 16 == 0 and ww % 16 == 0 and 0.95 < wh * ww / 1024 ** 2 < 1.05
    assert aspect_distortion(h, w, wh, ww) < 0.02


def test_a_size_a_model_cannot_take_is_one_line_with_the_reason():
    m = create_model("flux-kontext-dev")
    with pytest.raises(ModelError) as err:  # 4:1 panorama: Kontext's widest resolution is 2.33:1
        m.plan(1000, 4000)
    text = str(err.value)
    assert "\n" not in text and "4000x1000" in text and "1568x672" in text and "max_aspect_distortion" in text
    assert isinstance(err.value, BenchError)  # what the latency table turns into a blank cell with the reason
    assert create_model("flux-kontext-dev", max_aspect_distortion=1.0).plan(1000, 4000) == (672, 1568)


# ----------------------------------------------------------------------------- options, readiness, weights
def test_published_defaults_and_overrides_recorded_in_info():
    m = create_model("qwen-image-edit", steps=2, true_cfg_scale=3)
    info = m.info()
    assert info["published_defaults"] == {"steps": 50, "true_cfg_scale": 4.0, "negative_prompt": " ",
                                          "area": 1024 * 1024}
    assert info["settings"]["steps"] == 2 and info["settings"]["true_cfg_scale"] == 3.0
    assert info["hub_id"] == "Qwen/Qwen-Image-Edit" and info["dtype"] == "float32"
    assert create_model("qwen-image-edit", device="cuda").dtype_name == "bfloat16"
    assert create_model("instructpix2pix", device="cuda").dtype_name == "float16"
    assert create_model("flux-kontext-dev", device="cuda", dtype="fp32").dtype_name == "float32"
    ip2p = create_model("instructpix2pix").info()
    assert ip2p["published_defaults"]["steps"] == 100 and ip2p["published_defaults"]["guidance_scale"] == 7.5
    assert ip2p["published_defaults"]["image_guidance_scale"] == 1.5
    kontext = create_model("flux-kontext-dev").info()["published_defaults"]
    assert kontext["steps"] == 28 and kontext["guidance_scale"] == 2.5
    step1x = create_model("step1x-edit").info()["published_defaults"]
    assert step1x["steps"] == 28 and step1x["true_cfg_scale"] == 6.0 and step1x["size_level"] == 1024


@pytest.mark.parametrize("kwargs, needle", [({"stepz": 2}, "unknown option(s) stepz"), ({"dtype": "int8"}, "dtype="),
                                            ({"steps": 0}, "steps=0"), ({"steps": "many"}, "expected int")])
def test_bad_options_are_one_line(kwargs, needle):
    with pytest.raises(ModelError) as err:
        create_model("instructpix2pix", **kwargs)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_missing_model_offline_says_where_it_looked_and_how_to_get_it(offline):
    m = create_model("flux-kontext-dev")
    status = m.status()
    assert "black-forest-labs/FLUX.1-Kontext-dev" in status and str(offline) in status
    assert "hf download black-forest-labs/FLUX.1-Kontext-dev" in status and "--weights DIR" in status
    with pytest.raises(ModelError) as err:
        m.preflight()
    assert "\n" not in str(err.value) and str(offline) in str(err.value)


def test_weights_recorded_before_loading(tiny_dirs):
    info = create_model("instructpix2pix", weights=str(tiny_dirs["instructpix2pix"])).info()
    assert info["weights_resolved"]["path"] == str(Path(tiny_dirs["instructpix2pix"]).resolve())
    assert create_model("instructpix2pix").info()["weights_resolved"] is None  # not in the (empty) cache


def test_weights_folder_must_be_a_save_pretrained_folder(tmp_path):
    with pytest.raises(ModelError) as err:
        create_model("instructpix2pix", weights=str(tmp_path / "nope")).preflight()
    assert "no such folder" in str(err.value)
    with pytest.raises(ModelError) as err:
        create_model("instructpix2pix", weights=str(tmp_path)).preflight()
    assert "no model_index.json" in str(err.value) and str(tmp_path) in str(err.value)


def test_cpu_offload_needs_a_gpu_device(tiny_dirs):
    status = create_model("instructpix2pix", weights=str(tiny_dirs["instructpix2pix"]), cpu_offload=True).status()
    assert "cpu_offload needs --device cuda" in status


def test_step1x_without_the_pipeline_says_exactly_what_to_install(tiny_dirs):
    import diffusers

    m = create_model("step1x-edit", weights=str(tiny_dirs["flux-kontext-dev"]))
    if hasattr(diffusers, "Step1XEditPipeline"):  # a diffusers carrying the branch: nothing to install
        assert "Step1XEditPipeline" not in m.status()
        return
    assert "needs a diffusers with Step1XEditPipeline" in m.status()
    with pytest.raises(ModelError) as err:
        m.preflight()
    text = str(err.value)
    assert "git+https://github.com/Peyton-Chen/diffusers.git@step1xedit" in text and "\n" not in text
    rows = {r["name"]: r for r in list_models()}
    assert "Step1XEditPipeline" in rows["step1x-edit"]["status"] and rows["step1x-edit"]["paper_row"] == "Step1X-Edit"
    for name in ("instructpix2pix", "qwen-image-edit", "qwen-image-edit-plus", "flux-kontext-dev"):
        assert "needs weights" in rows[name]["status"]  # the packages are there; the weights are not


class _Step1XSignature:
    """Stands in for the branch's Step1XEditPipeline *call* (its parameters as the branch declares
    them); records what the adapter passes and returns a PIL image at the input's size, as that
    pipeline does. The real class cannot be installed here (no diffusers release has it)."""

    vae_scale_factor = 8

    def __init__(self):
        self.calls = []
        self.scheduler = object()

    def __call__(self, image=None, prompt=None, negative_prompt=None, true_cfg_scale=6.0, height=None, width=None,
                 size_level=1024, num_inference_steps=28, guidance_scale=6.0, generator=None, output_type="pil",
                 enable_thinking_mode=False, enable_reflection_mode=True):
        from types import SimpleNamespace

        self.calls.append(dict(locals()))
        return SimpleNamespace(images=[image.copy()])


def test_step1x_call_uses_published_settings_and_pil_output():
    m = create_model("step1x-edit")
    m.pipe, m._loaded = _Step1XSignature(), True
    res = m.run(RetouchRequest(image=_image(*PORTRAIT), instruction="warmer", seed=3))
    call = m.pipe.calls[0]
    assert call["num_inference_steps"] == 28 and call["true_cfg_scale"] == 6.0 and call["size_level"] == 1024
    assert call["output_type"] == "pil" and call["enable_reflection_mode"] is False
    assert call["image"].size[0] * call["image"].size[1] == pytest.approx(1024 ** 2, rel=0.05)
    assert res.image.shape == (*PORTRAIT, 3) and res.meta["working_size"] == list(m.plan(*PORTRAIT))


# ----------------------------------------------------------------------------- tiny real pipelines
#: model args that keep each tiny pipeline's work small on a CPU (steps=2, small working sizes)
SMALL = {
    "instructpix2pix": {"steps": 2, "long_side": 64, "multiple": 16},
    "qwen-image-edit": {"steps": 2, "area": 128 * 128},
    "qwen-image-edit-plus": {"steps": 2, "area": 128 * 128},
    "flux-kontext-dev": {"steps": 2, "max_area": 48 * 48},
}


def _spy_calls(model):
    """Record the kwargs of every pipeline call (the real pipeline still runs)."""
    calls = []
    pipe_call = model.pipe.__call__

    class Spy:
        def __getattr__(self, name):
            return getattr(model.pipe_real, name)

        def __call__(self, **kwargs):
            calls.append(kwargs)
            return pipe_call(**kwargs)

    model.pipe_real = model.pipe
    model.pipe = Spy()
    return calls


@pytest.mark.parametrize("name", list(SMALL))
def test_tiny_pipeline_through_weights_odd_and_portrait(name, tiny_dirs, qwen_small_conditioning):
    m = create_model(name, weights=str(tiny_dirs[name]), **SMALL[name])
    m.preflight()
    m.ensure_loaded()
    assert type(m.pipe).__name__ == m.PIPELINE
    calls = _spy_calls(m)
    for h, w in (ODD, PORTRAIT):
        res = m.run(RetouchRequest(image=_image(h, w), instruction="make it warmer", seed=7))
        assert res.status == "ok" and res.image.shape == (h, w, 3) and res.image.dtype == np.float32
        assert 0.0 <= res.image.min() and res.image.max() <= 1.0
        meta = res.meta
        assert meta["input_size"] == [h, w] and meta["working_size"] == list(m.plan(h, w))
        assert meta["pipeline_output_size"] == meta["working_size"]  # the pipeline honoured the size asked
        assert meta["steps"] == 2 and meta["seed"] == 7 and meta["dtype"] == "float32"
        assert "resized back" in meta["resize_policy"]
        json.dumps(meta)  # JSON values only
    assert all(c["num_inference_steps"] == 2 for c in calls)
    if name.startswith("qwen"):
        assert all(c["true_cfg_scale"] == 4.0 and c["negative_prompt"] == " " for c in calls)
    info = m.info()
    assert info["weights_resolved"]["source"] == "folder" and len(info["weights_resolved"]["model_index_sha256"]) == 64


def test_kontext_never_leaves_the_size_to_the_pipeline(tiny_dirs):
    """Without height/width FluxKontextPipeline makes a fixed square whatever the input; the adapter
    always passes the working size, so landscape and portrait inputs come back in their own shape."""
    m = create_model("flux-kontext-dev", weights=str(tiny_dirs["flux-kontext-dev"]), **SMALL["flux-kontext-dev"])
    m.ensure_loaded()
    # the pipeline left to itself (no height/width): a square of max_area whatever the input's shape
    # (1024x1024 with the real model; auto-resize off only to keep the tiny model's conditioning small)
    default = m.pipe(image=tiny_pipelines_image(*ODD), prompt="x", num_inference_steps=1, output_type="np",
                     max_area=32 * 32, _auto_resize=False).images[0]
    assert default.shape[:2] == (32, 32)
    calls = _spy_calls(m)
    for h, w in (ODD, PORTRAIT):
        res = m.run(RetouchRequest(image=_image(h, w), instruction="x", seed=1))
        call = calls[-1]
        assert (call["height"], call["width"]) == tuple(res.meta["working_size"]) and call["_auto_resize"] is False
        assert call["guidance_scale"] == 2.5
        assert res.meta["pipeline_output_size"] != list(default.shape[:2]) and res.image.shape[:2] == (h, w)


def test_latency_records_a_size_the_model_cannot_take_as_null_with_the_reason(tiny_dirs):
    from iretouch_bench.runner.latency import measure_latency

    m = create_model("flux-kontext-dev", weights=str(tiny_dirs["flux-kontext-dev"]), steps=1, max_area=32 * 32)
    result = measure_latency(m, ["400x100", "60x40"], repeats=1, warmup=0)
    wide, ok = result["records"]
    assert wide["median_s"] is None and "cannot take a 400x100 input" in wide["error"]
    assert ok["error"] is None and ok["median_s"] > 0 and (ok["output_width"], ok["output_height"]) == (60, 40)
    assert result["model_info"]["published_defaults"]["steps"] == 28


def tiny_pipelines_image(h, w):
    from PIL import Image

    return Image.fromarray((_image(h, w) * 255).astype(np.uint8))


def test_seed_makes_the_output_and_another_seed_changes_it(tiny_dirs):
    m = create_model("instructpix2pix", weights=str(tiny_dirs["instructpix2pix"]), **SMALL["instructpix2pix"])
    img = _image(*ODD)
    a = m.run(RetouchRequest(image=img, instruction="x", seed=11)).image
    b = m.run(RetouchRequest(image=img, instruction="x", seed=11)).image
    c = m.run(RetouchRequest(image=img, instruction="x", seed=12)).image
    assert np.array_equal(a, b) and not np.allclose(a, c)
    # the simple entry point (latency, sweeps) works too, at the input's size
    assert m.retouch(img, "x").shape == img.shape


def test_end_to_end_run_on_the_embedded_set(tiny_dirs, tmp_path, offline):
    out = tmp_path / "run"
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(offline)}
    import os

    proc = subprocess.run([sys.executable, "-m", "iretouch_bench.cli", "run", "--model", "instructpix2pix",
                           "--weights", str(tiny_dirs["instructpix2pix"]), "--model-args", "steps=1", "--limit", "2",
                           "--skip", "dists", "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=900, env={**os.environ, **env})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    from iretouch_bench.core.images import read_image

    records = [json.loads(line) for f in sorted(out.glob("samples*.jsonl")) for line in f.read_text().splitlines()]
    assert len(records) == 2 and all(r["status"] == "ok" for r in records)
    for r in records:
        meta = r["model_meta"]
        assert meta["steps"] == 1 and max(meta["working_size"]) == 512 and meta["working_size"][0] % 64 == 0
        outputs = list((out / "outputs").glob(f"{r['id']}*"))
        assert outputs, f"no output for {r['id']}"
        assert read_image(outputs[0]).shape[:2] == tuple(meta["input_size"])
    run = json.loads((out / "run.json").read_text())
    model = run["model"]
    assert model["published_defaults"]["steps"] == 100 and model["settings"]["steps"] == 1


# ----------------------------------------------------------------------------- CUDA (device machines only)
@pytest.mark.gpu
@pytest.mark.parametrize("name", list(SMALL))
def test_tiny_pipeline_on_cuda_half_precision(name, tiny_dirs, qwen_small_conditioning):
    """The CUDA route: dtype auto (fp16 for InstructPix2Pix, bf16 otherwise), the CPU generator
    feeding a GPU pipeline (same seed, same output), and model CPU offload where accelerate is."""
    import importlib.util

    m = create_model(name, device="cuda", weights=str(tiny_dirs[name]), **SMALL[name])
    m.ensure_loaded()
    assert str(next(m.pipe.components[c] for c in ("unet", "transformer") if c in m.pipe.components).dtype) == \
        f"torch.{m.dtype_name}"
    img = _image(*PORTRAIT)
    a = m.run(RetouchRequest(image=img, instruction="x", seed=5))
    b = m.run(RetouchRequest(image=img, instruction="x", seed=5))
    assert a.image.shape == (*PORTRAIT, 3) and np.array_equal(a.image, b.image)
    assert a.meta["dtype"] in ("float16", "bfloat16") and np.isfinite(a.image).all()
    if importlib.util.find_spec("accelerate") is not None:
        off = create_model(name, device="cuda", weights=str(tiny_dirs[name]), cpu_offload=True, **SMALL[name])
        assert off.run(RetouchRequest(image=img, instruction="x", seed=5)).image.shape == (*PORTRAIT, 3)
