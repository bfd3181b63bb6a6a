"""The three API editors with their real clients (``openai``, ``google-genai``, ``httpx``) against
local servers on 127.0.0.1 that speak each API (tests/api_servers.py): a normal answer, 429 with
Retry-After, 500 then success, a timeout, a moderated answer, an answer without an image, a
malformed body, the cache, the budget, an unknown model id, and the key kept out of every file."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from api_servers import TINT, FakeBFL, FakeGemini, FakeOpenAIImages

from iretouch_bench.adapters.base import RetouchRequest
from iretouch_bench.adapters.registry import create_model, get_model_class
from iretouch_bench.core.errors import ModelError

KEYS = {"OPENAI_API_KEY": "sk-test-SECRET-4f1e", "GEMINI_API_KEY": "AIza-test-SECRET-77b2",
        "BFL_API_KEY": "bfl-test-SECRET-0c9d"}
ENV_CLEAR = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL",
             "BFL_API_KEY", "BFL_BASE_URL", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_CLOUD_PROJECT")

MODERATION_400 = ("status", 400, {}, {"error": {
    "message": "Your request was rejected by the safety system.", "type": "image_generation_user_error",
    "param": None, "code": "moderation_blocked"}})


class Sleeps(list):
    """Injected ``sleep``: records the waits asked for, waits for none."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


# name -> how to talk to its fake: server class, key variable, base-URL variable, and how the
# key travels; plus the scripts of the refusal cases (applied to a running server).
SPECS = {
    "gpt-image-1": dict(
        server=FakeOpenAIImages, key_env="OPENAI_API_KEY", url_env="OPENAI_BASE_URL",
        key_header=lambda h: h.get("authorization") == "Bearer " + KEYS["OPENAI_API_KEY"],
        no_image=lambda s: s.script(("json", 200, {"created": 1, "data": []})),
        no_image_reason="no image in the answer",
        moderated=lambda s: s.script(MODERATION_400),
        moderated_reason="moderated: Your request was rejected by the safety system.",
        unknown=lambda s: s.script(("status", 404, {}, {"error": {
            "message": "The model `gpt-image-1` does not exist or you do not have access to it.",
            "type": "invalid_request_error", "param": None, "code": "model_not_found"}})),
        malformed=lambda s, n: s.script(*[("raw", 200, "application/json", b"{\"data\": [{\"b64_json\": \"%%%\"}]")] * n),
    ),
    "gemini-2.5-flash-image": dict(
        server=FakeGemini, key_env="GEMINI_API_KEY", url_env="GOOGLE_GEMINI_BASE_URL",
        key_header=lambda h: h.get("x-goog-api-key") == KEYS["GEMINI_API_KEY"],
        no_image=lambda s: s.script(("json", 200, FakeGemini.answer([{"text": "I can only describe this photo."}]))),
        no_image_reason="no image in the answer: I can only describe this photo.",
        moderated=lambda s: s.script(("json", 200, {"promptFeedback": {"blockReason": "SAFETY"},
                                                    "usageMetadata": {"promptTokenCount": 560}})),
        moderated_reason="blocked: SAFETY",
        unknown=lambda s: s.script(("status", 404, {}, {"error": {
            "code": 404, "message": "models/gemini-2.5-flash-image is not found for API version v1",
            "status": "NOT_FOUND"}})),
        malformed=lambda s, n: s.script(*[("raw", 200, "application/json", b"{not json")] * n),
    ),
    "flux-kontext-pro": dict(
        server=FakeBFL, key_env="BFL_API_KEY", url_env="BFL_BASE_URL",
        key_header=lambda h: h.get("x-key") == KEYS["BFL_API_KEY"],
        no_image=lambda s: s.poll_script(("json", 200, {"id": "t", "status": "Ready", "result": {}})),
        no_image_reason="no image in the answer: Ready without result.sample",
        moderated=lambda s: s.poll_script(("json", 200, {"id": "t", "status": "Request Moderated",
                                                         "details": {"Moderation Reasons": ["Derivative Works Filter"]}})),
        moderated_reason='moderated: Request Moderated ({"Moderation Reasons": ["Derivative Works Filter"]})',
        unknown=lambda s: s.script(("status", 404, {}, {"detail": "Not Found"})),
        malformed=lambda s, n: s.script(*[("raw", 200, "application/json", b"<html>gateway</html>")] * n),
    ),
}
NAMES = list(SPECS)


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    for var in ENV_CLEAR:
        monkeypatch.delenv(var, raising=False)
    for var, value in KEYS.items():
        monkeypatch.setenv(var, value)


