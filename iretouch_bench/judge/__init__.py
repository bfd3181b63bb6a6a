"""Instruction-following judges: the VLM judges (SC / PQ / O) and the offline stand-in.

``make_judge(spec, ...)`` is what the runner calls:

* ``"offline"`` (default) - no VLM; ``sc``/``pq``/``o`` are ``None`` with a reason, the offline
  instruction score is ``attr_acc`` (``iretouch_bench.metrics.attr_acc``).
* ``"none"`` - no judging at all; ``sc``/``pq``/``o`` are ``None`` with a reason.
* ``"openai:MODEL"`` (or ``"openai"`` for the default snapshot) - any OpenAI-compatible
  chat-completions endpoint, see :mod:`iretouch_bench.judge.openai_judge`.
* ``"gemini:MODEL"`` (or ``"gemini"``) - Google's Gemini API through ``google-genai``, see
  :mod:`iretouch_bench.judge.gemini_judge`.
* A comma list of API judges (``"openai:gpt-4o-2024-08-06,gemini:gemini-2.5-flash"``) - several
  judges in one run, the first the primary (:mod:`iretouch_bench.judge.multi`).

An API judge's spec may end in ``@URL`` to give that judge its own endpoint
(``openai:Qwen/Qwen2.5-VL-7B-Instruct@http://127.0.0.1:8000/v1``); without it an OpenAI-compatible
judge uses ``base_url`` (``--judge-base-url``) or ``$OPENAI_BASE_URL``, a Gemini judge
``$GOOGLE_GEMINI_BASE_URL``.
"""

from __future__ import annotations

from typing import Any

from ..clients import BudgetLedger, sanitise_url
from .agreement import agreement
from .api_judge import ApiJudge
from .base import SCORE_KEYS, Judge, JudgeError, JudgeRequest, JudgeResult, NullJudge, overall
from .gemini_judge import GeminiJudge
from .multi import MultiJudge, judge_infos
from .openai_judge import DEFAULT_MODEL, DEFAULT_SEED, OpenAIJudge
from .prompts import (DEFAULT_PROMPTS, PROMPT_VERSION, PromptSet, PromptSetError, export_prompt_set, load_prompt_set,
                      prompt_hash, resolve_prompt_set)

JUDGE_SPECS = ("offline", "none", "openai:MODEL", "gemini:MODEL", "SPEC,SPEC,...")
_KINDS = {"openai": OpenAIJudge, "gemini": GeminiJudge}


def split_spec(spec: str) -> list[str]:
    """``"openai:a, gemini:b"`` -> ``["openai:a", "gemini:b"]`` (empty parts dropped)."""
    return [p.strip() for p in (spec or "").split(",") if p.strip()]


def _parse_one(spec: str) -> tuple[type[ApiJudge], str | None, str | None]:
    """``kind[:MODEL][@URL]`` -> (class, model or None, url or None)."""
    kind, _, rest = spec.partition(":")
    cls = _KINDS.get(kind.strip())
    if cls is None:
        raise JudgeError(f"judge spec {spec!r}: expected one of {', '.join(JUDGE_SPECS)}")
    url = None
    at = min((i for i in (rest.find("@http://"), rest.find("@https://")) if i >= 0), default=-1)
    if at >= 0:  # the first '@http': a URL may hold '@' itself (user:password@host)
        rest, url = rest[:at], rest[at + 1:]
    elif "@" in rest:  # named without the rest of the spec: it may hold a credential
        raise JudgeError(f"judge spec {kind}:{rest.partition('@')[0]}@...: the part after '@' must be an http(s) URL")
    return cls, rest.strip() or None, url


def make_judge(spec: str, **options: Any) -> Judge:
    """Build the judge(s) named by ``spec`` (see the module docstring).

    ``options`` go to every API judge (:class:`~.api_judge.ApiJudge`'s signature holds the
    defaults); offline and none judges take none of them. A ``None`` option means "the default".

    Options:
        base_url: OpenAI-compatible endpoint root (e.g. ``http://localhost:8000/v1``); default
            ``$OPENAI_BASE_URL``, else OpenAI. Keys always come from the environment.
        prompts: a :class:`PromptSet` or a prompt-set file (``--judge-prompts``); default the suite's.
        samples: answers per question; the median of ``samples`` answers is reported.
        image_format: ``png`` | ``jpeg``; image_quality: JPEG quality; max_side: long side (px) of
            the images sent, ``0``/``None`` for native size.
        temperature, seed, max_tokens: sampling options sent with every question.
        cache_mode: ``use`` (read + write), ``refresh`` (ask again, overwrite), ``off``.
        budget_usd: stop before spending more than this many dollars (all judges together).
        concurrency: answers in flight at once (per judge). requests_per_minute: start-rate cap.
        timeout_s: per-request timeout. max_retries: retries per answer. cache_dir: answer cache.
        extra: advanced options (``price_per_mtok``, ``backoff_base_s``, ``backoff_cap_s``,
            ``retry_after_cap_s``, ``sleep``, ``rng``).
    Raises:
        JudgeError: unknown spec or invalid option (one line).
    """
    parts = split_spec(spec or "offline") or ["offline"]
    if any(p in ("offline", "none") for p in parts):
        if len(parts) > 1:
            raise JudgeError(f"judge spec {spec!r}: offline/none cannot be combined with other judges")
        return NullJudge(parts[0])
    options = {k: v for k, v in options.items() if v is not None}
    if "prompts" in options:  # load the file once, not once per judge
        try:
            options["prompts"] = resolve_prompt_set(options["prompts"])
        except PromptSetError as err:
            raise JudgeError(str(err)) from None
    if len(parts) > 1 and options.get("budget_usd") is not None:
        options["ledger"] = BudgetLedger(options.pop("budget_usd"))
    judges: list[Judge] = []
    for part in parts:
        cls, model, url = _parse_one(part)
        opts = dict(options)
        if url is not None:
            opts["base_url"] = url
            # the spec names the judge in records and tables: never with credentials from the URL
            part = f"{part.partition(':')[0]}:{model or ''}@{sanitise_url(url)}"
        elif cls is not OpenAIJudge:
            opts.pop("base_url", None)  # --judge-base-url is the OpenAI-compatible endpoint
        if "ledger" in opts and opts.get("price_per_mtok") is None:
            j = cls(model, spec=part, **{k: v for k, v in opts.items() if k != "ledger"})
            if j.price is None:
                raise JudgeError(f"judge {part} budget: no price known for model {j.model!r}; "
                                 "give price_per_mtok or drop the budget")
        judges.append(cls(model, spec=part, **opts))
    return judges[0] if len(judges) == 1 else MultiJudge(judges)


__all__ = [
    "make_judge", "split_spec", "Judge", "JudgeRequest", "JudgeResult", "JudgeError", "NullJudge", "ApiJudge",
    "OpenAIJudge", "GeminiJudge", "MultiJudge", "judge_infos", "agreement", "SCORE_KEYS", "overall",
    "PROMPT_VERSION", "prompt_hash", "PromptSet", "PromptSetError", "DEFAULT_PROMPTS", "load_prompt_set",
    "export_prompt_set", "resolve_prompt_set", "DEFAULT_MODEL", "DEFAULT_SEED", "JUDGE_SPECS",
]
