"""The harness: stages, run folder contents, failure records, resume after SIGKILL, shards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from iretouch_bench.metrics.keys import SAMPLE_KEYS
from iretouch_bench.runner.config import RunConfig
from iretouch_bench.runner.records import RecordWriter, read_all, read_records
from iretouch_bench.api import run_benchmark


def _run(manifest, out, model="identity", **kw):
    cfg = RunConfig(model=model, dataset=f"iretouch:{manifest}", out=str(out), **kw)
    return run_benchmark(cfg, progress=False, log=lambda *a: None)


def test_run_folder_contract(tiny_manifest, tmp_path):
    res = _run(tiny_manifest, tmp_path / "run")
    d = res.run_dir
    for name in ("run.json", "samples.jsonl", "summary.json", "table.md"):
        assert (d / name).exists(), name
    info = json.loads((d / "run.json").read_text())
    assert info["dataset"]["content_hash"] and info["config"]["model"] == "identity"
    assert info["versions"]["torch"] and "device" in info and "judge" in info
    # what DISTS convolved with is part of what made its numbers
    assert "Winograd" in info["scoring"]["dists_weights"]["convolution"]
    recs = list(read_records(d / "samples.jsonl"))
    assert sorted(r["id"] for r in recs) == [f"s{i}" for i in range(6)]
    for r in recs:
        assert set(SAMPLE_KEYS) <= set(r["metrics"])
        for k, v in r["metrics"].items():
            if v is None:
                assert r["null_reasons"].get(k), f"{k} is null without a reason"
        assert (d / r["output"]).exists()
    # identity returns the input: l1 to target equals the input/target gap, judge null with reason
    assert res.summary["metrics"]["l1"]["mean"] > 0
    assert res.summary["metrics"]["sc"]["mean"] is None
    assert "| identity |" in res.table


def test_broken_sample_is_recorded_and_run_goes_on(tiny_manifest, tmp_path):
    (tiny_manifest.parent / "in_3.png").write_bytes(b"not a png at all")
    res = _run(tiny_manifest, tmp_path / "run")
    assert res.n_failed == 1
    rec = read_all(res.run_dir, "samples")["s3"]
    assert rec["status"] == "failed" and "in_3.png" in rec["error"]
    assert all(v is None for v in rec["metrics"].values())
    assert res.summary["n_ok"] == 5


def test_rerun_is_a_no_op_and_config_mismatch_refused(tiny_manifest, tmp_path):
    from iretouch_bench.core.errors import BenchError

    first = _run(tiny_manifest, tmp_path / "run")
    before = (first.run_dir / "samples.jsonl").read_bytes()
    second = _run(tiny_manifest, tmp_path / "run")
    assert (second.run_dir / "samples.jsonl").read_bytes() == before
    assert second.table == first.table
    with pytest.raises(BenchError, match="strength"):
        _run(tiny_manifest, tmp_path / "run", strength=0.5)


def test_torn_line_is_ignored_and_repaired(tmp_path):
    p = tmp_path / "x.jsonl"
    w = RecordWriter(p)
    w.append({"id": "a", "v": 1})
    with open(p, "ab") as f:
        f.write(b'{"id": "b", "v"')  # a writer killed mid-line
    assert [r["id"] for r in read_records(p)] == ["a"]
    RecordWriter(p).append({"id": "c"})
    assert [r["id"] for r in read_records(p)] == ["a", "c"]


def test_records_refuse_nan(tmp_path):
    with pytest.raises(ValueError):
        RecordWriter(tmp_path / "x.jsonl").append({"id": "a", "v": float("nan")})


_SLOW_RUN = """
import sys, time
from iretouch_bench.adapters.base import RetouchModel
from iretouch_bench.adapters.registry import register_model
from iretouch_bench.cli import main

@register_model
class Slow(RetouchModel):
    name = "slow-identity"
    def retouch(self, image, instruction, *, mask=None, strength=1.0):
        time.sleep(0.4)
        return image * 0.9 + 0.05