@pytest.fixture(params=NAMES)
def editor(request, tmp_path):
    """(name, spec, running fake server, factory of adapters pointed at it)."""
    name = request.param
    spec = SPECS[name]
    with spec["server"]() as srv:
        def make(**kw):
            opts = dict(base_url=srv.base_url, cache_dir=str(tmp_path / "cache"), timeout_s=5.0, max_retries=3,
                        backoff_base_s=0.001, backoff_cap_s=0.01, sleep=Sleeps())
            if name == "flux-kontext-pro":
                opts["poll_interval_s"] = 0.01
            opts.update(kw)
            return create_model(name, **opts)
        yield name, spec, srv, make


def _img(seed: int = 0, size=(60, 80)) -> np.ndarray:
    """A smooth photo-like test image (random colours at 6x8, bilinear up): resampling to the
    API's working size and back keeps it, so an answer can be compared with the input."""
    from iretouch_bench.core.resize import resize

    coarse = np.random.default_rng(seed).random((6, 8, 3), dtype=np.float32) * 0.8 + 0.1
    return np.clip(resize(coarse, size, "bilinear"), 0, 1).astype(np.float32)


def _req(instruction: str = "make it warmer", seed: int = 11, size=(60, 80), image_seed: int = 0) -> RetouchRequest:
    return RetouchRequest(image=_img(image_seed, size), instruction=instruction, seed=seed, sample_id="s1")


def _api_posts(srv) -> list[dict]:
    return [r for r in srv.requests if r["method"] == "POST"]


# ---------------------------------------------------------------------------- a normal answer
def test_normal_answer(editor):
    name, spec, srv, make = editor
    m = make()
    m.preflight()
    req = _req(size=(60, 80))
    r = m.run(req)
    assert r.status == "ok" and r.reason is None
    assert r.image.shape == (60, 80, 3) and r.image.dtype == np.float32
    # the fake's edit is a warm tint, so the answer brought back to the input size is the tinted input
    assert np.abs(r.image - np.clip(req.image * TINT, 0, 1)).mean() < 0.03
    meta = r.meta
    assert meta["working_size"] != [60, 80] and meta["resize"]["to"] == [60, 80]
    assert meta["resize"]["from"] == meta["working_size"] and "match_size" in meta["resize_policy"]
    assert meta["cost_usd"] > 0 and meta["cached"] is False and meta["attempts"] == 1
    assert meta["request_id"] and meta["model_id"] == name and meta["endpoint"] == srv.base_url
    t = meta["timing"]
    assert set(t) >= {"upload_s", "queue_s", "generate_s", "download_s", "total_s"}
    assert t["generate_s"] > 0 and t["total_s"] >= t["generate_s"]
    assert all(spec["key_header"](q["headers"]) for q in _api_posts(srv))
    json.dumps(meta)  # JSON values only: lands in the sample record as is
    # 4:3 input -> the 4:3-ish working size of each API
    h, w = meta["working_size"]
    assert 1.2 < w / h < 1.6
    info = m.info()
    assert info["model_id"] == name and info["endpoint"] == srv.base_url and info["api_key_source"].startswith("$")


