"""The widened adapter contract through the real runner: request/result objects, seeds, refusals,
--model-args, preflight, models list, the API output cache, the model budget and --dry-run.

The models are file plug-ins from tests/fake_adapters.py (so the file route is exercised too).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from iretouch_bench.adapters.base import RetouchModel, RetouchRequest, RetouchResult
from iretouch_bench.adapters.registry import create_model, list_models
from iretouch_bench.api import estimate_run_cost, run_benchmark
from iretouch_bench.core.errors import BenchError, ModelError
from iretouch_bench.runner.config import RunConfig, parse_model_args
from iretouch_bench.runner.generate import sample_seed
from iretouch_bench.runner.model_cache import OutputCache, cache_key
from iretouch_bench.runner.records import read_all, read_records

FAKES = Path(__file__).parent / "fake_adapters.py"
QUICK = ("l1", "l2")  # metrics: the contract is under test here, not the scorers


def spec(cls: str) -> str:
    return f"{FAKES}:{cls}"


@pytest.fixture
def call_log(tmp_path, monkeypatch):
    path = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_CALL_LOG", str(path))
    monkeypatch.setenv("IRETOUCH_BENCH_CACHE", str(tmp_path / "user-cache"))

    def calls(model: str | None = None) -> list[dict]:
        recs = list(read_records(path)) if path.exists() else []
        return [r for r in recs if model is None or r.get("model") == model]

    return calls


def _run(manifest, out, model, **kw):
    kw.setdefault("metrics", QUICK)
    cfg = RunConfig(model=model, dataset=f"iretouch:{manifest}", out=str(out), **kw)
    return run_benchmark(cfg, progress=False, log=lambda *a: None)


# ---------------------------------------------------------------- the objects


def test_simple_model_runs_through_run_and_run_only_model_through_retouch():
    ident = create_model("identity")
    img = np.random.default_rng(0).random((4, 5, 3)).astype(np.float32)
    res = ident.run(RetouchRequest(image=img, instruction="x", seed=7, sample_id="a"))
    assert res.status == "ok" and res.reason is None and np.array_equal(res.image, img)
    assert res.meta["timing"]["generate_s"] >= 0

    scaler = create_model(spec("Scaler"), gain=0.5)
    assert np.allclose(scaler.retouch(img, "x"), img * 0.5)  # retouch() comes from run()
    refuser = create_model(spec("Refuser"))
    with pytest.raises(ModelError, match="refused: moderated"):
        refuser.retouch(img, "make it warmer")

    class Neither(RetouchModel):
        name = "neither"

    with pytest.raises(NotImplementedError, match="retouch\\(\\) or run\\(\\)"):
        Neither().run(RetouchRequest(image=img, instruction="x"))
    refused = RetouchResult.refused("moderated: nope", request_id="r")
    assert refused.image is None and refused.status == "refused" and refused.meta == {"request_id": "r"}


def test_status_and_preflight_from_requires(monkeypatch):
    class Needs(RetouchModel):
        name = "needs"
        requires = ("env:FAKE_A_KEY|FAKE_B_KEY", "package:surely_not_installed_pkg", "weights:x")

        def retouch(self, image, instruction, *, mask=None, strength=1.0):
            return image

    monkeypatch.delenv("FAKE_A_KEY", raising=False)
    monkeypatch.delenv("FAKE_B_KEY", raising=False)
    m = Needs()
    assert m.status() == "needs the key in $FAKE_A_KEY or $FAKE_B_KEY; needs package surely_not_installed_pkg"
    with pytest.raises(ModelError, match=r"model 'needs' needs the key in \$FAKE_A_KEY"):
        m.preflight()
    monkeypatch.setenv("FAKE_B_KEY", "k")
    assert m.status() == "needs package surely_not_installed_pkg"
    assert create_model("identity").status() == "ready"
    assert create_model("identity").estimate(5) == {"calls": 5, "est_cost_usd": 0.0,
                                                    "note": "local model: no per-call cost"}


# ---------------------------------------------------------------- seeds, meta, model args


def test_per_sample_seed_is_deterministic_and_recorded(tiny_manifest, tmp_path, call_log):
    assert sample_seed(0, "s1") == sample_seed(0, "s1") != sample_seed(0, "s2")
    assert sample_seed(1, "s1") != sample_seed(0, "s1") and 0 <= sample_seed(5, "x") < 2 ** 32
    res = _run(tiny_manifest, tmp_path / "run", spec("Scaler"), seed=5, model_args={"gain": 0.5, "tag": "a"})
    final = read_all(res.run_dir, "samples")
    gen = read_all(res.run_dir, "generate")
    for sid, rec in final.items():
        assert rec["seed"] == gen[sid]["seed"] == sample_seed(5, sid)
        assert rec["model_meta"]["seed"] == rec["seed"] and rec["model_meta"]["steps"] == 3
        assert rec["model_meta"]["working_size"] == rec["input_size"]
    calls = call_log("fake-scaler")
    assert sorted((c["id"], c["seed"]) for c in calls) == sorted((s, sample_seed(5, s)) for s in final)
    assert all(c["options"] == {"gain": 0.5, "tag": "a"} for c in calls)
    info = json.loads((res.run_dir / "run.json").read_text())
    assert info["config"]["seed"] == 5 and info["config"]["model_args"] == {"gain": 0.5, "tag": "a"}
    assert info["model_args"] == {"gain": 0.5, "tag": "a"} and info["model"]["options"]["gain"] == 0.5
    assert info["model_source"]["kind"] == "file" and len(info["model_source"]["sha256"]) == 64
    # seed and model args are in the resume guard
    with pytest.raises(BenchError, match="seed=5.*seed=6"):
        _run(tiny_manifest, tmp_path / "run", spec("Scaler"), seed=6, model_args={"gain": 0.5, "tag": "a"})
    with pytest.raises(BenchError, match="model_args"):
        _run(tiny_manifest, tmp_path / "run", spec("Scaler"), seed=5, model_args={"gain": 0.6, "tag": "a"})
    # a shard sees the same seeds as the whole run
    sharded = _run(tiny_manifest, tmp_path / "shard", spec("Scaler"), seed=5, model_args={"gain": 0.5, "tag": "a"},
                   shard=(1, 2))
    for sid, rec in read_all(sharded.run_dir, "samples").items():
        assert rec["seed"] == final[sid]["seed"]


def test_model_args_parsing_and_errors():
    assert parse_model_args("quality=high,steps=28,guidance=3.5,fast=TRUE,off=false,name=gpt-image-1") == {
        "quality": "high", "steps": 28, "guidance": 3.5, "fast": True, "off": False, "name": "gpt-image-1"}
    assert parse_model_args("") == {} and parse_model_args(None) == {}
    assert parse_model_args("base_url=http://127.0.0.1:8080/v1") == {"base_url": "http://127.0.0.1:8080/v1"}
    assert parse_model_args("x=nan") == {"x": "nan"}  # not JSON as a number
    recorded = RunConfig(model="m", model_args={"base_url": "http://u:pw@127.0.0.1:9/v1/?key=s", "n": 1}).to_json()
    assert recorded["model_args"] == {"base_url": "http://127.0.0.1:9/v1", "n": 1}  # no credential recorded
    for bad, msg in (("quality", "expected key=value"), ("a=1,a=2", "given twice"),
                     ("api_key=sk-123", "environment only"), ("bfl_key=1", "credential")):
        with pytest.raises(BenchError, match=msg):
            parse_model_args(bad)
    with pytest.raises(ModelError, match=r"model '.*Scaler': bad --model-args \(colour='red'\)"):
        create_model(spec("Scaler"), colour="red")


# ---------------------------------------------------------------- refusals


def test_refused_sample_is_never_scored_and_counted_apart(tiny_manifest, tmp_path, call_log):
    res = _run(tiny_manifest, tmp_path / "run", spec("Refuser"), metrics=("ssim", "l1", "l2"))
    final = read_all(res.run_dir, "samples")
    bad = final["s1"]  # "Make it warmer"
    assert bad["status"] == "refused" and bad["reason"] == "moderated: request flagged by the safety system"
    assert bad["output"] is None and not (res.run_dir / "outputs" / "s1.png").exists()
    assert all(v is None for v in bad["metrics"].values())
    assert bad["null_reasons"]["l1"].startswith("refused by the model: moderated")
    assert bad["model_meta"] == {"request_id": "req-1"}
    assert read_all(res.run_dir, "generate")["s1"]["status"] == "refused"
    s = res.summary
    assert (s["n_ok"], s["n_failed"], s["n_refused"]) == (5, 0, 1) and res.n_failed == 0 and res.n_refused == 1
    assert s["refused"] == {"s1": bad["reason"]} and s["refused_reasons"] == {bad["reason"]: 1}
    assert s["metrics"]["ssim"]["n"] == 5  # the mean is over the five answers, not over the input
    assert "1 sample(s) refused by the model" in res.table and "moderated: request flagged" in res.table
    assert "failed" not in res.table.split("refused")[0].split("Notes:")[-1]
    # resume: the refusal stands, the model is not asked again
    n_calls = len(call_log("fake-refuser"))
    again = _run(tiny_manifest, tmp_path / "run", spec("Refuser"), metrics=("ssim", "l1", "l2"))
    assert len(call_log("fake-refuser")) == n_calls and again.summary["n_refused"] == 1


def test_cli_exit_codes_refused_is_0_missing_key_is_1_nothing_written(tiny_manifest, tmp_path):
    env = dict(os.environ, FAKE_CALL_LOG=str(tmp_path / "calls.jsonl"), IRETOUCH_BENCH_CACHE=str(tmp_path / "c"))
    env.pop("FAKE_EDIT_KEY", None)
    base = [sys.executable, "-m", "iretouch_bench", "run", "--dataset", f"iretouch:{tiny_manifest}", "--quiet",
            "--metrics", "l1"]
    out = tmp_path / "refused"
    proc = subprocess.run(base + ["--model", spec("Refuser"), "--out", str(out)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "1 sample(s) refused by the model" in proc.stderr
    nokey = tmp_path / "nokey"
    proc = subprocess.run(base + ["--model", spec("PaidApi"), "--out", str(nokey)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: model 'fake-paid' needs the key in $FAKE_EDIT_KEY"]
    assert not nokey.exists()  # preflight runs before any folder or output is made


# ---------------------------------------------------------------- models list


def test_models_list_shows_status_license_kind_and_row(monkeypatch):
    from click.testing import CliRunner

    from iretouch_bench.adapters.registry import _REGISTERED
    from iretouch_bench.cli import cli

    paid = create_model(spec("PaidApi"))
    monkeypatch.setitem(_REGISTERED, "fake-paid", type(paid))
    monkeypatch.delenv("FAKE_EDIT_KEY", raising=False)
    rows = {r["name"]: r for r in list_models()}
    assert rows["fake-paid"] == {"name": "fake-paid", "kind": "api", "status": "needs the key in $FAKE_EDIT_KEY",
                                 "license": "test terms of service", "paper_row": "Fake-Editor-1",
                                 "description": ""}
    assert rows["identity"]["status"] == "ready" and rows["identity"]["kind"] == "local"
    out = CliRunner().invoke(cli, ["models", "list"]).output
    head, *lines = out.splitlines()
    assert head.split()[:5] == ["model", "kind", "status", "license", "Table"]
    line = next(x for x in lines if x.startswith("fake-paid"))
    assert "api" in line and "needs the key in $FAKE_EDIT_KEY" in line and "Fake-Editor-1" in line
    monkeypatch.setenv("FAKE_EDIT_KEY", "k")
    as_json = json.loads(CliRunner().invoke(cli, ["models", "list", "--json"]).output)
    assert {r["name"]: r["status"] for r in as_json}["fake-paid"] == "ready"


# ---------------------------------------------------------------- cache, budget, dry run


def test_api_outputs_cached_so_a_rerun_costs_nothing(tiny_manifest, tmp_path, call_log, monkeypatch):
    secret = "sk-fake-SECRET-key-0123456789"
    monkeypatch.setenv("FAKE_EDIT_KEY", secret)
    first = _run(tiny_manifest, tmp_path / "a", spec("PaidApi"), seed=3)
    assert len(call_log("fake-paid")) == 6
    rec = read_all(first.run_dir, "samples")["s0"]
    assert rec["model_meta"]["cost_usd"] == 0.01 and rec["model_meta"]["snapshot"] == "fake-editor-2026-01-01"
    assert set(rec["model_meta"]["timing"]) == {"upload_s", "queue_s", "generate_s", "download_s"}
    assert first.summary["n_refused"] == 1  # the refusal is cached too
    second = _run(tiny_manifest, tmp_path / "b", spec("PaidApi"), seed=3)  # a new folder
    assert len(call_log("fake-paid")) == 6, "the rerun made model calls"
    assert second.summary["n_refused"] == 1
    for i in (0, 2, 3, 4, 5):
        a = (first.run_dir / "outputs" / f"s{i}.png").read_bytes()
        assert a == (second.run_dir / "outputs" / f"s{i}.png").read_bytes()
    cached = read_all(second.run_dir, "generate")["s0"]
    assert cached["cached"] is True and cached["model_meta"]["cost_usd"] == 0.0
    assert cached["model_meta"]["original_cost_usd"] == 0.01
    # the seed is part of the key: another run seed asks the model again
    _run(tiny_manifest, tmp_path / "c", spec("PaidApi"), seed=4, limit=2)
    assert len(call_log("fake-paid")) == 8
    # refresh asks again and overwrites
    _run(tiny_manifest, tmp_path / "d", spec("PaidApi"), seed=3, limit=1, model_cache="refresh")
    assert len(call_log("fake-paid")) == 9
    # no file of the run folders or the cache holds the key
    for root in (tmp_path / "a", tmp_path / "b", tmp_path / "user-cache"):
        for f in root.rglob("*"):
            if f.is_file():
                assert secret.encode() not in f.read_bytes(), f


def test_cache_key_covers_every_input():
    m = create_model(spec("Scaler"), gain=0.5)
    img = np.random.default_rng(0).random((4, 5, 3)).astype(np.float32)
    mask = np.ones((4, 5), np.float32)
    base = RetouchRequest(image=img, instruction="brighten", mask=mask, strength=1.0, seed=1, sample_id="a")
    k = cache_key(m, base)
    assert cache_key(m, RetouchRequest(**{**base.__dict__, "sample_id": "other"})) == k  # the id is not content
    variants = [{"image": img * 0.5}, {"instruction": "darken"}, {"mask": mask * 0.5}, {"mask": None},
                {"strength": 0.5}, {"seed": 2}]
    for change in variants:
        assert cache_key(m, RetouchRequest(**{**base.__dict__, **change})) != k, change
    assert cache_key(create_model(spec("Scaler"), gain=0.6), base) != k  # options
    assert cache_key(create_model(spec("Scaler"), gain=0.5, device="cuda"), base) == k  # device is not


def test_cache_roundtrip_and_torn_entry_is_a_miss(tmp_path):
    cache = OutputCache(tmp_path, mode="use")
    img = np.random.default_rng(0).random((3, 4, 3)).astype(np.float32)
    cache.put("ab" * 32, RetouchResult(image=img, meta={"cost_usd": 0.1}), latency_s=1.5)
    got, lat = cache.get("ab" * 32)
    assert np.array_equal(got.image, img) and got.meta == {"cost_usd": 0.1} and lat == 1.5
    cache.put("cd" * 32, RetouchResult.refused("moderated"))
    assert cache.get("cd" * 32)[0].status == "refused" and cache.get("cd" * 32)[0].image is None
    (tmp_path / "ab" / f"{'ab' * 32}.npy").write_bytes(b"\x93NUMPY torn")
    assert cache.get("ab" * 32) is None
    assert OutputCache(tmp_path, mode="refresh").get("cd" * 32) is None
    OutputCache(tmp_path / "off", mode="off").put("ef" * 32, RetouchResult.refused("x"))
    assert not (tmp_path / "off" / "ef").exists()
    with pytest.raises(ValueError, match="model output cache mode"):
        OutputCache(tmp_path, mode="sometimes")


def test_budget_stops_before_overspending_and_a_rerun_finishes(tiny_manifest, tmp_path, call_log, monkeypatch):
    monkeypatch.setenv("FAKE_EDIT_KEY", "k")
    res = _run(tiny_manifest, tmp_path / "run", spec("PaidApi"), model_budget=0.035)
    calls = call_log("fake-paid")
    assert len(calls) == 3  # $0.01 each: a fourth would make $0.04
    assert res.stopped and "model budget reached" in res.stopped and "3 sample(s) not generated" in res.stopped
    assert len(read_all(res.run_dir, "samples")) == 3 and res.summary["n_expected"] == 6
    info = json.loads((res.run_dir / "run.json").read_text())
    assert info["model_budget"]["spent_usd"] == pytest.approx(0.03) and info["model_budget"]["exhausted"]
    # dry run: three calls left, three cached
    est = estimate_run_cost(RunConfig(model=spec("PaidApi"), dataset=f"iretouch:{tiny_manifest}",
                                      out=str(tmp_path / "elsewhere")))
    assert (est["model"]["calls"], est["model"]["cached"]) == (3, 3)
    assert est["model"]["est_cost_usd"] == pytest.approx(0.03)
    again = _run(tiny_manifest, tmp_path / "run", spec("PaidApi"), model_budget=0.035)
    assert len(call_log("fake-paid")) == 6 and again.stopped is None  # three new calls fit the budget again
    assert len(read_all(again.run_dir, "samples")) == 6


def test_budget_needs_a_price(tiny_manifest, tmp_path, monkeypatch):
    from iretouch_bench.adapters.registry import get_model_class

    cls = get_model_class(spec("PaidApi"))
    monkeypatch.setattr(cls, "estimate", lambda self, n: {"calls": n, "est_cost_usd": None, "note": "?"})
    monkeypatch.setenv("FAKE_EDIT_KEY", "k")
    with pytest.raises(BenchError, match="gives no price per call"):
        _run(tiny_manifest, tmp_path / "run", spec("PaidApi"), model_budget=1.0)
    assert not (tmp_path / "run").exists()


def test_batches_of_three(tiny_manifest, tmp_path, call_log):
    res = _run(tiny_manifest, tmp_path / "run", spec("Batcher"))
    assert [c["batch"] for c in call_log("fake-batcher")] == [["s0", "s1", "s2"], ["s3", "s4", "s5"]]
    gen = read_all(res.run_dir, "generate")
    assert gen["s4"]["batch"]["size"] == 3 and res.summary["n_ok"] == 6


def test_template_adapter_runs_as_a_file_plugin(tiny_manifest, tmp_path):
    template = Path(__file__).resolve().parents[1] / "docs" / "adapter_template.py"
    res = _run(tiny_manifest, tmp_path / "run", f"{template}:TemplateModel", model_args={"gain": 1.3})
    assert res.summary["n_ok"] == 6 and res.summary["metrics"]["l1"]["mean"] is not None
    m = create_model(f"{template}:TemplateModel")
    img = np.full((4, 4, 3), 0.5, np.float32)
    assert np.array_equal(m.retouch(img, "brighten", strength=0.0), img)


def test_odd_meta_is_recorded_not_fatal(tiny_manifest, tmp_path, monkeypatch):
    from iretouch_bench.adapters.registry import get_model_class

    cls = get_model_class(spec("Scaler"))
    monkeypatch.setattr(cls, "run", lambda self, r: RetouchResult(
        image=r.image, meta={"nan": float("nan"), "arr": np.arange(2), "np": np.float32(0.5), "obj": object}))
    res = _run(tiny_manifest, tmp_path / "run", spec("Scaler"), limit=1)
    meta = read_all(res.run_dir, "samples")["s0"]["model_meta"]
    assert meta["nan"] is None and meta["arr"] == [0, 1] and meta["np"] == 0.5 and "object" in meta["obj"]



def test_latency_takes_model_args(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from iretouch_bench.cli import cli

    monkeypatch.setenv("FAKE_CALL_LOG", str(tmp_path / "calls.jsonl"))
    res = CliRunner().invoke(cli, ["latency", "--model", spec("Scaler"), "--model-args", "gain=0.5,tag=lat",
                                   "--resolutions", "64x48", "--repeats", "1", "--warmup", "0", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["model_args"] == {"gain": 0.5, "tag": "lat"}
    calls = list(read_records(tmp_path / "calls.jsonl"))
    assert calls and all(c["options"] == {"gain": 0.5, "tag": "lat"} for c in calls)
    bad = CliRunner().invoke(cli, ["latency", "--model", spec("Scaler"), "--model-args", "gain"])
    assert bad.exit_code == 2 and "expected key=value" in bad.output


def test_budget_admits_a_batch_as_one_reservation(tiny_manifest, tmp_path, call_log):
    """batch_size 3 at $0.01 a request, $0.05 budget: the first batch ($0.03) runs, the second
    would make $0.06 and is left for a rerun (and admission never waits on its own reservation)."""
    import threading

    from iretouch_bench.datasets import load_dataset
    from iretouch_bench.runner.generate import ModelBudget, generate
    from iretouch_bench.runner.records import RecordWriter

    model = create_model(spec("Batcher"))
    samples = load_dataset(f"iretouch:{tiny_manifest}").samples
    budget = ModelBudget(0.05, 0.01)
    out = tmp_path / "run"
    (out / "outputs").mkdir(parents=True)
    done: dict = {}
    worker = threading.Thread(target=generate, args=(model, samples, out, RecordWriter(out / "g.jsonl"), done),
                              kwargs={"budget": budget}, daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "generation deadlocked on the budget"
    assert sorted(done) == ["s0", "s1", "s2"] and sorted(budget.skipped) == ["s3", "s4", "s5"]
    assert budget.exhausted and budget.spent == pytest.approx(0.03)
    assert [c["batch"] for c in call_log("fake-batcher")] == [["s0", "s1", "s2"]]