main(sys.argv[1:])
"""


def test_resume_after_sigkill_gives_same_table(tiny_manifest, tmp_path):
    script = tmp_path / "slow.py"
    script.write_text(_SLOW_RUN)
    args = ["run", "--model", "slow-identity", "--dataset", f"iretouch:{tiny_manifest}", "--quiet"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(script), *args, "--out", str(killed)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gen = killed / "generate.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if gen.exists() and len(list(read_records(gen))) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(list(read_records(gen))) < 6, "run finished before it could be killed"
    subprocess.run([sys.executable, str(script), *args, "--out", str(killed)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    clean = tmp_path / "clean"
    subprocess.run([sys.executable, str(script), *args, "--out", str(clean)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ids = [r["id"] for r in read_records(killed / "samples.jsonl")]
    assert sorted(ids) == sorted(set(ids)) == [f"s{i}" for i in range(6)]
    assert (killed / "table.md").read_text() == (clean / "table.md").read_text()


def test_shards_merge_at_aggregate(tiny_manifest, tmp_path):
    from iretouch_bench.api import aggregate

    out = tmp_path / "sharded"
    for k in range(2):
        _run(tiny_manifest, out, shard=(k, 2))
    assert (out / "samples-0of2.jsonl").exists() and (out / "samples-1of2.jsonl").exists()
    res = aggregate(out)
    whole = _run(tiny_manifest, tmp_path / "whole")
    assert res.summary["n_ok"] == 6
    assert res.summary["metrics"]["l1"]["mean"] == pytest.approx(whole.summary["metrics"]["l1"]["mean"], abs=1e-12)


def test_missing_file_row_is_a_failed_sample_not_a_failed_run(tiny_manifest, tmp_path):
    """A manifest row naming a missing file: recorded as failed (reason and row), the others are
    generated and scored, exit code 3, and the table's notes name it."""
    rows = [json.loads(line) for line in tiny_manifest.read_text().splitlines()]
    rows[2]["input"] = "nope.png"  # row 3
    tiny_manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "iretouch_bench", "run", "--model", "identity", "--dataset",
                           f"iretouch:{tiny_manifest}", "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 3, proc.stderr
    final = read_all(out, "samples")
    assert sorted(final) == [f"s{i}" for i in range(6)]
    bad = final["s2"]
    assert bad["status"] == "failed" and bad["row"] == 3
    assert f"{tiny_manifest}: row 3: input file 'nope.png' not found" in bad["error"]
    assert all(final[f"s{i}"]["status"] == "ok" for i in (0, 1, 3, 4, 5))
    table = (out / "table.md").read_text()
    assert "| identity | iretouch | all | 5 |" in table
    assert "1 sample(s) failed" in table and "`s2`: " in table and "row 3: input file 'nope.png'" in table
    assert not (out / "outputs" / "s2.png").exists()


def test_metrics_selection_is_recorded_and_guarded(tiny_manifest, tmp_path):
    from iretouch_bench.core.errors import BenchError
    from iretouch_bench.metrics.keys import select_metrics

    assert select_metrics("fidelity,distance", "dists") == ("ssim", "cw_ssim", "gmsd", "l1", "l2")
    assert select_metrics(None, "judge") == ("ssim", "cw_ssim", "gmsd", "dists", "l1", "l2", "attr_acc", "face_sim")
    assert select_metrics("sc") == ("sc", "pq", "o")  # the judge group is all or nothing
    with pytest.raises(ValueError, match="unknown metric"):
        select_metrics("psnr")
    quick = select_metrics(None, "dists")
    res = _run(tiny_manifest, tmp_path / "run", metrics=quick)
    rec = read_all(res.run_dir, "samples")["s1"]
    assert rec["metrics"]["dists"] is None and rec["null_reasons"]["dists"].startswith("not selected")
    assert rec["metrics"]["ssim"] is not None and rec["metrics"]["l1"] is not None
    info = json.loads((res.run_dir / "run.json").read_text())
    assert info["config"]["metrics"] == list(quick)
    assert info["scoring"]["fidelity_protocol"]["name"] == "paper" and info["scoring"]["vocab_version"]
    assert info["scoring"]["dists_weights"] is None  # not selected: nothing to name
    assert info["config"]["suite_version"] and info["config"]["fidelity_protocol"].startswith("paper/")
    assert len(info["scoring_passes"]) == 1 and info["scoring_passes"][0]["samples_to_score"] == 6
    # every setting that changes a number is in the resume guard
    for change in ({"metrics": select_metrics()}, {"judge_max_side": 512}):
        with pytest.raises(BenchError, match="use another --out"):
            _run(tiny_manifest, tmp_path / "run", metrics=change.get("metrics", quick),
                 **{k: v for k, v in change.items() if k != "metrics"})
    again = _run(tiny_manifest, tmp_path / "run", metrics=quick)  # same settings resume, nothing to score
    assert len(json.loads((again.run_dir / "run.json").read_text())["scoring_passes"]) == 1


def test_judge_endpoint_is_in_the_resume_guard(tiny_manifest, tmp_path, monkeypatch):
    from iretouch_bench.runner.run import _judge_endpoint

    cfg = RunConfig(model="identity", judge="openai:gpt-4o-2024-08-06", judge_base_url="http://u:secret@127.0.0.1:9/v1/")
    assert _judge_endpoint(cfg) == "http://127.0.0.1:9/v1"  # credentials never recorded
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.2:8/v1")
    assert _judge_endpoint(RunConfig(model="identity", judge="openai:x")) == "http://127.0.0.2:8/v1"
    assert _judge_endpoint(RunConfig(model="identity")) is None


