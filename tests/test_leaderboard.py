"""result.json (schema, validation, statistics) and the leaderboard's grouping and formats.

Run folders here are written record by record (run.json + samples.jsonl) and aggregated by the
real ``aggregate``; the end-to-end tests with real models are in test_leaderboard_runs.py.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from iretouch_bench.core.errors import BenchError
from iretouch_bench.metrics.keys import SAMPLE_KEYS
from iretouch_bench.reporting import leaderboard as lb
from iretouch_bench.reporting.shipped import schema_path
from iretouch_bench.runner.result import Result, comparability_key, json_schema, load_result
from iretouch_bench.runner.run import aggregate
from iretouch_bench.runner.stats import bootstrap_mean_ci, paired_difference

HASH_A = "a" * 64
HASH_B = "b" * 64


def fake_run(root: Path, name: str, *, ssim: list[float], attr: list[float], dataset_hash: str = HASH_A,
             judge: dict | None = None, statuses: list[str] | None = None, o: list[float] | None = None,
             limit: int | None = None) -> Path:
    """A run folder as the runner leaves it, with the given per-sample values."""
    d = root / name
    d.mkdir(parents=True)
    n = len(ssim)
    statuses = statuses or ["ok"] * n
    info = {
        "config": {"model": name, "dataset": "embedded", "judge": (judge or {}).get("spec", "offline"),
                   "limit": limit, "out": str(d), "device": "cpu", "weights": None, "strength": 1.0,
                   "metrics": list(SAMPLE_KEYS), "dataset_hash": dataset_hash, "suite_version": "0.1.0",
                   "fidelity_protocol": "paper/2", "vocab_version": "v1", "judge_cache_dir": "/home/x/cache"},
        "updated": "2026-01-01T00:00:00+00:00",
        "dataset": {"name": "embedded", "spec": "embedded", "root": "/home/x/data", "content_hash": dataset_hash,
                    "n_samples": n if limit is None else 2 * n, "n_selected": n, "card": "data_cards/embedded.md"},
        "model": {"name": name, "class": f"tests.{name}", "weights": None, "device": "cpu", "options": {}},
        "judge": judge or {"spec": "offline", "kind": "offline", "model_requested": None, "model_snapshots": []},
        "versions": {"iretouch-bench": "0.1.0"}, "git": {"commit": "0" * 40, "dirty": False},
        "device": {"requested_device": "cpu", "platform": "Linux", "python": "3.11", "cpu_count": 2},
        "scoring": {"fidelity_protocol": {"name": "paper", "version": "2"}, "vocab_version": "v1"},
    }
    (d / "run.json").write_text(json.dumps(info), encoding="utf-8")
    with open(d / "samples.jsonl", "w", encoding="utf-8") as f:
        for i in range(n):
            ok = statuses[i] == "ok"
            m = {k: None for k in SAMPLE_KEYS}
            if ok:
                m.update(ssim=ssim[i], attr_acc=attr[i], l1=0.05)
                if o is not None:
                    m.update(sc=o[i], pq=o[i], o=o[i])
            rec = {"id": f"s{i:02d}", "status": statuses[i], "error": None if ok else "model declined",
                   **({"reason": "moderation: declined"} if statuses[i] == "refused" else {}),
                   "category": "global" if i % 2 else "portrait", "instruction": "Brighten", "metrics": m,
                   "null_reasons": {k: "not computed" for k, v in m.items() if v is None}}
            f.write(json.dumps(rec) + "\n")
    aggregate(d)
    return d


def test_schema_file_is_the_models_schema():
    """leaderboard/schema/result.schema.json is exported from the pydantic models; regenerate with
    ``python -c "import json; from iretouch_bench.runner.result import json_schema;
    print(json.dumps(json_schema(), indent=2, sort_keys=True))" > leaderboard/schema/result.schema.json``."""
    assert json.loads(schema_path().read_text(encoding="utf-8")) == json.loads(json.dumps(json_schema()))


def test_result_json_validates_and_records_ci(tmp_path):
    d = fake_run(tmp_path, "m", ssim=[0.9, 0.8, 0.95, 0.85], attr=[1, 0, 1, 1])
    res = load_result(d / "result.json")
    st = res.metrics.ssim
    assert st.n == 4 and math.isclose(st.mean, 0.875)
    assert st.ci.iterations == 2000 and st.ci.seed == 0 and st.ci.level == 0.95
    assert 0.8 <= st.ci.lo < st.mean < st.ci.hi <= 0.95
    assert set(res.by_category) == {"global", "portrait"} and res.by_category["portrait"].n == 2
    # machine-local paths never reach the result
    text = (d / "result.json").read_text(encoding="utf-8")
    assert "/home/x" not in text and res.config.get("out") is None
    # re-aggregating gives the same file (the interval is seeded)
    before = text
    aggregate(d)
    assert (d / "result.json").read_text(encoding="utf-8") == before


