"""End to end with real models: runs of ``identity`` and ``ours`` on a small photo set, their
leaderboard, ``compare``, ``submit`` (accepted, and a tampered copy rejected with every problem
listed) and a strength sweep of ``ours``.

The runs are made once per session (:func:`real_runs`) and reused by test_report*.py. They skip
DISTS and FaceNet to stay fast on CPU; those metrics have their own tests.
"""

from __future__ import annotations

import atexit
import functools
import json
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from iretouch_bench import api
from iretouch_bench.core.errors import BenchError
from iretouch_bench.metrics.keys import select_metrics
from iretouch_bench.reporting.submit import SubmissionRejected, check_run, submit
from iretouch_bench.runner.result import load_result

METRICS = select_metrics(None, "dists,identity")
STRENGTHS = (0.0, 0.5, 1.0, 1.5)
PHOTOS = [  # (loader, instruction, category, edit applied to make the target)
    ("astronaut", "Brighten the photo a little", "portrait", lambda x: np.clip(x * 1.15 + 0.03, 0, 1)),
    ("chelsea", "Make it warmer", "global", lambda x: np.clip(x * np.array([1.08, 1.0, 0.9]), 0, 1)),
    ("coffee", "Add more contrast", "style", lambda x: np.clip((x - 0.5) * 1.3 + 0.5, 0, 1)),
    ("rocket", "Darken the image slightly", "global", lambda x: np.clip(x * 0.85, 0, 1)),
    ("hubble_deep_field", "Make the colours more vivid", "style",
     lambda x: np.clip(x.mean(2, keepdims=True) + (x - x.mean(2, keepdims=True)) * 1.4, 0, 1)),
]


def _photo_set(root: Path) -> Path:
    """Five real photos (scikit-image) downsized to 160 px, each with an instruction and a target."""
    from PIL import Image
    from skimage import data

    from iretouch_bench.core.images import write_image

    rows = []
    for name, instruction, category, edit in PHOTOS:
        im = Image.fromarray(getattr(data, name)()).convert("RGB")
        im.thumbnail((160, 160), Image.Resampling.LANCZOS)
        x = np.asarray(im, dtype=np.float32) / 255.0
        write_image(root / f"{name}.png", x)
        write_image(root / f"{name}_target.png", edit(x).astype(np.float32))
        rows.append({"id": name, "input": f"{name}.png", "target": f"{name}_target.png",
                     "instruction": instruction, "category": category})
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return manifest


@functools.lru_cache(maxsize=1)
def real_runs() -> dict:
    """``{"root", "dataset", "identity", "ours", "sweep", "hash"}``: made once per test session."""
    root = Path(tempfile.mkdtemp(prefix="iretouch-lb-"))
    atexit.register(shutil.rmtree, root, True)  # made once for the session, removed at its end
    manifest = _photo_set(root / "data")
    spec = f"iretouch:{manifest}"
    out = {"root": root, "dataset": spec}
    for model in ("identity", "ours"):
        cfg = api.RunConfig(model=model, dataset=spec, out=str(root / model), metrics=METRICS, latency=True,
                            resolutions=("720p",), latency_repeats=1)
        api.run_benchmark(cfg, progress=False, log=lambda *a: None)
        out[model] = root / model
    out["sweep"], out["sweep_table"] = api.sweep("ours", STRENGTHS, dataset=spec, out=root / "sweep", metrics=METRICS,
                                                 progress=False, log=lambda *a: None)
    out["hash"] = load_result(out["identity"] / "result.json").dataset.content_hash
    return out


@pytest.fixture(scope="module")
def runs():
    return real_runs()


def test_result_json_of_a_real_run(runs):
    res = load_result(runs["ours"] / "result.json")
    assert res.model.name == "ours" and res.model.weights_sha256 and len(res.model.weights_sha256) == 64
    assert res.counts.n_ok == res.counts.n_dataset == 5
    assert res.protocols.fidelity_protocol.startswith("paper/") and res.protocols.judge.spec == "offline"
    assert set(res.by_category) == {"portrait", "global", "style"}
    assert res.metrics.dists is None or res.metrics.dists.mean is None  # skipped: null, never 0
    assert res.latency.latency_720p.median_s > 0
    assert res.metrics.ssim.ci.lo <= res.metrics.ssim.mean <= res.metrics.ssim.ci.hi


def test_leaderboard_of_real_runs(runs):
    md = api.leaderboard([runs["identity"], runs["ours"]], with_published=True)
    measured, published = md.split("### Published")
    assert measured.count("| 1 | ") == 1 and measured.count("| 2 | ") == 1
    # the offline instruction score ranks: ours edits, identity does not
    assert measured.index("| 1 | ours") < measured.index("| 2 | identity")
    assert "| Ours |" in published and "| 1 |" not in published


def test_compare_real_runs(runs):
    from iretouch_bench.reporting.compare import compare_runs

    cmp = compare_runs(runs["identity"], runs["ours"])
    assert cmp["n_shared"] == 5 and cmp["comparable"] and cmp["warning"] is None
    ssim = cmp["metrics"]["ssim"]
    assert ssim["n"] == 5 and ssim["mean_a"] == 1.0 and ssim["mean_diff"] < 0
    assert cmp["metrics"]["dists"]["n"] == 0 and "both runs" in cmp["metrics"]["dists"]["reason"]
    text = api.compare(runs["identity"], runs["ours"])
    assert "| ssim ↑ | 5 |" in text and "Wilcoxon" in text


