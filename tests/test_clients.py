"""clients/: the shared retry loop, rate limiter, budget ledger, response cache, redaction and
payload helpers (the judge and the API editors run on them; their own tests cover the wiring)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from iretouch_bench.clients import (BudgetExhausted, BudgetLedger, Outcome, RateLimiter, Redactor, ResponseCache,
                                    RetryPolicy, exception_outcome, parse_retry_after, retry_call, sanitise_url,
                                    stable_key, status_outcome)
from iretouch_bench.clients.payload import PayloadError, b64decode, decode_image, png_bytes


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _policy(**kw) -> tuple[RetryPolicy, Sleeps]:
    sleeps = Sleeps()
    opts = dict(max_retries=3, backoff_base_s=1.0, backoff_cap_s=3.0, sleep=sleeps)
    opts.update(kw)
    return RetryPolicy(**opts), sleeps


def _script(*outcomes):
    it = iter(outcomes)
    calls = []

    def fn(attempt):
        calls.append(attempt)
        out = next(it)
        if isinstance(out, BaseException):
            raise out
        return out
    return fn, calls


# ---------------------------------------------------------------------------- retry loop
def test_retry_after_then_ok():
    policy, sleeps = _policy()
    fn, calls = _script(status_outcome(429, {"retry-after": "7"}, "slow down"), Outcome.ok("done"))
    res = retry_call(fn, policy)
    assert res.ok and res.value == "done" and calls == [0, 1]
    assert sleeps == [7.0] and res.waited_s == 7.0  # exactly what the server asked
    assert res.attempts == [{"error": "HTTP 429: slow down", "status": 429, "retry_in_s": 7.0, "retry_after_s": 7.0}]


def test_retry_after_is_capped_and_ms_wins():
    policy, sleeps = _policy(retry_after_cap_s=2.0)
    fn, _ = _script(status_outcome(503, {"retry-after": "600"}), status_outcome(503, {"retry-after-ms": "250"}), "x")
    assert retry_call(fn, policy).ok
    assert sleeps == [2.0, 0.25]


def test_backoff_exponential_with_jitter_then_gives_up():
    policy, sleeps = _policy()
    fn, calls = _script(*[status_outcome(500)] * 4)
    res = retry_call(fn, policy)
    assert not res.ok and calls == [0, 1, 2, 3]
    assert res.reason == "failed after 4 attempts: HTTP 500" and res.status == 500
    for s, base in zip(sleeps, (1.0, 2.0, 3.0)):  # 1, 2, 4 capped at 3; jitter in [0.5, 1]
        assert 0.5 * base <= s <= base
    assert len(sleeps) == 3 and "retry_in_s" not in res.attempts[-1]


def test_fail_and_fatal_stop_at_once():
    policy, sleeps = _policy()
    fn, calls = _script(status_outcome(400, None, "bad size"))
    res = retry_call(fn, policy)
    assert not res.ok and not res.fatal and res.reason == "HTTP 400: bad size" and calls == [0] and not sleeps
    fn, calls = _script(status_outcome(404, None, "model not found"))
    res = retry_call(fn, policy)
    assert res.fatal and res.reason == "HTTP 404: model not found" and calls == [0]


def test_before_attempt_can_stop_and_unknown_errors_propagate():
    policy, _ = _policy()
    fn, calls = _script(status_outcome(500), "never")
    res = retry_call(fn, policy, before_attempt=lambda k: "budget exhausted" if k > 0 else None)
    assert not res.ok and res.reason == "budget exhausted" and calls == [0]
    fn, _ = _script(KeyError("a bug"))
    with pytest.raises(KeyError):
        retry_call(fn, policy)


def test_records_are_redacted(monkeypatch):
    monkeypatch.setenv("X_TEST_KEY", "sk-SECRET-42")
    policy, _ = _policy(max_retries=1)
    fn, _ = _script(Outcome.retry("echo sk-SECRET-42", record={"text": "key sk-SECRET-42"}),
                    status_outcome(400, None, "bad key sk-SECRET-42"))
    res = retry_call(fn, policy, redact=Redactor(env=("X_TEST_KEY",)))
    blob = json.dumps(res.attempts) + res.reason
    assert "SECRET" not in blob and blob.count("[REDACTED]") == 4


def test_rate_limiter_is_consulted_per_attempt():
    policy, _ = _policy()
    acquired = []

    class RL:
        def acquire(self):
            acquired.append(1)
    fn, _ = _script(status_outcome(502), status_outcome(502), "ok")
    assert retry_call(fn, policy, rate_limiter=RL()).ok and len(acquired) == 3


def test_retry_after_forms():
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:05 GMT"}, now=1445412480.0) == 5.0
    assert parse_retry_after({"retry-after": "soon"}) is None and parse_retry_after(None) is None


class _Server:
    """127.0.0.1 server: each GET takes the next (status, headers, delay) from the script."""

    def __init__(self, *script):
        self.script = list(script)
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                code, headers, delay = outer.script.pop(0)
                time.sleep(delay)
                try:
                    self.send_response(code)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_httpx_errors_are_classified_against_a_local_server():
    import httpx

    srv = _Server((429, {"Retry-After": "1"}, 0), (500, {}, 0), (200, {}, 1.0), (200, {}, 0))
    policy, sleeps = _policy()
    try:
        with httpx.Client(timeout=0.3) as client:
            def attempt(k):
                r = client.get(srv.url)
                r.raise_for_status()
                return r.status_code
            res = retry_call(attempt, policy, timeout_s=0.3)
    finally:
        srv.close()
    assert res.ok and res.value == 200
    assert [a["error"].split(":")[0] for a in res.attempts] == ["HTTP 429", "HTTP 500", "timeout after 0.3 s"]
    assert sleeps[0] == 1.0
    # A refused connection is retryable too.
    out = exception_outcome(httpx.ConnectError("refused"))
    assert out.kind == "retry" and "connection error" in out.error
    assert exception_outcome(ValueError("x")) is None


# ---------------------------------------------------------------------------- rate limit, budget
def test_rate_limiter_spaces_starts():
    sleeps, t = Sleeps(), [0.0]
    rl = RateLimiter(60.0, sleep=sleeps, clock=lambda: t[0])
    for _ in range(3):
        rl.acquire()
    assert sleeps == [1.0, 2.0]
    with pytest.raises(ValueError):
        RateLimiter(0)


def test_budget_admits_until_it_would_be_exceeded_then_stays_exhausted():
    led = BudgetLedger(1.0)
    assert led.admit(0.4)
    led.charge(0.3)
    led.release(0.4)
    assert led.admit(0.4)          # 0.3 spent + 0.4 reserved + 0.4 = 1.1 would not fit ...
    led.charge(0.35)
    led.release(0.4)
    assert not led.admit(0.4)      # ... 0.65 + 0.4 > 1 with nothing in flight: exhausted
    assert led.exhausted and not led.admit(0.01)  # and stays so: the run stops at one place
    with pytest.raises(BudgetExhausted, match="budget exhausted"):
        led.require(0.01)
    assert led.snapshot()["spent_usd"] == pytest.approx(0.65)
    free = BudgetLedger(None)
    assert free.admit(1e9) and not free.over()


def test_budget_waits_for_calls_in_flight():
    led = BudgetLedger(1.0)
    assert led.admit(0.8)  # an expensive estimate in flight
    got = []
    t = threading.Thread(target=lambda: got.append(led.admit(0.5)))
    t.start()
    time.sleep(0.1)
    assert not got  # waiting: the call in flight may cost less than its estimate
    led.charge(0.2)
    led.release(0.8)
    t.join(5)
    assert got == [True] and led.reserved_usd == pytest.approx(0.5)


# ---------------------------------------------------------------------------- cache
def test_cache_entries_with_files_modes_and_damage(tmp_path):
    key = stable_key({"b": 1, "a": [1, 2]})
    assert key == stable_key({"a": [1, 2], "b": 1})
    c = ResponseCache(tmp_path, "use")
    assert c.get(key) is None
    c.put(key, {"status": "ok"}, files={"png": b"\x89PNG..."})
    e = c.get(key)
    assert e["status"] == "ok" and e["files"] == ["png"] and c.read_file(key, "png") == b"\x89PNG..."
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name]
    (tmp_path / key[:2] / f"{key}.png").unlink()  # an entry whose file is gone is a miss
    assert c.get(key) is None
    (tmp_path / key[:2] / f"{key}.json").write_text("{torn")
    assert c.get(key) is None
    ResponseCache(tmp_path, "refresh").put(key, {"status": "again"})
    assert ResponseCache(tmp_path, "refresh").get(key) is None  # refresh never reads
    assert c.get(key)["status"] == "again"
    ResponseCache(tmp_path, "off").put("ff" + key[2:], {"x": 1})
    assert not (tmp_path / "ff").exists()
    with pytest.raises(ValueError, match="mode"):
        ResponseCache(tmp_path, "sometimes")
    with pytest.raises(ValueError, match="bad file name"):
        c.put(key, {}, files={"../x": b""})


# ---------------------------------------------------------------------------- redaction, payload
def test_redactor_and_url_sanitising(monkeypatch):
    monkeypatch.setenv("K1", "abcd-secret")
    monkeypatch.setenv("K2", "xy")  # too short to redact meaningfully
    r = Redactor(env=("K1", "K2", "UNSET"), extra=["tok-999"])
    assert r({"a": ["abcd-secret!", 3], "b": "tok-999 xy"}) == {"a": ["[REDACTED]!", 3], "b": "[REDACTED] xy"}
    assert sanitise_url("http://user:pw@example.org:8000/v1/?token=abc#f") == "http://example.org:8000/v1"
    assert sanitise_url("https://api.bfl.ai") == "https://api.bfl.ai" and sanitise_url(None) is None


def test_png_round_trip_and_bad_payloads(rng):
    img = rng.random((30, 50, 3), dtype=np.float32)
    data, (h, w) = png_bytes(img)
    back = decode_image(data)
    assert (h, w) == (30, 50) and np.abs(back - img).max() <= 0.5 / 255 + 1e-6
    _, size = png_bytes(img, fit=(20, 20))
    assert size == (12, 20)  # fits the box, aspect kept, never enlarged
    _, size = png_bytes(img, fit=(2000, 2000))
    assert size == (30, 50)
    with pytest.raises(PayloadError, match="base64"):
        b64decode("not base64 !!")
    with pytest.raises(PayloadError, match="cannot decode"):
        decode_image(b"definitely not a png")
    import base64

    assert b64decode("data:image/png;base64," + base64.b64encode(data).decode()) == data
