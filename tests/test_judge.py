"""The VLM judge against a local chat-completions server, with the real ``openai`` client."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from iretouch_bench.judge import JudgeError, JudgeRequest, make_judge, prompt_hash
from iretouch_bench.judge.openai_judge import RateLimiter, encode_image, parse_retry_after
from iretouch_bench.judge.parse import AnswerError, parse_answer

from judge_server import FakeChatServer

KEY = "sk-test-SECRET123"


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture
def server():
    with FakeChatServer() as s:
        yield s


class Sleeps(list):
    """Injected ``sleep``: records the delays asked for, sleeps for none of them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _req(i: int, instruction: str = "make it warmer", size=(24, 32)) -> JudgeRequest:
    rng = np.random.default_rng(i)
    x = rng.random((*size, 3), dtype=np.float32)
    return JudgeRequest(id=f"s{i}", input_rgb=x, output_rgb=np.clip(x * 1.1, 0, 1), instruction=instruction)


def _judge(server, tmp_path, **kw):
    opts = dict(base_url=server.base_url, cache_dir=tmp_path / "cache", concurrency=1,
                max_retries=3, timeout_s=5.0, backoff_base_s=0.001, backoff_cap_s=0.01)
    opts.update(kw)
    sleeps = opts.pop("sleep", Sleeps())
    return make_judge("openai:gpt-4o", sleep=sleeps, **opts), sleeps


# ---------------------------------------------------------------------------- parsing
@pytest.mark.parametrize("text,expected", [
    ('{"score": [7, 3], "reasoning": "ok"}', (7.0, 3.0)),
    ('Here is my answer:\n```json\n{"score": [10, 0], "reasoning": "x"}\n```\nThanks', (10.0, 0.0)),
    ('Sure. {"reasoning": "fine", "score": ["6", 8.5]} -- done', (6.0, 8.5)),
    ('{"note": 1} then {"score": [2, 4]}', (2.0, 4.0)),
    ("{'score': [5, 6], 'reasoning': 'single quotes'}", (5.0, 6.0)),
])
def test_parse_tolerates_prose_and_fences(text, expected):
    assert parse_answer(text).score == expected


@pytest.mark.parametrize("text,needle", [
    ('{"score": [11, 3]}', "outside 0-10"),
    ('{"score": [-1, 3]}', "outside 0-10"),
    ('{"score": [7]}', "expected 2"),
    ('{"score": [true, 3]}', "boolean"),
    ('{"score": 7}', "list of two"),
    ("The edit looks great, 9/10.", "no JSON object"),
    ("I'm sorry, I can't help with evaluating this image.", "refusal"),
    ("", "empty"),
])
def test_parse_rejects_with_reason(text, needle):
    with pytest.raises(AnswerError, match=needle):
        parse_answer(text)


def test_retry_after_forms():
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:05 GMT"}, now=1445412480.0) == 5.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_encode_caps_long_side_png():
    url, size = encode_image(np.zeros((300, 2000, 3), np.float32), 1024)
    assert url.startswith("data:image/png;base64,") and size == (1024, 154)
    _, size = encode_image(np.zeros((30, 40, 3), np.float32), 1024)
    assert size == (40, 30)  # never upscaled


