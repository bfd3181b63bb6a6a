"""``iretouch-bench run`` with each API editor against its local server on 127.0.0.1, end to end:
three samples, one refused by moderation (counted apart, never scored, exit 0), the sample
records carry the model's meta, a rerun into a new folder makes zero requests, and the API key
appears in no file of the run folders or caches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from api_servers import FakeBFL, FakeGemini, FakeOpenAIImages

SECRET = {"OPENAI_API_KEY": "sk-test-SECRET-e2e-1", "GEMINI_API_KEY": "AIza-test-SECRET-e2e-2",
          "BFL_API_KEY": "bfl-test-SECRET-e2e-3"}
REFUSE_WORD = "contrast"  # tiny_manifest's third instruction: "Add more contrast"


def _openai_hook(req):
    form = FakeOpenAIImages.form(req)
    if REFUSE_WORD in form.get("prompt", "").lower():
        return ("status", 400, {}, {"error": {"message": "Your request was rejected by the safety system.",
                                              "type": "image_generation_user_error", "param": None,
                                              "code": "moderation_blocked"}})
    return None


def _gemini_hook(req):
    body = json.loads(req["body"])
    text = " ".join(p.get("text", "") for p in body["contents"][0]["parts"])
    if REFUSE_WORD in text.lower():
        return ("json", 200, FakeGemini.answer([{"text": "I can't make that edit."}]))
    return None


CASES = {
    "gpt-image-1": (FakeOpenAIImages, "OPENAI_API_KEY", {}),
    "gemini-2.5-flash-image": (FakeGemini, "GEMINI_API_KEY", {}),
    "flux-kontext-pro": (FakeBFL, "BFL_API_KEY", {"poll_interval_s": 0.01}),
}


def _cli(args, env):
    return subprocess.run([sys.executable, "-m", "iretouch_bench.cli", *args], capture_output=True, text=True,
                          timeout=600, env=env)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_run_api_editor_end_to_end(name, tiny_manifest, tmp_path):
    server_cls, key_env, extra = CASES[name]
    env = {k: v for k, v in os.environ.items() if k not in SECRET and not k.endswith("_BASE_URL")}
    env.update(SECRET)
    env["IRETOUCH_BENCH_CACHE"] = str(tmp_path / "cache")  # every cache of the run lands here
    with server_cls() as srv:
        if name == "gpt-image-1":
            srv.hook = _openai_hook
        elif name == "gemini-2.5-flash-image":
            srv.hook = _gemini_hook
        else:
            srv.poll_hook = lambda req: (("json", 200, {"id": "t", "status": "Content Moderated"})
                                         if REFUSE_WORD in ((srv.task_of(req) or {}).get("prompt", "").lower())
                                         else None)
        margs = ",".join(f"{k}={v}" for k, v in {"base_url": srv.base_url, **extra}.items())
        common = ["run", "--model", name, "--model-args", margs, "--dataset", f"iretouch:{tiny_manifest}",
                  "--limit", "3", "--metrics", "distance", "--quiet"]
        proc = _cli([*common, "--out", str(tmp_path / "a")], env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "1 sample(s) refused" in proc.stderr
        n_first = len(srv.requests)
        assert n_first >= 3
        recs = {}
        for f in (tmp_path / "a").glob("samples*.jsonl"):
            for line in f.read_text().splitlines():
                rec = json.loads(line)
                recs[rec["id"]] = rec
        assert sorted(recs) == ["s0", "s1", "s2"]
        assert recs["s2"]["status"] == "refused" and recs["s2"]["reason"]
        for sid in ("s0", "s1"):
            assert recs[sid]["status"] == "ok"
        gen = {}
        for f in (tmp_path / "a").glob("generate*.jsonl"):
            for line in f.read_text().splitlines():
                rec = json.loads(line)
                gen[rec["id"]] = rec
        meta = gen["s0"]["model_meta"]
        assert meta["working_size"] and meta["resize"]["to"] == gen["s0"]["input_size"]
        assert meta["model_id"] == name and meta["timing"]["total_s"] > 0
        # a rerun into another folder is served from the caches: zero requests
        proc = _cli([*common, "--out", str(tmp_path / "b")], env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert len(srv.requests) == n_first
        assert any(SECRET[key_env] in json.dumps(q["headers"]) for q in srv.requests)  # it did travel
    for d in (tmp_path / "a", tmp_path / "b", tmp_path / "cache"):
        for f in Path(d).rglob("*"):
            if f.is_file():
                assert SECRET[key_env].encode() not in f.read_bytes(), f"API key leaked into {f}"


@pytest.mark.slow
def test_run_api_editor_failure_exit_code(tiny_manifest, tmp_path):
    """A sample the API rejects (HTTP 400, not a moderation) is a failed sample: recorded with the
    API's reason in one line, the others are generated and scored, exit code 3."""
    env = {k: v for k, v in os.environ.items() if k not in SECRET and not k.endswith("_BASE_URL")}
    env.update(SECRET)
    env["IRETOUCH_BENCH_CACHE"] = str(tmp_path / "cache")
    with FakeOpenAIImages() as srv:
        srv.hook = lambda req: (("status", 400, {}, {"error": {"message": "Invalid image: too small", "param": "image",
                                                               "code": "invalid_image", "type": "invalid_request_error"}})
                                if "warmer" in FakeOpenAIImages.form(req).get("prompt", "").lower() else None)
        proc = _cli(["run", "--model", "gpt-image-1", "--model-args", f"base_url={srv.base_url}", "--dataset",
                     f"iretouch:{tiny_manifest}", "--limit", "3", "--metrics", "distance", "--quiet",
                     "--out", str(tmp_path / "a")], env)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    recs = {}
    for f in (tmp_path / "a").glob("samples*.jsonl"):
        for line in f.read_text().splitlines():
            rec = json.loads(line)
            recs[rec["id"]] = rec
    assert recs["s1"]["status"] == "failed"  # "Make it warmer"
    assert "HTTP 400" in recs["s1"]["error"] and "Invalid image: too small" in recs["s1"]["error"]
    assert recs["s0"]["status"] == "ok" and recs["s2"]["status"] == "ok"
