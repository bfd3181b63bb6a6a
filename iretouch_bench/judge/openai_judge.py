"""VLM judge over any OpenAI-compatible chat-completions endpoint (``--judge openai:MODEL``).

Protocol (VIEScore / GEdit-Bench structure, this suite's own retouching prompts, see ``prompts``):
per sample, an **SC** question (source + retouched image + instruction -> ``[editing success,
over-editing]``) and a **PQ** question (retouched image alone -> ``[naturalness, artifacts]``),
each 0-10; ``SC = min`` and ``PQ = min`` of their pair, ``O = sqrt(SC * PQ)``. With
``samples = N`` each question is asked N times (seeds ``seed, seed+1, ...``) and the per-answer
``min`` values are reduced by the **median**; a score is reported only when all N answers are
valid, otherwise it is ``None`` with the failure reason (no partial medians, no fills).

Reproducibility
    * ``openai:gpt-4o`` is pinned to :data:`DEFAULT_MODEL` (``gpt-4o-2024-08-06``, the snapshot
      the ``gpt-4o`` alias served from October 2024); other names are sent as given. The model id
      the API *returns* with each answer is recorded (``info()["model_snapshots"]``).
    * ``temperature = 0``, a fixed ``seed`` (default 20260527), ``max_tokens = 400``.
    * Images are sent as lossless **PNG** data URLs (JPEG would add compression artifacts that the
      PQ question asks about), downscaled (Lanczos, never upscaled) so the long side is at most
      ``max_side`` (default 1024), with ``detail: "high"``.

Robustness
    * The ``openai`` client runs with ``max_retries=0``; retries go through the suite's one retry
      loop (:func:`iretouch_bench.clients.retry_call`, shared with the API editors), at most
      ``max_retries`` times per answer, on 408/409/429/5xx, timeouts and connection errors, with
      exponential backoff and jitter (``backoff_base_s * 2**k``, capped at ``backoff_cap_s``,
      times a uniform factor in ``[0.5, 1]``), or exactly the delay a ``Retry-After`` /
      ``retry-after-ms`` header asks for (capped at ``retry_after_cap_s``).
    * Unparseable, out-of-range or refused answers are retried too (with seed ``seed + 7919*k`` so a
      deterministic model gets a chance to answer differently), then recorded as failed with the
      reason. 401/403/404 stop the whole batch (a wrong key or model name fails every call).
    * The API key is read from ``OPENAI_API_KEY`` only; it is redacted from every string the judge
      returns or stores, never written to the cache or ``info()``. Keyless local endpoints (vLLM,
      Ollama) get a placeholder key.

Cost
    Usage is recorded per answer; cost uses ``pricing.PRICES_PER_MTOK`` (or ``price_per_mtok``).
    With ``budget_usd`` a sample is started only when the dollars spent, plus the estimates of
    answers in flight, plus its own estimate stay within the budget; once a sample does not fit, it
    and all later samples get ``None`` with reason ``budget exhausted`` (answers in the cache are
    still served: they cost nothing). The bookkeeping is :class:`iretouch_bench.clients.BudgetLedger`.

Cache
    Valid answers are cached on disk (:mod:`.cache`), keyed by everything that determines them,
    the endpoint (sanitised base URL) included: two servers serving one model name never share
    answers.
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import numpy as np

from ..clients import (BudgetLedger, Outcome, RateLimiter, Redactor, RetryPolicy, parse_retry_after, retry_call,
                       sanitise_url)
from ..clients.payload import data_url, png_bytes
from ..core.resize import fit_long_side
from . import pricing, prompts
from .base import SCORE_KEYS, Judge, JudgeError, JudgeRequest, JudgeResult, overall
from .cache import AnswerCache, answer_key, array_digest
from .parse import AnswerError, parse_answer

__all__ = ["OpenAIJudge", "DEFAULT_MODEL", "DEFAULT_SEED", "encode_image", "parse_retry_after", "RateLimiter"]

DEFAULT_MODEL = "gpt-4o-2024-08-06"
#: Floating aliases resolved to a pinned snapshot so that scores do not drift with the alias.
PINNED_ALIASES = {"gpt-4o": DEFAULT_MODEL}
DEFAULT_SEED = 20260527
DEFAULT_MAX_SIDE = 1024
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MAX_RETRIES = 5
DEFAULT_MAX_TOKENS = 400
ENCODING = "png"
DETAIL = "high"
OPENAI_DEFAULT_HOST = "api.openai.com"
OPENAI_DEFAULT_URL = f"https://{OPENAI_DEFAULT_HOST}/v1"
PLACEHOLDER_KEY = "sk-no-key-required"
# A different seed per answer retry: a prime stride keeps them away from the seeds of other samples.
_RETRY_SEED_STRIDE = 7919
#: Version of the answer-cache key layout (2: the endpoint is part of the key).
CACHE_KEY_VERSION = 2


def encode_image(image: np.ndarray, max_side: int) -> tuple[str, tuple[int, int]]:
    """float ``[H, W, 3]`` in [0, 1] -> (``data:image/png;base64,...`` URL, (w, h) sent)."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"judge image must be [H, W, 3], got {arr.shape}")
    png, (h, w) = png_bytes(arr, max_side=max_side)
    return data_url(png), (w, h)