# ---------------------------------------------------------------------------- protocol
def test_scores_protocol_and_request_shape(server, tmp_path):
    judge, _ = _judge(server, tmp_path, concurrency=2)
    results = judge.score_batch([_req(0), _req(1, 'brighten the "sky"')])
    for r in results:
        assert r.values["sc"] == 6.0 and r.values["pq"] == 7.0  # min of [8, 6] and of [7, 9]
        assert r.values["o"] == pytest.approx(math.sqrt(42.0))
        assert r.reasons == {} and not r.cached
        assert r.usage["prompt_tokens"] == 2000 and r.usage["api_calls"] == 2
        assert r.cost_usd == pytest.approx(2 * (1000 * 2.5 + 50 * 10.0) / 1e6)
        assert {o["kind"] for o in r.raw} == {"sc", "pq"}
        assert all(o["reasoning"] and o["text"] for o in r.raw)
    assert len(server.requests) == 4
    for q in server.requests:
        b = q["body"]
        assert b["model"] == "gpt-4o-2024-08-06"  # the gpt-4o alias is pinned
        assert b["temperature"] == 0 and b["seed"] == judge.seed
        images = [p for p in b["messages"][1]["content"] if p["type"] == "image_url"]
        sc = "ORIGINAL" in b["messages"][0]["content"]
        assert len(images) == (2 if sc else 1)
        assert all(p["image_url"]["url"].startswith("data:image/png;base64,") for p in images)
        if sc:
            text = b["messages"][1]["content"][0]["text"]
            assert "make it warmer" in text or "brighten the 'sky'" in text
    info = judge.info()
    assert info["model_snapshots"] == ["gpt-4o-2024-08-06"]
    assert info["prompt_hash"] == prompt_hash() and info["temperature"] == 0.0
    assert info["image_encoding"] == "png" and info["image_max_side"] == 1024
    assert info["answers_from_api"] == 4


def test_median_of_samples_with_distinct_seeds(server, tmp_path):
    judge, _ = _judge(server, tmp_path, samples=3)
    server.script(("answer", '{"score": [2, 9]}'), ("answer", '{"score": [5, 6]}'),
                  ("answer", '{"score": [8, 8]}'))
    (r,) = judge.score_batch([_req(0)])
    assert r.values["sc"] == 5.0  # median of mins 2, 5, 8
    assert r.values["pq"] == 7.0
    seeds = [q["body"]["seed"] for q in server.requests]
    assert seeds == [judge.seed, judge.seed + 1, judge.seed + 2] * 2


# ---------------------------------------------------------------------------- robustness
def test_malformed_answer_retried_then_ok(server, tmp_path):
    judge, sleeps = _judge(server, tmp_path)
    server.script(("answer", "The result is good."), ("answer", '{"score": [12, 3]}'))
    (r,) = judge.score_batch([_req(0)])
    assert r.values["sc"] == 6.0
    sc = [o for o in r.raw if o["kind"] == "sc"][0]
    assert len(sc["attempts"]) == 2
    assert "no JSON object" in sc["attempts"][0]["error"] and "outside 0-10" in sc["attempts"][1]["error"]
    # An unusable answer is retried with a different seed, so a deterministic model can change its mind.
    seeds = [q["body"]["seed"] for q in server.requests[:3]]
    assert len(set(seeds)) == 3
    assert len(sleeps) == 2 and all(s <= 0.01 for s in sleeps)


def test_malformed_forever_fails_with_reason_not_zero(server, tmp_path):
    judge, _ = _judge(server, tmp_path, max_retries=2)
    server.script(*[("answer", "{not json")] * 3)
    (r,) = judge.score_batch([_req(0)])
    assert r.values["sc"] is None and r.values["o"] is None
    assert r.values["pq"] == 7.0
    assert r.reasons["sc"].startswith("failed after 3 attempts") and "no JSON object" in r.reasons["sc"]
    assert "sc unavailable" in r.reasons["o"]
    # Failures are not cached: the rerun asks again and now succeeds.
    n = len(server.requests)
    (r2,) = _judge(server, tmp_path)[0].score_batch([_req(0)])
    assert r2.values["sc"] == 6.0 and len(server.requests) == n + 1


def test_429_honours_retry_after(server, tmp_path):
    judge, sleeps = _judge(server, tmp_path)
    server.script(("status", 429, {"Retry-After": "7"}, {"error": {"message": "Rate limit reached"}}))
    (r,) = judge.score_batch([_req(0)])
    assert r.values["sc"] == 6.0
    assert sleeps[0] == 7.0  # exactly what the server asked, not the 1 ms backoff
    sc = [o for o in r.raw if o["kind"] == "sc"][0]
    assert sc["attempts"][0]["retry_after_s"] == 7.0 and "HTTP 429" in sc["attempts"][0]["error"]