def test_result_rejects_unknown_fields_and_non_finite(tmp_path):
    d = fake_run(tmp_path, "m", ssim=[0.9, 0.8], attr=[1, 0])
    good = json.loads((d / "result.json").read_text(encoding="utf-8"))
    for mutate, match in [
        (lambda r: r.__setitem__("bonus", 1), "bonus"),
        (lambda r: r["metrics"]["ssim"].__setitem__("extra", 1), "extra"),
        (lambda r: r["metrics"].__setitem__("made_up_metric", None), "made_up_metric"),
        (lambda r: r["config"].__setitem__("x", float("inf")), "Infinity"),
    ]:
        r = json.loads(json.dumps(good))
        mutate(r)
        p = tmp_path / "bad.json"
        p.write_text(json.dumps(r), encoding="utf-8")  # json.dumps writes Infinity for inf
        with pytest.raises(BenchError, match=match):
            load_result(p)
    from pydantic import ValidationError

    for where in ("config", "options"):  # free-form blocks are scanned for NaN/inf too
        r = json.loads(json.dumps(good))
        (r["config"] if where == "config" else r["model"]["options"])["x"] = [1.0, float("nan")]
        with pytest.raises(ValidationError, match="non-finite"):
            Result.model_validate(r)
    r = json.loads(json.dumps(good))
    r["metrics"]["ssim"]["mean"] = float("inf")
    with pytest.raises(ValidationError):
        Result.model_validate(r)
    text = (d / "result.json").read_text(encoding="utf-8")
    mean = json.loads(text)["metrics"]["ssim"]["mean"]
    (tmp_path / "nan.json").write_text(text.replace(json.dumps(mean), "NaN", 1), encoding="utf-8")
    with pytest.raises(BenchError, match="nan.json"):
        load_result(tmp_path / "nan.json")


def test_refused_samples_are_counted_apart_and_never_scored(tmp_path):
    d = fake_run(tmp_path, "m", ssim=[0.9, 0.1, 0.8, 0.7], attr=[1, 1, 0, 1],
                 statuses=["ok", "refused", "ok", "failed"])
    res = load_result(d / "result.json")
    assert (res.counts.n_ok, res.counts.n_refused, res.counts.n_failed) == (2, 1, 1)
    assert res.refused == {"s01": "moderation: declined"} and list(res.failed) == ["s03"]
    assert res.metrics.ssim.n == 2 and math.isclose(res.metrics.ssim.mean, 0.85)  # 0.1 of the refused never counts
    row = lb.row_from_result(res, str(d))
    assert any("1 refused" in n for n in row.notes) and any("1 failed" in n for n in row.notes)


def test_bootstrap_is_scipys_percentile_bootstrap():
    from scipy.stats import bootstrap

    x = np.random.default_rng(3).normal(size=37)
    ours = bootstrap_mean_ci(x, seed=5, iterations=999)
    ref = bootstrap((x,), np.mean, n_resamples=999, method="percentile", rng=np.random.default_rng(5))
    assert math.isclose(ours["lo"], ref.confidence_interval.low, rel_tol=1e-12)
    assert math.isclose(ours["hi"], ref.confidence_interval.high, rel_tol=1e-12)
    assert bootstrap_mean_ci([0.5])["lo"] is None and "at least 2" in bootstrap_mean_ci([0.5])["reason"]
    assert bootstrap_mean_ci([1.0, 1.0, 1.0])["lo"] == 1.0


def test_paired_difference_sees_a_small_consistent_shift():
    rng = np.random.default_rng(0)
    a = rng.random(40)
    b = a + 0.01 + rng.normal(scale=0.002, size=40)  # tiny next to the spread of a, but consistent
    r = paired_difference(a, b)
    assert r["n"] == 40 and 0.009 < r["mean_diff"] < 0.011
    assert r["ci"]["lo"] > 0 and r["p_value"] < 1e-6
    same = paired_difference(a, a)
    assert same["p_value"] is None and "zero" in same["p_value_reason"]
    with pytest.raises(ValueError):
        paired_difference([1, 2], [1])


