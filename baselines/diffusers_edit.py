"""What the open editors run through diffusers share: weights, device, dtype, seeds, sizes.

Not a model itself; :mod:`.instructpix2pix`, :mod:`.qwen_image_edit`, :mod:`.flux_kontext_dev`
and :mod:`.step1x_edit` subclass :class:`DiffusersEditAdapter` and give

* ``PIPELINE`` (the diffusers class name), ``HUB_ID`` (the published weights),
* ``DEFAULTS``: the published settings (steps and guidance values, the size target), each of
  which is also a ``--model-args`` option of the same name,
* :meth:`~DiffusersEditAdapter.working_size`: the model's resolution policy,
* :meth:`~DiffusersEditAdapter.call_kwargs`: the pipeline call's model-specific arguments.

One :meth:`~DiffusersEditAdapter.run`
-------------------------------------
1. the input ``[H, W, 3]`` is brought to the working size the model's policy gives for its
   aspect ratio, with the suite's one resizer (:func:`iretouch_bench.core.resize.resize`,
   bicubic, antialiased when shrinking), so every model sees an input resized the same way;
   a size the policy cannot serve faithfully (an aspect ratio the working sizes distort by more
   than ``max_aspect_distortion``) is a :class:`ModelError` with the reason, which the latency
   table records as a blank cell;
2. the pipeline runs with explicit ``height``/``width`` (never its own default size), the
   published settings (or the options that override them) and a ``torch.Generator`` on the CPU
   seeded with the request's seed (the runner derives one per sample; CPU generators give the
   same noise on every device, so a seed means the same thing on CPU and GPU);
3. the output is brought back to ``[H, W]`` with :func:`~iretouch_bench.core.resize.match_size`
   (the rule the README states), and ``meta`` records ``input_size``, ``working_size``,
   ``pipeline_output_size``, ``resize_policy``, ``steps``, ``guidance``, ``seed``, ``dtype``
   and the timing. A safety checker's black image (``nsfw_content_detected``) is a refusal.

Weights
-------
``--weights DIR``: a folder in diffusers' ``save_pretrained`` layout (``model_index.json`` and
one folder per component, tokenizers and scheduler included). Without it, the hub id (option
``model=``, default ``HUB_ID``) is looked up in the local Hugging Face cache only
(``local_files_only`` semantics, as with ``HF_HUB_OFFLINE=1``): the suite never downloads a
model. A missing model is one line saying where the suite looked and how to get it.

Options (``--model-args``) every editor takes
---------------------------------------------
``steps`` and the keys of ``DEFAULTS`` (published settings), ``model`` (hub id), ``revision``,
``dtype`` (``auto`` | ``bf16`` | ``fp16`` | ``fp32``; auto: ``CUDA_DTYPE`` on CUDA, fp32 on
CPU), ``cpu_offload`` (diffusers' model CPU offload; needs accelerate and a GPU),
``attention_slicing``, ``device_map`` (passed to ``from_pretrained``, e.g. ``balanced`` to
spread the components over several GPUs; needs accelerate), ``max_aspect_distortion``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import math
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from iretouch_bench.adapters.base import RetouchModel, RetouchRequest, RetouchResult
from iretouch_bench.core.errors import ModelError, one_line
from iretouch_bench.core.resize import OUTPUT_RESIZE_RULE, match_size, resize

#: options every diffusers editor takes (the subclass's DEFAULTS keys come on top)
COMMON_OPTIONS: dict[str, Any] = {
    "model": None, "revision": None, "dtype": "auto", "cpu_offload": False, "attention_slicing": False,
    "device_map": None, "max_aspect_distortion": 0.25,
}
_DTYPES = {"bf16": "bfloat16", "bfloat16": "bfloat16", "fp16": "float16", "float16": "float16", "half": "float16",
           "fp32": "float32", "float32": "float32", "float": "float32"}
#: the filter the input is brought to the working size with (the output comes back by match_size)
INPUT_RESIZE_FILTER = "bicubic"


# ---------------------------------------------------------------------------- resolution policies
def long_side_multiple(height: int, width: int, long_side: int, multiple: int) -> tuple[int, int]:
    """``(h, w)`` for a long side of about ``long_side`` in multiples of ``multiple``: InstructPix2Pix's
    reference rule (its ``edit_cli.py``): the short side scaled by ``long_side / long`` and rounded
    *up* to a multiple, the long side scaled by the same factor and rounded *down*. The reference
    then centre-crops to that shape; the suite stretches instead (the edit must cover the whole
    input) and the output is stretched back. Integer arithmetic, so no side lands one short."""
    short, other = (height, width) if height <= width else (width, height)
    s = max(multiple, -(-short * long_side // (max(height, width) * multiple)) * multiple)
    o = max(multiple, (other * s // short) // multiple * multiple)
    return (s, o) if height <= width else (o, s)


def area_multiple(height: int, width: int, area: int, multiple: int) -> tuple[int, int]:
    """``(h, w)`` of about ``area`` pixels at the input's aspect ratio, each side rounded to the
    nearest multiple of ``multiple`` (at least one). Qwen-Image-Edit (1024², 32) and Step1X-Edit
    (1024², 16) size their work this way."""
    ratio = width / height
    w = math.sqrt(area * ratio)
    h = w / ratio
    return max(multiple, round(h / multiple) * multiple), max(multiple, round(w / multiple) * multiple)


def aspect_distortion(height: int, width: int, work_h: int, work_w: int) -> float:
    """How much the working size stretches the input's aspect ratio: ``max(r, 1/r) - 1`` with
    ``r`` the ratio of the two aspect ratios (0 = none, 0.25 = one axis 25 % longer)."""
    r = (work_w / work_h) / (width / height)
    return max(r, 1.0 / r) - 1.0


def describe(size: tuple[int, int]) -> str:
    """``(h, w)`` -> ``"WxH"`` (how sizes read in messages)."""
    return f"{size[1]}x{size[0]}"


# ---------------------------------------------------------------------------- weights
def hub_cache_dir() -> str:
    """The Hugging Face hub cache this process reads (``$HF_HUB_CACHE`` / ``$HF_HOME`` honoured)."""
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def cached_snapshot(repo_id: str, revision: str | None = None) -> Path | None:
    """The local snapshot folder of ``repo_id`` in the Hugging Face cache, or None (never the network)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "model_index.json", revision=revision)
    return Path(found).parent if isinstance(found, str) else None


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def diffusers_exports(name: str) -> bool:
    """Whether the installed diffusers exports ``name`` (read from its ``__init__.py``, without
    importing diffusers and torch, so ``models list`` stays fast)."""
    spec = importlib.util.find_spec("diffusers")
    if spec is None or not spec.origin:
        return False
    try:
        return f'"{name}"' in Path(spec.origin).read_text(encoding="utf-8")
    except OSError:
        return False


