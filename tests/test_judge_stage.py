"""Prompt sets as data, two judges in one run, and the judge as its own stage, against local
servers speaking the OpenAI chat-completions and Gemini generateContent APIs (real clients).

* a custom prompt file's text reaches both servers verbatim (instruction placeholder filled);
* a run with two judges: plain sc/pq/o from the primary, per-judge blocks, agreement figures
  (Spearman/Kendall of SC and PQ) in the summary and the table;
* ``judge RUN_DIR`` on a finished offline run adds the scores without regenerating; a rerun sends
  zero requests; a different prompt set on the same spec is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from pathlib import Path

import pytest

from gemini_server import FakeGeminiJudge
from judge_server import FakeChatServer

from iretouch_bench import api
from iretouch_bench.core.errors import BenchError
from iretouch_bench.judge.prompts import DEFAULT_PROMPTS, load_prompt_set
from iretouch_bench.runner.config import RunConfig
from iretouch_bench.runner.records import read_all

SC_SYSTEM = 'CUSTOM-SC 7f3: rate it. Answer {"score": [A, B], "reasoning": "..."} only. {braces} stay.'
SC_USER = 'Task: "{instruction}" | first image = before, second = after'
PQ_SYSTEM = "CUSTOM-PQ 9c1: quality only. Reply {\"score\": [A, B]}."
PQ_USER = "Rate this one."
METRICS = ("ssim", "sc", "pq", "o")


def _h(img: bytes) -> int:
    """The fake judges' score: a number 0-10 from the image bytes (same bytes, same number)."""
    return hashlib.sha256(img).digest()[0] % 11


class ChatJudge(FakeChatServer):
    """OpenAI-compatible fake whose answers follow the images it is shown (any prompt wording)."""

    def default_answer(self, body: dict) -> str:
        urls = [p["image_url"]["url"] for p in body["messages"][1]["content"] if p["type"] == "image_url"]
        h = _h(base64.b64decode(urls[-1].partition(",")[2]))
        return json.dumps({"score": [h, 10], "reasoning": "x"})


def _gemini_scorer(body: dict, images: list[bytes]) -> str:
    h = _h(images[-1])
    # SC agrees with the chat judge, PQ is its mirror image: Spearman +1 and -1
    return json.dumps({"score": [h, 10] if len(images) == 2 else [10 - h, 10], "reasoning": "y"})