@dataclass
class _Call:
    """One answer to obtain: a prompt kind for one request, the ``sample``-th of N."""

    req_index: int
    kind: str
    sample: int
    key: str
    est_cost: float = 0.0
    outcome: dict[str, Any] = field(default_factory=dict)


class OpenAIJudge(Judge):
    """The VLM judge. Build it with :func:`iretouch_bench.judge.make_judge`."""

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str | None = None,
        samples: int = 1,
        cache_mode: str = "use",
        budget_usd: float | None = None,
        concurrency: int = 4,
        requests_per_minute: float | None = None,
        max_side: int = DEFAULT_MAX_SIDE,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        cache_dir: str | os.PathLike | None = None,
        seed: int = DEFAULT_SEED,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        price_per_mtok: tuple[float, float] | None = None,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 60.0,
        retry_after_cap_s: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        spec: str | None = None,
    ):
        requested = model or DEFAULT_MODEL
        self.model_requested = requested
        self.model = PINNED_ALIASES.get(requested, requested)
        self.spec = spec or f"openai:{requested}"
        if samples < 1:
            raise JudgeError(f"judge samples must be >= 1, got {samples}")
        if concurrency < 1:
            raise JudgeError(f"judge concurrency must be >= 1, got {concurrency}")
        if max_side < 64:
            raise JudgeError(f"judge max image side must be >= 64 pixels, got {max_side}")
        if max_retries < 0:
            raise JudgeError(f"judge max retries must be >= 0, got {max_retries}")
        self.samples = samples
        self.concurrency = concurrency
        self.max_side = max_side
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.seed = seed
        self.temperature = 0.0
        self.max_tokens = max_tokens
        self.backoff_base_s, self.backoff_cap_s = backoff_base_s, backoff_cap_s
        self.retry_after_cap_s = retry_after_cap_s
        self.policy = RetryPolicy(max_retries=max_retries, backoff_base_s=backoff_base_s,
                                  backoff_cap_s=backoff_cap_s, retry_after_cap_s=retry_after_cap_s,
                                  sleep=sleep, rng=rng or random.Random())
        if requests_per_minute is not None and not requests_per_minute > 0:
            raise JudgeError(f"judge requests per minute must be > 0, got {requests_per_minute}")
        self.rate_limiter = RateLimiter(requests_per_minute, sleep=sleep)
        self.requests_per_minute = requests_per_minute

        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        #: the endpoint without credentials: recorded, and part of every answer's cache key
        self.endpoint = sanitise_url(self.base_url) or OPENAI_DEFAULT_URL
        self.price = tuple(price_per_mtok) if price_per_mtok is not None else pricing.price_for(self.model)
        self.price_source = "price_per_mtok argument" if price_per_mtok is not None else (
            pricing.PRICE_SOURCE if self.price is not None else "no price known for this model")
        if budget_usd is not None:
            if budget_usd < 0:
                raise JudgeError(f"judge budget must be >= 0 USD, got {budget_usd}")
            if self.price is None:
                raise JudgeError(
                    f"judge budget: no price known for model {self.model!r}; give price_per_mtok "
                    "(USD per million input, output tokens) or drop the budget")
        self.budget_usd = budget_usd
        self.ledger = BudgetLedger(budget_usd)

        if cache_dir is None:
            from ..core.atomic import cache_dir as user_cache

            cache_dir = user_cache("judge")
        self.cache = AnswerCache(Path(cache_dir), cache_mode)

        self.prompt_hash = prompts.prompt_hash()
        self._client = None
        self._client_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._fatal: str | None = None
        self._snapshots: set[str] = set()
        self._fingerprints: set[str] = set()
        self.api_calls = 0  # HTTP requests sent (including failed attempts)
        self.answers_from_api = 0
        self.usage_total = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}

    # ------------------------------------------------------------------ credentials / client
    def _api_key(self) -> str:
        key = os.environ.get("OPENAI_API_KEY")
        if key:
            return key
        host = urlsplit(self.base_url).hostname if self.base_url else OPENAI_DEFAULT_HOST
        if host == OPENAI_DEFAULT_HOST:
            raise JudgeError(
                f"judge {self.spec}: OPENAI_API_KEY is not set (set it in the environment, or point "
                "--judge-base-url / OPENAI_BASE_URL at a local endpoint)")
        return PLACEHOLDER_KEY

    def key_source(self) -> str:
        if os.environ.get("OPENAI_API_KEY"):
            return "OPENAI_API_KEY environment variable"
        host = urlsplit(self.base_url).hostname if self.base_url else OPENAI_DEFAULT_HOST
        if host == OPENAI_DEFAULT_HOST:
            return "missing (OPENAI_API_KEY is not set)"
        return "none (placeholder key for a keyless endpoint)"

    def preflight(self) -> None:
        """Raise :class:`JudgeError` now if API calls could not be made (e.g. no key)."""
        self._api_key()

    def _get_client(self):
        with self._client_lock:
            if self._client is None:
                import openai

                self._client = openai.OpenAI(
                    api_key=self._api_key(), base_url=self.base_url, timeout=self.timeout_s,
                    max_retries=0,  # retries are ours: Retry-After, jitter and budget checks
                )
            return self._client

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    #: Removes the API key from any string (a server may echo it in an error body).
    _redact = Redactor(env=("OPENAI_API_KEY",))

    # ------------------------------------------------------------------ keys and estimates
    def _key_fields(self, kind: str, sample: int, in_digest: str | None, out_digest: str,
                    instruction: str | None) -> dict[str, Any]:
        # PQ sees only the output image, so its key omits the input and the instruction: the same
        # output judged for two instructions is one PQ answer.
        return {
            "v": CACHE_KEY_VERSION, "endpoint": self.endpoint, "kind": kind, "sample": sample, "seed": self.seed + sample,
            "input": in_digest if kind == "sc" else None, "output": out_digest,
            "instruction": instruction if kind == "sc" else None,
            "model": self.model, "prompt_version": prompts.PROMPT_VERSION,
            "prompt_hash": self.prompt_hash, "temperature": self.temperature,
            "max_tokens": self.max_tokens, "max_side": self.max_side, "encoding": ENCODING,
            "detail": DETAIL,
        }

    def _est_tokens(self, kind: str, sizes: list[tuple[int, int]], instruction: str) -> tuple[int, int]:
        system, user = prompts.render(kind, instruction)
        tin = pricing.text_tokens(system) + pricing.text_tokens(user) + 20
        tin += sum(pricing.image_tokens(w, h) for w, h in sizes)
        return tin, self.max_tokens

    def _est_cost(self, kind: str, sizes: list[tuple[int, int]], instruction: str) -> float:
        if self.price is None:
            return 0.0
        tin, tout = self._est_tokens(kind, sizes, instruction)
        return pricing.cost_usd(tin, tout, self.price) or 0.0

    def estimate(self, n_samples: int) -> dict[str, Any]:
        """Calls and dollars for ``n_samples`` samples with nothing cached (an upper bound).

        Assumes 4:3 images at the long side ``max_side`` and answers of the full ``max_tokens``.
        """
        w, h = self.max_side, round(self.max_side * 3 / 4)
        instr = "x" * 80
        per_sample_calls = 2 * self.samples
        calls = n_samples * per_sample_calls
        tin_sc, tout = self._est_tokens("sc", [(w, h), (w, h)], instr)
        tin_pq, _ = self._est_tokens("pq", [(w, h)], instr)
        tokens_in = n_samples * self.samples * (tin_sc + tin_pq)
        tokens_out = calls * tout
        cost = pricing.cost_usd(tokens_in, tokens_out, self.price)
        note = (f"{n_samples} samples x 2 questions (SC, PQ) x {self.samples} answer(s) with "
                f"{self.model}; <= {tokens_in} input + {tokens_out} output tokens assuming 4:3 "
                f"images at {self.max_side}px; answers already in the cache cost nothing")
        if cost is None:
            note += "; no price known for this model, cost not estimated"
        return {"calls": calls, "est_cost_usd": None if cost is None else round(cost, 4),
                "est_input_tokens": tokens_in, "est_output_tokens": tokens_out, "note": note}

    # ------------------------------------------------------------------ info
    def info(self) -> dict[str, Any]:
        with self._stats_lock:
            return {
                "spec": self.spec,
                "kind": "openai-compatible",
                "model_requested": self.model_requested,
                "model_sent": self.model,
                "model_snapshots": sorted(self._snapshots),
                "system_fingerprints": sorted(self._fingerprints),
                "base_url": self.endpoint,
                "api_key_source": self.key_source(),
                "prompt_version": prompts.PROMPT_VERSION,
                "prompt_hash": self.prompt_hash,
                "protocol": "VIEScore structure: SC=min(editing success, over-editing | source+edited+"
                            "instruction), PQ=min(naturalness, artifacts | edited), O=sqrt(SC*PQ); "
                            "median over samples",
                "temperature": self.temperature,
                "seed": self.seed,
                "samples": self.samples,
                "max_tokens": self.max_tokens,
                "image_encoding": ENCODING,
                "image_max_side": self.max_side,
                "image_detail": DETAIL,
                "timeout_s": self.timeout_s,
                "max_retries": self.max_retries,
                "concurrency": self.concurrency,
                "requests_per_minute": self.requests_per_minute,
                "cache_mode": self.cache.mode,
                "cache_dir": str(self.cache.root),
                "price_per_mtok_usd": None if self.price is None else
                    {"input": self.price[0], "output": self.price[1]},
                "price_source": self.price_source,
                "budget_usd": self.budget_usd,
                "spent_usd": None if self.price is None else round(self.ledger.spent_usd, 6),
                "api_requests": self.api_calls,
                "answers_from_api": self.answers_from_api,
                "answers_from_cache": self.cache.hits,
                "usage_tokens": dict(self.usage_total),
            }

    # ------------------------------------------------------------------ one answer
    def _ask(self, messages_for_seed: Callable[[], list[dict[str, Any]]], call: _Call) -> dict[str, Any]:
        """Obtain one valid answer through the shared retry loop; returns an outcome dict (``ok``).

        Transport errors and unusable answers (unparseable, out of range, refused) are both
        retried; an unusable answer is asked again with another seed (same messages).
        """
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        cost = 0.0
        bad_answers = 0
        base_seed = self.seed + call.sample
        messages: list[list[dict[str, Any]]] = []

        def before_attempt(attempt: int) -> str | None:
            if self._fatal:
                return self._fatal
            if attempt > 0 and self.ledger.over():
                return "budget exhausted"
            return None

        def attempt_fn(attempt: int) -> Outcome:
            nonlocal cost, bad_answers
            seed = base_seed + _RETRY_SEED_STRIDE * bad_answers
            if not messages:
                messages.append(messages_for_seed())
            client = self._get_client()
            with self._stats_lock:
                self.api_calls += 1
            t0 = time.monotonic()
            # openai errors (timeouts, statuses) are classified by the retry loop
            resp = client.chat.completions.create(
                model=self.model, messages=messages[0], temperature=self.temperature, seed=seed,
                max_tokens=self.max_tokens,
            )
            # An answer arrived: it is billed whether or not it is usable.
            u = getattr(resp, "usage", None)
            pt = int(getattr(u, "prompt_tokens", 0) or 0)
            ct = int(getattr(u, "completion_tokens", 0) or 0)
            c = pricing.cost_usd(pt, ct, self.price) or 0.0
            usage["prompt_tokens"] += pt
            usage["completion_tokens"] += ct
            usage["total_tokens"] += pt + ct
            cost += c
            self.ledger.charge(c)
            with self._stats_lock:
                self.usage_total["prompt_tokens"] += pt
                self.usage_total["completion_tokens"] += ct
                self.usage_total["total_tokens"] += pt + ct
                if getattr(resp, "model", None):
                    self._snapshots.add(resp.model)
                if getattr(resp, "system_fingerprint", None):
                    self._fingerprints.add(resp.system_fingerprint)
            choice = resp.choices[0] if resp.choices else None
            msg = choice.message if choice is not None else None
            text = getattr(msg, "content", None) if msg is not None else None
            refusal = getattr(msg, "refusal", None) if msg is not None else None
            finish = getattr(choice, "finish_reason", None)
            record = {"seed": seed, "model": getattr(resp, "model", None),
                      "system_fingerprint": getattr(resp, "system_fingerprint", None),
                      "finish_reason": finish, "text": self._redact(text),
                      "usage": {"prompt_tokens": pt, "completion_tokens": ct},
                      "latency_s": round(time.monotonic() - t0, 3)}
            if refusal:
                error = "refusal: " + " ".join(str(refusal).split())[:160]
            elif finish == "content_filter":
                error = "refusal: answer stopped by the endpoint's content filter"
            else:
                try:
                    parsed = parse_answer(text)
                except AnswerError as err:
                    error = str(err)
                    if finish == "length":
                        error += f" (answer cut at max_tokens={self.max_tokens})"
                else:
                    reasoning = self._redact(parsed.reasoning)
                    with self._stats_lock:
                        self.answers_from_api += 1
                    return Outcome.ok({"ok": True, "kind": call.kind, "sample": call.sample,
                                       "score": list(parsed.score), "reasoning": reasoning,
                                       "text": record["text"], "model": record["model"],
                                       "system_fingerprint": record["system_fingerprint"], "seed": seed})
            bad_answers += 1  # the next attempt uses another seed (same messages)
            return Outcome.retry(error, record=record)

        res = retry_call(attempt_fn, self.policy, redact=self._redact, before_attempt=before_attempt,
                         rate_limiter=self.rate_limiter, timeout_s=self.timeout_s)
        if res.ok:
            return {**res.value, "attempts": res.attempts, "usage": usage, "cost_usd": cost, "cached": False}
        if res.fatal:  # a wrong key or model name fails every call: stop the batch
            with self._stats_lock:
                self._fatal = self._redact(f"judge endpoint refused the request ({res.reason})")
            return self._fail(call, self._fatal, res.attempts, usage, cost)
        return self._fail(call, res.reason, res.attempts, usage, cost)

    def _fail(self, call: _Call, reason: str, attempts, usage, cost) -> dict[str, Any]:
        return {"ok": False, "kind": call.kind, "sample": call.sample, "reason": self._redact(reason),
                "attempts": attempts, "usage": usage, "cost_usd": cost, "cached": False}

    # ------------------------------------------------------------------ batch
    def score_batch(self, requests: list[JudgeRequest]) -> list[JudgeResult]:
        """Judge ``requests`` (results in the same order). See the module docstring for the rules."""
        n = len(requests)
        digests: list[tuple[str, str]] = [(array_digest(r.input_rgb), array_digest(r.output_rgb)) for r in requests]
        calls_per_req: list[list[_Call]] = []
        for i, r in enumerate(requests):
            calls = []
            for kind in ("sc", "pq"):
                for s in range(self.samples):
                    key = answer_key(self._key_fields(kind, s, digests[i][0], digests[i][1], r.instruction))
                    calls.append(_Call(i, kind, s, key))
            calls_per_req.append(calls)

        # 1. Cache: served first, free, budget-independent.
        misses: list[list[_Call]] = [[] for _ in range(n)]
        for i, calls in enumerate(calls_per_req):
            for c in calls:
                entry = self.cache.get(c.key)
                if entry is not None and entry.get("score") is not None:
                    c.outcome = {"ok": True, "kind": c.kind, "sample": c.sample, "score": entry["score"],
                                 "reasoning": entry.get("reasoning", ""), "text": entry.get("text"),
                                 "model": entry.get("model"), "system_fingerprint": entry.get("system_fingerprint"),
                                 "seed": entry.get("seed"), "usage": {"prompt_tokens": 0, "completion_tokens": 0,
                                                                      "total_tokens": 0},
                                 "original_usage": entry.get("usage"), "cost_usd": 0.0, "cached": True,
                                 "cached_at": entry.get("created")}
                    if entry.get("model"):
                        with self._stats_lock:
                            self._snapshots.add(entry["model"])
                else:
                    misses[i].append(c)

        # 2. API: admitted sample by sample, in order, within the budget; N answers in flight.
        encoded: dict[tuple[int, str], tuple[str, tuple[int, int]]] = {}
        enc_locks = [threading.Lock() for _ in range(n)]

        def image_url(i: int, which: str) -> str:
            with enc_locks[i]:
                if (i, which) not in encoded:
                    img = requests[i].input_rgb if which == "in" else requests[i].output_rgb
                    encoded[(i, which)] = encode_image(img, self.max_side)
                return encoded[(i, which)][0]

        def messages_for(c: _Call) -> Callable[[], list[dict[str, Any]]]:
            def build() -> list[dict[str, Any]]:
                system, user = prompts.render(c.kind, requests[c.req_index].instruction)
                content: list[dict[str, Any]] = [{"type": "text", "text": user}]
                images = ["in", "out"] if c.kind == "sc" else ["out"]
                for which in images:
                    content.append({"type": "image_url",
                                    "image_url": {"url": image_url(c.req_index, which), "detail": DETAIL}})
                return [{"role": "system", "content": system}, {"role": "user", "content": content}]
            return build

        def run_call(c: _Call) -> None:
            try:
                try:
                    out = self._ask(messages_for(c), c)
                except JudgeError:
                    raise
                except Exception as err:  # a bug or an unexpected client error must not kill the batch
                    out = self._fail(c, f"judge error: {type(err).__name__}: {err}", [], {}, 0.0)
                c.outcome = out
                if out.get("ok") and not out.get("cached"):
                    try:
                        self.cache.put(c.key, {
                            "kind": c.kind, "sample": c.sample, "score": out["score"],
                            "reasoning": out["reasoning"], "text": out["text"], "model": out["model"],
                            "system_fingerprint": out["system_fingerprint"], "seed": out["seed"],
                            "usage": out["usage"], "model_requested": self.model,
                            "prompt_version": prompts.PROMPT_VERSION, "prompt_hash": self.prompt_hash,
                            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        })
                    except OSError as err:  # the answer is still good; only the rerun will pay again
                        out["cache_error"] = f"cache write failed: {err}"
            finally:
                # Always release the reservation, or the admission loop would wait forever.
                self.ledger.release(c.est_cost)

        need_api = any(misses)
        if need_api and not self._fatal:
            self._get_client()  # raises JudgeError now (no key) rather than once per call
        futures = []
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="judge") as pool:
            for i in range(n):
                if not misses[i]:
                    continue
                if self._fatal:
                    for c in misses[i]:
                        c.outcome = self._fail(c, self._fatal, [], {}, 0.0)
                    continue
                if self.budget_usd is not None:
                    r = requests[i]
                    h_in, w_in = r.input_rgb.shape[:2]
                    h_out, w_out = r.output_rgb.shape[:2]
                    s_in = fit_long_side(h_in, w_in, self.max_side)[::-1]
                    s_out = fit_long_side(h_out, w_out, self.max_side)[::-1]
                    for c in misses[i]:
                        sizes = [s_in, s_out] if c.kind == "sc" else [s_out]
                        c.est_cost = self._est_cost(c.kind, sizes, r.instruction)
                    need = sum(c.est_cost for c in misses[i])
                    # Admission waits while answers in flight may free budget (see clients.budget).
                    admitted = self.ledger.admit(need)
                    if not admitted:
                        for c in misses[i]:
                            c.est_cost = 0.0
                            c.outcome = self._fail(c, "budget exhausted", [], {}, 0.0)
                        continue
                for c in misses[i]:
                    futures.append(pool.submit(run_call, c))
            for f in futures:
                f.result()  # re-raise JudgeError from a worker
        encoded.clear()

        return [self._result(calls) for calls in calls_per_req]

    def _result(self, calls: list[_Call]) -> JudgeResult:
        values: dict[str, float | None] = {}
        reasons: dict[str, str] = {}
        raw: list[dict[str, Any]] = []
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "api_calls": 0}
        cost = 0.0
        for kind in ("sc", "pq"):
            outs = [c.outcome for c in calls if c.kind == kind]
            raw.extend(outs)
            failed = [o for o in outs if not o.get("ok")]
            if failed:
                values[kind] = None
                why = failed[0].get("reason", "unknown failure")
                reasons[kind] = why if len(outs) == 1 else f"{len(failed)} of {len(outs)} answers failed: {why}"
            else:
                # VIEScore: the question's score is the min of its two sub-scores; N answers -> median.
                values[kind] = float(statistics.median(min(o["score"]) for o in outs))
        for o in raw:
            u = o.get("usage") or {}
            for k in ("prompt_tokens", "completion_tokens", "total_tokens"):
                usage[k] += int(u.get(k, 0) or 0)
            usage["api_calls"] += len(o.get("attempts") or []) + (1 if o.get("ok") and not o.get("cached") else 0)
            cost += float(o.get("cost_usd") or 0.0)
        values["o"] = overall(values["sc"], values["pq"])
        if values["o"] is None:
            missing = [k for k in ("sc", "pq") if values[k] is None]
            reasons["o"] = "; ".join(f"{k} unavailable ({reasons[k]})" for k in missing)
        cached = bool(raw) and all(o.get("cached") for o in raw)
        assert set(values) == set(SCORE_KEYS)
        return JudgeResult(values=values, reasons=reasons, raw=raw, usage=usage,
                           cost_usd=None if self.price is None else round(cost, 8), cached=cached)
