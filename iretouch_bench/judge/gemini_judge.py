"""VLM judge over Google's Gemini API through ``google-genai`` (``--judge gemini:MODEL``).

The protocol, retries, budget and cache are :class:`~.api_judge.ApiJudge`'s; this module says how
one question travels over ``models.generate_content``:

* ``system_instruction`` = the prompt set's system text; one user turn = its user text, then the
  images as inline parts (PNG by default, or JPEG with a quality; long side ``max_side``) in the
  prompt set's order; ``temperature`` (default 0), ``seed`` (default 20260527 ``+ sample``),
  ``candidate_count = 1``, ``max_output_tokens`` (default 2048: Gemini 2.5 models count their
  thinking tokens against it, so the 400 of the chat judge would cut answers).
* The model version the API returns with each answer (``modelVersion``) is recorded as the snapshot.
* A prompt blocked before answering (``prompt_feedback.block_reason``) or an answer stopped by a
  filter (``finish_reason`` SAFETY, PROHIBITED_CONTENT, BLOCKLIST, ...) is a refusal: retried with
  another seed, then recorded as a failure with the reason. Thought parts are not the answer.
* Endpoint: ``--judge-base-url`` / ``base_url`` (a ``@URL`` on the spec), else
  ``$GOOGLE_GEMINI_BASE_URL`` (the variable ``google-genai`` itself reads), else Google's; passed
  to the client as ``http_options.base_url``. Key: ``$GOOGLE_API_KEY`` or ``$GEMINI_API_KEY`` (the
  client's order), redacted from everything stored; a loopback endpoint without a key gets a
  placeholder. The client's own retries stay off; retries are the suite's.
* Cost: ``usage_metadata`` prompt tokens at the input price; candidate plus thinking tokens at the
  output price (:data:`PRICES_PER_MTOK`).
"""

from __future__ import annotations

import math
import os
from urllib.parse import urlsplit

from ..clients import sanitise_url
from .api_judge import ApiJudge, Reply
from .base import JudgeError

DEFAULT_MODEL = "gemini-2.5-flash"
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
PLACEHOLDER_KEY = "no-key-required"
#: USD per million tokens (input, output incl. thinking), standard tier, text/image input <= 200k
#: tokens. Source: Google's Gemini API pricing page as published in 2025; not re-checkable from
#: this offline build: override with ``price_per_mtok`` when it changes.
PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "gemini-2.5-pro": (1.25, 10.00),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-flash-lite": (0.10, 0.40),
    "gemini-2.0-flash": (0.10, 0.40),
    "gemini-2.0-flash-lite": (0.075, 0.30),
}
PRICE_SOURCE = "ai.google.dev/gemini-api/docs/pricing, standard tier, as published 2025 (not re-checked offline)"
#: finish reasons that mean "stopped by a filter": refusals
SAFETY_FINISH = {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION", "IMAGE_SAFETY", "MODEL_ARMOR"}


def _enum(value) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "name", None) or getattr(value, "value", value))


def image_tokens(w: int, h: int) -> int:
    """Gemini 2.x: 258 tokens for an image with both sides <= 384 px, else 258 per 768x768 tile."""
    if w <= 384 and h <= 384:
        return 258
    return 258 * math.ceil(w / 768) * math.ceil(h / 768)


def retry_delay(details) -> float | None:
    """Seconds from a ``google.rpc.RetryInfo`` ``retryDelay`` (``"12s"``, ``"0.5s"``) in an error body."""
    body = details.get("error", details) if isinstance(details, dict) else None
    for d in (body or {}).get("details", []) if isinstance(body, dict) else []:
        if isinstance(d, dict) and str(d.get("@type", "")).endswith("RetryInfo"):
            text = str(d.get("retryDelay", "")).strip()
            try:
                return max(0.0, float(text[:-1])) if text.endswith("s") else None
            except ValueError:
                return None
    return None


