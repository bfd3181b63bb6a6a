"""A whole run with the VLM judge against a local chat-completions server on 127.0.0.1:
scores land in the records, a rerun in a new folder makes no request (cache), and the API key
appears nowhere in the run folder."""

from __future__ import annotations

import json
import math

import pytest

from judge_server import FakeChatServer

from iretouch_bench.runner.config import RunConfig
from iretouch_bench.runner.records import read_all
from iretouch_bench.api import run_benchmark

SECRET = "sk-test-SECRET-run-9f3a"


def _run(manifest, out, server, cache):
    cfg = RunConfig(model="identity", dataset=f"iretouch:{manifest}", out=str(out), judge="openai:gpt-4o",
                    judge_base_url=server.base_url, judge_cache_dir=str(cache), judge_concurrency=2)
    return run_benchmark(cfg, progress=False, log=lambda *a: None)


def test_run_with_openai_judge(tiny_manifest, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with FakeChatServer() as server:
        res = _run(tiny_manifest, tmp_path / "a", server, tmp_path / "cache")
        n_first = len(server.requests)
        assert n_first == 12  # 6 samples x (SC, PQ)
        assert all(r["headers"].get("authorization", "").endswith(SECRET) for r in server.requests)
        rec = read_all(res.run_dir, "samples")["s1"]
        assert rec["metrics"]["sc"] == 6 and rec["metrics"]["pq"] == 7
        assert rec["metrics"]["o"] == pytest.approx(math.sqrt(42))
        assert res.summary["metrics"]["o"]["n"] == 6
        info = json.loads((res.run_dir / "run.json").read_text())
        assert "gpt-4o-2024-08-06" in json.dumps(info["judge"])
        # a rerun in another folder is served from the cache
        _run(tiny_manifest, tmp_path / "b", server, tmp_path / "cache")
        assert len(server.requests) == n_first
    for d in (tmp_path / "a", tmp_path / "b", tmp_path / "cache"):
        for f in d.rglob("*"):
            if f.is_file():
                assert SECRET.encode() not in f.read_bytes(), f"API key leaked into {f}"