def test_request_shapes():
    """What each adapter puts on the wire (checked on the fakes' request logs)."""
    with FakeOpenAIImages() as srv:
        m = create_model("gpt-image-1", base_url=srv.base_url, cache="off", quality="medium")
        mask = np.zeros((60, 80), np.float32)
        mask[:, :40] = 1
        m.run(RetouchRequest(image=_img(), instruction="warmer", mask=mask, seed=3))
        form = FakeOpenAIImages.form(srv.requests[0])
        assert form["model"] == "gpt-image-1" and form["prompt"] == "warmer" and form["size"] == "1536x1024"
        assert form["quality"] == "medium" and form["input_fidelity"] == "high" and form["output_format"] == "png"
        assert form["image"][1][:8] == b"\x89PNG\r\n\x1a\n" and "seed" not in form
        from PIL import Image
        import io

        with Image.open(io.BytesIO(form["mask"][1])) as im:
            alpha = np.asarray(im.convert("RGBA"))[..., 3]
        assert im.size == (80, 60) and alpha[:, :40].max() == 0 and alpha[:, 40:].min() == 255
    with FakeGemini() as srv:
        req = _req(seed=2 ** 32 - 1)
        req.mask = np.ones((60, 80), np.float32)
        r = create_model("gemini-2.5-flash-image", base_url=srv.base_url, cache="off").run(req)
        assert r.meta["mask"].startswith("not sent") and r.meta["seed"] == 2 ** 32 - 1
        q = srv.requests[0]
        assert q["path"] == "/v1/models/gemini-2.5-flash-image:generateContent"
        body = json.loads(q["body"])
        parts = body["contents"][0]["parts"]
        blob = parts[0]["inlineData"]  # the SDK writes mime_type (proto JSON accepts both spellings)
        assert blob.get("mimeType", blob.get("mime_type")) == "image/png" and parts[1]["text"] == "make it warmer"
        cfg = body["generationConfig"]
        assert cfg["responseModalities"] == ["TEXT", "IMAGE"] and cfg["imageConfig"] == {"aspectRatio": "4:3"}
        assert cfg["seed"] == r.meta["seed_sent"] == (2 ** 32 - 1) % 2 ** 31  # the API's seed is an int32
    with FakeBFL() as srv:
        create_model("flux-kontext-pro", base_url=srv.base_url, cache="off", poll_interval_s=0.01).run(
            _req(seed=99, size=(90, 160)))
        body = json.loads(srv.requests[0]["body"])
        assert srv.requests[0]["path"] == "/v1/flux-kontext-pro"
        assert body["seed"] == 99 and body["aspect_ratio"] == "16:9" and body["output_format"] == "png"
        assert body["prompt"] == "make it warmer" and isinstance(body["input_image"], str)
        download = [q for q in srv.requests if q["path"].startswith("/delivery/")]
        assert len(download) == 1 and "x-key" not in download[0]["headers"]  # a signed URL: never the key
        polls = [q for q in srv.requests if q["path"].startswith("/v1/get_result")]
        assert len(polls) == 3 and all(q["headers"].get("x-key") == KEYS["BFL_API_KEY"] for q in polls)


# ---------------------------------------------------------------------------- transient errors
def test_429_honours_retry_after(editor):
    name, spec, srv, make = editor
    m = make()
    srv.script(("status", 429, {"Retry-After": "3"}, {"error": {"message": "Rate limit reached", "code": 429}}))
    r = m.run(_req())
    assert r.status == "ok" and r.meta["attempts"] == 2
    assert m.policy.sleep[0] == 3.0  # exactly what the server asked, not the millisecond backoff
    assert r.meta["retried"][0]["retry_after_s"] == 3.0 and "HTTP 429" in r.meta["retried"][0]["error"]


def test_500_then_success(editor):
    name, spec, srv, make = editor
    m = make()
    srv.script(("status", 500, {}, {"error": {"message": "internal error", "code": 500}}))
    r = m.run(_req())
    assert r.status == "ok" and r.meta["attempts"] == 2 and "HTTP 500" in r.meta["retried"][0]["error"]
    assert len(m.policy.sleep) == 1 and m.policy.sleep[0] <= 0.01