def test_a_real_run_is_accepted(runs, tmp_path):
    path = submit(runs["ours"], tmp_path, "tester", "tester", known_hashes={runs["hash"]: "test set"})
    sub = load_result(path)
    assert sub.kind == "submission" and sub.submission.generated_by == "tester"
    assert len(sub.submission.checks) == 10
    text = path.read_text(encoding="utf-8")
    assert str(runs["root"]) not in text and "samples" not in json.loads(text)  # results only, no paths
    # the embedded set's hash is not this test set's: the same run is refused without it being known
    with pytest.raises(SubmissionRejected, match="dataset_hash_known"):
        submit(runs["ours"], tmp_path, "tester", "tester", known_hashes={})


def _tamper(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    lines = (dst / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    recs = [json.loads(x) for x in lines]
    recs[0]["metrics"]["ssim"] = 0.5  # the stored summary no longer follows from the records
    recs[1]["metrics"]["l1"] = 3.0  # out of range
    recs[2]["metrics"].update(sc=8.0, pq=2.0, o=7.0)  # o != sqrt(sc*pq) = 4
    (dst / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    info = json.loads((dst / "run.json").read_text(encoding="utf-8"))
    del info["judge"]
    (dst / "run.json").write_text(json.dumps(info), encoding="utf-8")
    res = json.loads((dst / "result.json").read_text(encoding="utf-8"))
    res["model"]["options"] = {"checkpoint": "/home/alice/ckpt/model.pt", "note": "api_key=sk-abcdefghijklmnop1234"}
    (dst / "result.json").write_text(json.dumps(res), encoding="utf-8")
    return dst


def test_a_tampered_run_is_rejected_with_every_problem(runs, tmp_path):
    bad = _tamper(runs["ours"], tmp_path / "tampered")
    with pytest.raises(SubmissionRejected) as err:
        submit(bad, tmp_path / "subs", "tester", None, known_hashes={runs["hash"]: "test set"})
    problems = "\n".join(err.value.problems)
    for check in ("summary_recomputes", "values_in_range", "o_is_sqrt_sc_pq", "judge_and_device_recorded",
                  "authors_stated", "no_absolute_paths", "no_secrets"):
        assert check + ":" in problems, check
    assert "summary.json ssim: mean" in problems and "l1 3.0" in problems and "o=7.0" in problems
    assert "sk-abcdef" not in problems  # a secret is reported, never echoed
    assert not (tmp_path / "subs").exists()
    # and through the CLI: exit 1, one line per problem
    from iretouch_bench.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["submit", str(bad), "--generated-by", "t", "--scored-by", "t", "--out", str(tmp_path / "subs")])
    assert exc.value.code == 1


def test_schema_break_and_partial_run_are_named(runs, tmp_path):
    bad = tmp_path / "schema"
    shutil.copytree(runs["identity"], bad)
    res = json.loads((bad / "result.json").read_text(encoding="utf-8"))
    res["leaderboard_rank"] = 1
    (bad / "result.json").write_text(json.dumps(res), encoding="utf-8")
    _, chk = check_run(bad, "t", "t", known_hashes={runs["hash"]: "x"})
    assert any(p.startswith("schema: result.json leaderboard_rank") for p in chk.problems)
    part = tmp_path / "partial"
    shutil.copytree(runs["identity"], part)
    lines = (part / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    (part / "samples.jsonl").write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")
    api.aggregate(part)
    _, chk = check_run(part, "t", "t", known_hashes={runs["hash"]: "x"})
    assert any("complete: samples.jsonl has 3 records, the dataset has 5" in p for p in chk.problems)
    assert any("complete: 2 sample(s) of the dataset have no record" in p for p in chk.problems)
    swapped = tmp_path / "swapped"
    shutil.copytree(runs["identity"], swapped)
    recs = [json.loads(x) for x in (swapped / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    recs[0]["id"] = "not-in-the-dataset"  # as many records as samples, but not the dataset's ids
    (swapped / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    api.aggregate(swapped)
    _, chk = check_run(swapped, "t", "t", known_hashes={runs["hash"]: "x"})
    assert any("1 record(s) are not samples of the dataset, e.g. not-in-the-dataset" in p for p in chk.problems)


def test_sweep_of_ours(runs):
    from iretouch_bench.reporting.sweep import load_sweep

    meta, points = load_sweep(runs["sweep"])
    assert [p.strength for p in points] == list(STRENGTHS) and meta["model"] == "ours"
    ssim = [p.result.metrics.ssim.mean for p in points]
    assert math.isclose(ssim[0], 1.0)  # strength 0 returns the input
    assert ssim[0] >= ssim[1] >= ssim[2] >= ssim[3]  # fidelity falls as the edit grows
    l1_0 = points[0].result.metrics.l1.mean
    assert all(p.result.model.strength == s for p, s in zip(points, STRENGTHS))
    assert points[2].result.metrics.l1.mean < l1_0  # the edit moves towards the targets
    assert "| 0 | 5 |" in runs["sweep_table"] and "| 1.5 | 5 |" in runs["sweep_table"]
    # rerunning resumes: nothing is regenerated, the table is the same
    folder, table = api.sweep("ours", STRENGTHS, dataset=runs["dataset"], out=runs["sweep"], metrics=METRICS,
                              progress=False, log=lambda *a: None)
    assert table == runs["sweep_table"]


def test_sweep_refuses_a_model_without_strength():
    from iretouch_bench.adapters.base import RetouchModel
    from iretouch_bench.adapters.registry import register_model

    @register_model
    class NoStrength(RetouchModel):
        name = "test-no-strength"
        supports_strength = False

        def retouch(self, image, instruction, *, mask=None, strength=1.0):
            return image

    with pytest.raises(BenchError, match="does not honour a strength"):
        api.sweep("test-no-strength", (0.0, 1.0), limit=1)