def test_500_backs_off_exponentially_then_gives_up(server, tmp_path):
    judge, sleeps = _judge(server, tmp_path, max_retries=3, backoff_base_s=1.0, backoff_cap_s=3.0)
    server.script(*[("status", 500, {}, None)] * 4)
    (r,) = judge.score_batch([_req(0)])
    assert r.values["sc"] is None and "HTTP 500" in r.reasons["sc"] and "after 4 attempts" in r.reasons["sc"]
    # Backoff 1, 2, 4 -> capped at 3, each times a jitter factor in [0.5, 1].
    assert len(sleeps) == 3
    for s, base in zip(sleeps, (1.0, 2.0, 3.0)):
        assert 0.5 * base <= s <= base
    assert len(server.requests) == 5  # 4 SC attempts + 1 PQ


def test_timeout_is_retried(server, tmp_path):
    judge, _ = _judge(server, tmp_path, timeout_s=0.3)
    server.script(("sleep", 1.5, '{"score": [9, 9]}'))
    (r,) = judge.score_batch([_req(0)])
    sc = [o for o in r.raw if o["kind"] == "sc"][0]
    assert "timeout" in sc["attempts"][0]["error"]
    assert r.values["sc"] == 6.0


def test_refusal_retried_then_failed(server, tmp_path):
    judge, _ = _judge(server, tmp_path, max_retries=1)
    server.script(("refusal", "I'm sorry, I can't assist with that."), ("refusal", "I can't help."))
    (r,) = judge.score_batch([_req(0)])
    assert r.values["sc"] is None and "refusal" in r.reasons["sc"]
    assert r.values["pq"] == 7.0 and r.values["o"] is None
    # And a refusal followed by an answer is fine.
    server.script(("refusal", "No."))
    (r2,) = _judge(server, tmp_path)[0].score_batch([_req(1)])
    assert r2.values["sc"] == 6.0


def test_auth_error_stops_the_batch(server, tmp_path):
    judge, _ = _judge(server, tmp_path)
    server.script(("status", 401, {}, {"error": {"message": f"Incorrect API key provided: {KEY}"}}))
    results = judge.score_batch([_req(i) for i in range(3)])
    assert len(server.requests) == 1
    for r in results:
        assert all(v is None for v in r.values.values())
        assert "HTTP 401" in r.reasons["sc"]
    assert KEY not in json.dumps([r.to_json() for r in results])  # the echoed key is redacted


# ---------------------------------------------------------------------------- cache
def test_cache_second_run_makes_no_request_and_refresh_does(server, tmp_path):
    reqs = [_req(i) for i in range(3)]
    first = _judge(server, tmp_path)[0].score_batch(reqs)
    assert len(server.requests) == 6
    judge2, _ = _judge(server, tmp_path)
    second = judge2.score_batch(reqs)
    assert len(server.requests) == 6  # zero API calls on the rerun
    assert [r.values for r in second] == [r.values for r in first]
    assert all(r.cached and r.usage["api_calls"] == 0 and r.cost_usd == 0.0 for r in second)
    assert judge2.info()["model_snapshots"] == ["gpt-4o-2024-08-06"]  # known from the cache entries
    # A different instruction is a different SC question (PQ only sees the output: still cached).
    changed = [JudgeRequest(reqs[0].id, reqs[0].input_rgb, reqs[0].output_rgb, "make it cooler")]
    _judge(server, tmp_path)[0].score_batch(changed)
    assert len(server.requests) == 7
    _judge(server, tmp_path, cache_mode="refresh")[0].score_batch(reqs)
    assert len(server.requests) == 13
    _judge(server, tmp_path, cache_mode="off")[0].score_batch(reqs[:1])
    assert len(server.requests) == 15


def test_cache_without_key_serves_cached_answers(server, tmp_path, monkeypatch):
    reqs = [_req(0)]
    _judge(server, tmp_path)[0].score_batch(reqs)
    n = len(server.requests)
    monkeypatch.delenv("OPENAI_API_KEY")
    judge = make_judge("openai:gpt-4o", base_url=server.base_url, cache_dir=tmp_path / "cache")
    (r,) = judge.score_batch(reqs)
    assert r.cached and r.values["sc"] == 6.0 and len(server.requests) == n
    # OpenAI's own endpoint without a key: nothing cached for *that* endpoint, so it must ask, and can't.
    official = make_judge("openai:gpt-4o", cache_dir=tmp_path / "cache")
    with pytest.raises(JudgeError, match="OPENAI_API_KEY"):
        official.score_batch(reqs)
    with pytest.raises(JudgeError, match="OPENAI_API_KEY"):
        official.preflight()


