"""Scale-out: ranks from the field's launchers, one writer per file, run.json written once,
shard provenance, aggregation that waits for every shard, and a real two-process torchrun."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from iretouch_bench.core.atomic import create_json_exclusive
from iretouch_bench.core.errors import BenchError
from iretouch_bench.runner.launch import Rank, detect_rank, rank_device, resolve_shard

ROOT = Path(__file__).resolve().parents[1]
_LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS",
                "SLURM_LOCALID", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID", "GROUP_RANK", "ROLE_RANK")


def test_ranks_from_torchrun_and_slurm_variables():
    assert detect_rank({}) is None
    assert detect_rank({"RANK": "0", "WORLD_SIZE": "1"}) is None  # one process: nothing to shard
    r = detect_rank({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1"})
    assert r == Rank(3, 8, 1, "torchrun") and r.shard == (3, 8)
    s = detect_rank({"SLURM_PROCID": "5", "SLURM_NTASKS": "16", "SLURM_LOCALID": "5"})
    assert s == Rank(5, 16, 5, "slurm")
    both = detect_rank({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "SLURM_PROCID": "0", "SLURM_NTASKS": "1"})
    assert both.source == "torchrun"  # `srun torchrun ...`: the worker processes' variables win
    with pytest.raises(BenchError, match="need 0 <= rank"):
        detect_rank({"RANK": "2", "WORLD_SIZE": "2"})
    with pytest.raises(BenchError, match="not an integer"):
        detect_rank({"RANK": "x", "WORLD_SIZE": "2"})
    assert rank_device("cuda", r) == "cuda:1" and rank_device("cpu", r) == "cpu"
    assert rank_device("cuda:5", r) == "cuda:5" and rank_device("cuda", None) == "cuda"
    assert resolve_shard(None, r) == (3, 8) and resolve_shard((3, 8), r) == (3, 8)
    assert resolve_shard((1, 4), None) == (1, 4)
    with pytest.raises(BenchError, match="disagrees with the launcher"):
        resolve_shard((0, 8), r)


def test_create_json_exclusive_first_wins(tmp_path):
    p = tmp_path / "run.json"
    assert create_json_exclusive(p, {"who": "first"}) is True
    assert create_json_exclusive(p, {"who": "second"}) is False
    assert json.loads(p.read_text()) == {"who": "first"}
    assert [f.name for f in tmp_path.iterdir()] == ["run.json"]  # no temporary file left behind


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in _LAUNCH_VARS}
    env.update({"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **extra})
    return env


def _cli(args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "iretouch_bench", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env or _env())


def _rows(table: str) -> list[str]:
    return [ln for ln in table.splitlines() if ln.startswith("| identity")]


@pytest.fixture
def single_run(tiny_manifest, tmp_path):
    out = tmp_path / "single"
    res = _cli(["run", "--model", "identity", "--dataset", f"iretouch:{tiny_manifest}", "--skip", "dists",
                "--out", str(out), "--quiet"])
    assert res.returncode == 0, res.stderr
    return out


def test_ranks_by_environment_then_aggregate_waits_for_every_shard(tiny_manifest, tmp_path, single_run):
    out = tmp_path / "sharded"
    base = ["run", "--model", "identity", "--dataset", f"iretouch:{tiny_manifest}", "--skip", "dists",
            "--out", str(out), "--quiet"]
    r0 = _cli(base, _env(RANK="0", WORLD_SIZE="2", LOCAL_RANK="0"))
    assert r0.returncode == 0, r0.stderr
    assert "PARTIAL" in (out / "table.md").read_text()  # rank 0 alone: a partial table that says so
    agg = _cli(["aggregate", str(out)])
    assert agg.returncode == 1 and "missing [1]" in agg.stderr, agg.stderr
    created = (out / "run.json").read_text()
    # the "killed" rank is rerun alone (here: started late) and completes the run
    r1 = _cli(base, _env(SLURM_PROCID="1", SLURM_NTASKS="2", SLURM_LOCALID="0"))
    assert r1.returncode == 0, r1.stderr
    assert (out / "run.json").read_text() == created  # written once, by the first rank
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["0of2.json", "1of2.json"]
    assert {p.name for p in out.glob("samples*.jsonl")} == {"samples-0of2.jsonl", "samples-1of2.jsonl"}
    s1 = json.loads((out / "shards" / "1of2.json").read_text())
    assert s1["status"] == "finished" and s1["launcher"]["source"] == "slurm" and s1["host"]
    agg = _cli(["aggregate", str(out)])
    assert agg.returncode == 0, agg.stderr
    assert _rows(agg.stdout) == _rows((single_run / "table.md").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["shards"]["world_size"] == 2 and summary["shards"]["ranks"] == 2 and not summary["partial"]


def test_sharded_run_leaves_the_vlm_judge_and_latency_to_their_own_steps(tiny_manifest, tmp_path):
    out = tmp_path / "j"
    env = _env(RANK="0", WORLD_SIZE="2", OPENAI_API_KEY="sk-test-not-used", OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    res = _cli(["run", "--model", "identity", "--dataset", f"iretouch:{tiny_manifest}", "--skip", "dists",
                "--judge", "openai:gpt-4o-2024-08-06", "--judge-retries", "0", "--out", str(out), "--quiet"], env)
    assert res.returncode == 0, res.stderr
    assert "iretouch-bench judge" in res.stdout + res.stderr
    rec = json.loads((out / "samples-0of2.jsonl").read_text().splitlines()[0])
    assert rec["metrics"]["sc"] is None and rec["metrics"]["attr_acc"] is not None
    lat = _cli(["run", "--model", "identity", "--dataset", f"iretouch:{tiny_manifest}", "--latency",
                "--out", str(tmp_path / "l")], _env(RANK="1", WORLD_SIZE="2"))
    assert lat.returncode == 1 and "iretouch-bench latency" in lat.stderr
    assert not (tmp_path / "l").exists()


@pytest.mark.slow
def test_torchrun_two_processes_equal_one(tiny_manifest, tmp_path, single_run):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun not on PATH")
    out = tmp_path / "tr"
    res = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "iretouch_bench", "run",
                          "--model", "identity", "--dataset", f"iretouch:{tiny_manifest}", "--skip", "dists",
                          "--out", str(out), "--quiet"], capture_output=True, text=True, timeout=600, cwd=ROOT,
                         env=_env())
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["0of2.json", "1of2.json"]
    for k in (0, 1):
        info = json.loads((out / "shards" / f"{k}of2.json").read_text())
        assert info["status"] == "finished" and info["launcher"]["source"] == "torchrun"
    agg = _cli(["aggregate", str(out)])
    assert agg.returncode == 0, agg.stderr
    assert _rows(agg.stdout) == _rows((single_run / "table.md").read_text())


def test_judge_stage_after_shards_makes_one_pass_under_one_budget(tiny_manifest, tmp_path, monkeypatch):
    """Two shards skip the VLM judge; one judge stage then asks each question once, whatever the
    number of shards, under one budget, and a rerun asks nothing."""
    from judge_server import FakeChatServer

    from iretouch_bench import api

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-scaleout")
    out = tmp_path / "js"
    base = ["run", "--model", "identity", "--dataset", f"iretouch:{tiny_manifest}", "--skip", "dists",
            "--judge", "openai:gpt-4o-2024-08-06", "--out", str(out), "--quiet"]
    for k in (0, 1):
        res = _cli(base, _env(RANK=str(k), WORLD_SIZE="2", OPENAI_API_KEY="sk-test-scaleout"))
        assert res.returncode == 0, res.stderr
    with FakeChatServer() as chat:
        stage, result = api.judge_run(out, "openai:gpt-4o-2024-08-06", base_url=chat.base_url, budget_usd=1.0,
                                      cache_dir=str(tmp_path / "cache"), progress=False, log=lambda *a: None)
        assert stage.n_judged == 6 and len(chat.requests) == 12  # SC + PQ per sample, once
        assert result.summary["metrics"]["sc"]["n"] == 6 and not result.summary["partial"]
        again, _ = api.judge_run(out, "openai:gpt-4o-2024-08-06", base_url=chat.base_url, budget_usd=1.0,
                                 cache_dir=str(tmp_path / "cache2"), progress=False, log=lambda *a: None)
        assert again.n_judged == 0 and again.api_requests == 0 and len(chat.requests) == 12


@pytest.mark.slow
def test_accelerate_launch_two_processes(tiny_manifest, tmp_path, single_run):
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or shutil.which("accelerate")
    if accelerate is None:
        pytest.skip("accelerate not installed")
    out = tmp_path / "acc"
    # --multi_gpu is accelerate's torchrun-style launch; with the suite's --device cpu no GPU is used
    res = subprocess.run([accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                          "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "iretouch_bench", "run",
                          "--model", "identity", "--dataset", f"iretouch:{tiny_manifest}", "--skip", "dists",
                          "--out", str(out), "--quiet"], capture_output=True, text=True, timeout=600, cwd=ROOT,
                         env=_env())
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["0of2.json", "1of2.json"]
    agg = _cli(["aggregate", str(out)])
    assert agg.returncode == 0, agg.stderr
    assert _rows(agg.stdout) == _rows((single_run / "table.md").read_text())
