"""The Gemini judge (google-genai's real client) against a local generateContent server, and the
judge options shared by every API judge (image format, native size, temperature, seed, several
judges with one budget)."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from gemini_server import FakeGeminiJudge, answer
from judge_server import FakeChatServer

from iretouch_bench.judge import JudgeError, JudgeRequest, MultiJudge, make_judge, prompt_hash

KEY = "AIza-test-GEMINI-SECRET-77"


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("GOOGLE_API_KEY", KEY)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_GEMINI_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai-1")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture
def gemini():
    with FakeGeminiJudge() as s:
        yield s


def _req(i: int, instruction: str = "make it warmer", size=(40, 60)) -> JudgeRequest:
    rng = np.random.default_rng(i)
    x = rng.random((*size, 3), dtype=np.float32)
    return JudgeRequest(id=f"s{i}", input_rgb=x, output_rgb=np.clip(x * 1.1, 0, 1), instruction=instruction)


def _judge(server, tmp_path, spec="gemini:gemini-2.5-flash", **kw):
    opts = dict(cache_dir=tmp_path / "cache", concurrency=1, max_retries=2, timeout_s=5.0,
                backoff_base_s=0.001, backoff_cap_s=0.01, sleep=Sleeps())
    opts.update(kw)
    return make_judge(f"{spec}@{server.base_url}", **opts)


def test_gemini_scores_and_request_shape(gemini, tmp_path):
    judge = _judge(gemini, tmp_path, temperature=0.3, seed=11)
    (res,) = judge.score_batch([_req(0, instruction='make it "warm"')])
    assert res.values["sc"] == 5 and res.values["pq"] == 6
    assert res.values["o"] == pytest.approx(30 ** 0.5)
    assert len(gemini.requests) == 2
    sc_req, pq_req = sorted(gemini.requests, key=lambda r: -len(FakeGeminiJudge.images(FakeGeminiJudge.parsed(r))))
    assert "/models/gemini-2.5-flash:generateContent" in sc_req["path"]
    assert sc_req["headers"]["x-goog-api-key"] == KEY
    body = FakeGeminiJudge.parsed(sc_req)
    system = body["systemInstruction"]["parts"][0]["text"]
    assert "ORIGINAL" in system
    user = body["contents"][0]["parts"][0]["text"]
    assert "make it 'warm'" in user  # the instruction, quotes made single
    imgs = FakeGeminiJudge.images(body)
    assert len(imgs) == 2 and all(b[:8] == b"\x89PNG\r\n\x1a\n" for b in imgs)
    # google-genai sends the inline part's mime type as "mime_type" (the API accepts both spellings)
    assert [p["inlineData"].get("mimeType") or p["inlineData"].get("mime_type")
            for p in body["contents"][0]["parts"][1:]] == ["image/png"] * 2
    cfg = body["generationConfig"]
    assert cfg["temperature"] == 0.3 and cfg["seed"] in (11, 12) and cfg["candidateCount"] == 1
    assert cfg["maxOutputTokens"] == 2048
    assert len(FakeGeminiJudge.images(FakeGeminiJudge.parsed(pq_req))) == 1
    info = judge.info()
    assert info["kind"] == "gemini" and info["model_snapshots"] == ["gemini-2.5-flash-001"]
    assert info["prompt_hash"] == prompt_hash() and info["temperature"] == 0.3 and info["seed"] == 11
    assert info["base_url"] == gemini.base_url and KEY not in json.dumps(info)
    # usage: thinking tokens are billed as output; a known price gives a cost
    assert res.usage["prompt_tokens"] == 1800 and res.cost_usd == pytest.approx(
        (1800 * 0.30 + 80 * 2.50) / 1e6)


def test_gemini_refusal_and_unparseable_are_failures_not_fills(gemini, tmp_path):
    gemini.script(("json", 200, answer(None, block="PROHIBITED_CONTENT")),
                  ("json", 200, answer("I cannot rate this.", finish="SAFETY")),
                  ("json", 200, answer("no idea")))
    judge = _judge(gemini, tmp_path, max_retries=2)
    # concurrency 1: the first question's three attempts take the three scripted answers
    (res,) = judge.score_batch([JudgeRequest("x", np.zeros((20, 20, 3), np.float32),
                                             np.full((20, 20, 3), 0.5, np.float32), "brighten")])
    failed = [k for k in ("sc", "pq") if res.values[k] is None]
    assert len(failed) == 1 and res.values["o"] is None
    reason = res.reasons[failed[0]]
    assert "failed after 3 attempts" in reason and "no JSON object" in reason
    attempts = next(a for a in res.raw if not a.get("ok"))["attempts"]
    assert "prompt blocked: PROHIBITED_CONTENT" in attempts[0]["error"]
    assert "filter" in attempts[1]["error"]
    # a failure is never cached: the rerun asks again
    n = len(gemini.requests)
    judge.score_batch([JudgeRequest("x", np.zeros((20, 20, 3), np.float32), np.full((20, 20, 3), 0.5, np.float32),
                                    "brighten")])
    assert len(gemini.requests) == n + 1


def test_gemini_429_retried_and_404_is_fatal(gemini, tmp_path):
    sleeps = Sleeps()
    gemini.script(("status", 429, {"Retry-After": "3"},
                   {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}))
    judge = _judge(gemini, tmp_path, sleep=sleeps)
    (res,) = judge.score_batch([_req(1)])
    assert res.values["o"] is not None and 3.0 in sleeps
    # no header: the wait Google puts in the body (RetryInfo.retryDelay) is honoured
    gemini.script(("status", 429, {}, {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED",
                                                 "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                                              "retryDelay": "7s"}]}}))
    (res,) = judge.score_batch([_req(4)])
    assert res.values["o"] is not None and 7.0 in sleeps
    gemini.script(*[("status", 404, {}, {"error": {"code": 404, "message": "models/x is not found",
                                                  "status": "NOT_FOUND"}})] * 2)
    judge2 = _judge(gemini, tmp_path / "b", spec="gemini:x")
    res2 = judge2.score_batch([_req(2), _req(3)])
    assert all(r.values["sc"] is None for r in res2)
    assert "refused the request" in res2[1].reasons["sc"]


def test_gemini_cache_second_run_sends_nothing_and_key_is_not_stored(gemini, tmp_path):
    judge = _judge(gemini, tmp_path)
    judge.score_batch([_req(0), _req(1)])
    n = len(gemini.requests)
    again = _judge(gemini, tmp_path).score_batch([_req(0), _req(1)])
    assert len(gemini.requests) == n and all(r.cached for r in again)
    for f in (tmp_path / "cache").rglob("*"):
        if f.is_file():
            assert KEY.encode() not in f.read_bytes()


def test_gemini_needs_a_key_unless_loopback(tmp_path, monkeypatch):
    monkeypatch.delenv("GOOGLE_API_KEY")
    with pytest.raises(JudgeError, match="GOOGLE_API_KEY"):
        make_judge("gemini:gemini-2.5-flash", cache_dir=tmp_path).preflight()
    make_judge("gemini:gemini-2.5-flash@http://127.0.0.1:9/", cache_dir=tmp_path).preflight()


def test_jpeg_and_native_size_are_what_the_judge_sees(tmp_path):
    with FakeChatServer() as server:
        judge = make_judge("openai:gpt-4o", base_url=server.base_url, cache_dir=tmp_path / "c",
                           image_format="jpeg", image_quality=70, max_side=0, concurrency=1)
        req = _req(5, size=(300, 1500))
        judge.score_batch([req])
        urls = [p["image_url"]["url"] for r in server.requests for p in r["body"]["messages"][1]["content"]
                if p["type"] == "image_url"]
        assert urls and all(u.startswith("data:image/jpeg;base64,") for u in urls)
        im = Image.open(io.BytesIO(base64.b64decode(urls[0].partition(",")[2])))
        assert im.format == "JPEG" and im.size == (1500, 300)  # native: not shrunk to 1024
        info = judge.info()
        assert info["image"] == {"format": "jpeg", "quality": 70, "max_side": None}
        # another encoding is another answer: the PNG judge does not reuse the JPEG answers
        n = len(server.requests)
        make_judge("openai:gpt-4o", base_url=server.base_url, cache_dir=tmp_path / "c", max_side=0,
                   concurrency=1).score_batch([req])
        assert len(server.requests) == n + 2
    with pytest.raises(JudgeError, match="jpeg only"):
        make_judge("openai:gpt-4o", image_quality=50, cache_dir=tmp_path)
    with pytest.raises(JudgeError, match="1-95"):
        make_judge("openai:gpt-4o", image_format="jpeg", image_quality=100, cache_dir=tmp_path)


def test_two_judges_one_call_per_judge_and_shared_budget(gemini, tmp_path):
    with FakeChatServer() as chat:
        judge = make_judge(f"openai:gpt-4o@{chat.base_url},gemini:gemini-2.5-flash@{gemini.base_url}",
                           cache_dir=tmp_path / "c", concurrency=2, sleep=Sleeps())
        assert isinstance(judge, MultiJudge) and judge.specs[0].startswith("openai:gpt-4o@")
        res = judge.score_batch([_req(0), _req(1)])
        assert len(chat.requests) == 4 and len(gemini.requests) == 4
        r = res[0]
        assert (r.values["sc"], r.values["pq"]) == (6, 7)  # the primary (openai) fills the plain keys
        per = {s.partition(":")[0]: v for s, v in r.per_judge.items()}
        assert (per["gemini"].values["sc"], per["gemini"].values["pq"]) == (5, 6)
        info = judge.info()
        assert info["spec"] == judge.specs[0] and [j["kind"] for j in info["judges"]] == ["openai-compatible",
                                                                                          "gemini"]
        # one ledger for both judges: a budget is their total
        multi = make_judge(f"openai:gpt-4o@{chat.base_url},gemini:gemini-2.5-flash@{gemini.base_url}",
                           cache_dir=tmp_path / "d", budget_usd=1.0)
        assert multi.judges[0].ledger is multi.judges[1].ledger
        with pytest.raises(JudgeError, match="no price known"):
            make_judge(f"openai:gpt-4o@{chat.base_url},gemini:unknown-model@{gemini.base_url}",
                       cache_dir=tmp_path / "d", budget_usd=1.0)
