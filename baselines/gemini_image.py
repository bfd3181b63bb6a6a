"""``gemini-2.5-flash-image``: Google's image model through ``google-genai``'s ``models.generate_content``.

What it sends: one ``generateContent`` request whose user turn holds the input as an inline
PNG part (shrunk, area average, never enlarged, to fit inside the bucket's size) followed by
the instruction as a text part, with ``response_modalities = ["TEXT", "IMAGE"]``,
``image_config.aspect_ratio`` = the bucket nearest the input's aspect ratio, ``seed`` = the
per-sample seed and ``candidate_count = 1``. No mask (the API has none: ``supports_mask`` is
False).

Working size: the model answers at its bucket's size (:data:`BUCKETS`, e.g. 1184x864 for 4:3);
the answer's inline image is decoded and brought back to the input size with the suite's one
resizer (``core.resize.match_size``, bicubic); ``meta.working_size`` / ``meta.resize`` record it.

A refusal: a prompt blocked before generation (``prompt_feedback.block_reason``), a candidate
stopped for safety (``finish_reason`` SAFETY, IMAGE_SAFETY, PROHIBITED_CONTENT, ...), or an
answer with text but no image -> ``refused`` with that reason (the model's text when it gave
one). An unknown or retired model id (HTTP 404) stops the adapter with one line naming it.

Endpoint: ``base_url`` model arg, else ``$GOOGLE_GEMINI_BASE_URL`` (the variable
``google-genai`` itself reads, ``google/genai/_base_url.py``), else Google's. Both are passed
to the client as ``http_options.base_url``, so what is recorded is what is used. Key:
``$GOOGLE_API_KEY`` or ``$GEMINI_API_KEY`` (the client's own order: GOOGLE_API_KEY first). The
client's own retries stay off (no ``retry_options``: one attempt); retries are the suite's.

Cost: from ``usage_metadata`` (prompt tokens; candidate tokens split by modality) times
:data:`PRICES_PER_MTOK`. Timing: one synchronous request, so ``generate_s`` is its whole round
trip (upload, queue, generation and download together).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from iretouch_bench.adapters.base import RetouchRequest
from iretouch_bench.clients import Outcome
from iretouch_bench.clients.payload import png_bytes
from iretouch_bench.core.errors import ModelError, one_line

from .api_editor import Answer, ApiEditor, Prepared, nearest_bucket, parse_price

#: Aspect-ratio buckets of gemini-2.5-flash-image -> (w, h) of its answer (Google's image
#: generation guide, 2025).
BUCKETS: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024), "2:3": (832, 1248), "3:2": (1248, 832), "3:4": (864, 1184), "4:3": (1184, 864),
    "4:5": (896, 1152), "5:4": (1152, 896), "9:16": (768, 1344), "16:9": (1344, 768), "21:9": (1536, 672),
}
#: USD per million tokens: (input, image output, text output). Source: Google's Gemini API pricing
#: page for gemini-2.5-flash-image (2025: $0.30 input, $30 per million image tokens = $0.039 per
#: 1290-token image, $2.50 text); not re-checkable from this offline build.
PRICES_PER_MTOK: dict[str, tuple[float, float, float]] = {
    "gemini-2.5-flash-image": (0.30, 30.0, 2.50), "gemini-2.5-flash-image-preview": (0.30, 30.0, 2.50)}
IMAGE_OUTPUT_TOKENS = 1290  # per answer image (Google's figure for images up to 1024x1024-class sizes)
#: finish reasons that mean "stopped by a filter", reported as refusals
SAFETY_FINISH = {"SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT", "BLOCKLIST",
                 "SPII", "RECITATION", "IMAGE_RECITATION", "MODEL_ARMOR"}


def _enum(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


class GeminiImageModel(ApiEditor):
    name = "gemini-2.5-flash-image"
    description = ("Google Gemini 2.5 Flash Image through google-genai generate_content (API; Google lists "
                   "this id for shutdown: the model id is an option, a substitute is a different row)")
    requires = ("env:GOOGLE_API_KEY|GEMINI_API_KEY", "package:google.genai")
    supports_mask = False
    license = "Google Gemini API terms of service (proprietary service)"
    paper_row = "Gemini-2.5-Flash (image)"

    KEY_ENV = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
    BASE_URL_ENV = ("GOOGLE_GEMINI_BASE_URL",)
    DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
    DEFAULT_MODEL = "gemini-2.5-flash-image"
    RETIRED: dict[str, str] = {}
    SUBSTITUTE_HINT = "a current Gemini image model id from Google's model list"
    EXTRA_OPTIONS = {"aspect_ratio": "auto", "price": None}
    ANSWER_OPTIONS = ("aspect_ratio",)

    def __init__(self, device: str = "cpu", weights: str | None = None, **options: Any) -> None:
        super().__init__(device=device, weights=weights, **options)
        self.aspect_ratio = self._opt("aspect_ratio", str, "auto", choices=("auto", *BUCKETS))
        price = self._opt("price", str, None)
        self.price = (parse_price(price, 3, "USD per million input, image-output, text-output tokens", self.name)
                      if price is not None else PRICES_PER_MTOK.get(self.model_id))
        self.price_source = ("model arg price" if price is not None else
                             "Gemini API pricing page (2025), see baselines/gemini_image.py" if self.price else
                             "no price known for this model id")

    def _check_package(self) -> None:
        try:
            from google import genai  # noqa: F401  (checked here, imported on use)
        except ImportError as err:
            raise ModelError(f"model '{self.name}' needs the google-genai package (pip install google-genai): "
                             f"{err}") from err

    def bucket(self, h: int, w: int) -> str:
        return self.aspect_ratio if self.aspect_ratio != "auto" else nearest_bucket(h, w, BUCKETS)

    def resize_policy(self, prep: Prepared) -> str:
        ratio = prep.payload["ratio"]
        bw, bh = BUCKETS[ratio]
        return (f"aspect-ratio bucket {ratio} (nearest the input's); input shrunk (area, never enlarged) to fit "
                f"{bw}x{bh} and sent as PNG; the answer (about {bw}x{bh}) is resized to the input size with "
                "core.resize.match_size (bicubic)")

    def estimate_call_usd(self) -> float | None:
        if self.price is None:
            return None
        p_in, p_img, p_text = self.price
        return (1300 * p_in + IMAGE_OUTPUT_TOKENS * p_img + 200 * p_text) / 1e6

    # ------------------------------------------------------------------ the request
    def _get_client(self):
        with self._lock:
            if self._client is None:
                from google import genai  # the client library, imported on first call
                from google.genai import types

                self._client = genai.Client(
                    api_key=self.api_key(), vertexai=False,
                    http_options=types.HttpOptions(base_url=self.base_url,
                                                   timeout=max(1, int(self.timeout_s * 1000))))
            return self._client

    def _prepare(self, request: RetouchRequest) -> Prepared:
        h, w = request.image.shape[:2]
        ratio = self.bucket(h, w)
        bw, bh = BUCKETS[ratio]
        png, sent = png_bytes(request.image, fit=(bh, bw))
        # the API's seed is an int32; the runner's per-sample seeds are uint32
        seed = None if request.seed is None else int(request.seed) % (2 ** 31)
        return Prepared(payload={"png": png, "ratio": ratio, "instruction": request.instruction, "seed": seed},
                        sent_size=sent, working_size=(bh, bw), meta={"aspect_ratio": ratio, "seed_sent": seed},
                        timing={"upload_s": None, "queue_s": None, "generate_s": None, "download_s": None})

    def _attempt(self, prep: Prepared, attempt: int, state: dict[str, Any]) -> Outcome:
        from google.genai import types

        client = self._get_client()
        p = prep.payload
        config = types.GenerateContentConfig(
            response_modalities=["TEXT", "IMAGE"], candidate_count=1,
            image_config=types.ImageConfig(aspect_ratio=p["ratio"]),
            seed=p["seed"])
        contents = [types.Content(role="user", parts=[types.Part.from_bytes(data=p["png"], mime_type="image/png"),
                                                      types.Part.from_text(text=p["instruction"])])]
        self._count_request()
        t0 = time.perf_counter()
        try:
            resp = client.models.generate_content(model=self.model_id, contents=contents, config=config)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError) as err:
            # a 200 answer the SDK could not read: not JSON, or JSON of another shape
            return Outcome.retry(f"malformed answer: {type(err).__name__}: {one_line(err, 160)}")
        state["timing"]["generate_s"] = time.perf_counter() - t0
        return Outcome.ok(self._read(resp))

    def _read(self, resp: Any) -> Answer:
        """The answer -> an image, or a refusal with the reason (see the module docstring)."""
        usage = getattr(resp, "usage_metadata", None)
        tokens = {"prompt": int(getattr(usage, "prompt_token_count", 0) or 0),
                  "candidates": int(getattr(usage, "candidates_token_count", 0) or 0),
                  "total": int(getattr(usage, "total_token_count", 0) or 0)}
        by_mod = {}
        for d in getattr(usage, "candidates_tokens_details", None) or []:
            by_mod[_enum(getattr(d, "modality", None)) or "?"] = int(getattr(d, "token_count", 0) or 0)
        if by_mod:
            tokens["by_modality"] = by_mod
        cost = None
        if self.price is not None and usage is not None:
            p_in, p_img, p_text = self.price
            img_t = by_mod.get("IMAGE", tokens["candidates"] if not by_mod else 0)
            other_t = max(0, tokens["candidates"] - img_t)
            cost = (tokens["prompt"] * p_in + img_t * p_img + other_t * p_text) / 1e6
        self.ledger.charge(cost or 0.0)
        snapshot = getattr(resp, "model_version", None)
        self._note_snapshot(snapshot)
        meta: dict[str, Any] = {"snapshot": snapshot, "request_id": getattr(resp, "response_id", None),
                                "tokens": tokens, "cost_source": self.price_source}
        feedback = getattr(resp, "prompt_feedback", None)
        block = _enum(getattr(feedback, "block_reason", None)) if feedback is not None else None
        if block:
            why = getattr(feedback, "block_reason_message", None)
            return Answer(refusal=f"blocked: {block}" + (f" ({one_line(why, 200)})" if why else ""), meta=meta,
                          cost_usd=cost)
        cands = getattr(resp, "candidates", None) or []
        if not cands:
            return Answer(refusal="no image in the answer: no candidate returned", meta=meta, cost_usd=cost)
        cand = cands[0]
        finish = _enum(getattr(cand, "finish_reason", None))
        meta["finish_reason"] = finish
        parts = getattr(getattr(cand, "content", None), "parts", None) or []
        texts, image = [], None
        for part in parts:
            if getattr(part, "thought", None):
                continue  # thinking summaries are not the answer
            blob = getattr(part, "inline_data", None)
            if image is None and blob is not None and str(getattr(blob, "mime_type", "")).startswith("image/") \
                    and getattr(blob, "data", None):
                image = blob.data
            elif getattr(part, "text", None):
                texts.append(part.text)
        text = one_line(" ".join(texts), 300) if texts else None
        if text:
            meta["text"] = text
        if image is not None:
            return Answer(image_bytes=bytes(image), meta=meta, cost_usd=cost)
        if finish in SAFETY_FINISH:
            return Answer(refusal=f"safety filter: finish_reason {finish}" + (f": {text}" if text else ""),
                          meta=meta, cost_usd=cost)
        return Answer(refusal=f"no image in the answer: {text}" if text else
                      f"no image in the answer (finish_reason {finish})", meta=meta, cost_usd=cost)

    def _classify(self, err: BaseException, timeout_s: float | None) -> Outcome | None:
        errors = sys.modules.get("google.genai.errors")
        if errors is not None and isinstance(err, errors.APIError):
            code = int(err.code or 0)
            message = one_line(err.message or err.status or str(err), 300)
            if code == 404:
                return Outcome.fatal(self.unknown_model_line(f"HTTP 404: {message}"), status=404)
            out = super()._classify(err, timeout_s)
            if out is not None and out.kind == "retry" and out.retry_after is None:
                out.retry_after = _retry_delay(err.details)  # Google puts it in the body (RetryInfo)
            return out
        return super()._classify(err, timeout_s)


def _retry_delay(details: Any) -> float | None:
    """Seconds from a ``google.rpc.RetryInfo`` ``retryDelay`` ("12s", "0.5s") in an error body."""
    body = details.get("error", details) if isinstance(details, dict) else None
    for d in (body or {}).get("details", []) if isinstance(body, dict) else []:
        if isinstance(d, dict) and str(d.get("@type", "")).endswith("RetryInfo"):
            text = str(d.get("retryDelay", "")).strip()
            if text.endswith("s"):
                try:
                    return max(0.0, float(text[:-1]))
                except ValueError:
                    return None
    return None
