"""What every remote call needs: HTTP retry with backoff, jitter and Retry-After, a rate
limiter, a budget ledger, an on-disk response cache, and key redaction. Shared by the VLM
judges and the API editors; imports only :mod:`iretouch_bench.core`.

* :mod:`.retry`     - the one retry loop (:func:`retry_call`, :class:`RetryPolicy`, outcomes,
  ``Retry-After`` parsing, status and library-error classification)
* :mod:`.ratelimit` - :class:`RateLimiter` (request starts per minute)
* :mod:`.budget`    - :class:`BudgetLedger` (spent + in-flight estimates <= budget)
* :mod:`.cache`     - :class:`ResponseCache` (atomic JSON + binary entries), :func:`stable_key`
* :mod:`.redact`    - :class:`Redactor` (keys out of every string), :func:`sanitise_url`
* :mod:`.payload`   - images as PNG / base64 payloads and back
"""

from .budget import BudgetExhausted, BudgetLedger
from .cache import CACHE_MODES, ResponseCache, array_digest, stable_key
from .ratelimit import RateLimiter
from .redact import REDACTED, Redactor, sanitise_url
from .retry import (FATAL_STATUS, RETRYABLE_STATUS, Outcome, RetryPolicy, RetryResult, exception_outcome,
                    parse_retry_after, retry_call, status_outcome)

__all__ = [
    "BudgetExhausted", "BudgetLedger", "CACHE_MODES", "ResponseCache", "array_digest", "stable_key",
    "RateLimiter", "REDACTED", "Redactor", "sanitise_url", "FATAL_STATUS", "RETRYABLE_STATUS", "Outcome",
    "RetryPolicy", "RetryResult", "exception_outcome", "parse_retry_after", "retry_call", "status_outcome",
]