def test_cache_key_includes_endpoint(server, tmp_path):
    """Two servers serving the same model name never share answers (issue 9, item 4)."""
    reqs = [_req(0)]
    (first,) = _judge(server, tmp_path)[0].score_batch(reqs)
    with FakeChatServer(sc_answer='{"score": [3, 4]}', pq_answer='{"score": [2, 5]}') as other:
        (second,) = _judge(other, tmp_path)[0].score_batch(reqs)  # same cache folder, same model name
        assert len(other.requests) == 2 and not second.cached
        assert (second.values["sc"], second.values["pq"]) == (3.0, 2.0)
        assert (first.values["sc"], first.values["pq"]) == (6.0, 7.0)
        # Each endpoint's answers are then served from its own entries; a trailing slash is the same endpoint.
        (again,) = _judge(other, tmp_path, base_url=other.base_url + "/")[0].score_batch(reqs)
        assert again.cached and again.values["sc"] == 3.0 and len(other.requests) == 2
    n = len(server.requests)
    (back,) = _judge(server, tmp_path)[0].score_batch(reqs)
    assert back.cached and back.values["sc"] == 6.0 and len(server.requests) == n


# ---------------------------------------------------------------------------- cost
def test_budget_stops_before_going_over(server, tmp_path):
    reqs = [_req(i) for i in range(6)]
    judge, _ = _judge(server, tmp_path)
    per_sample = judge.estimate(1)["est_cost_usd"]
    budget = 2.5 * 0.0121  # room for a few samples of this size, not all six
    judge, _ = _judge(server, tmp_path, budget_usd=budget)
    results = judge.score_batch(reqs)
    done = [r.values["o"] is not None for r in results]
    assert any(done) and not all(done)
    k = done.index(False)
    assert all(done[:k]) and not any(done[k:])  # scored samples are a prefix, then it stops
    for r in results[k:]:
        assert r.reasons == {"sc": "budget exhausted", "pq": "budget exhausted",
                             "o": "sc unavailable (budget exhausted); pq unavailable (budget exhausted)"}
    spent = sum(r.cost_usd for r in results)
    assert spent <= budget and judge.info()["spent_usd"] == pytest.approx(spent)
    assert len(server.requests) == 2 * k  # nothing was sent for the exhausted samples
    assert per_sample > 0


def test_budget_needs_a_price(tmp_path):
    with pytest.raises(JudgeError, match="no price known"):
        make_judge("openai:qwen2.5-vl-7b", base_url="http://127.0.0.1:1/v1", budget_usd=1.0,
                   cache_dir=tmp_path)
    j = make_judge("openai:qwen2.5-vl-7b", base_url="http://127.0.0.1:1/v1", budget_usd=1.0,
                   cache_dir=tmp_path, price_per_mtok=(0.1, 0.2))
    assert j.info()["price_per_mtok_usd"] == {"input": 0.1, "output": 0.2}


def test_estimate_for_dry_run(tmp_path):
    j = make_judge("openai:gpt-4o", cache_dir=tmp_path, samples=3)
    e = j.estimate(100)
    assert e["calls"] == 600
    # 2 images of 1024x768 at 765 tokens + 1 image at 765 + text, 400 output tokens per call.
    assert 100 * 3 * (3 * 765) <= e["est_input_tokens"] <= 100 * 3 * (3 * 765 + 2000)
    assert e["est_cost_usd"] == pytest.approx(
        (e["est_input_tokens"] * 2.5 + e["est_output_tokens"] * 10.0) / 1e6, rel=1e-3)
    assert make_judge("offline").estimate(10)["calls"] == 0


