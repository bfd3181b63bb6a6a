"""The embedded dataset: deterministic, atomic, cached build; counts; every row consistent."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from iretouch_bench.synth import embedded as emb
from iretouch_bench.vocab.attributes import AttributeMatch, match_attributes
from iretouch_bench.synth.instructions import check_instruction
from iretouch_bench.synth.pairs import verify_effects
from iretouch_bench.core.images import read_image


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    a = emb.build_embedded(tmp_path_factory.mktemp("a") / "embedded-v1")
    b = emb.build_embedded(tmp_path_factory.mktemp("b") / "embedded-v1")
    return a, b


def _rows(root: Path):
    return [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines() if line.strip()]


def _files(root: Path):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_deterministic(built):
    a, b = built
    fa, fb = _files(a), _files(b)
    assert fa == fb
    for rel in fa:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_counts_and_categories(built):
    root = built[0]
    rows = _rows(root)
    assert len(rows) >= 40
    info = json.loads((root / "dataset.json").read_text())
    assert info["count"] == len(rows)
    cats = {}
    for r in rows:
        cats[r["category"]] = cats.get(r["category"], 0) + 1
    assert set(cats) == {"global", "style", "local", "portrait"}
    assert all(n >= 8 for n in cats.values()), cats
    assert cats == info["categories"]
    portrait_photos = {r["photo"] for r in rows if r["category"] == "portrait"}
    assert {"astronaut", "grace_hopper"} <= portrait_photos
    assert len({r["id"] for r in rows}) == len(rows)
    # every style look appears
    assert len({r["params"]["preset"] for r in rows if r["category"] == "style"}) == 10


def test_rows_consistent(built):
    root = built[0]
    seen: list[str] = []
    for r in _rows(root):
        assert {"id", "input", "target", "instruction", "category", "params"} <= set(r)
        for k in ("input", "target", "mask"):
            if k in r:
                assert not Path(r[k]).is_absolute() and (root / r[k]).is_file()
        inp, tgt = read_image(root / r["input"]), read_image(root / r["target"])
        assert inp.shape == tgt.shape and max(inp.shape[:2]) <= emb.MAX_SIDE
        mask = None
        if r["category"] in ("local", "portrait"):
            mask = read_image(root / r["mask"])[:, :, 0]
            assert mask.shape == inp.shape[:2]
        else:
            assert "mask" not in r
        # the instruction is clean, unique in the set, and reads back as intended
        assert check_instruction(r["instruction"], seen) == [], r["id"]
        seen.append(r["instruction"])
        got = match_attributes(r["instruction"])
        assert [m.name for m in got] == r["attributes"]
        # the stored 8-bit pair still moves every instructed attribute the instructed way
        intents = [AttributeMatch(**d) for d in r["intents"]]
        assert verify_effects(inp, tgt, intents, mask) == [], r["id"]


def test_skips_complete_build(built, monkeypatch):
    root = built[0]
    before = {p: os.stat(root / p).st_mtime_ns for p in _files(root)}

    def boom(folder):  # a rebuild would call this
        raise AssertionError("rebuilt a complete dataset")

    monkeypatch.setattr(emb, "_build_into", boom)
    assert emb.build_embedded(root) == root
    assert {p: os.stat(root / p).st_mtime_ns for p in _files(root)} == before


def test_killed_build_leaves_nothing(tmp_path, monkeypatch):
    real = emb._build_into

    def dies_halfway(folder):
        (folder / "inputs").mkdir()
        (folder / "inputs" / "x.png").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(emb, "_build_into", dies_halfway)
    root = tmp_path / "embedded-v1"
    with pytest.raises(KeyboardInterrupt):
        emb.build_embedded(root)
    assert not root.exists()
    assert list(tmp_path.iterdir()) == []
    # a half folder left by SIGKILL (no dataset.json) is not taken as complete
    root.mkdir()
    (root / "manifest.jsonl").write_text("{}\n")
    assert not emb.is_complete(root)
    monkeypatch.setattr(emb, "_build_into", real)


def test_stale_temp_folders_are_removed(tmp_path, monkeypatch):
    # the temp folder of a SIGKILLed build (its pid is gone) is cleaned by the next build
    stale = tmp_path / ".embedded-v1.tmp-999999999-deadbeef"
    stale.mkdir()
    (stale / "junk").write_text("x")
    mine = tmp_path / f".embedded-v1.tmp-{os.getpid()}-cafebabe"
    mine.mkdir()
    monkeypatch.setattr(emb, "_build_into", lambda folder: (_ for _ in ()).throw(RuntimeError("stop")))
    with pytest.raises(RuntimeError):
        emb.build_embedded(tmp_path / "embedded-v1")
    assert not stale.exists() and mine.exists()


def test_default_root_respects_env(tmp_path, monkeypatch):
    monkeypatch.setenv("IRETOUCH_BENCH_CACHE", str(tmp_path))
    root = emb.default_root()
    assert root == tmp_path / "datasets" / "embedded-v1"
    assert not root.exists()  # created only by a build


def test_build_made_by_other_code_is_stale_and_rebuilt(tmp_path):
    import json

    root = emb.build_embedded(tmp_path / "embedded-v1")
    info_p = root / "dataset.json"
    info = json.loads(info_p.read_text())
    assert info["builder"] == emb.builder_fingerprint()
    info["builder"] = "0" * 64  # as if an older version of the builder had made it
    info_p.write_text(json.dumps(info))
    assert not emb.is_complete(root)
    emb.build_embedded(root)
    assert json.loads(info_p.read_text())["builder"] == emb.builder_fingerprint()
