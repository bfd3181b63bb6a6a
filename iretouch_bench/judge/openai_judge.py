"""VLM judge over any OpenAI-compatible chat-completions endpoint (``--judge openai:MODEL``).

The protocol, retries, budget and cache are :class:`~.api_judge.ApiJudge`'s; this module says how
one question travels over chat completions:

* ``openai:gpt-4o`` is pinned to :data:`DEFAULT_MODEL` (``gpt-4o-2024-08-06``, the snapshot the
  ``gpt-4o`` alias served from October 2024); other names are sent as given. The model id the API
  *returns* with each answer is recorded (``info()["model_snapshots"]``).
* ``temperature`` (default 0), ``seed`` (default 20260527, ``+ sample``), ``max_tokens`` (400).
* The system message is the prompt set's system text; the user turn is its user text followed by
  the images (data URLs, PNG by default or JPEG with a quality, long side ``max_side``, ``detail:
  "high"``) in the prompt set's order.
* The ``openai`` client runs with ``max_retries=0``: retries are the suite's one retry loop
  (:func:`iretouch_bench.clients.retry_call`), with Retry-After, jitter and budget checks.
* Endpoint: ``--judge-base-url`` / ``base_url``, else ``$OPENAI_BASE_URL``, else OpenAI. Any
  OpenAI-compatible server works (vLLM serving Qwen2.5-VL, Ollama, ...). The API key is read from
  ``OPENAI_API_KEY`` only and redacted from everything stored; keyless local endpoints get a
  placeholder key. A message refusal or a content-filter stop is a refusal (retried, then recorded).
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import numpy as np

from ..clients import RateLimiter, parse_retry_after, sanitise_url
from ..clients.payload import data_url as png_data_url, png_bytes
from .api_judge import DEFAULT_MAX_RETRIES, DEFAULT_MAX_TOKENS, DEFAULT_SEED, DEFAULT_TIMEOUT_S, ApiJudge, Reply
from .base import JudgeError
from .images import DEFAULT_MAX_SIDE, data_url

__all__ = ["OpenAIJudge", "DEFAULT_MODEL", "DEFAULT_SEED", "encode_image", "parse_retry_after", "RateLimiter",
           "DEFAULT_MAX_SIDE", "DEFAULT_MAX_RETRIES", "DEFAULT_MAX_TOKENS", "DEFAULT_TIMEOUT_S"]

DEFAULT_MODEL = "gpt-4o-2024-08-06"
#: Floating aliases resolved to a pinned snapshot so that scores do not drift with the alias.
PINNED_ALIASES = {"gpt-4o": DEFAULT_MODEL}
DETAIL = "high"
OPENAI_DEFAULT_HOST = "api.openai.com"
OPENAI_DEFAULT_URL = f"https://{OPENAI_DEFAULT_HOST}/v1"
PLACEHOLDER_KEY = "sk-no-key-required"


def encode_image(image: np.ndarray, max_side: int) -> tuple[str, tuple[int, int]]:
    """float ``[H, W, 3]`` in [0, 1] -> (``data:image/png;base64,...`` URL, (w, h) sent)."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"judge image must be [H, W, 3], got {arr.shape}")
    png, (h, w) = png_bytes(arr, max_side=max_side)
    return png_data_url(png), (w, h)


class OpenAIJudge(ApiJudge):
    """The VLM judge over chat completions. Build it with :func:`iretouch_bench.judge.make_judge`."""

    KIND = "openai-compatible"
    KEY_ENV = ("OPENAI_API_KEY",)
    DEFAULT_MODEL = DEFAULT_MODEL
    PINNED_ALIASES = PINNED_ALIASES

    def __init__(self, model: str | None = None, *, spec: str | None = None, **options):
        super().__init__(model, spec=spec or f"openai:{model or DEFAULT_MODEL}", **options)

    def _base_url_from_env(self) -> str | None:
        return os.environ.get("OPENAI_BASE_URL") or None

    def _endpoint(self) -> str:
        return sanitise_url(self.base_url) or OPENAI_DEFAULT_URL

    def _host(self) -> str | None:
        return urlsplit(self.base_url).hostname if self.base_url else OPENAI_DEFAULT_HOST

    def _api_key(self) -> str:
        key = os.environ.get("OPENAI_API_KEY")
        if key:
            return key
        if self._host() == OPENAI_DEFAULT_HOST:
            raise JudgeError(
                f"judge {self.spec}: OPENAI_API_KEY is not set (set it in the environment, or point "
                "--judge-base-url / OPENAI_BASE_URL at a local endpoint)")
        return PLACEHOLDER_KEY

    def key_source(self) -> str:
        if os.environ.get("OPENAI_API_KEY"):
            return "OPENAI_API_KEY environment variable"
        if self._host() == OPENAI_DEFAULT_HOST:
            return "missing (OPENAI_API_KEY is not set)"
        return "none (placeholder key for a keyless endpoint)"

    def _make_client(self):
        import openai

        return openai.OpenAI(api_key=self._api_key(), base_url=self.base_url, timeout=self.timeout_s,
                             max_retries=0)  # retries are ours: Retry-After, jitter and budget checks

    def _info_extra(self) -> dict:
        return {"image_detail": DETAIL}

    def _send(self, client, system: str, user: str, images: list[tuple[bytes, str]], seed: int) -> Reply:
        content = [{"type": "text", "text": user}]
        for data, mime in images:
            content.append({"type": "image_url", "image_url": {"url": data_url(data, mime), "detail": DETAIL}})
        resp = client.chat.completions.create(
            model=self.model, messages=[{"role": "system", "content": system}, {"role": "user", "content": content}],
            temperature=self.temperature, seed=seed, max_tokens=self.max_tokens,
        )
        u = getattr(resp, "usage", None)
        choice = resp.choices[0] if resp.choices else None
        msg = choice.message if choice is not None else None
        finish = getattr(choice, "finish_reason", None)
        refusal = getattr(msg, "refusal", None) if msg is not None else None
        if not refusal and finish == "content_filter":
            refusal = "answer stopped by the endpoint's content filter"
        return Reply(text=getattr(msg, "content", None) if msg is not None else None,
                     model=getattr(resp, "model", None), fingerprint=getattr(resp, "system_fingerprint", None),
                     finish=finish, refusal=refusal,
                     prompt_tokens=int(getattr(u, "prompt_tokens", 0) or 0),
                     completion_tokens=int(getattr(u, "completion_tokens", 0) or 0))
