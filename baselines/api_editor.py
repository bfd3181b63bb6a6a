"""What the three API editors share: options, keys, endpoint, the call's life cycle, the cache.

Not a model itself; :mod:`.gpt_image`, :mod:`.gemini_image` and :mod:`.flux_kontext` subclass
:class:`ApiEditor` and implement :meth:`ApiEditor._prepare` (what to send) and
:meth:`ApiEditor._attempt` (one request; returns a :class:`~iretouch_bench.clients.Outcome`).

One :meth:`~ApiEditor.run`:

1. the response cache (:class:`~iretouch_bench.clients.ResponseCache`, keyed by the adapter,
   model id, endpoint, the options that change an answer, the input pixels, instruction, mask,
   seed and strength): a hit is served with no request and ``cost_usd = 0``;
2. the budget (``budget_usd`` model arg, :class:`~iretouch_bench.clients.BudgetLedger`): the
   call's estimate is reserved, or the call is refused before anything is sent;
3. the shared retry loop (:func:`~iretouch_bench.clients.retry_call`): 429 / 5xx / timeouts /
   dropped connections / malformed answers retried with backoff + jitter or ``Retry-After``,
   under the rate limit (``requests_per_minute``); a 401/403/404 (wrong key, unknown or retired
   model id) stops this adapter for good with one line naming the model id;
4. the answer: an image (decoded, brought back to the input size with the suite's one resizer,
   :func:`iretouch_bench.core.resize.match_size`, and the resize recorded), or a refusal
   (moderation, safety filter, an answer without an image) as ``RetouchResult.refused``.
   A failure (retries spent, a fatal status) is a :class:`ModelError` with one line.

Keys come from the environment only (never an option, never recorded: every string stored or
returned passes the :class:`~iretouch_bench.clients.Redactor`); the endpoint is recorded
without credentials (:func:`~iretouch_bench.clients.sanitise_url`).

Options common to all three (``--model-args key=value,...``): ``model`` (the remote model id;
a substitute is a different leaderboard row), ``base_url``, ``timeout_s``, ``max_retries``,
``backoff_base_s``, ``backoff_cap_s``, ``retry_after_cap_s``, ``requests_per_minute``,
``budget_usd``, ``cache`` (``use`` | ``refresh`` | ``off``), ``cache_dir``; tests also pass
``sleep`` and ``rng`` (Python objects) to make waits instant and jitter reproducible.
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

import numpy as np

from iretouch_bench.adapters.base import RetouchModel, RetouchRequest, RetouchResult
from iretouch_bench.clients import (BudgetLedger, Outcome, RateLimiter, Redactor, ResponseCache, RetryPolicy,
                                    array_digest, exception_outcome, retry_call, sanitise_url, stable_key)
from iretouch_bench.clients.cache import CACHE_MODES
from iretouch_bench.clients.payload import PayloadError, decode_image
from iretouch_bench.core.atomic import cache_dir as user_cache_dir
from iretouch_bench.core.errors import ModelError, one_line
from iretouch_bench.core.resize import match_size

#: Version of the response-cache key layout of the API editors.
CACHE_KEY_VERSION = 1
#: Options every API editor takes (the subclass adds its own in ``EXTRA_OPTIONS``).
COMMON_OPTIONS = ("model", "base_url", "timeout_s", "max_retries", "backoff_base_s", "backoff_cap_s",
                  "retry_after_cap_s", "requests_per_minute", "budget_usd", "cache", "cache_dir", "sleep", "rng")
#: Placeholder key for a keyless endpoint (a local server, a proxy that adds the key itself).
PLACEHOLDER_KEY = "no-key-required"


@dataclass
class Answer:
    """What one successful request brought back: image bytes, or a refusal reason."""

    image_bytes: bytes | None = None
    refusal: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    cost_usd: float | None = None


@dataclass
class Prepared:
    """What :meth:`ApiEditor._prepare` made of a request: payload and the sizes it implies."""

    payload: dict[str, Any]
    sent_size: tuple[int, int]            # (h, w) of the image sent
    working_size: tuple[int, int] | None  # (h, w) the model is asked to work at, if known before
    meta: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float | None] = field(default_factory=dict)


class ApiEditor(RetouchModel):
    """Base of the API editors (see the module docstring)."""

    kind = "api"
    own_cache = True  # see RetouchModel.own_cache: the runner passes cache=off unless asked otherwise
    max_concurrency = 4
    supports_strength = False

    #: environment variables holding the key, the first set one is used
    KEY_ENV: ClassVar[tuple[str, ...]] = ()
    #: environment variable(s) of the base URL, the first set one is used
    BASE_URL_ENV: ClassVar[tuple[str, ...]] = ()
    DEFAULT_BASE_URL: ClassVar[str] = ""
    DEFAULT_MODEL: ClassVar[str] = ""
    #: model id -> one line about its retirement (recorded in info(); on the official host a
    #: retired id is refused by preflight)
    RETIRED: ClassVar[dict[str, str]] = {}
    #: what to suggest when a model id is unknown or retired
    SUBSTITUTE_HINT: ClassVar[str] = ""
    #: option name -> default, for the options this adapter adds
    EXTRA_OPTIONS: ClassVar[dict[str, Any]] = {}
    #: options (common or extra) that change an answer: part of the cache key
    ANSWER_OPTIONS: ClassVar[tuple[str, ...]] = ()
    DEFAULT_TIMEOUT_S: ClassVar[float] = 180.0

    def __init__(self, device: str = "cpu", weights: str | None = None, **options: Any) -> None:
        super().__init__(device=device, weights=weights, **options)
        known = set(COMMON_OPTIONS) | set(self.EXTRA_OPTIONS)
        unknown = sorted(set(options) - known)
        if unknown:
            raise ModelError(f"model '{self.name}': unknown option(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known - {'sleep', 'rng'}))}")
        self.model_id = str(self._opt("model", str, self.DEFAULT_MODEL)).strip()
        if not self.model_id:
            raise ModelError(f"model '{self.name}': option model= is empty")
        base = self._opt("base_url", str, None) or next(
            (os.environ[v] for v in self.BASE_URL_ENV if os.environ.get(v)), None) or self.DEFAULT_BASE_URL
        self.base_url = str(base).rstrip("/")
        self.endpoint = sanitise_url(self.base_url)
        self.base_url_source = ("model arg base_url" if options.get("base_url") else
                                next((f"${v}" for v in self.BASE_URL_ENV if os.environ.get(v)), "default"))
        self.timeout_s = self._opt("timeout_s", float, self.DEFAULT_TIMEOUT_S, minimum=0.001)
        sleep = options["sleep"] if options.get("sleep") is not None else time.sleep
        self.policy = RetryPolicy(
            max_retries=self._opt("max_retries", int, 4, minimum=0),
            backoff_base_s=self._opt("backoff_base_s", float, 2.0, minimum=0.0),
            backoff_cap_s=self._opt("backoff_cap_s", float, 60.0, minimum=0.0),
            retry_after_cap_s=self._opt("retry_after_cap_s", float, 120.0, minimum=0.0),
            sleep=sleep, rng=options["rng"] if options.get("rng") is not None else random.Random())
        rpm = self._opt("requests_per_minute", float, None, minimum=1e-9)
        self.rate_limiter = RateLimiter(rpm, sleep=sleep)
        self.ledger = BudgetLedger(self._opt("budget_usd", float, None, minimum=0.0))
        mode = str(self._opt("cache", str, "use"))
        if mode not in CACHE_MODES:
            raise ModelError(f"model '{self.name}': option cache={mode!r}: expected one of {', '.join(CACHE_MODES)}")
        self._cache_mode = mode
        self._cache_root = self._opt("cache_dir", str, None)
        self._cache: ResponseCache | None = None
        self.redact = Redactor(env=self.KEY_ENV)
        self._lock = threading.Lock()
        self._client: Any = None
        self._fatal: str | None = None
        self._snapshots: set[str] = set()
        self.requests_sent = 0  # HTTP requests, failed attempts and polls included
        self.answers_from_cache = 0

    # ------------------------------------------------------------------ options
    def _opt(self, name: str, kind: type, default: Any, *, minimum: float | None = None,
             choices: tuple[str, ...] | None = None) -> Any:
        """Option ``name`` converted to ``kind`` (one-line ModelError naming it when it cannot be)."""
        if name not in self.options or self.options[name] is None:
            return default
        raw = self.options[name]
        try:
            value = _convert(raw, kind)
        except (TypeError, ValueError):
            what = {int: "an integer", float: "a number"}.get(kind, "a string")
            raise ModelError(f"model '{self.name}': option {name}={raw!r} is not {what}") from None
        if minimum is not None and value < minimum:
            raise ModelError(f"model '{self.name}': option {name}={raw!r} must be >= {minimum:g}")
        if choices is not None and value not in choices:
            raise ModelError(f"model '{self.name}': option {name}={raw!r}: expected one of {', '.join(choices)}")
        return value

    @property
    def cache(self) -> ResponseCache:
        if self._cache is None:
            # cache=off touches no folder at all
            root = self._cache_root or (user_cache_dir("api-editors", self.name) if self._cache_mode != "off" else ".")
            self._cache = ResponseCache(root, self._cache_mode, label=f"model '{self.name}' cache")
        return self._cache

    # ------------------------------------------------------------------ key, endpoint, readiness
    def _official_host(self) -> bool:
        return urlsplit(self.base_url).hostname == urlsplit(self.DEFAULT_BASE_URL).hostname

    def api_key(self) -> str:
        """The key from the first set variable of :attr:`KEY_ENV`; a placeholder for a custom
        endpoint without one; one-line ModelError for the official endpoint without one."""
        for var in self.KEY_ENV:
            if os.environ.get(var, "").strip():
                return os.environ[var].strip()
        if not self._official_host():
            return PLACEHOLDER_KEY
        raise ModelError(f"model '{self.name}': no API key: set {' or '.join('$' + v for v in self.KEY_ENV)} "
                         f"(or point base_url / ${self.BASE_URL_ENV[0] if self.BASE_URL_ENV else 'BASE_URL'} "
                         "at another endpoint)")

    def key_source(self) -> str:
        for var in self.KEY_ENV:
            if os.environ.get(var, "").strip():
                return f"${var}"
        return "none (placeholder key for a custom endpoint)" if not self._official_host() else "missing"

    def missing(self) -> list[str]:
        """What ``models list`` shows and preflight refuses: a missing key (official endpoint
        only: a local server or proxy may need none), a missing package, a retired model id."""
        out = super().missing()
        if not self._official_host():
            out = [m for m in out if not m.startswith("needs the key")]
        elif self.model_id in self.RETIRED:
            out.append(f"cannot run model id '{self.model_id}' here: it {self.RETIRED[self.model_id]}; choose "
                       f"another with --model-args model=ID ({self.SUBSTITUTE_HINT}); a substitute is recorded "
                       "in run.json and is a different leaderboard row")
        return out

    def preflight(self) -> None:
        super().preflight()  # raises with :meth:`missing`'s words
        self._check_package()

    def _check_package(self) -> None:
        """Import the client library now, so a missing one is one line before any work."""

    def unknown_model_line(self, detail: str) -> str:
        """The one line for a model id the endpoint does not serve (unknown or retired)."""
        retired = f"; {self.RETIRED[self.model_id]}" if self.model_id in self.RETIRED else ""
        return (f"model '{self.name}': the endpoint {self.endpoint} does not serve model id '{self.model_id}' "
                f"({one_line(detail, 200)}){retired}; choose another with --model-args model=ID "
                f"({self.SUBSTITUTE_HINT}); a substitute is a different leaderboard row")

    # ------------------------------------------------------------------ identity
    def answer_options(self) -> dict[str, Any]:
        """The resolved options that change an answer (cache key, info)."""
        return {k: getattr(self, k) for k in self.ANSWER_OPTIONS}

    def cache_identity(self) -> dict[str, Any]:
        return {"name": self.name, "class": f"{type(self).__module__}.{type(self).__qualname__}",
                "model_id": self.model_id, "endpoint": self.endpoint, "options": self.answer_options()}

    def info(self) -> dict[str, Any]:
        with self._lock:
            snapshots = sorted(self._snapshots)
        opts = {k: v for k, v in self.options.items() if k not in ("sleep", "rng")}
        if "base_url" in opts:
            opts["base_url"] = sanitise_url(str(opts["base_url"]))
        out = {
            "name": self.name, "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "kind": self.kind, "paper_row": self.paper_row,
            "model_id": self.model_id, "model_id_is_default": self.model_id == self.DEFAULT_MODEL,
            "model_snapshots": snapshots, "endpoint": self.endpoint, "endpoint_source": self.base_url_source,
            "api_key_source": self.key_source(), "options": self.redact(opts),
            "answer_options": self.answer_options(), "timeout_s": self.timeout_s,
            "max_retries": self.policy.max_retries, "requests_per_minute": self.rate_limiter.per_minute,
            "budget": self.ledger.snapshot(), "cache_mode": self._cache_mode,
            "requests_sent": self.requests_sent, "answers_from_cache": self.answers_from_cache,
        }
        if self.model_id in self.RETIRED:
            out["retired_note"] = self.RETIRED[self.model_id]
        return out

    # ------------------------------------------------------------------ to implement
    def _prepare(self, request: RetouchRequest) -> Prepared:
        """Encode the request (image, mask, instruction, seed) into what :meth:`_attempt` sends."""
        raise NotImplementedError

    def _attempt(self, prep: Prepared, attempt: int, state: dict[str, Any]) -> Outcome:
        """One request (or one submit-and-poll cycle); ``Outcome.ok(Answer)`` when it answered.
        ``state`` persists across the attempts of one call (timing, counters)."""
        raise NotImplementedError

    def estimate_call_usd(self) -> float | None:
        """Estimated USD of one call (the budget's reservation, ``--dry-run``); None if unknown."""
        return None

    def resize_policy(self, prep: Prepared) -> str:
        raise NotImplementedError

    # ------------------------------------------------------------------ the call
    def _count_request(self) -> None:
        with self._lock:
            self.requests_sent += 1

    def _note_snapshot(self, snapshot: str | None) -> None:
        if snapshot:
            with self._lock:
                self._snapshots.add(str(snapshot))

    def _key(self, request: RetouchRequest) -> str:
        return stable_key({
            "v": CACHE_KEY_VERSION, **self.cache_identity(), "input": array_digest(np.asarray(request.image, np.float32)),
            "instruction": request.instruction,
            "mask": array_digest(None if request.mask is None else np.asarray(request.mask, np.float32)),
            "seed": request.seed if self.uses_seed() else None, "strength": float(request.strength),
        })

    def uses_seed(self) -> bool:
        """Whether the API takes a seed (if not, the seed is not part of the cache key)."""
        return True

    def run(self, request: RetouchRequest) -> RetouchResult:
        t_start = time.perf_counter()
        image = np.asarray(request.image, dtype=np.float32)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ModelError(f"model '{self.name}': image must be [H, W, 3], got {image.shape}")
        if self._fatal:
            raise ModelError(self._fatal)
        key = self._key(request)
        hit = self.cache.get(key)
        if hit is not None:
            result = self._from_cache(key, hit, image.shape[:2])
            if result is not None:
                result.meta.setdefault("timing", {})["total_s"] = round(time.perf_counter() - t_start, 6)
                return result
        self.api_key()  # one line now if the key is missing, before any work
        est = self.estimate_call_usd()
        if not self.ledger.admit(est or 0.0):
            s = self.ledger.snapshot()
            raise ModelError(f"model '{self.name}': budget exhausted ({s['spent_usd']:.4f} of {s['budget_usd']:g} USD "
                             f"spent; the next call is estimated at {est or 0.0:.4f} USD); nothing was sent")
        try:
            t0 = time.perf_counter()
            prep = self._prepare(request)
            prep.timing["encode_s"] = time.perf_counter() - t0
            state: dict[str, Any] = {"timing": prep.timing}

            def before(attempt: int) -> str | None:
                if self._fatal:
                    return self._fatal
                if attempt > 0 and self.ledger.over():
                    return "budget exhausted before a retry"
                return None

            res = retry_call(lambda k: self._attempt(prep, k, state), self.policy, redact=self.redact,
                             before_attempt=before, rate_limiter=self.rate_limiter, timeout_s=self.timeout_s,
                             classify=self._classify)
        finally:
            self.ledger.release(est or 0.0)
        if not res.ok:
            if self._fatal:
                raise ModelError(self._fatal)
            if res.fatal:
                line = res.reason if res.reason.startswith(f"model '{self.name}'") else \
                    f"model '{self.name}': the endpoint refused the request ({res.reason})"
                with self._lock:
                    self._fatal = self.redact(line)
                raise ModelError(self._fatal)
            raise ModelError(f"model '{self.name}': {res.reason}")
        answer: Answer = res.value
        timing = state["timing"]
        timing["retry_wait_s"] = res.waited_s
        meta = {"model_id": self.model_id, "endpoint": self.endpoint, **prep.meta, **answer.meta,
                "sent_size": list(prep.sent_size), "cost_usd": answer.cost_usd, "cached": False,
                "attempts": len(res.attempts) + 1, "seed": request.seed if self.uses_seed() else None}
        if res.attempts:
            meta["retried"] = res.attempts
        if request.mask is not None and not self.supports_mask:
            meta["mask"] = "not sent: this API takes no mask (the edit is global)"
        if float(request.strength) != 1.0 and not self.supports_strength:
            meta["strength"] = f"{float(request.strength):g} not applied: this API has no strength control"
        if answer.refusal is not None:
            result = RetouchResult.refused(one_line(self.redact(answer.refusal), 300), **meta)
            files: dict[str, bytes] = {}
        else:
            t0 = time.perf_counter()
            out = decode_image(answer.image_bytes, f"model '{self.name}' answer")
            result = self._finish(out, image.shape[:2], prep, meta)
            timing["decode_s"] = time.perf_counter() - t0
            files = {"img": answer.image_bytes}
        timing["total_s"] = time.perf_counter() - t_start
        result.meta["timing"] = {k: (None if v is None else round(float(v), 6)) for k, v in timing.items()}
        result.meta = self.redact(result.meta)
        try:
            self.cache.put(key, {"status": result.status, "reason": result.reason, "meta": result.meta,
                                 "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, files=files)
        except (OSError, ValueError) as err:  # the answer stands; only a rerun will pay again
            result.meta["cache_error"] = one_line(f"cache write failed: {err}", 200)
        return result

    def _finish(self, out: np.ndarray, input_hw: tuple[int, int], prep: Prepared, meta: dict[str, Any]) -> RetouchResult:
        """The model's image -> the input's size (core's one resizer), with the sizes recorded."""
        meta["working_size"] = [int(out.shape[0]), int(out.shape[1])]
        if prep.working_size is not None:
            meta["requested_size"] = list(prep.working_size)
        back, note = match_size(out, input_hw)
        meta["resize_policy"] = self.resize_policy(prep)
        meta["resize"] = note
        return RetouchResult(image=back, meta=meta)

    def _from_cache(self, key: str, entry: dict[str, Any], input_hw: tuple[int, int]) -> RetouchResult | None:
        meta = dict(entry.get("meta") or {})
        meta.update(cached=True, original_cost_usd=meta.get("cost_usd"), cost_usd=0.0)
        meta.pop("retried", None)
        with self._lock:
            self.answers_from_cache += 1
        if meta.get("snapshot"):
            self._note_snapshot(meta["snapshot"])
        if entry.get("status") == "refused":
            return RetouchResult.refused(entry.get("reason") or "refused", **meta)
        data = self.cache.read_file(key, "img")
        try:
            out = decode_image(data or b"", "cached answer")
        except PayloadError:
            return None  # a damaged entry is a miss
        back, note = match_size(out, input_hw)
        meta["resize"] = note
        return RetouchResult(image=back, meta=meta)

    def _classify(self, err: BaseException, timeout_s: float | None) -> Outcome | None:
        """Library errors -> outcomes (the shared classification; subclasses refine)."""
        if isinstance(err, PayloadError):
            return Outcome.retry(f"malformed answer: {err}")
        return exception_outcome(err, timeout_s)

    def estimate(self, n_samples: int) -> dict[str, Any]:
        per = self.estimate_call_usd()
        note = (f"{n_samples} calls to {self.model_id} at {self.endpoint}; "
                + (f"about {per:.4f} USD each (upper-bound estimate, see the adapter's price table); "
                   if per is not None else "no price known for this model id, cost not estimated; ")
                + "answers already in the cache cost nothing; retries of failed calls may add to it")
        return {"calls": int(n_samples), "est_cost_usd": None if per is None else round(per * n_samples, 4),
                "per_call_usd": per, "note": note}

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None and hasattr(client, "close"):
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing must not hide the run's result
                pass


def parse_price(text: Any, n: int, what: str, name: str) -> tuple[float, ...]:
    """``"5/10/40"`` -> ``(5.0, 10.0, 40.0)`` (``n`` numbers separated by ``/``)."""
    parts = str(text).split("/")
    try:
        vals = tuple(float(p) for p in parts)
    except ValueError:
        vals = ()
    if len(vals) != n or any(v < 0 for v in vals):
        raise ModelError(f"model '{name}': option price={text!r}: expected {n} non-negative numbers "
                         f"separated by '/' ({what})")
    return vals


def nearest_bucket(h: int, w: int, buckets: dict[str, tuple[int, int]]) -> str:
    """The bucket name whose (w, h) aspect ratio is nearest ``w / h`` in log space."""
    import math

    target = math.log(w / h)
    return min(buckets, key=lambda k: (abs(math.log(buckets[k][0] / buckets[k][1]) - target), k))


def elapsed(t0: float) -> float:
    return time.perf_counter() - t0



def _convert(raw: Any, kind: type) -> Any:
    """An option value (a string from the command line, or a Python value) as ``kind``."""
    if kind in (int, float):
        if isinstance(raw, bool):
            raise ValueError(raw)
        value = float(raw)
        if kind is int:
            if not value.is_integer():
                raise ValueError(raw)
            return int(value)
        return value
    return str(raw)
