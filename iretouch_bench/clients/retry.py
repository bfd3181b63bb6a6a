"""The one retry loop of the suite's remote calls (VLM judges, API editors).

A call is made of attempts. :func:`retry_call` runs an attempt function; each attempt ends in
an :class:`Outcome`:

* ``ok``     - done, with a value (an answer, an image, a refusal: anything the caller keeps);
* ``retry``  - try again later: HTTP 408/409/429/5xx, a timeout, a dropped connection, or an
  answer the caller could not use (a malformed body);
* ``fail``   - this call cannot succeed (HTTP 400, an error the library raised), no retry;
* ``fatal``  - every call will fail the same way (HTTP 401/403/404: a wrong key, an unknown
  model or route); the caller should stop sending.

Waits between attempts: exactly what a ``retry-after-ms`` / ``Retry-After`` header asks (capped
at ``retry_after_cap_s``), otherwise exponential backoff with jitter:
``min(backoff_cap_s, backoff_base_s * 2**k) * U(0.5, 1)`` before retry ``k + 1``. At most
``max_retries`` retries, so ``max_retries + 1`` attempts. Exceptions raised by an attempt are
classified by :func:`exception_outcome` (``openai``, ``httpx``, ``httpx2`` and ``google-genai``
errors); any other exception propagates (a bug is not retried).

Every attempt that did not end ``ok`` leaves a record (its error, and ``retry_in_s`` /
``retry_after_s`` when another attempt follows), passed through the caller's redactor, so a
key a server echoes in an error body never reaches a record.
"""

from __future__ import annotations

import math
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Callable

#: HTTP statuses that say "try again later" (request timeout, conflict, rate limit); 5xx too.
RETRYABLE_STATUS = frozenset({408, 409, 429})
#: Statuses that fail every call the same way (key, permission, unknown model or route).
FATAL_STATUS = frozenset({401, 403, 404})


