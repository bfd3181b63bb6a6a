"""The machinery every API judge shares: questions, answer cache, budget, concurrency, retries.

Protocol (VIEScore / GEdit-Bench structure; the wording is the prompt set's, see :mod:`.prompts`):
per sample, an **SC** question and a **PQ** question (which images each shows is the prompt set's
choice; the default: SC the source + retouched image + instruction, PQ the retouched image alone),
each answered ``{"score": [a, b]}`` on 0-10; ``SC = min`` and ``PQ = min`` of their pair,
``O = sqrt(SC * PQ)``. With ``samples = N`` each question is asked N times (seeds ``seed, seed+1,
...``) and the per-answer ``min`` values are reduced by the **median**; a score is reported only
when all N answers are valid, otherwise it is ``None`` with the failure reason (no partial
medians, no fills: a parse failure after the retries stays a recorded failure).

Subclasses (:class:`~.openai_judge.OpenAIJudge`, :class:`~.gemini_judge.GeminiJudge`) only say
how to build a client, send one question and read its answer (:meth:`ApiJudge._send`), where the
key comes from, and what an image costs in tokens.

Robustness
    * Retries go through the suite's one retry loop (:func:`iretouch_bench.clients.retry_call`),
      at most ``max_retries`` times per answer, on 408/409/429/5xx, timeouts and connection
      errors (backoff with jitter, or exactly a ``Retry-After``), and on unusable answers
      (unparseable, out of range, refused), which are asked again with seed ``seed + 7919*k``.
      401/403/404 stop the whole batch (a wrong key or model name fails every call).
    * The key is read from the environment only and redacted from every string the judge stores.

Cost
    Usage is recorded per answer; cost uses the subclass's price table (or ``price_per_mtok``).
    With a budget a sample is started only when spent + in-flight estimates + its own estimate
    stay within it (:class:`iretouch_bench.clients.BudgetLedger`; several judges of one run can
    share one ledger, so ``--judge-budget`` bounds them together).

Cache
    Valid answers are cached on disk (:mod:`.cache`), keyed by everything that determines them:
    endpoint, model, question, prompt-set hash, images, image options, temperature, seed.
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

from ..clients import BudgetLedger, Outcome, RateLimiter, Redactor, RetryPolicy, retry_call
from . import pricing
from .base import SCORE_KEYS, Judge, JudgeError, JudgeRequest, JudgeResult, overall
from .cache import AnswerCache, answer_key, array_digest
from .images import DEFAULT_MAX_SIDE, ImageOptions, encode
from .parse import AnswerError, parse_answer
from .prompts import PLACEHOLDER, PromptSet, PromptSetError, resolve_prompt_set

DEFAULT_SEED = 20260527
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MAX_RETRIES = 5
DEFAULT_MAX_TOKENS = 400
# A different seed per answer retry: a prime stride keeps them away from the seeds of other samples.
_RETRY_SEED_STRIDE = 7919
#: Version of the answer-cache key layout (3: prompt-set hash, image options, temperature, provider).
CACHE_KEY_VERSION = 3


@dataclass
class Reply:
    """One answer as the API returned it (whatever the provider's wire format)."""

    text: str | None
    model: str | None = None
    fingerprint: str | None = None
    finish: str | None = None
    refusal: str | None = None  # a refusal the API flagged (not one the parser recognised)
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class _Call:
    """One answer to obtain: a prompt kind for one request, the ``sample``-th of N."""

    req_index: int
    kind: str
    sample: int
    key: str
    est_cost: float = 0.0
    outcome: dict[str, Any] = field(default_factory=dict)


class ApiJudge(Judge):
    """Base of the VLM judges that call an API. Build them with :func:`iretouch_bench.judge.make_judge`."""

    #: ``info()["kind"]``, and part of the cache key
    KIND = "api"
    #: environment variables holding the key (first set wins); redacted everywhere
    KEY_ENV: tuple[str, ...] = ()
    DEFAULT_MODEL: str = ""
    PINNED_ALIASES: dict[str, str] = {}
    DEFAULT_MAX_TOKENS = DEFAULT_MAX_TOKENS

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
        max_side: int | None = DEFAULT_MAX_SIDE,
        image_format: str = "png",
        image_quality: int | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        cache_dir: str | os.PathLike | None = None,
        seed: int = DEFAULT_SEED,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        price_per_mtok: tuple[float, float] | None = None,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 60.0,
        retry_after_cap_s: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        prompts: PromptSet | str | os.PathLike | None = None,
        ledger: BudgetLedger | None = None,
        spec: str | None = None,
    ):
        requested = model or self.DEFAULT_MODEL
        self.model_requested = requested
        self.model = self.PINNED_ALIASES.get(requested, requested)
        self.spec = spec or requested
        if samples < 1:
            raise JudgeError(f"judge samples must be >= 1, got {samples}")
        if concurrency < 1:
            raise JudgeError(f"judge concurrency must be >= 1, got {concurrency}")
        if max_retries < 0:
            raise JudgeError(f"judge max retries must be >= 0, got {max_retries}")
        if not 0.0 <= float(temperature) <= 2.0:
            raise JudgeError(f"judge temperature must be in [0, 2], got {temperature}")
        try:
            self.image = ImageOptions(image_format, image_quality, max_side)
        except ValueError as err:
            raise JudgeError(str(err)) from None
        try:
            self.prompts = resolve_prompt_set(prompts)
        except PromptSetError as err:
            raise JudgeError(str(err)) from None
        self.samples = samples
        self.concurrency = concurrency
        self.max_side = self.image.max_side
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.seed = int(seed)
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens) if max_tokens is not None else self.DEFAULT_MAX_TOKENS
        self.policy = RetryPolicy(max_retries=max_retries, backoff_base_s=backoff_base_s,
                                  backoff_cap_s=backoff_cap_s, retry_after_cap_s=retry_after_cap_s,
                                  sleep=sleep, rng=rng or random.Random())
        if requests_per_minute is not None and not requests_per_minute > 0:
            raise JudgeError(f"judge requests per minute must be > 0, got {requests_per_minute}")
        self.rate_limiter = RateLimiter(requests_per_minute, sleep=sleep)
        self.requests_per_minute = requests_per_minute

        self.base_url = base_url or self._base_url_from_env()
        self.endpoint = self._endpoint()
        self.price = tuple(price_per_mtok) if price_per_mtok is not None else self._price_for(self.model)
        self.price_source = "price_per_mtok argument" if price_per_mtok is not None else (
            self._price_source() if self.price is not None else "no price known for this model")
        if budget_usd is not None:
            if budget_usd < 0:
                raise JudgeError(f"judge budget must be >= 0 USD, got {budget_usd}")
            if self.price is None:
                raise JudgeError(
                    f"judge {self.spec} budget: no price known for model {self.model!r}; give price_per_mtok "
                    "(USD per million input, output tokens) or drop the budget")
        self.budget_usd = budget_usd if ledger is None else ledger.budget_usd
        self.ledger = ledger if ledger is not None else BudgetLedger(budget_usd)

        if cache_dir is None:
            from ..core.atomic import cache_dir as user_cache

            cache_dir = user_cache("judge")
        self.cache = AnswerCache(Path(cache_dir), cache_mode)

        self.prompt_hash = self.prompts.hash
        self._redact = Redactor(env=self.KEY_ENV)
        self._client = None
        self._client_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._fatal: str | None = None
        self._snapshots: set[str] = set()
        self._fingerprints: set[str] = set()
        self.api_calls = 0  # HTTP requests sent (including failed attempts)
        self.answers_from_api = 0
        self.usage_total = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}

    # ------------------------------------------------------------------ subclass hooks
    def _base_url_from_env(self) -> str | None:
        return None

    def _endpoint(self) -> str:
        """The endpoint without credentials: recorded, and part of every answer's cache key."""
        raise NotImplementedError

    def _price_for(self, model: str) -> tuple[float, float] | None:
        return pricing.price_for(model)

    def _price_source(self) -> str:
        return pricing.PRICE_SOURCE

    def _api_key(self) -> str:
        raise NotImplementedError

    def key_source(self) -> str:
        raise NotImplementedError

    def _make_client(self):
        raise NotImplementedError

    def _send(self, client, system: str, user: str, images: list[tuple[bytes, str]], seed: int) -> Reply:
        """Ask one question; ``images``: ``(bytes, mime)`` in the prompt set's order. Library errors
        propagate (the retry loop classifies them); a 200 answer comes back as a :class:`Reply`."""
        raise NotImplementedError

    def _classify(self, err: BaseException, timeout_s: float | None) -> Outcome | None:
        from ..clients import exception_outcome

        return exception_outcome(err, timeout_s)

    def _image_tokens(self, w: int, h: int) -> int:
        return pricing.image_tokens(w, h)

    def _info_extra(self) -> dict[str, Any]:
        return {}

    # ------------------------------------------------------------------ credentials / client
    def preflight(self) -> None:
        """Raise :class:`JudgeError` now if API calls could not be made (e.g. no key)."""
        self._api_key()

    def _get_client(self):
        with self._client_lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                closer = getattr(self._client, "close", None)
                if callable(closer):
                    closer()
                self._client = None

    # ------------------------------------------------------------------ keys and estimates
    def _key_fields(self, kind: str, sample: int, in_digest: str | None, out_digest: str,
                    instruction: str | None) -> dict[str, Any]:
        shown = self.prompts.images(kind)
        q = self.prompts.questions[kind]
        uses_instruction = PLACEHOLDER in q.system + q.user
        # a question that shows only the output and does not quote the instruction is one answer per
        # output, whatever the instruction (the default PQ question)
        return {
            "v": CACHE_KEY_VERSION, "provider": self.KIND, "endpoint": self.endpoint, "kind": kind,
            "sample": sample, "seed": self.seed + sample,
            "input": in_digest if "input" in shown else None,
            "output": out_digest if "output" in shown else None,
            "instruction": instruction if uses_instruction else None,
            "model": self.model, "prompt_hash": self.prompt_hash, "temperature": self.temperature,
            "max_tokens": self.max_tokens, "image": self.image.to_json(),
        }

    def _est_tokens(self, kind: str, sizes: dict[str, tuple[int, int]], instruction: str) -> tuple[int, int]:
        system, user = self.prompts.render(kind, instruction)
        tin = pricing.text_tokens(system) + pricing.text_tokens(user) + 20
        tin += sum(self._image_tokens(*sizes[role]) for role in self.prompts.images(kind))
        return tin, self.max_tokens

    def _est_cost(self, kind: str, sizes: dict[str, tuple[int, int]], instruction: str) -> float:
        if self.price is None:
            return 0.0
        tin, tout = self._est_tokens(kind, sizes, instruction)
        return pricing.cost_usd(tin, tout, self.price) or 0.0

    def estimate(self, n_samples: int) -> dict[str, Any]:
        """Calls and dollars for ``n_samples`` samples with nothing cached (an upper bound).

        Assumes 4:3 images at the long side ``max_side`` (1024 when native) and answers of the full
        ``max_tokens``.
        """
        side = self.max_side or 1024
        wh = (side, round(side * 3 / 4))
        sizes = {"input": wh, "output": wh}
        instr = "x" * 80
        calls = n_samples * 2 * self.samples
        tin_sc, tout = self._est_tokens("sc", sizes, instr)
        tin_pq, _ = self._est_tokens("pq", sizes, instr)
        tokens_in = n_samples * self.samples * (tin_sc + tin_pq)
        tokens_out = calls * tout
        cost = pricing.cost_usd(tokens_in, tokens_out, self.price)
        note = (f"{n_samples} samples x 2 questions (SC, PQ) x {self.samples} answer(s) with "
                f"{self.model}; <= {tokens_in} input + {tokens_out} output tokens assuming 4:3 "
                f"images at {side}px; answers already in the cache cost nothing")
        if cost is None:
            note += "; no price known for this model, cost not estimated"
        return {"spec": self.spec, "calls": calls, "est_cost_usd": None if cost is None else round(cost, 4),
                "est_input_tokens": tokens_in, "est_output_tokens": tokens_out, "note": note}

    # ------------------------------------------------------------------ info
    def info(self) -> dict[str, Any]:
        with self._stats_lock:
            return {
                "spec": self.spec,
                "kind": self.KIND,
                "model_requested": self.model_requested,
                "model_sent": self.model,
                "model_snapshots": sorted(self._snapshots),
                "system_fingerprints": sorted(self._fingerprints),
                "base_url": self.endpoint,
                "api_key_source": self.key_source(),
                "prompt_version": self.prompts.version,
                "prompt_hash": self.prompt_hash,
                "prompt_set": self.prompts.info(),
                "protocol": "VIEScore structure: SC=min of the SC pair, PQ=min of the PQ pair, O=sqrt(SC*PQ); "
                            f"images SC={'+'.join(self.prompts.images('sc'))}, "
                            f"PQ={'+'.join(self.prompts.images('pq'))}; median over samples",
                "temperature": self.temperature,
                "seed": self.seed,
                "samples": self.samples,
                "max_tokens": self.max_tokens,
                "image": self.image.to_json(),
                "image_encoding": self.image.format,
                "image_max_side": self.max_side,
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
                **self._info_extra(),
            }

    # ------------------------------------------------------------------ one answer
    def _ask(self, system: str, user: str, images: Callable[[], list[tuple[bytes, str]]], call: _Call) -> dict[str, Any]:
        """Obtain one valid answer through the shared retry loop; returns an outcome dict (``ok``)."""
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        cost = 0.0
        bad_answers = 0
        base_seed = self.seed + call.sample

        def before_attempt(attempt: int) -> str | None:
            if self._fatal:
                return self._fatal
            if attempt > 0 and self.ledger.over():
                return "budget exhausted"
            return None

        def attempt_fn(attempt: int) -> Outcome:
            nonlocal cost, bad_answers
            seed = base_seed + _RETRY_SEED_STRIDE * bad_answers
            client = self._get_client()
            with self._stats_lock:
                self.api_calls += 1
            t0 = time.monotonic()
            reply = self._send(client, system, user, images(), seed)  # library errors: classified by retry_call
            # An answer arrived: it is billed whether or not it is usable.
            pt, ct = int(reply.prompt_tokens or 0), int(reply.completion_tokens or 0)
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
                if reply.model:
                    self._snapshots.add(reply.model)
                if reply.fingerprint:
                    self._fingerprints.add(reply.fingerprint)
            record = {"seed": seed, "model": reply.model, "system_fingerprint": reply.fingerprint,
                      "finish_reason": reply.finish, "text": self._redact(reply.text),
                      "usage": {"prompt_tokens": pt, "completion_tokens": ct},
                      "latency_s": round(time.monotonic() - t0, 3)}
            if reply.refusal:
                error = "refusal: " + " ".join(str(reply.refusal).split())[:160]
            else:
                try:
                    parsed = parse_answer(reply.text)
                except AnswerError as err:
                    error = str(err)
                    if reply.finish in ("length", "MAX_TOKENS"):
                        error += f" (answer cut at max_tokens={self.max_tokens})"
                else:
                    with self._stats_lock:
                        self.answers_from_api += 1
                    return Outcome.ok({"ok": True, "kind": call.kind, "sample": call.sample,
                                       "score": list(parsed.score), "reasoning": self._redact(parsed.reasoning),
                                       "text": record["text"], "model": reply.model,
                                       "system_fingerprint": reply.fingerprint, "seed": seed})
            bad_answers += 1  # the next attempt uses another seed (same messages)
            return Outcome.retry(error, record=record)

        res = retry_call(attempt_fn, self.policy, redact=self._redact, before_attempt=before_attempt,
                         rate_limiter=self.rate_limiter, timeout_s=self.timeout_s, classify=self._classify)
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
        digests = [(array_digest(r.input_rgb), array_digest(r.output_rgb)) for r in requests]
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
        encoded: dict[tuple[int, str], tuple[bytes, str]] = {}
        enc_locks = [threading.Lock() for _ in range(n)]

        def image(i: int, role: str) -> tuple[bytes, str]:
            with enc_locks[i]:
                if (i, role) not in encoded:
                    img = requests[i].input_rgb if role == "input" else requests[i].output_rgb
                    encoded[(i, role)] = (encode(img, self.image)[0], self.image.mime)
                return encoded[(i, role)]

        def run_call(c: _Call) -> None:
            try:
                try:
                    system, user = self.prompts.render(c.kind, requests[c.req_index].instruction)
                    roles = self.prompts.images(c.kind)
                    out = self._ask(system, user, lambda: [image(c.req_index, r) for r in roles], c)
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
                            "usage": out["usage"], "model_requested": self.model, "provider": self.KIND,
                            "prompt_version": self.prompts.version, "prompt_hash": self.prompt_hash,
                            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        })
                    except OSError as err:  # the answer is still good; only the rerun will pay again
                        out["cache_error"] = f"cache write failed: {err}"
            finally:
                # Always release the reservation, or the admission loop would wait forever.
                self.ledger.release(c.est_cost)

        if any(misses) and not self._fatal:
            self._get_client()  # raises JudgeError now (no key) rather than once per call
        futures = []
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix=f"judge-{self.KIND}") as pool:
            for i in range(n):
                if not misses[i]:
                    continue
                if self._fatal:
                    for c in misses[i]:
                        c.outcome = self._fail(c, self._fatal, [], {}, 0.0)
                    continue
                if self.ledger.budget_usd is not None:
                    r = requests[i]
                    sizes = {"input": self.image.sent_size(*r.input_rgb.shape[:2]),
                             "output": self.image.sent_size(*r.output_rgb.shape[:2])}
                    for c in misses[i]:
                        c.est_cost = self._est_cost(c.kind, sizes, r.instruction)
                    need = sum(c.est_cost for c in misses[i])
                    # Admission waits while answers in flight may free budget (see clients.budget).
                    if not self.ledger.admit(need):
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
                           cost_usd=None if self.price is None else round(cost, 8), cached=cached,
                           spec=self.spec, prompt_hash=self.prompt_hash)