def test_500_forever_is_a_failure_with_the_reason(editor):
    name, spec, srv, make = editor
    m = make(max_retries=2)
    srv.script(*[("status", 503, {}, {"error": {"message": "overloaded", "code": 503}})] * 3)
    with pytest.raises(ModelError, match=r"failed after 3 attempts: HTTP 503"):
        m.run(_req())
    assert len(_api_posts(srv)) == 3


def test_timeout_is_retried(editor):
    name, spec, srv, make = editor
    m = make(timeout_s=1.0)  # the fake's own edit takes ~0.3 s on a busy 2-core machine
    srv.script(("sleep", 2.0))
    r = m.run(_req())
    assert r.status == "ok" and "timeout" in r.meta["retried"][0]["error"]


def test_malformed_body_retried_then_failure(editor):
    name, spec, srv, make = editor
    m = make(max_retries=1)
    spec["malformed"](srv, 1)
    r = m.run(_req())
    assert r.status == "ok" and "malformed answer" in r.meta["retried"][0]["error"]
    spec["malformed"](srv, 2)
    with pytest.raises(ModelError, match="failed after 2 attempts: malformed answer"):
        m.run(_req("make it cooler"))


# ---------------------------------------------------------------------------- refusals
def test_moderated_is_refused_not_failed(editor):
    name, spec, srv, make = editor
    m = make()
    spec["moderated"](srv)
    r = m.run(_req())
    assert r.status == "refused" and r.image is None and r.reason == spec["moderated_reason"]
    assert r.meta["attempts"] == 1  # a refusal is an answer: not retried
    with pytest.raises(ModelError, match="refused"):  # the simple path raises instead
        spec["moderated"](srv)
        m.retouch(_img(5), "make it red")


def test_answer_without_image_is_refused(editor):
    name, spec, srv, make = editor
    m = make()
    spec["no_image"](srv)
    r = m.run(_req())
    assert r.status == "refused" and r.image is None and r.reason == spec["no_image_reason"]


def test_gemini_safety_finish_and_retry_info():
    with FakeGemini() as srv:
        sleeps = Sleeps()
        m = create_model("gemini-2.5-flash-image", base_url=srv.base_url, cache="off", sleep=sleeps)
        srv.script(("json", 200, FakeGemini.answer([], finish="IMAGE_SAFETY")))
        r = m.run(_req())
        assert r.status == "refused" and r.reason == "safety filter: finish_reason IMAGE_SAFETY"
        srv.script(("status", 429, {}, {"error": {"code": 429, "message": "Resource exhausted", "status":
                                                  "RESOURCE_EXHAUSTED", "details": [{
                                                      "@type": "type.googleapis.com/google.rpc.RetryInfo",
                                                      "retryDelay": "2s"}]}}))
        assert m.run(_req()).status == "ok" and sleeps == [2.0]  # Google's RetryInfo honoured


def test_bfl_task_failures_and_deadline():
    with FakeBFL() as srv:
        m = create_model("flux-kontext-pro", base_url=srv.base_url, cache="off", poll_interval_s=0.01)
        srv.poll_script(("json", 200, {"id": "t", "status": "Error", "details": "worker crashed"}))
        with pytest.raises(ModelError, match=r"task task-1: Error \(worker crashed\)"):
            m.run(_req())
        srv.poll_script(("json", 200, {"id": "t", "status": "Task not found"}))
        with pytest.raises(ModelError, match="Task not found"):
            m.run(_req())
        assert len(_api_posts(srv)) == 2  # a failed task is not submitted (and paid) again
    with FakeBFL(pending_polls=10_000) as srv:
        m = create_model("flux-kontext-pro", base_url=srv.base_url, cache="off", poll_interval_s=0.02,
                         poll_timeout_s=0.3)
        with pytest.raises(ModelError, match=r"still Pending after 0.3 s"):
            m.run(_req())