def parse_retry_after(headers: Any, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date), or None.

    ``headers``: any mapping with ``.get`` (case-insensitive in the HTTP libraries).
    """
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            v = float(ms) / 1000.0
            if math.isfinite(v) and v >= 0:
                return v
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if ra is None:
        return None
    try:
        v = float(ra)
        return v if math.isfinite(v) and v >= 0 else None
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(ra)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


@dataclass
class Outcome:
    """How one attempt ended (see the module docstring). ``record``: what to log for it."""

    kind: str
    value: Any = None
    error: str | None = None
    retry_after: float | None = None
    status: int | None = None
    record: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def ok(cls, value: Any = None) -> "Outcome":
        return cls("ok", value=value)

    @classmethod
    def retry(cls, error: str, retry_after: float | None = None, *, status: int | None = None,
              record: dict[str, Any] | None = None) -> "Outcome":
        return cls("retry", error=error, retry_after=retry_after, status=status, record=dict(record or {}))

    @classmethod
    def fail(cls, error: str, *, status: int | None = None, record: dict[str, Any] | None = None) -> "Outcome":
        return cls("fail", error=error, status=status, record=dict(record or {}))

    @classmethod
    def fatal(cls, error: str, *, status: int | None = None) -> "Outcome":
        return cls("fatal", error=error, status=status)


@dataclass
class RetryResult:
    """The end of a call: ``ok`` with ``value``, or not with ``reason`` (one line, redacted)."""

    ok: bool
    value: Any = None
    reason: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    fatal: bool = False
    status: int | None = None
    waited_s: float = 0.0  # seconds slept between attempts (backoff and Retry-After)


@dataclass
class RetryPolicy:
    """Bounded retries with exponential backoff and jitter. ``sleep`` and ``rng`` are injectable
    so tests wait for nothing and see the delays asked for."""

    max_retries: int = 5
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    retry_after_cap_s: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random | None = None

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max retries must be >= 0, got {self.max_retries}")
        if self.rng is None:
            self.rng = random.Random()
        self._lock = threading.Lock()

    def backoff(self, attempt: int) -> float:
        """Seconds before retry ``attempt + 1``: capped exponential times a jitter in [0.5, 1]."""
        with self._lock:
            jitter = self.rng.uniform(0.5, 1.0)
        return min(self.backoff_cap_s, self.backoff_base_s * (2 ** attempt)) * jitter

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap_s)
        return self.backoff(attempt)


def _identity(text: Any) -> Any:
    return text


def retry_call(
    attempt_fn: Callable[[int], Outcome | Any],
    policy: RetryPolicy,
    *,
    redact: Callable[[Any], Any] = _identity,
    before_attempt: Callable[[int], str | None] | None = None,
    rate_limiter: Any = None,
    timeout_s: float | None = None,
    classify: Callable[[BaseException, float | None], Outcome | None] | None = None,
) -> RetryResult:
    """Run ``attempt_fn(k)`` for ``k = 0, 1, ...`` until an attempt ends ``ok``, ``fail`` or
    ``fatal``, or ``policy.max_retries`` retries are spent.

    Args:
        attempt_fn: makes one attempt; returns an :class:`Outcome` (a plain value means ``ok``)
            or raises a library error that ``classify`` recognises.
        before_attempt: called before each attempt; a string it returns stops the call with that
            reason (a budget that ran out, a fatal error another thread met).
        rate_limiter: an object with ``acquire()``, called before each attempt (each request).
        timeout_s: the client's timeout, named in timeout errors.
        classify: exception -> Outcome, or None to let it propagate (default
            :func:`exception_outcome`).
    """
    classify = classify or exception_outcome
    attempts: list[dict[str, Any]] = []
    waited = 0.0
    last_status = None
    for attempt in range(policy.max_retries + 1):
        if before_attempt is not None:
            stop = before_attempt(attempt)
            if stop:
                return RetryResult(False, reason=redact(stop), attempts=attempts, waited_s=waited,
                                   status=last_status)
        if rate_limiter is not None:
            rate_limiter.acquire()
        try:
            out = attempt_fn(attempt)
        except Exception as err:
            classified = classify(err, timeout_s)
            if classified is None:
                raise
            out = classified
        if not isinstance(out, Outcome):
            out = Outcome.ok(out)
        if out.kind == "ok":
            return RetryResult(True, value=out.value, attempts=attempts, waited_s=waited)
        last_status = out.status
        entry = redact({**out.record, "error": out.error})  # a server may echo the key anywhere
        if out.status is not None:
            entry.setdefault("status", out.status)
        if out.kind in ("fail", "fatal"):
            attempts.append(entry)
            return RetryResult(False, reason=redact(out.error), attempts=attempts, fatal=out.kind == "fatal",
                               status=out.status, waited_s=waited)
        if out.kind != "retry":  # pragma: no cover - a caller bug
            raise ValueError(f"unknown attempt outcome {out.kind!r}")
        attempts.append(entry)
        if attempt < policy.max_retries:
            delay = policy.delay(attempt, out.retry_after)
            entry["retry_in_s"] = round(delay, 3)
            if out.retry_after is not None:
                entry["retry_after_s"] = out.retry_after
            policy.sleep(delay)
            waited += delay
    last = attempts[-1]["error"] if attempts else "no attempt made"
    return RetryResult(False, reason=redact(f"failed after {policy.max_retries + 1} attempts: {last}"),
                       attempts=attempts, status=last_status, waited_s=waited)


def status_outcome(status: int, headers: Any = None, message: str = "") -> Outcome:
    """The outcome of an HTTP error status (see :data:`RETRYABLE_STATUS`, :data:`FATAL_STATUS`)."""
    msg = " ".join(str(message or "").split())[:200]
    error = f"HTTP {status}: {msg}" if msg else f"HTTP {status}"
    if status in FATAL_STATUS:
        return Outcome.fatal(error, status=status)
    if status in RETRYABLE_STATUS or status >= 500:
        return Outcome.retry(error, parse_retry_after(headers), status=status)
    return Outcome.fail(error, status=status)


def _timeout_text(timeout_s: float | None) -> str:
    return f"timeout after {timeout_s:g} s" if timeout_s is not None else "timeout"


def _response_text(response: Any) -> str:
    try:
        return response.text
    except Exception:  # noqa: BLE001 - a streamed or closed body: the status says enough
        return ""


def exception_outcome(err: BaseException, timeout_s: float | None = None) -> Outcome | None:
    """Classify an error of the ``openai``, ``httpx``/``httpx2`` or ``google-genai`` clients.

    Only libraries already imported are consulted (an error from a library implies it is
    loaded), so this never imports one. Returns None for anything else.
    """
    openai = sys.modules.get("openai")
    if openai is not None and isinstance(err, openai.OpenAIError):
        if isinstance(err, openai.APITimeoutError):
            return Outcome.retry(_timeout_text(timeout_s))
        if isinstance(err, openai.APIConnectionError):
            return Outcome.retry(f"connection error: {err}")
        if isinstance(err, openai.APIStatusError):
            message = str(getattr(err, "message", err))
            prefix = f"Error code: {err.status_code} - "  # the client's prefix; the status is said once
            message = message[len(prefix):] if message.startswith(prefix) else message
            return status_outcome(err.status_code, err.response.headers, message)
        return Outcome.fail(f"{type(err).__name__}: {err}")
    genai_errors = sys.modules.get("google.genai.errors")
    if genai_errors is not None and isinstance(err, genai_errors.APIError):
        response = getattr(err, "response", None)
        headers = getattr(response, "headers", None)
        return status_outcome(int(err.code or 0), headers, err.message or str(err))
    for name in ("httpx", "httpx2"):
        lib = sys.modules.get(name)
        if lib is None:
            continue
        if isinstance(err, lib.TimeoutException):
            return Outcome.retry(_timeout_text(timeout_s))
        if isinstance(err, lib.TransportError):
            return Outcome.retry(f"connection error: {type(err).__name__}: {err}")
        if isinstance(err, lib.HTTPStatusError):
            r = err.response
            return status_outcome(r.status_code, r.headers, _response_text(r))
    return None
