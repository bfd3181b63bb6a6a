"""Instruction-following judges: the VLM judge (SC / PQ / O) and the offline stand-in.

``make_judge(spec, ...)`` is what the runner calls:

* ``"offline"`` (default) - no VLM; ``sc``/``pq``/``o`` are ``None`` with a reason, the offline
  instruction score is ``attr_acc`` (``iretouch_bench.metrics.attr_acc``).
* ``"none"`` - no judging at all; ``sc``/``pq``/``o`` are ``None`` with a reason.
* ``"openai:MODEL"`` (or ``"openai"`` for the default snapshot) - any OpenAI-compatible
  chat-completions endpoint, see :mod:`iretouch_bench.judge.openai_judge`.
"""

from __future__ import annotations

from typing import Any

from .base import SCORE_KEYS, Judge, JudgeError, JudgeRequest, JudgeResult, NullJudge, overall
from .openai_judge import DEFAULT_MODEL, DEFAULT_SEED, OpenAIJudge
from .prompts import PROMPT_VERSION, prompt_hash

JUDGE_SPECS = ("offline", "none", "openai:MODEL")


def make_judge(spec: str, **options: Any) -> Judge:
    """Build the judge named by ``spec`` (``offline`` | ``none`` | ``openai:MODEL``).

    ``options`` go to :class:`OpenAIJudge` (its signature holds the defaults); offline and
    none judges take none of them.

    Options:
        base_url: endpoint root (e.g. ``http://localhost:8000/v1``); default ``$OPENAI_BASE_URL``,
            else OpenAI. The API key always comes from ``$OPENAI_API_KEY``.
        samples: answers per question; the median of ``samples`` answers is reported.
        cache_mode: ``use`` (read + write), ``refresh`` (ask again, overwrite), ``off``.
        budget_usd: stop before spending more than this many dollars (needs a known price).
        concurrency: answers in flight at once. requests_per_minute: start-rate cap (None = none).
        max_side: long side, in pixels, of the PNGs sent. timeout_s: per-request timeout.
        max_retries: retries per answer (429/5xx/timeouts/bad answers). cache_dir: answer cache
            (default ``<user cache>/judge``).
        extra: advanced ``OpenAIJudge`` options (``seed``, ``max_tokens``, ``price_per_mtok``,
            ``backoff_base_s``, ``backoff_cap_s``, ``retry_after_cap_s``, ``sleep``, ``rng``).
    Raises:
        JudgeError: unknown spec or invalid option (one line).
    """
    spec = (spec or "offline").strip()
    if spec in ("offline", "none"):
        return NullJudge(spec)
    if spec == "openai" or spec.startswith("openai:"):
        model = spec.partition(":")[2].strip() or None
        return OpenAIJudge(model, spec=spec, **options)
    raise JudgeError(f"judge spec {spec!r}: expected one of {', '.join(JUDGE_SPECS)}")


__all__ = [
    "make_judge", "Judge", "JudgeRequest", "JudgeResult", "JudgeError", "NullJudge", "OpenAIJudge",
    "SCORE_KEYS", "overall", "PROMPT_VERSION", "prompt_hash", "DEFAULT_MODEL", "DEFAULT_SEED",
    "JUDGE_SPECS",
]