# ---------------------------------------------------------------------------- endpoint, key, limits
def test_key_never_leaks(server, tmp_path, caplog):
    import logging

    caplog.set_level(logging.DEBUG)  # the client's and our own logging at their most verbose
    judge, _ = _judge(server, tmp_path, max_retries=1)
    server.script(("status", 400, {}, {"error": {"message": f"bad request from key {KEY}"}}),
                  ("answer", f"my key is {KEY} and no score"), ("answer", f"{KEY}"))
    results = judge.score_batch([_req(0), _req(1)])
    # The key did reach the server as the bearer token (so the test is not vacuous) ...
    assert server.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"
    # ... and appears nowhere the judge returns or writes.
    blob = json.dumps([r.to_json() for r in results]) + json.dumps(judge.info())
    assert "SECRET123" not in blob
    files = list(Path(tmp_path / "cache").rglob("*"))
    assert any(f.is_file() for f in files)
    for f in files:
        if f.is_file():
            assert "SECRET123" not in f.read_text()
    assert "HTTP 400" in results[0].reasons["sc"] and "[REDACTED]" in results[0].reasons["sc"]
    assert caplog.records and "SECRET123" not in caplog.text


def test_base_url_from_environment_and_keyless_local(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.delenv("OPENAI_API_KEY")
    j = make_judge("openai:qwen2.5-vl", cache_dir=tmp_path, concurrency=1)
    (r,) = j.score_batch([_req(0)])
    assert r.values["o"] is not None and r.cost_usd is None  # no price for a local model
    assert server.requests[0]["body"]["model"] == "qwen2.5-vl"
    assert j.info()["base_url"] == server.base_url


def test_url_credentials_are_not_recorded(tmp_path):
    j = make_judge("openai:m", base_url="http://user:pw@example.org:8000/v1?token=abc", cache_dir=tmp_path)
    assert j.info()["base_url"] == "http://example.org:8000/v1"


def test_concurrency_and_order(server, tmp_path):
    server.delay = 0.1
    # Each SC answer echoes the request number from the instruction, to check the result order.
    server.default_answer = lambda body: (
        '{"score": [%s, 9]}' % body["messages"][1]["content"][0]["text"].split("edit ")[1][0]
        if "ORIGINAL" in body["messages"][0]["content"] else server.pq_answer)
    judge, _ = _judge(server, tmp_path, concurrency=4)
    reqs = [_req(i, instruction=f"edit {i}") for i in range(8)]
    results = judge.score_batch(reqs)
    assert [r.values["sc"] for r in results] == [float(i) for i in range(8)]
    assert len(server.requests) == 16
    assert server.max_in_flight == 4  # N in flight, never more


def test_rate_limiter_spaces_starts():
    sleeps = Sleeps()
    t = [0.0]
    rl = RateLimiter(60.0, sleep=sleeps, clock=lambda: t[0])
    for _ in range(3):
        rl.acquire()
    assert sleeps == [1.0, 2.0]  # starts at 0, 1, 2 s


def test_specs():
    for spec in ("offline", "none"):
        (r,) = make_judge(spec).score_batch([_req(0)])
        assert r.values == {"sc": None, "pq": None, "o": None}
        assert all(r.reasons[k] for k in ("sc", "pq", "o"))
    assert "offline" in make_judge("offline").score_batch([_req(0)])[0].reasons["sc"]
    with pytest.raises(JudgeError, match="judge spec"):
        make_judge("claude:x")
    with pytest.raises(JudgeError, match="cannot be combined"):
        make_judge("offline,openai:gpt-4o")
    with pytest.raises(JudgeError, match="twice"):
        make_judge("openai:gpt-4o,openai:gpt-4o")
    with pytest.raises(JudgeError, match="http"):
        make_judge("openai:m@ftp://x")
    # credentials in a judge's URL never reach its spec (records, tables) or info
    j = make_judge("openai:m@http://user:pw-SECRET9@127.0.0.1:9/v1/?token=SECRET9")
    assert j.spec == "openai:m@http://127.0.0.1:9/v1" and "SECRET9" not in json.dumps(j.info())