# ---------------------------------------------------------------------------- fatal: unknown model id
def test_unknown_model_id_is_one_line_and_stops(editor):
    name, spec, srv, make = editor
    m = make()
    spec["unknown"](srv)
    with pytest.raises(ModelError) as err:
        m.run(_req())
    line = str(err.value)
    assert "\n" not in line and f"model id '{name}'" in line and "--model-args model=ID" in line
    n = len(srv.requests)
    with pytest.raises(ModelError, match="does not serve"):
        m.run(_req("another"))
    assert len(srv.requests) == n  # stopped: every call would fail the same way


def test_retired_id_refused_by_preflight_on_openai(monkeypatch):
    m = create_model("gpt-image-1")
    with pytest.raises(ModelError, match=r"'gpt-image-1' here: it was shut down by OpenAI on 2026-10-23; choose "
                                         r"another with --model-args model=ID"):
        m.preflight()
    assert m.status().startswith("cannot run model id 'gpt-image-1'")  # what models list shows
    sub = create_model("gpt-image-1", model="gpt-image-2.5-flare", input_fidelity="omit")
    sub.preflight()  # a substitute id: fine, and recorded as its own row
    assert sub.info()["model_id"] == "gpt-image-2.5-flare" and not sub.info()["model_id_is_default"]
    assert sub.cache_identity() != m.cache_identity()
    assert sub.estimate(10)["est_cost_usd"] is None  # no price known for the substitute
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ModelError, match=r"needs the key in \$OPENAI_API_KEY"):
        sub.preflight()
    with pytest.raises(ModelError, match=r"no API key: set \$OPENAI_API_KEY"):
        sub.run(_req())  # and run() says so before sending anything


# ---------------------------------------------------------------------------- cache, budget, key
def test_second_call_served_from_cache(editor):
    name, spec, srv, make = editor
    first = make().run(_req())
    n = len(srv.requests)
    m2 = make()  # a new adapter (a rerun): same cache folder
    again = m2.run(_req())
    assert len(srv.requests) == n  # zero requests
    assert again.meta["cached"] is True and again.meta["cost_usd"] == 0.0
    assert again.meta["original_cost_usd"] == first.meta["cost_usd"]
    np.testing.assert_array_equal(again.image, first.image)
    assert m2.info()["answers_from_cache"] == 1 and m2.info()["requests_sent"] == 0
    # a refusal is cached too (a rerun must not pay to be refused again)
    spec["moderated"](srv)
    r = make().run(_req("make it purple"))
    n = len(srv.requests)
    assert make().run(_req("make it purple")).status == "refused" and len(srv.requests) == n
    # another instruction, another endpoint spelling of the same server: cache key rules
    make().run(_req("make it cooler"))
    assert len(srv.requests) > n
    n = len(srv.requests)
    make(base_url=srv.base_url + "/").run(_req("make it cooler"))
    assert len(srv.requests) == n
    make(cache="refresh").run(_req("make it cooler"))
    assert len(srv.requests) > n
    assert r.status == "refused"


def test_budget_stops_before_it_is_exceeded(editor):
    name, spec, srv, make = editor
    per_call = make().estimate_call_usd()
    budget = 2.5 * per_call  # room for two calls (each costs at most its estimate), not three
    m = make(budget_usd=budget)
    done = [m.run(_req(f"edit {i}")) for i in range(2)]
    n = len(srv.requests)
    with pytest.raises(ModelError, match="budget exhausted"):
        m.run(_req("edit 2"))
    assert len(srv.requests) == n  # nothing was sent for the call that did not fit
    spent = sum(r.meta["cost_usd"] for r in done)
    assert 0 < spent <= budget and m.info()["budget"]["spent_usd"] == pytest.approx(spent, abs=1e-6)
    assert m.run(_req("edit 0")).meta["cached"]  # cached answers cost nothing: still served
    est = m.estimate(100)
    assert est["calls"] == 100 and est["est_cost_usd"] == pytest.approx(100 * per_call, rel=1e-3)


