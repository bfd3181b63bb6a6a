"""``gpt-image-1``: OpenAI's image editor through the ``openai`` client's ``images.edit``.

What it sends: one multipart ``POST {base}/images/edits`` with the input as an 8-bit PNG
(shrunk, area average, never enlarged, to fit inside the working size), the instruction as the
prompt, ``size`` (the working size), ``quality``, ``input_fidelity``, ``output_format=png``,
``n=1``, and with a mask an RGBA PNG of the same size whose transparent pixels mark where the
edit may happen (OpenAI's convention; the model treats it as guidance, not a hard limit). The
API takes no seed: the per-sample seed is not sent and not part of the cache key.

Working size: of the sizes every GPT image model accepts (1024x1024, 1536x1024, 1024x1536),
the one whose aspect ratio is nearest the input's (``size=auto-aspect``, the default), or the
``size`` model arg (``WxH`` or ``auto``). The answer's ``b64_json`` PNG is decoded and brought
back to the input size with the suite's one resizer (``core.resize.match_size``, bicubic);
``meta.working_size`` / ``meta.resize`` record it.

A refusal: HTTP 400 with ``code = moderation_blocked`` (or ``content_policy_violation``) ->
``refused`` with ``"moderated: <the API's message>"``; an answer with no image ->
``refused`` with ``"no image in the answer"``. A retired or unknown model id (HTTP 404
``model_not_found``, or a 400 about ``model``) stops the adapter with one line naming the id
and how to choose another. OpenAI shut gpt-image-1 down on 2026-10-23: on OpenAI's own host
preflight refuses it; ``--model-args model=gpt-image-2.5-flare`` (for example) runs a
substitute, recorded as ``model_id`` in run.json: a different leaderboard row.

Cost: from the answer's ``usage`` (text and image input tokens, output tokens) times the
model's price per million tokens (:data:`PRICES_PER_MTOK`, or ``price=TEXT_IN/IMAGE_IN/OUT``).
Timing: the API is one synchronous request, so ``generate_s`` is the time to the answer's
headers (upload, queue and generation together) and ``download_s`` the time to read its body.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from iretouch_bench.adapters.base import RetouchRequest
from iretouch_bench.clients import Outcome, exception_outcome
from iretouch_bench.clients.payload import PayloadError, b64decode, mask_png_bytes, png_bytes
from iretouch_bench.core.errors import ModelError, one_line

from .api_editor import Answer, ApiEditor, Prepared, parse_price

#: Sizes (w, h) every GPT image model accepts for edits.
SIZES: dict[str, tuple[int, int]] = {"1024x1024": (1024, 1024), "1536x1024": (1536, 1024), "1024x1536": (1024, 1536)}

#: USD per million tokens: (text input, image input, image output). Source: OpenAI's pricing
#: page for gpt-image-1 as published in 2025 (not re-checkable from this offline build); other
#: ids have no entry: give ``price=TEXT_IN/IMAGE_IN/OUT`` or their cost is recorded as null.
PRICES_PER_MTOK: dict[str, tuple[float, float, float]] = {"gpt-image-1": (5.0, 10.0, 40.0)}
#: Output tokens per image for gpt-image-1 by quality, for 1024x1024 and for 1536x1024 / 1024x1536
#: (OpenAI's image-generation guide); ``auto`` is estimated as ``high`` (an upper bound).
OUTPUT_TOKENS = {"low": (272, 408), "medium": (1056, 1584), "high": (4160, 6240)}
#: Extra input image tokens with input_fidelity=high (OpenAI's guide: about 4160 for a square
#: input, 6240 for a 3:2 one); low fidelity uses the tile rule (~ 85 + 170 per 512-px tile).
HIGH_FIDELITY_TOKENS = (4160, 6240)

MODERATION_CODES = ("moderation_blocked", "content_policy_violation")


class GptImageModel(ApiEditor):
    name = "gpt-image-1"
    description = ("OpenAI GPT-Image-1 through images.edit (API; model id is an option: gpt-image-1 was "
                   "shut down on 2026-10-23, a substitute is a different row)")
    requires = ("env:OPENAI_API_KEY", "package:openai")
    supports_mask = True
    license = "OpenAI API terms of use (proprietary service)"
    paper_row = "GPT-Image-1"

    KEY_ENV = ("OPENAI_API_KEY",)
    BASE_URL_ENV = ("OPENAI_BASE_URL",)
    DEFAULT_BASE_URL = "https://api.openai.com/v1"
    DEFAULT_MODEL = "gpt-image-1"
    RETIRED = {"gpt-image-1": "was shut down by OpenAI on 2026-10-23"}
    SUBSTITUTE_HINT = "for example gpt-image-2.5-flare or gpt-image-1.5"
    EXTRA_OPTIONS = {"quality": "high", "input_fidelity": "high", "size": "auto-aspect", "price": None}
    ANSWER_OPTIONS = ("quality", "input_fidelity", "size")

    def __init__(self, device: str = "cpu", weights: str | None = None, **options: Any) -> None:
        super().__init__(device=device, weights=weights, **options)
        self.quality = self._opt("quality", str, "high", choices=("low", "medium", "high", "auto", "xhigh", "max"))
        # "omit" leaves the parameter out (models that do not take it, e.g. gpt-image-2)
        self.input_fidelity = self._opt("input_fidelity", str, "high", choices=("high", "low", "omit"))
        self.size = self._opt("size", str, "auto-aspect")
        if self.size not in ("auto-aspect", "auto") and not _wxh(self.size):
            raise ModelError(f"model '{self.name}': option size={self.size!r}: expected auto-aspect, auto or WxH")
        price = self._opt("price", str, None)
        self.price = (parse_price(price, 3, "USD per million text-input, image-input, output tokens", self.name)
                      if price is not None else PRICES_PER_MTOK.get(self.model_id))
        self.price_source = ("model arg price" if price is not None else
                             "OpenAI pricing page (2025), see baselines/gpt_image.py" if self.price else
                             "no price known for this model id")

    def _check_package(self) -> None:
        try:
            import openai  # noqa: F401  (the client library: checked here, imported on use)
        except ImportError as err:
            raise ModelError(f"model '{self.name}' needs the openai package (pip install openai): {err}") from err

    # ------------------------------------------------------------------ sizes and cost
    def working_size(self, h: int, w: int) -> tuple[int, int] | None:
        """(h, w) asked of the model for an ``h x w`` input (None for ``size=auto``)."""
        if self.size == "auto":
            return None
        if self.size != "auto-aspect":
            sw, sh = _wxh(self.size)
            return sh, sw
        target = math.log(w / h)
        sw, sh = min(SIZES.values(), key=lambda s: (abs(math.log(s[0] / s[1]) - target), s))
        return sh, sw

    def resize_policy(self, prep: Prepared) -> str:
        ws = prep.working_size
        asked = f"{ws[1]}x{ws[0]}" if ws else "size=auto"
        return (f"input shrunk (area, never enlarged) to fit {asked} and sent as PNG; the model answers at "
                f"{asked}; its output is resized to the input size with core.resize.match_size (bicubic), "
                "stretching when the aspect ratios differ")

    def uses_seed(self) -> bool:
        return False

    def estimate_call_usd(self) -> float | None:
        if self.price is None:
            return None
        q = "high" if self.quality not in OUTPUT_TOKENS else self.quality
        out_tokens = OUTPUT_TOKENS[q][1]  # the larger (non-square) figure: an upper bound
        in_image = 765 + (HIGH_FIDELITY_TOKENS[1] if self.input_fidelity == "high" else 0)
        in_text = 200
        p_text, p_img, p_out = self.price
        return (in_text * p_text + in_image * p_img + out_tokens * p_out) / 1e6

    def _cost(self, usage: dict[str, Any] | None) -> tuple[float | None, dict[str, int]]:
        usage = usage or {}
        details = usage.get("input_tokens_details") or {}
        tokens = {"input": int(usage.get("input_tokens") or 0), "output": int(usage.get("output_tokens") or 0),
                  "input_text": int(details.get("text_tokens") or 0), "input_image": int(details.get("image_tokens") or 0)}
        if self.price is None or not usage:
            return None, tokens
        p_text, p_img, p_out = self.price
        text_in = tokens["input_text"] if details else tokens["input"]  # no split: bill all input as text
        img_in = tokens["input_image"] if details else 0
        return (text_in * p_text + img_in * p_img + tokens["output"] * p_out) / 1e6, tokens

    # ------------------------------------------------------------------ the request
    def _get_client(self):
        with self._lock:
            if self._client is None:
                import openai  # the client library, imported on first call (``models list`` stays light)

                self._client = openai.OpenAI(api_key=self.api_key(), base_url=self.base_url,
                                             timeout=self.timeout_s, max_retries=0)  # retries are ours
            return self._client

    def _prepare(self, request: RetouchRequest) -> Prepared:
        h, w = request.image.shape[:2]
        ws = self.working_size(h, w)
        png, sent = png_bytes(request.image, fit=ws)
        payload: dict[str, Any] = {
            "model": self.model_id, "prompt": request.instruction, "n": 1, "output_format": "png",
            "quality": self.quality, "size": f"{ws[1]}x{ws[0]}" if ws else "auto",
            "image": ("input.png", png, "image/png"),
        }
        if self.input_fidelity != "omit":
            payload["input_fidelity"] = self.input_fidelity
        meta: dict[str, Any] = {"quality": self.quality, "input_fidelity": self.input_fidelity,
                                "size_sent": payload["size"], "seed_note": "the images API takes no seed"}
        if request.mask is not None:
            payload["mask"] = ("mask.png", mask_png_bytes(request.mask, sent), "image/png")
            meta["mask"] = "sent as an RGBA PNG, transparent where the edit may happen (guidance for the model)"
        return Prepared(payload=payload, sent_size=sent, working_size=ws, meta=meta,
                        timing={"upload_s": None, "queue_s": None, "generate_s": None, "download_s": None})

    def _attempt(self, prep: Prepared, attempt: int, state: dict[str, Any]) -> Outcome:
        client = self._get_client()
        self._count_request()
        t0 = time.perf_counter()
        # streaming response: headers arrive when the image is made; the body read is the download
        with client.images.with_streaming_response.edit(**prep.payload) as raw:
            t1 = time.perf_counter()
            body = raw.read()
            t2 = time.perf_counter()
            request_id = raw.headers.get("x-request-id")
        state["timing"].update(generate_s=t1 - t0, download_s=t2 - t1)
        try:
            doc = json.loads(body)
        except ValueError as err:
            return Outcome.retry(f"malformed answer: not JSON ({one_line(err, 80)})")
        if not isinstance(doc, dict):
            return Outcome.retry("malformed answer: JSON is not an object")
        cost, tokens = self._cost(doc.get("usage") if isinstance(doc.get("usage"), dict) else None)
        self.ledger.charge(cost or 0.0)  # billed whether or not the answer is usable
        # the images API names no snapshot in its answer: the id sent is all there is (model_id)
        meta = {"request_id": request_id, "snapshot": None, "tokens": tokens,
                "cost_source": self.price_source, "answer_size": doc.get("size"), "answer_quality": doc.get("quality")}
        data = doc.get("data")
        if not isinstance(data, list) or not data or not isinstance(data[0], dict) or not data[0].get("b64_json"):
            return Outcome.ok(Answer(refusal="no image in the answer", meta=meta, cost_usd=cost))
        try:
            image_bytes = b64decode(data[0]["b64_json"], "b64_json")
        except PayloadError as err:
            return Outcome.retry(f"malformed answer: {err}")
        if data[0].get("revised_prompt"):
            meta["revised_prompt"] = one_line(data[0]["revised_prompt"], 300)
        return Outcome.ok(Answer(image_bytes=image_bytes, meta=meta, cost_usd=cost))

    def _classify(self, err: BaseException, timeout_s: float | None) -> Outcome | None:
        import sys

        openai = sys.modules.get("openai")
        if openai is not None and isinstance(err, openai.APIStatusError):
            code = getattr(err, "code", None)
            param = getattr(err, "param", None)
            body = err.body if isinstance(err.body, dict) else {}
            inner = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
            # the API's own message (err.message prefixes "Error code: 400 - ")
            message = one_line(inner.get("message") or getattr(err, "message", str(err)), 300)
            if code in MODERATION_CODES:
                return Outcome.ok(Answer(refusal=f"moderated: {message}",
                                         meta={"request_id": err.response.headers.get("x-request-id")},
                                         cost_usd=0.0))
            if err.status_code == 404 or code == "model_not_found" or (err.status_code == 400 and param == "model"):
                return Outcome.fatal(self.unknown_model_line(f"HTTP {err.status_code}: {message}"),
                                     status=err.status_code)
        return super()._classify(err, timeout_s) or exception_outcome(err, timeout_s)


def _wxh(text: str) -> tuple[int, int] | None:
    w, x, h = str(text).lower().partition("x")
    return (int(w), int(h)) if x and w.isdigit() and h.isdigit() and int(w) > 0 and int(h) > 0 else None