@pytest.fixture
def servers(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-stage-1")
    monkeypatch.setenv("GOOGLE_API_KEY", "AIza-test-stage-2")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("GOOGLE_GEMINI_BASE_URL", raising=False)
    with ChatJudge() as chat, FakeGeminiJudge() as gem:
        gem.scorer = _gemini_scorer
        yield chat, gem


@pytest.fixture
def prompt_file(tmp_path) -> Path:
    data = DEFAULT_PROMPTS.to_json()
    data.update(name="custom", version="custom-1")
    data["questions"]["sc"].update(system=SC_SYSTEM, user=SC_USER)
    data["questions"]["pq"].update(system=PQ_SYSTEM, user=PQ_USER)
    path = tmp_path / "prompts.json"
    path.write_text(json.dumps(data))
    return path


def _spec(chat, gem) -> str:
    return f"openai:gpt-4o@{chat.base_url},gemini:gemini-2.5-flash@{gem.base_url}"


def _check_two_judges(run_dir: Path, specs: list[str], phash: str, summary: dict, table: str) -> None:
    recs = read_all(run_dir, "samples")
    assert len(recs) == 6
    for rec in recs.values():
        a, b = (rec["judges"][s] for s in specs)
        assert rec["metrics"]["sc"] == a["sc"] and rec["metrics"]["pq"] == a["pq"]  # plain keys: the primary
        assert rec["metrics"]["o"] == pytest.approx(math.sqrt(a["sc"] * a["pq"]))
        assert b["sc"] == a["sc"] and b["pq"] == 10 - a["pq"]
        assert a["prompt_hash"] == b["prompt_hash"] == phash == rec["judge"]["prompt_hash"]
        assert b["snapshots"] == ["gemini-2.5-flash-001"]
    assert list(summary["judges"]) == specs
    (agree,) = summary["judge_agreement"]
    assert (agree["a"], agree["b"]) == tuple(specs)
    assert agree["sc"]["n"] == 6 and agree["sc"]["spearman"] == pytest.approx(1.0)
    assert agree["sc"]["kendall"] == pytest.approx(1.0)
    assert agree["pq"]["spearman"] == pytest.approx(-1.0) and agree["pq"]["kendall"] == pytest.approx(-1.0)
    assert f"{specs[0]} (primary)" in table and specs[1] in table
    assert "judge agreement" in table and "SC Spearman 1.000" in table and "PQ Spearman -1.000" in table


def test_custom_prompt_file_reaches_both_servers_verbatim_in_a_two_judge_run(
        tiny_manifest, tmp_path, servers, prompt_file):
    chat, gem = servers
    ps = load_prompt_set(prompt_file)
    assert ps.hash != DEFAULT_PROMPTS.hash
    cfg = RunConfig(model="identity", dataset=f"iretouch:{tiny_manifest}", out=str(tmp_path / "run"),
                    judge=_spec(chat, gem), judge_prompts=str(prompt_file), judge_cache_dir=str(tmp_path / "cache"),
                    metrics=METRICS, judge_temperature=0.2, judge_seed=5)
    res = api.run_benchmark(cfg, progress=False, log=lambda *a: None)
    assert len(chat.requests) == 12 and len(gem.requests) == 12
    instructions = {r["instruction"] for r in read_all(res.run_dir, "samples").values()}
    # OpenAI-compatible: system message and user text exactly the file's (placeholder filled)
    for req in chat.requests:
        msgs = req["body"]["messages"]
        n_img = sum(p["type"] == "image_url" for p in msgs[1]["content"])
        if n_img == 2:
            assert msgs[0]["content"] == SC_SYSTEM
            assert msgs[1]["content"][0]["text"] in {SC_USER.replace("{instruction}", i) for i in instructions}
        else:
            assert msgs[0]["content"] == PQ_SYSTEM and msgs[1]["content"][0]["text"] == PQ_USER
        assert req["body"]["temperature"] == 0.2 and req["body"]["seed"] == 5
    # Gemini: the same text as system instruction and first user part
    for req in gem.requests:
        body = FakeGeminiJudge.parsed(req)
        system = body["systemInstruction"]["parts"][0]["text"]
        user = body["contents"][0]["parts"][0]["text"]
        assert (system, user in {SC_USER.replace("{instruction}", i) for i in instructions}) == (SC_SYSTEM, True) \
            or (system, user) == (PQ_SYSTEM, PQ_USER)
    specs = _spec(chat, gem).split(",")
    _check_two_judges(res.run_dir, specs, ps.hash, res.summary, res.table)
    info = json.loads((res.run_dir / "run.json").read_text())
    assert info["config"]["judge_prompt_hash"] == ps.hash
    assert [j["spec"] for j in info["scoring"]["judges"]] == specs
    assert info["scoring"]["judges"][0]["prompt_set"]["name"] == "custom"
    assert info["scoring"]["judges"][1]["snapshots"] == ["gemini-2.5-flash-001"]
    assert info["judge"]["spec"] == specs[0] and len(info["judges"]) == 2
    assert info["scoring"]["fidelity_protocol"]["label"] == "paper/2"
    # the prompt set is part of the resume guard
    cfg2 = RunConfig(**{**cfg.__dict__, "judge_prompts": None})
    with pytest.raises(BenchError, match="judge_prompt_hash"):
        api.run_benchmark(cfg2, progress=False, log=lambda *a: None)


def test_judge_stage_on_a_finished_run_then_zero_requests(tiny_manifest, tmp_path, servers, prompt_file):
    chat, gem = servers
    cfg = RunConfig(model="identity", dataset=f"iretouch:{tiny_manifest}", out=str(tmp_path / "run"),
                    judge="offline", metrics=METRICS)
    first = api.run_benchmark(cfg, progress=False, log=lambda *a: None)
    outputs = {p: p.stat().st_mtime_ns for p in (first.run_dir / "outputs").rglob("*") if p.is_file()}
    assert first.summary["metrics"]["sc"]["n"] == 0 and not chat.requests
    spec = _spec(chat, gem)
    stage, res = api.judge_run(first.run_dir, spec, prompts=str(prompt_file), cache_dir=str(tmp_path / "cache"),
                               progress=False, log=lambda *a: None)
    assert stage.n_judged == 6 and stage.primary_set and stage.api_requests == 24
    assert len(chat.requests) == 12 and len(gem.requests) == 12
    specs = spec.split(",")
    _check_two_judges(first.run_dir, specs, load_prompt_set(prompt_file).hash, res.summary, res.table)
    # nothing regenerated; generate records untouched
    assert {p: p.stat().st_mtime_ns for p in (first.run_dir / "outputs").rglob("*") if p.is_file()} == outputs
    info = json.loads((first.run_dir / "run.json").read_text())
    assert info["judge"]["spec"] == specs[0] and info["judge_stages"][0]["samples_judged"] == 6
    assert info["config"]["judge"] == "offline"  # the run's own config (and resume guard) is unchanged
    result = json.loads((first.run_dir / "result.json").read_text())
    assert result["protocols"]["judge"]["prompt_hash"] == load_prompt_set(prompt_file).hash

    # rerun: zero requests, same records (even with another cache folder: the records say it is done)
    before = (first.run_dir / "samples.jsonl").read_text()
    stage2, _ = api.judge_run(first.run_dir, spec, prompts=str(prompt_file), cache_dir=str(tmp_path / "other"),
                              progress=False, log=lambda *a: None)
    assert stage2.n_judged == 0 and stage2.n_already == 6 and stage2.api_requests == 0
    assert len(chat.requests) == 12 and len(gem.requests) == 12
    assert (first.run_dir / "samples.jsonl").read_text() == before
    # the same spec with another prompt set would make one column of two protocols
    with pytest.raises(BenchError, match="other settings"):
        api.judge_run(first.run_dir, specs[1], cache_dir=str(tmp_path / "cache"), progress=False,
                      log=lambda *a: None)


def test_judge_stage_resumes_from_its_journal(tiny_manifest, tmp_path, servers):
    """A stage killed after journaling some samples re-asks only the rest."""
    chat, gem = servers
    cfg = RunConfig(model="identity", dataset=f"iretouch:{tiny_manifest}", out=str(tmp_path / "run"),
                    judge="offline", metrics=METRICS)
    run_dir = api.run_benchmark(cfg, progress=False, log=lambda *a: None).run_dir
    spec = f"openai:gpt-4o@{chat.base_url}"
    from iretouch_bench.runner import judge_stage

    calls = {"n": 0}
    real = judge_stage.merge_journal

    def crash(*a, **k):
        calls["n"] += 1
        raise KeyboardInterrupt  # killed after the journal, before the merge

    judge_stage.merge_journal = crash
    try:
        with pytest.raises(KeyboardInterrupt):
            judge_stage.judge_run(run_dir, spec, cache_mode="off", progress=False, log=lambda *a: None, chunk=4)
    finally:
        judge_stage.merge_journal = real
    assert len(chat.requests) == 12 and (run_dir / "judged.jsonl").is_file()
    stage = judge_stage.judge_run(run_dir, spec, cache_mode="off", progress=False, log=lambda *a: None)
    assert stage.n_judged == 0 and len(chat.requests) == 12  # the journal held every answer: no request
    recs = read_all(run_dir, "samples")
    assert all(r["metrics"]["sc"] is not None and spec in r["judges"] for r in recs.values())


def test_cli_judge_protocols_and_prompt_export(tiny_manifest, tmp_path, servers):
    from click.testing import CliRunner

    from iretouch_bench.cli import cli

    chat, _ = servers
    runner = CliRunner()
    out = runner.invoke(cli, ["protocols"])
    assert out.exit_code == 0 and all(n in out.output for n in ("paper/2", "float/2", "dists256/1",
                                                                  "ssim-downsample/1"))
    path = tmp_path / "exported.json"
    out = runner.invoke(cli, ["judge-prompts", "export", str(path)])
    assert out.exit_code == 0 and load_prompt_set(path).hash == DEFAULT_PROMPTS.hash
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**DEFAULT_PROMPTS.to_json(), "answer": {"shape": "likert"}}))
    out = runner.invoke(cli, ["judge-prompts", "show", str(bad)])
    assert out.exit_code != 0
    run_dir = tmp_path / "run"
    out = runner.invoke(cli, ["run", "--model", "identity", "--dataset", f"iretouch:{tiny_manifest}", "--out",
                              str(run_dir), "--metrics", "ssim", "--quiet"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(cli, ["judge", str(run_dir), "--judge", "openai:gpt-4o", "--judge-base-url", chat.base_url,
                              "--judge-cache-dir", str(tmp_path / "c"), "--quiet"])
    assert out.exit_code == 0, out.output
    assert "judged 6 sample(s)" in out.output and len(chat.requests) == 12


def test_judge_stage_takes_unset_options_from_the_run_config(tiny_manifest, tmp_path, servers, prompt_file):
    """After a sharded (or offline) run, `judge RUN_DIR` asks with the run's own --judge-* settings."""
    chat, _ = servers
    cfg = RunConfig(model="identity", dataset=f"iretouch:{tiny_manifest}", out=str(tmp_path / "run"),
                    judge="offline", metrics=METRICS, judge_prompts=str(prompt_file), judge_temperature=0.3,
                    judge_base_url=chat.base_url, judge_cache_dir=str(tmp_path / "cache"))
    run_dir = api.run_benchmark(cfg, progress=False, log=lambda *a: None).run_dir
    with pytest.raises(BenchError, match="no VLM judge"):
        api.judge_run(run_dir, None, progress=False, log=lambda *a: None)
    stage, res = api.judge_run(run_dir, "openai:gpt-4o", progress=False, log=lambda *a: None)
    assert stage.n_judged == 6 and len(chat.requests) == 12
    assert all(r["body"]["temperature"] == 0.3 for r in chat.requests)
    assert {r["body"]["messages"][0]["content"] for r in chat.requests} == {SC_SYSTEM, PQ_SYSTEM}
    rec = next(iter(read_all(run_dir, "samples").values()))
    assert rec["judge"]["prompt_hash"] == load_prompt_set(prompt_file).hash