class DiffusersEditAdapter(RetouchModel):
    """Base of the open editors run through diffusers (see the module docstring)."""

    kind = "local"
    requires = ("package:diffusers", "package:transformers")
    supports_strength = False
    supports_mask = False

    #: the diffusers pipeline class name
    PIPELINE: ClassVar[str] = ""
    #: the published weights on the Hugging Face hub (option ``model=`` overrides)
    HUB_ID: ClassVar[str] = ""
    #: published settings: ``steps`` and the guidance values and size target; each is an option
    DEFAULTS: ClassVar[dict[str, Any]] = {}
    #: which of ``DEFAULTS`` are guidance values (recorded in ``meta.guidance``)
    GUIDANCE_KEYS: ClassVar[tuple[str, ...]] = ()
    #: where the published settings come from (recorded in info())
    SETTINGS_SOURCE: ClassVar[str] = ""
    #: the resolution policy in words (recorded in info() and each result's meta)
    RESIZE_POLICY: ClassVar[str] = ""
    #: dtype on CUDA when ``dtype=auto``
    CUDA_DTYPE: ClassVar[str] = "bfloat16"
    #: how to get a diffusers that has ``PIPELINE`` (for pipelines no diffusers release has)
    INSTALL_HINT: ClassVar[str] = ""
    #: the pipeline's size multiple before the pipeline is loaded (``vae_scale_factor * 2`` after)
    DEFAULT_MULTIPLE: ClassVar[int] = 16
    #: ``output_type`` asked of the pipeline (``"np"``: float [0, 1]; ``"pil"``: 8-bit)
    OUTPUT_TYPE: ClassVar[str] = "np"

    def __init__(self, device: str = "cpu", weights: str | None = None, **options: Any) -> None:
        super().__init__(device=device, weights=weights, **options)
        known = {"steps", *COMMON_OPTIONS, *self.DEFAULTS}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ModelError(f"model '{self.name}': unknown option(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
        self.settings: dict[str, Any] = {}
        for key, default in self.DEFAULTS.items():
            self.settings[key] = self._typed(key, options.get(key, default), default)
        if int(self.settings.get("steps", 1)) < 1:
            raise ModelError(f"model '{self.name}': option steps={self.settings['steps']!r} must be >= 1")
        self.model_id = str(options.get("model") or self.HUB_ID)
        self.revision = options.get("revision")
        self.dtype_name = self._dtype_name(options.get("dtype", "auto"))
        self.cpu_offload = bool(options.get("cpu_offload", False))
        self.attention_slicing = bool(options.get("attention_slicing", False))
        self.device_map = options.get("device_map")
        self.max_aspect_distortion = float(options.get("max_aspect_distortion", COMMON_OPTIONS["max_aspect_distortion"]))
        self.pipe: Any = None
        self.multiple = self.DEFAULT_MULTIPLE
        self._weights_info: dict[str, Any] | None = None

    # ------------------------------------------------------------------ options
    def _typed(self, key: str, value: Any, default: Any) -> Any:
        """``value`` as the type of ``default`` (``--model-args`` parses ``4`` as int, ``4.0`` as float)."""
        if default is None or value is None:
            return value
        try:
            if isinstance(default, bool):
                return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
            return type(default)(value)
        except (TypeError, ValueError) as err:
            raise ModelError(f"model '{self.name}': option {key}={value!r}: expected {type(default).__name__}") from err

    def _dtype_name(self, value: Any) -> str:
        text = str(value).lower()
        if text == "auto":
            return self.CUDA_DTYPE if str(self.device).startswith("cuda") else "float32"
        if text not in _DTYPES:
            raise ModelError(f"model '{self.name}': option dtype={value!r}: expected auto, bf16, fp16 or fp32")
        return _DTYPES[text]

    # ------------------------------------------------------------------ policy (subclasses)
    def working_size(self, height: int, width: int) -> tuple[int, int]:
        """``(h, w)`` the model works at for an ``height x width`` input (the resolution policy)."""
        raise NotImplementedError

    def call_kwargs(self, prompt: str, image: Any, size: tuple[int, int]) -> dict[str, Any]:
        """The pipeline call's model-specific arguments (guidance, negative prompt, sizes); the base
        adds ``image``, ``prompt``, ``num_inference_steps``, ``generator`` and ``output_type``."""
        h, w = size
        return {"height": h, "width": w}

    def guidance(self) -> dict[str, Any]:
        return {k: self.settings[k] for k in self.GUIDANCE_KEYS if k in self.settings}

    def plan(self, height: int, width: int) -> tuple[int, int]:
        """:meth:`working_size`, refused with one line when it would distort the input's shape."""
        size = self.working_size(height, width)
        dist = aspect_distortion(height, width, *size)
        if dist > self.max_aspect_distortion:
            raise ModelError(
                f"model '{self.name}' cannot take a {width}x{height} input: its resolution policy gives "
                f"{describe(size)}, which stretches the aspect ratio by {dist:.0%} (limit "
                f"{self.max_aspect_distortion:.0%}, option max_aspect_distortion)")
        return size

    # ------------------------------------------------------------------ readiness
    def pipeline_available(self) -> bool:
        return diffusers_exports(self.PIPELINE)

    def weights_problem(self) -> str | None:
        """One line saying why the weights cannot be found here (None when they can). Cheap: files only."""
        if self.weights:
            folder = Path(self.weights).expanduser()
            if not folder.is_dir():
                return f"--weights {self.weights}: no such folder (a diffusers save_pretrained folder)"
            if not (folder / "model_index.json").is_file():
                return (f"--weights {self.weights}: not a diffusers pipeline folder (no model_index.json; "
                        "save one with pipeline.save_pretrained(DIR))")
            return None
        if importlib.util.find_spec("huggingface_hub") is None:
            return "needs package huggingface_hub to find the weights in the Hugging Face cache"
        if cached_snapshot(self.model_id, self.revision) is None:
            return (f"needs weights: {self.model_id} is not in the Hugging Face cache ({hub_cache_dir()}); "
                    f"the suite never downloads models: run `hf download {self.model_id}` (accept its license "
                    "on the hub first if it is gated) or pass --weights DIR (a diffusers save_pretrained folder)")
        return None

    def missing(self) -> list[str]:
        out = super().missing()
        if "needs package diffusers" not in out and not self.pipeline_available():
            out.append(f"needs a diffusers with {self.PIPELINE} (the installed one has none)"
                       + (f": {self.INSTALL_HINT}" if self.INSTALL_HINT else ""))
        if (self.cpu_offload or self.device_map) and importlib.util.find_spec("accelerate") is None:
            which = "cpu_offload" if self.cpu_offload else "device_map"
            out.append(f"needs package accelerate for {which} (pip install accelerate)")
        if self.cpu_offload and not str(self.device).startswith("cuda"):
            out.append("cpu_offload needs --device cuda (it offloads from a GPU to the CPU)")
        problem = self.weights_problem()
        if problem:
            out.append(problem)
        return out

    # ------------------------------------------------------------------ loading
    def _resolve_weights(self) -> tuple[Path, dict[str, Any]]:
        problem = self.weights_problem()
        if problem:
            raise ModelError(f"model '{self.name}' {problem}")
        if self.weights:
            folder = Path(self.weights).expanduser().resolve()
            return folder, {"source": "folder", "path": str(folder),
                            "model_index_sha256": _sha256_file(folder / "model_index.json")}
        folder = cached_snapshot(self.model_id, self.revision)
        assert folder is not None  # weights_problem() said it is there
        return folder, {"source": "huggingface-cache", "repo_id": self.model_id, "revision": self.revision,
                        "snapshot": folder.name, "cache": hub_cache_dir(),
                        "model_index_sha256": _sha256_file(folder / "model_index.json")}

    def _weights_if_found(self) -> dict[str, Any] | None:
        """What :meth:`_resolve_weights` would record, before loading (None if not found here)."""
        try:
            return self._resolve_weights()[1]
        except (ModelError, OSError):
            return None

    def _pipeline_class(self) -> Any:
        import diffusers

        cls = getattr(diffusers, self.PIPELINE, None)
        if cls is None:
            raise ModelError(f"model '{self.name}' needs a diffusers with {self.PIPELINE} (installed: diffusers "
                             f"{diffusers.__version__})" + (f": {self.INSTALL_HINT}" if self.INSTALL_HINT else ""))
        return cls

    def load(self) -> None:
        self.preflight()
        import diffusers
        import torch
        from packaging.version import Version

        cls = self._pipeline_class()
        folder, winfo = self._resolve_weights()
        dtype = getattr(torch, self.dtype_name)
        # diffusers 0.40 renamed torch_dtype to dtype (the old name warns)
        kwargs: dict[str, Any] = {("dtype" if Version(diffusers.__version__) >= Version("0.40") else "torch_dtype"): dtype}
        if self.device_map:
            kwargs["device_map"] = str(self.device_map)
        try:
            pipe = cls.from_pretrained(str(folder), local_files_only=True, **kwargs)
        except (OSError, ValueError, EnvironmentError, KeyError, TypeError) as err:
            raise ModelError(f"model '{self.name}': cannot load {self.PIPELINE} from {folder}: {one_line(err, 300)}") from err
        if self.device_map:
            pass  # placed by from_pretrained; .to() would undo it
        elif self.cpu_offload:
            pipe.enable_model_cpu_offload(device=self.device)
        else:
            pipe.to(self.device)
        if self.attention_slicing:
            pipe.enable_attention_slicing()
        pipe.set_progress_bar_config(disable=True)
        vsf = getattr(pipe, "vae_scale_factor", None)
        if isinstance(vsf, int) and vsf > 0:
            self.multiple = self.size_multiple(vsf)
        self.pipe = pipe
        self._weights_info = winfo
        self._loaded = True

    def size_multiple(self, vae_scale_factor: int) -> int:
        """What every working side must be a multiple of, given the loaded VAE (latents packed 2x2)."""
        return vae_scale_factor * 2

    # ------------------------------------------------------------------ running
    def run(self, request: RetouchRequest) -> RetouchResult:
        import torch
        from PIL import Image

        self.ensure_loaded()
        image = np.asarray(request.image, dtype=np.float32)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ModelError(f"model '{self.name}': expected an [H, W, 3] image, got shape {list(image.shape)}")
        height, width = image.shape[:2]
        work = self.plan(height, width)
        work_img = np.clip(resize(image, work, INPUT_RESIZE_FILTER), 0.0, 1.0)
        pil = Image.fromarray(np.round(work_img * 255.0).astype(np.uint8))
        seed = int(request.seed) if request.seed is not None else 0
        generator = torch.Generator(device="cpu").manual_seed(seed)
        steps = int(self.settings["steps"])
        kwargs = {"image": pil, "prompt": request.instruction, "num_inference_steps": steps,
                  "generator": generator, "output_type": self.OUTPUT_TYPE, **self.call_kwargs(request.instruction, pil, work)}
        t0 = time.perf_counter()
        try:
            out = self.pipe(**kwargs)
        except torch.cuda.OutOfMemoryError as err:
            raise ModelError(f"model '{self.name}': out of GPU memory at working size {describe(work)} "
                             f"(input {width}x{height}; try cpu_offload=true): {one_line(err, 200)}") from err
        if str(self.device).startswith("cuda"):
            torch.cuda.synchronize()
        generate_s = time.perf_counter() - t0
        meta: dict[str, Any] = {
            "input_size": [height, width], "working_size": list(work), "steps": steps, "guidance": self.guidance(),
            "seed": seed, "generator": "torch.Generator(cpu)", "dtype": self.dtype_name,
            "timing": {"generate_s": generate_s},
        }
        nsfw = getattr(out, "nsfw_content_detected", None)
        if nsfw and any(bool(x) for x in nsfw):
            return RetouchResult.refused("safety filter: the pipeline's safety checker flagged the output", **meta)
        first = out.images[0]
        result = (np.asarray(first.convert("RGB"), dtype=np.float32) / 255.0 if isinstance(first, Image.Image)
                  else np.asarray(first, dtype=np.float32))
        meta["pipeline_output_size"] = [int(result.shape[0]), int(result.shape[1])]
        back, note = match_size(result, (height, width))
        meta["resize_policy"] = (f"{self.RESIZE_POLICY}; input resized {describe((height, width))} -> "
                                 f"{describe(work)} (suite resizer, {INPUT_RESIZE_FILTER}); output "
                                 + ("resized back to the input size: " + OUTPUT_RESIZE_RULE if note else
                                    "already at the input size"))
        return RetouchResult(image=back, meta=meta)

    # ------------------------------------------------------------------ records
    def info(self) -> dict[str, Any]:
        info = super().info()
        versions: dict[str, str | None] = {}
        for pkg in ("diffusers", "transformers"):
            try:
                from importlib.metadata import version

                versions[pkg] = version(pkg)
            except Exception:  # not installed: recorded as such
                versions[pkg] = None
        info.update({
            "pipeline": self.PIPELINE, "hub_id": self.model_id, "paper_row": self.paper_row,
            "published_defaults": dict(self.DEFAULTS), "settings_source": self.SETTINGS_SOURCE,
            "settings": dict(self.settings), "resize_policy": self.RESIZE_POLICY,
            "dtype": self.dtype_name, "cpu_offload": self.cpu_offload, "attention_slicing": self.attention_slicing,
            "device_map": self.device_map, "max_aspect_distortion": self.max_aspect_distortion,
            "weights_resolved": self._weights_info or self._weights_if_found(), "packages": versions,
            "scheduler": type(self.pipe.scheduler).__name__ if self.pipe is not None else None,
        })
        return info

    def close(self) -> None:
        self.pipe = None
        self._loaded = False
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass


def accepted_kwargs(fn: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` limited to the parameters ``fn`` takes (for pipelines whose signature varies
    between the branches that carry them), unless it takes ``**kwargs``."""
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(kwargs)
    return {k: v for k, v in kwargs.items() if k in params}