def test_boards_split_by_comparability_key_and_published_stand_apart(tmp_path):
    a = fake_run(tmp_path, "alpha", ssim=[0.9, 0.9, 0.9], attr=[0.2, 0.4, 0.3])
    b = fake_run(tmp_path, "beta", ssim=[0.8, 0.7, 0.9], attr=[0.9, 0.8, 1.0])
    c = fake_run(tmp_path, "gamma", ssim=[0.99, 0.98, 0.97], attr=[1, 1, 1], dataset_hash=HASH_B)
    judged = fake_run(tmp_path, "delta", ssim=[0.9, 0.9, 0.9], attr=[1, 1, 1], o=[8.0, 7.0, 9.0],
                      judge={"spec": "openai:gpt-4o", "kind": "openai-compatible", "model_requested": "gpt-4o",
                             "model_snapshots": ["gpt-4o-2024-08-06"], "prompt_hash": "p" * 64})
    boards = lb.build_boards([a, b, c, judged], with_published=True)
    measured = [bd for bd in boards if bd.kind == "measured"]
    assert len(measured) == 3  # (A, offline), (B, offline), (A, gpt-4o snapshot + prompt)
    first = next(bd for bd in measured if bd.key[0] == HASH_A and bd.key[2] == "offline")
    assert [r.label for r in first.rows] == ["beta", "alpha"] and [r.rank for r in first.rows] == [1, 2]
    assert next(bd for bd in measured if "gpt-4o" in bd.key[2]).columns.count("o") == 1
    assert comparability_key(load_result(judged / "result.json"))[2].startswith("gpt-4o-2024-08-06 prompt pppp")
    pub = boards[-1]
    assert pub.kind == "published" and all(r.rank is None for r in pub.rows) and "Published" in pub.title
    md = lb.render(boards, "md")
    assert md.count("### ") == 4 and "not measured by this suite" in md
    assert "0.9000 [0.9000, 0.9000]" in md  # mean [95% interval]


def test_a_limited_run_is_never_ranked_against_a_full_one(tmp_path):
    full = fake_run(tmp_path, "full", ssim=[0.9, 0.9, 0.9, 0.9], attr=[0.1, 0.2, 0.1, 0.2])
    part = fake_run(tmp_path, "part", ssim=[0.9, 0.9], attr=[1.0, 1.0], limit=2)
    boards = lb.build_boards([full, part])
    assert [b.title for b in boards] == ["Measured on embedded (all 4 samples)",
                                         "Measured on embedded (first 2 of 4 samples (--limit))"]
    assert all(r.rank == 1 for b in boards for r in b.rows)


def test_formats(tmp_path):
    a = fake_run(tmp_path, "alpha", ssim=[0.9, 0.8, 0.7], attr=[0.2, 0.4, 0.3])
    boards = lb.build_boards([a], with_published=True)
    rows = list(csv.DictReader(io.StringIO(lb.render(boards, "csv"))))
    alpha = next(r for r in rows if r["model"] == "alpha")
    assert math.isclose(float(alpha["ssim"]), 0.8) and float(alpha["ssim_ci_lo"]) < 0.8 < float(alpha["ssim_ci_hi"])
    assert alpha["kind"] == "measured" and alpha["dataset_hash"] == HASH_A
    assert {r["kind"] for r in rows} == {"measured", "published"}
    assert next(r for r in rows if r["model"] == "Ours")["ssim"] == "0.989"  # published as printed
    tex = lb.render(boards, "latex")
    assert tex.count(r"\toprule") == 2 and r"\textbf{0.989}" in tex
    import html as html_lib

    html = html_lib.unescape(lb.render(boards, "html", out_path=tmp_path / "board.html"))
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    assert 'href="alpha"' in html  # the row links to its run folder, relative to the page
    with pytest.raises(BenchError, match="format"):
        lb.render(boards, "xlsx")


def test_no_result_json_is_one_clear_line(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(BenchError, match="no result.json"):
        lb.build_boards([tmp_path / "run"])


def test_cli_leaderboard_shows_shipped_rows_and_published(capsys):
    from iretouch_bench.cli import main

    main(["leaderboard"])
    out = capsys.readouterr().out
    assert "### Measured on embedded (all 45 samples)" in out and "| ours" in out and "| identity" in out
    assert "leaderboard/submissions/" in out
    assert "Published (arXiv 2606.05071v1, Table 1)" in out
    # the shipped rows are valid results of the current schema
    for f in sorted((schema_path().parents[1] / "submissions").glob("*.json")):
        res = load_result(f)
        assert isinstance(res, Result) and res.kind == "submission" and res.submission is not None