class GeminiJudge(ApiJudge):
    """The VLM judge over the Gemini API. Build it with :func:`iretouch_bench.judge.make_judge`."""

    KIND = "gemini"
    KEY_ENV = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
    DEFAULT_MODEL = DEFAULT_MODEL
    DEFAULT_MAX_TOKENS = 2048

    def __init__(self, model: str | None = None, *, spec: str | None = None, **options):
        super().__init__(model, spec=spec or f"gemini:{model or DEFAULT_MODEL}", **options)

    def _base_url_from_env(self) -> str | None:
        return os.environ.get("GOOGLE_GEMINI_BASE_URL") or None

    def _endpoint(self) -> str:
        return sanitise_url(self.base_url) or DEFAULT_BASE_URL

    def _price_for(self, model: str):
        return PRICES_PER_MTOK.get(model)

    def _price_source(self) -> str:
        return PRICE_SOURCE

    def _image_tokens(self, w: int, h: int) -> int:
        return image_tokens(w, h)

    def _loopback(self) -> bool:
        host = urlsplit(self.base_url).hostname if self.base_url else None
        return host in ("127.0.0.1", "localhost", "::1")

    def _api_key(self) -> str:
        for name in self.KEY_ENV:
            if os.environ.get(name):
                return os.environ[name]
        if self._loopback():
            return PLACEHOLDER_KEY
        raise JudgeError(f"judge {self.spec}: GOOGLE_API_KEY (or GEMINI_API_KEY) is not set")

    def key_source(self) -> str:
        for name in self.KEY_ENV:
            if os.environ.get(name):
                return f"{name} environment variable"
        if self._loopback():
            return "none (placeholder key for a loopback endpoint)"
        return "missing (GOOGLE_API_KEY / GEMINI_API_KEY not set)"

    def _make_client(self):
        try:
            from google import genai
            from google.genai import types
        except ImportError as err:  # a named dependency; only a broken install lands here
            raise JudgeError(f"judge {self.spec}: needs the google-genai package ({err})") from err
        return genai.Client(api_key=self._api_key(), vertexai=False,
                            http_options=types.HttpOptions(base_url=self.base_url or DEFAULT_BASE_URL,
                                                           timeout=max(1, int(self.timeout_s * 1000))))

    def _classify(self, err: BaseException, timeout_s: float | None):
        out = super()._classify(err, timeout_s)
        if out is not None and out.kind == "retry" and out.retry_after is None:
            # Google puts the wait in the error body (google.rpc.RetryInfo retryDelay), not in a header
            out.retry_after = retry_delay(getattr(err, "details", None))
        return out

    def _send(self, client, system: str, user: str, images: list[tuple[bytes, str]], seed: int) -> Reply:
        from google.genai import types

        parts = [types.Part.from_text(text=user)] + [types.Part.from_bytes(data=d, mime_type=m) for d, m in images]
        config = types.GenerateContentConfig(system_instruction=system, temperature=self.temperature,
                                             seed=int(seed) % (2 ** 31), max_output_tokens=self.max_tokens,
                                             candidate_count=1)
        resp = client.models.generate_content(model=self.model, contents=[types.Content(role="user", parts=parts)],
                                              config=config)
        usage = getattr(resp, "usage_metadata", None)
        pt = int(getattr(usage, "prompt_token_count", 0) or 0)
        ct = int(getattr(usage, "candidates_token_count", 0) or 0) + int(getattr(usage, "thoughts_token_count", 0) or 0)
        snapshot = getattr(resp, "model_version", None)
        feedback = getattr(resp, "prompt_feedback", None)
        block = _enum(getattr(feedback, "block_reason", None)) if feedback is not None else None
        if block:
            return Reply(text=None, model=snapshot, finish=None, refusal=f"prompt blocked: {block}",
                         prompt_tokens=pt, completion_tokens=ct)
        cands = getattr(resp, "candidates", None) or []
        if not cands:
            return Reply(text=None, model=snapshot, prompt_tokens=pt, completion_tokens=ct)
        cand = cands[0]
        finish = _enum(getattr(cand, "finish_reason", None))
        texts = [p.text for p in (getattr(getattr(cand, "content", None), "parts", None) or [])
                 if getattr(p, "text", None) and not getattr(p, "thought", None)]
        refusal = f"answer stopped by a filter (finish_reason {finish})" if finish in SAFETY_FINISH else None
        return Reply(text="".join(texts) if texts else None, model=snapshot, finish=finish, refusal=refusal,
                     prompt_tokens=pt, completion_tokens=ct)
