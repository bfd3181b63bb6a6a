"""What every remote call needs: HTTP retry with backoff, jitter and Retry-After, a rate
limiter, a budget ledger, an on-disk response cache, and key redaction. Shared by the VLM
judges and the API editors; imports only :mod:`iretouch_bench.core`."""