def test_key_appears_in_no_stored_file(editor, tmp_path, caplog):
    import logging

    caplog.set_level(logging.DEBUG)  # the client libraries' logging at their most verbose too
    name, spec, srv, make = editor
    key = KEYS[spec["key_env"]]
    m = make(max_retries=1)
    # a server that echoes the key in an error body, then answers
    srv.script(("status", 500, {}, {"error": {"message": f"upstream said: bad key {key}", "code": 500}}))
    r = m.run(_req())
    assert r.status == "ok"
    assert any(spec["key_header"](q["headers"]) for q in srv.requests)  # the key did travel (not vacuous)
    srv.script(("status", 400, {}, {"error": {"message": f"invalid request from {key}", "code": 400}}))
    with pytest.raises(ModelError) as err:
        m.run(_req("make it cooler"))
    assert key not in str(err.value) and "[REDACTED]" in str(err.value)
    blob = json.dumps(r.meta) + json.dumps(m.info()) + json.dumps(m.cache_identity())
    assert key not in blob and "[REDACTED]" in json.dumps(r.meta)
    files = [p for p in Path(tmp_path / "cache").rglob("*") if p.is_file()]
    assert files
    for f in files:
        assert key.encode() not in f.read_bytes(), f"key leaked into {f}"
    assert caplog.records and key not in caplog.text


# ---------------------------------------------------------------------------- endpoint, status, threads
def test_base_url_from_the_usual_variable(editor, monkeypatch):
    name, spec, srv, make = editor
    monkeypatch.setenv(spec["url_env"], srv.base_url)
    m = create_model(name, cache="off", poll_interval_s=0.01) if name == "flux-kontext-pro" else \
        create_model(name, cache="off")
    assert m.info()["endpoint"] == srv.base_url and m.info()["endpoint_source"] == "$" + spec["url_env"]
    assert m.run(_req()).status == "ok" and _api_posts(srv)


def test_models_list_status(monkeypatch):
    """What ``models list`` shows for each API row: ``status()`` of a default-constructed adapter."""
    for var in KEYS:
        monkeypatch.delenv(var)

    def status(name):
        return get_model_class(name)().status()
    assert status("gpt-image-1").startswith("needs the key in $OPENAI_API_KEY; cannot run model id 'gpt-image-1'")
    assert status("gemini-2.5-flash-image") == "needs the key in $GOOGLE_API_KEY or $GEMINI_API_KEY"
    assert status("flux-kontext-pro") == "needs the key in $BFL_API_KEY"
    for name in NAMES:
        cls = get_model_class(name)
        assert cls.kind == "api" and cls.paper_row and cls.license and cls.max_concurrency > 1
    monkeypatch.setenv("GEMINI_API_KEY", "x-key-123")
    monkeypatch.setenv("BFL_BASE_URL", "http://127.0.0.1:9")  # a local endpoint needs no key
    assert status("gemini-2.5-flash-image") == "ready" and status("flux-kontext-pro") == "ready"


def test_bad_options_are_one_line():
    with pytest.raises(ModelError, match=r"unknown option\(s\) qualty"):
        create_model("gpt-image-1", qualty="high")
    with pytest.raises(ModelError, match=r"option quality='ultra': expected one of"):
        create_model("gpt-image-1", quality="ultra")
    with pytest.raises(ModelError, match=r"option timeout_s='soon' is not a number"):
        create_model("flux-kontext-pro", timeout_s="soon")
    with pytest.raises(ModelError, match=r"option aspect_ratio='5:1'"):
        create_model("gemini-2.5-flash-image", aspect_ratio="5:1")


def test_concurrent_calls_are_safe(editor):
    name, spec, srv, make = editor
    m = make()
    results: dict[int, object] = {}

    def work(i):
        results[i] = m.run(_req(f"edit {i}", image_seed=i))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(get_model_class(name).max_concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == len(threads)
    for i, r in results.items():
        assert r.status == "ok" and r.image.shape == (60, 80, 3)
        assert np.abs(r.image - np.clip(_img(i) * TINT, 0, 1)).mean() < 0.03  # each got its own answer
    assert m.info()["requests_sent"] >= len(threads)