def test_aggregate_refuses_to_mix_facenet_weights():
    from iretouch_bench.runner.summary import summarise

    def rec(i, weights):
        m = {k: None for k in SAMPLE_KEYS}
        m["face_sim"] = 0.9
        return {"id": f"s{i}", "status": "ok", "category": "portrait", "metrics": m, "null_reasons": {},
                "details": {"identity": {"weights": weights}}}

    same = summarise([rec(0, "vggface2"), rec(1, "vggface2")])
    assert same["metrics"]["face_sim"]["mean"] == pytest.approx(0.9)
    mixed = summarise([rec(0, "vggface2"), rec(1, "casia-webface")])
    st = mixed["metrics"]["face_sim"]
    assert st["mean"] is None and "mixed sources (casia-webface, vggface2)" in next(iter(st["null_reasons"]))
    assert st["by_source"] == {"vggface2": 1, "casia-webface": 1}


FAKES = Path(__file__).parent / "fake_adapters.py"


def test_concurrent_generation_out_of_order_keeps_one_record_per_sample(tiny_manifest, tmp_path, monkeypatch):
    """max_concurrency=4: calls overlap and finish out of order; records stay one per sample and
    the numbers equal a one-at-a-time run's."""
    from iretouch_bench.adapters.registry import get_model_class

    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_CALL_LOG", str(log))
    model = f"{FAKES}:SlowOutOfOrder"
    res = _run(tiny_manifest, tmp_path / "par", model=model, metrics=("l1", "l2"))
    calls = list(read_records(log))
    assert max(c["in_flight"] for c in calls) > 1, "calls never overlapped"
    gen_order = [r["id"] for r in read_records(res.run_dir / "generate.jsonl")]
    assert sorted(gen_order) == sorted(set(gen_order)) == [f"s{i}" for i in range(6)]
    assert gen_order != sorted(gen_order), "completion order happened to be dataset order"
    ids = [r["id"] for r in read_records(res.run_dir / "samples.jsonl")]
    assert sorted(ids) == sorted(set(ids)) == [f"s{i}" for i in range(6)]
    monkeypatch.setattr(get_model_class(model), "max_concurrency", 1)
    seq = _run(tiny_manifest, tmp_path / "seq", model=model, metrics=("l1", "l2"))
    assert [r["id"] for r in read_records(seq.run_dir / "generate.jsonl")] == [f"s{i}" for i in range(6)]
    for i in range(6):
        assert (res.run_dir / "outputs" / f"s{i}.png").read_bytes() == (seq.run_dir / "outputs" / f"s{i}.png").read_bytes()
    assert res.summary["metrics"]["l1"]["mean"] == seq.summary["metrics"]["l1"]["mean"]


def test_sigkill_mid_flight_loses_only_calls_in_flight(tiny_manifest, tmp_path):
    """A concurrent run killed while calls are in flight: the records on disk are whole, one per
    sample; a rerun makes only what is missing and ends with the uninterrupted run's table."""
    model = f"{FAKES}:SlowOutOfOrder"
    log = tmp_path / "calls.jsonl"
    env = dict(os.environ, PYTHONUNBUFFERED="1", FAKE_SLOW_S="2.0", FAKE_CALL_LOG=str(log))
    args = [sys.executable, "-m", "iretouch_bench", "run", "--model", model, "--dataset", f"iretouch:{tiny_manifest}",
            "--metrics", "l1,l2", "--quiet", "--out", str(tmp_path / "killed")]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gen = tmp_path / "killed" / "generate.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (gen.exists() and list(read_records(gen))):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = [r["id"] for r in read_records(gen)]
    assert 1 <= len(before) < 6 and len(before) == len(set(before)), before
    n_calls = len(list(read_records(log)))
    env["FAKE_SLOW_S"] = "0.05"
    subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    remade = [c["id"] for c in list(read_records(log))[n_calls:]]
    assert sorted(remade) == sorted(set(f"s{i}" for i in range(6)) - set(before))  # nothing made twice
    ids = [r["id"] for r in read_records(tmp_path / "killed" / "samples.jsonl")]
    assert sorted(ids) == sorted(set(ids)) == [f"s{i}" for i in range(6)]
    clean = _run(tiny_manifest, tmp_path / "clean", model=model, metrics=("l1", "l2"))
    assert (tmp_path / "killed" / "table.md").read_text() == clean.table


def test_judge_urls_are_recorded_without_credentials():
    cfg = RunConfig(model="identity", judge="openai:gpt-4o@http://u:pw@127.0.0.1:8/v1?key=s3cret,gemini:g",
                    judge_base_url="http://user:pass@127.0.0.1:9/v1/")
    d = cfg.to_json()
    assert d["judge"] == "openai:gpt-4o@http://127.0.0.1:8/v1,gemini:g"
    assert d["judge_base_url"] == "http://127.0.0.1:9/v1"
    assert "pw" not in json.dumps(d) and "s3cret" not in json.dumps(d) and "pass" not in json.dumps(d)
