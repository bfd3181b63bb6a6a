"""Dataset loaders on small fixtures in the real formats, built in tmp_path.

iRetouch manifests (JSONL, CSV) over PNG/JPEG files; a PPR10K tree with 16-bit RGB TIFF
sources, 8-bit TIFF / JPEG targets and PNG masks; a Hugging Face dataset saved with
``Dataset.save_to_disk`` (``datasets.Image`` columns and plain path columns).
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from iretouch_bench.datasets import Dataset, dataset_info, hashing, list_datasets, load_dataset
from iretouch_bench.synth import describe
from iretouch_bench.core.errors import DatasetError


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Each test gets its own user cache and a fresh hash cache."""
    monkeypatch.setenv("IRETOUCH_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(hashing, "_disk", hashing._DiskCache())
    monkeypatch.setattr(hashing, "_memo", {})


def _png(path: Path, seed: int, size=(12, 16)) -> Path:
    arr = np.random.default_rng(seed).integers(0, 256, size=(*size, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _pairs(root: Path, n: int = 3) -> list[dict]:
    rows = []
    for i in range(n):
        _png(root / "in" / f"p{i}.png", i)
        _png(root / "gt" / f"p{i}.png", 100 + i)
        rows.append({"id": f"pair-{i}", "input": f"in/p{i}.png", "target": f"gt/p{i}.png",
                     "instruction": f"Brighten it a little ({i})", "category": ["global", "style", "local"][i % 3]})
    return rows


def _write_jsonl(path: Path, rows: list) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _write_csv(path: Path, rows: list[dict], header: list[str] | None = None) -> Path:
    header = header or list(rows[0])
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


# ---------------------------------------------------------------------------------------
# iretouch:PATH


def test_jsonl_manifest_loads(tmp_path):
    rows = _pairs(tmp_path)
    rows[0]["mask"] = "in/p0.png"
    rows[1]["photographer"] = "someone"  # extra column -> Sample.meta
    _write_jsonl(tmp_path / "manifest.jsonl", rows)
    ds = load_dataset(f"iretouch:{tmp_path / 'manifest.jsonl'}")
    assert isinstance(ds, Dataset)
    assert ds.name == "iretouch" and ds.card == "data_cards/iretouch.md"
    assert [s.id for s in ds.samples] == ["pair-0", "pair-1", "pair-2"]
    s0, s1 = ds.samples[0], ds.samples[1]
    assert s0.input_path == (tmp_path / "in" / "p0.png").absolute()
    assert s0.target_path == (tmp_path / "gt" / "p0.png").absolute()
    assert s0.mask_path == (tmp_path / "in" / "p0.png").absolute()
    assert s1.mask_path is None
    assert s1.meta == {"photographer": "someone"}
    assert s0.category == "global"
    assert ds.categories() == {"global": 1, "local": 1, "style": 1}
    assert len(ds.content_hash) == 64
    # Loading does not decode: the arrays come only when asked for.
    assert s0.load_input().shape == (12, 16, 3)


def test_folder_spec_and_csv_equal_jsonl(tmp_path):
    rows = _pairs(tmp_path)
    a = tmp_path / "a"
    a.mkdir()
    _write_jsonl(tmp_path / "m.jsonl", rows)
    ds_jsonl = load_dataset(f"iretouch:{tmp_path / 'm.jsonl'}")
    # A folder holding one manifest: the folder is enough. Paths stay relative to the manifest.
    _write_csv(tmp_path / "m.csv", rows)
    os.remove(tmp_path / "m.jsonl")
    ds_csv = load_dataset(f"iretouch:{tmp_path}")
    assert [s.id for s in ds_csv.samples] == [s.id for s in ds_jsonl.samples]
    # Same rows, same files: same content hash whatever the manifest format.
    assert ds_csv.content_hash == ds_jsonl.content_hash


def test_folder_with_two_manifests_needs_a_name(tmp_path):
    rows = _pairs(tmp_path)
    _write_jsonl(tmp_path / "one.jsonl", rows)
    _write_jsonl(tmp_path / "two.jsonl", rows)
    with pytest.raises(DatasetError, match="2 manifests"):
        load_dataset(f"iretouch:{tmp_path}")
    _write_jsonl(tmp_path / "manifest.jsonl", rows)  # a file called manifest.* wins
    assert len(load_dataset(f"iretouch:{tmp_path}").samples) == 3


def _err(spec: str, **kw) -> str:
    """The one-line error of loading ``spec`` (row problems under the ``fail`` policy)."""
    kw.setdefault("bad_rows", "fail")
    with pytest.raises(DatasetError) as info:
        load_dataset(spec, **kw)
    msg = str(info.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def test_missing_file_reports_row_number_jsonl(tmp_path):
    rows = _pairs(tmp_path)
    rows[1]["input"] = "in/nope.png"  # data row 2 -> line 2
    m = _write_jsonl(tmp_path / "manifest.jsonl", rows)
    msg = _err(f"iretouch:{m}")
    assert str(m) in msg and "row 2:" in msg and "nope.png" in msg and "not found" in msg


def test_missing_file_reports_row_number_csv(tmp_path):
    rows = _pairs(tmp_path)
    rows[2]["target"] = "gt/gone.png"  # header is row 1, so the third data row is row 4
    m = _write_csv(tmp_path / "manifest.csv", rows)
    msg = _err(f"iretouch:{m}")
    assert str(m) in msg and "row 4:" in msg and "gone.png" in msg


def test_malformed_json_line_and_blank_lines_counted(tmp_path):
    rows = _pairs(tmp_path)
    lines = [json.dumps(rows[0]), "", json.dumps(rows[1]), '{"id": "x", "input": ', json.dumps(rows[2])]
    m = tmp_path / "manifest.jsonl"
    m.write_text("\n".join(lines) + "\n")
    msg = _err(f"iretouch:{m}")
    assert "row 4:" in msg and "malformed JSON" in msg  # the editor's line number, blank line counted


def test_missing_required_column(tmp_path):
    rows = _pairs(tmp_path)
    del rows[0]["instruction"]
    msg = _err(f"iretouch:{_write_jsonl(tmp_path / 'manifest.jsonl', rows)}")
    assert "row 1:" in msg and "'instruction'" in msg
    rows = _pairs(tmp_path)
    m = _write_csv(tmp_path / "h.csv", rows, header=["id", "input", "instruction"])
    msg = _err(f"iretouch:{m}")
    assert "row 1:" in msg and "'target'" in msg and "header" in msg


def test_duplicate_id_names_both_rows(tmp_path):
    rows = _pairs(tmp_path)
    rows[2]["id"] = "pair-0"
    msg = _err(f"iretouch:{_write_jsonl(tmp_path / 'manifest.jsonl', rows)}")
    assert "row 3:" in msg and "duplicate id 'pair-0'" in msg and "row 1" in msg


def test_several_bad_rows_listed_in_one_line(tmp_path):
    rows = _pairs(tmp_path, 5)
    rows[1]["input"] = "missing1.png"
    rows[3]["input"] = "missing2.png"
    rows[4]["instruction"] = ""
    msg = _err(f"iretouch:{_write_jsonl(tmp_path / 'manifest.jsonl', rows)}")
    assert "row 2:" in msg and "2 more bad row(s): 4, 5" in msg


def test_skip_bad_rows_records_them(tmp_path):
    rows = _pairs(tmp_path)
    rows[1]["input"] = "in/nope.png"
    m = _write_jsonl(tmp_path / "manifest.jsonl", rows)
    ds = load_dataset(f"iretouch:{m}", bad_rows="skip")
    assert [s.id for s in ds.samples] == ["pair-0", "pair-2"]
    assert ds.meta["skipped_rows"][0]["row"] == 2 and "nope.png" in ds.meta["skipped_rows"][0]["reason"]


def test_bad_rows_become_failed_samples_by_default(tmp_path):
    """The default policy: every bad row is a sample with its one-line problem; the rest load."""
    rows = _pairs(tmp_path, 5)
    rows[1]["input"] = "in/nope.png"  # row 2: missing file, id kept
    rows[3]["id"] = "pair-0"  # row 4: duplicate id -> a fresh id
    lines = [json.dumps(r) for r in rows] + ['{"id": "torn", "input": ']  # row 6: malformed JSON
    m = tmp_path / "manifest.jsonl"
    m.write_text("\n".join(lines) + "\n")
    ds = load_dataset(f"iretouch:{m}")
    good = [s.id for s in ds.samples if s.problem is None]
    bad = {s.id: s for s in ds.samples if s.problem is not None}
    assert good == ["pair-0", "pair-2", "pair-4"]
    assert set(bad) == {"pair-1", "row-4", "torn"}
    assert bad["pair-1"].row == 2 and f"{m}: row 2: input file 'in/nope.png' not found" in bad["pair-1"].problem
    assert bad["row-4"].row == 4 and "duplicate id 'pair-0' (first at row 1)" in bad["row-4"].problem
    assert bad["torn"].row == 6 and "malformed JSON" in bad["torn"].problem
    assert all("\n" not in s.problem for s in bad.values())
    with pytest.raises(DatasetError, match="row 2: input file"):
        bad["pair-1"].load_input()
    assert [b["row"] for b in ds.meta["bad_rows"]] == [2, 4, 6]
    # The hash covers the bad rows (by row number, not by the manifest's absolute path).
    skipped = load_dataset(f"iretouch:{m}", bad_rows="skip")
    assert skipped.content_hash != ds.content_hash
    moved = tmp_path / "moved"
    moved.mkdir()
    for sub in ("in", "gt"):
        os.rename(tmp_path / sub, moved / sub)
    os.rename(m, moved / "manifest.jsonl")
    assert load_dataset(f"iretouch:{moved / 'manifest.jsonl'}").content_hash == ds.content_hash


def test_unparseable_manifest_still_stops_the_load(tmp_path):
    rows = _pairs(tmp_path)
    m = _write_csv(tmp_path / "h.csv", rows, header=["id", "input", "instruction"])
    with pytest.raises(DatasetError, match="header lacks required column"):
        load_dataset(f"iretouch:{m}")  # default policy: still a one-line error
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(json.dumps(rows[0]).replace("Brighten", "Br\u00e9").encode("latin-1") + b"\xe9\n")
    with pytest.raises(DatasetError, match="not UTF-8"):
        load_dataset(f"iretouch:{bad}")


def test_ids_sanitised_and_collisions_rejected(tmp_path):
    rows = _pairs(tmp_path)
    rows[0]["id"] = "../evil id/1"
    rows[1]["id"] = "Café 2"
    m = _write_jsonl(tmp_path / "manifest.jsonl", rows)
    ds = load_dataset(f"iretouch:{m}")
    ids = [s.id for s in ds.samples]
    assert ids[:2] == ["_._evil_id_1", "Caf__2"]
    assert ds.samples[0].meta["original_id"] == "../evil id/1"
    assert all(set(i) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") for i in ids)
    rows[2]["id"] = "caf__2"  # equal to row 2 up to case: collides on case-insensitive file systems
    msg = _err(f"iretouch:{_write_jsonl(tmp_path / 'manifest.jsonl', rows)}")
    assert "row 3:" in msg and "row 2" in msg


def test_split_column_filters(tmp_path):
    rows = _pairs(tmp_path)
    for r, sp in zip(rows, ["test", "train", "test"]):
        r["split"] = sp
    m = _write_jsonl(tmp_path / "manifest.jsonl", rows)
    assert [s.id for s in load_dataset(f"iretouch:{m}", split="test").samples] == ["pair-0", "pair-2"]
    assert len(load_dataset(f"iretouch:{m}").samples) == 3


def test_unknown_spec_and_missing_paths(tmp_path):
    assert "unknown dataset spec" in _err("coco:/x")
    assert "unknown dataset spec" in _err(str(tmp_path))
    assert "no such manifest" in _err(f"iretouch:{tmp_path / 'nothing'}")
    assert "no path" in _err("hf:")


# ---------------------------------------------------------------------------------------
# Content hash


def test_hash_stable_and_sensitive(tmp_path):
    rows = _pairs(tmp_path)
    m = _write_jsonl(tmp_path / "manifest.jsonl", rows)
    h1 = load_dataset(f"iretouch:{m}").content_hash
    assert load_dataset(f"iretouch:{m}").content_hash == h1
    # Row order does not matter (rows are sorted).
    _write_jsonl(m, rows[::-1])
    assert load_dataset(f"iretouch:{m}").content_hash == h1
    # One byte of one target file changes the hash (same size, so only the bytes differ).
    f = tmp_path / "gt" / "p1.png"
    data = bytearray(f.read_bytes())
    data[-20] ^= 0xFF
    f.write_bytes(bytes(data))
    h2 = load_dataset(f"iretouch:{m}").content_hash
    assert h2 != h1
    # An instruction change changes it too.
    rows[0]["instruction"] = "Warm it up"
    _write_jsonl(m, rows)
    assert load_dataset(f"iretouch:{m}").content_hash not in (h1, h2)


def test_hash_matches_documented_definition(tmp_path):
    import hashlib

    rows = _pairs(tmp_path, 2)
    ds = load_dataset(f"iretouch:{_write_jsonl(tmp_path / 'manifest.jsonl', rows)}")

    def sha(p):
        return hashlib.sha256(Path(p).read_bytes()).hexdigest()

    lines = sorted(json.dumps([s.id, s.instruction, s.category, sha(s.input_path), sha(s.target_path), None],
                              ensure_ascii=True, separators=(",", ":")) for s in ds.samples)
    expected = hashlib.sha256(b"iretouch-bench/dataset/v1\n" + "\n".join(lines).encode()).hexdigest()
    assert ds.content_hash == expected


def test_file_hash_cache_hits_and_invalidates(tmp_path, monkeypatch):
    f = _png(tmp_path / "x.png", 1)
    old = time.time() - 3600
    os.utime(f, (old, old))
    # utime sets ctime to now, and ctime cannot be set back: switch the racy window off here
    # (test_fresh_files_are_not_cached covers it).
    monkeypatch.setattr(hashing, "RACY_SECONDS", -1.0)
    calls = []
    real = hashing._hash_stream
    monkeypatch.setattr(hashing, "_hash_stream", lambda p: calls.append(p) or real(p))
    d1 = hashing.file_sha256(f)
    monkeypatch.setattr(hashing, "_memo", {})  # forget the in-process copy: the SQLite one must serve
    assert hashing.file_sha256(f) == d1 and len(calls) == 1
    # Rewrite with other bytes but put the old mtime back: ctime still changes, so no stale hit.
    data = bytearray(f.read_bytes())
    data[-20] ^= 0xFF
    f.write_bytes(bytes(data))
    os.utime(f, (old, old))
    assert hashing.file_sha256(f) != d1 and len(calls) == 2


def test_fresh_files_are_not_cached(tmp_path):
    f = _png(tmp_path / "y.png", 2)
    hashing.file_sha256(f)
    assert hashing._memo == {}  # modified just now: inside the racy window


# ---------------------------------------------------------------------------------------
# ppr10k:PATH


def _ppr10k_tree(root: Path, split="val", names=("1_1", "1_2", "2_1")) -> dict:
    src = {}
    rng = np.random.default_rng(0)
    for k, name in enumerate(names):
        base = rng.integers(2000, 40000, size=(9, 14, 3), dtype=np.uint16)
        (root / split / "source").mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(root / split / "source" / f"{name}.tif", base, photometric="rgb")  # 16-bit RGB
        src[name] = base
        brighter = np.clip(base.astype(np.float64) / 65535 * 1.3 * 255, 0, 255).astype(np.uint8)
        for e in "abc":
            (root / split / f"target_{e}").mkdir(parents=True, exist_ok=True)
            if e == "b":  # the 360p release ships 8-bit TIFF targets; JPEG targets are accepted too
                Image.fromarray(brighter).save(root / split / "target_b" / f"{name}.jpg", quality=95)
            else:
                tifffile.imwrite(root / split / f"target_{e}" / f"{name}.tif", brighter, photometric="rgb")
        (root / split / "masks").mkdir(parents=True, exist_ok=True)
        if k != 1:  # one photo without a mask
            Image.fromarray((rng.random((9, 14)) > 0.5).astype(np.uint8) * 255).save(root / split / "masks" / f"{name}.png")
    return src


def test_ppr10k_with_sidecar(tmp_path):
    _ppr10k_tree(tmp_path)
    _write_jsonl(tmp_path / "val" / "instructions.jsonl", [
        {"id": "1_1", "instruction": "Brighten the portrait"},
        {"id": "1_2", "instruction": "Lift the exposure"},
        {"id": "2_1", "instruction": "Make it brighter"},
        {"id": "2_1", "expert": "b", "instruction": "Brighten, expert b's way"},
    ])
    ds = load_dataset(f"ppr10k:{tmp_path}")
    assert ds.name == "ppr10k" and ds.card == "data_cards/ppr10k.md"
    assert [s.id for s in ds.samples] == ["1_1", "1_2", "2_1"]
    s = ds.samples[0]
    assert s.category == "portrait"
    assert s.input_path.parent.name == "source" and s.target_path.parent.name == "target_a"
    assert s.meta["instruction_source"] == "sidecar" and s.meta["group"] == "1" and s.meta["index"] == "1"
    assert s.mask_path is not None and ds.samples[1].mask_path is None
    assert ds.meta["split"] == "val" and ds.meta["expert"] == "a"
    assert any("non-commercial" in n for n in ds.meta["notes"])
    # The 16-bit source is read at 16 bits.
    assert np.array_equal(np.rint(s.load_input().astype(np.float64) * 65535).astype(np.uint16),
                          tifffile.imread(s.input_path))
    dsb = load_dataset(f"ppr10k:{tmp_path}", expert="b")
    assert dsb.samples[2].instruction == "Brighten, expert b's way"
    assert dsb.samples[0].target_path.suffix == ".jpg"
    assert dsb.content_hash != ds.content_hash


def _fake_describer(monkeypatch, fn, version="v1"):
    """Replace the describer's measuring function and its code fingerprint."""
    state = {"version": version}
    monkeypatch.setattr(describe, "describe_change", fn)
    monkeypatch.setattr(describe, "describer_fingerprint", lambda: state["version"])
    return state


def test_ppr10k_generated_instructions_are_cached(tmp_path, monkeypatch):
    _ppr10k_tree(tmp_path)
    calls = []

    def fake_describe(source_rgb, target_rgb, rng=None):
        calls.append((source_rgb.shape, target_rgb.shape))
        # The measured change is real: the targets are brighter than the sources.
        assert source_rgb.dtype == np.float32 and target_rgb.mean() > source_rgb.mean()
        return f"Brighten by {target_rgb.mean() - source_rgb.mean():.3f}"

    state = _fake_describer(monkeypatch, fake_describe)
    ds = load_dataset(f"ppr10k:{tmp_path}")
    assert len(calls) == 3
    assert all(s.meta["instruction_source"] == "generated_from_measured_change" for s in ds.samples)
    assert ds.samples[0].instruction.startswith("Brighten by 0.")
    assert ds.meta["generated_now"] == 3
    again = load_dataset(f"ppr10k:{tmp_path}")
    assert len(calls) == 3, "a rerun must read the cached instructions"
    assert again.meta["generated_from_cache"] == 3 and again.content_hash == ds.content_hash
    # A changed describer (any module of its import closure) invalidates the cache.
    state["version"] = "v2"
    load_dataset(f"ppr10k:{tmp_path}")
    assert len(calls) == 6


def test_ppr10k_describer_fingerprint_covers_measures_and_image_io():
    """The cache key follows the describer's imports: the CIELAB measures and image I/O are in it."""
    from iretouch_bench.core.fingerprint import module_closure

    closure = module_closure("iretouch_bench.synth.describe")
    for needed in ("iretouch_bench.vocab.measures", "iretouch_bench.core.images", "iretouch_bench.core.resize",
                   "iretouch_bench.synth.instructions", "iretouch_bench.vocab.attributes"):
        assert needed in closure


def test_ppr10k_unreadable_image_is_a_failed_sample(tmp_path, monkeypatch):
    _ppr10k_tree(tmp_path, names=("3_1", "3_2"))
    (tmp_path / "val" / "target_a" / "3_2.tif").write_bytes(b"II*\x00broken")
    state = _fake_describer(monkeypatch, lambda s, t, rng=None: "Brighten")
    ds = load_dataset(f"ppr10k:{tmp_path}")
    ok, broken = ds.samples
    assert ok.instruction == "Brighten" and ok.problem is None
    assert broken.id == "3_2" and broken.row == 2 and "3_2.tif" in broken.problem
    assert ds.meta["instruction_sources"]["unavailable"] == 1
    # A writer that fails on readable images is a failed sample with the reason, never empty text.
    monkeypatch.setattr(describe, "describe_change", lambda s, t, rng=None: 1 / 0)
    state["version"] = "v2"
    ds = load_dataset(f"ppr10k:{tmp_path}")
    assert "instruction writer failed (ZeroDivisionError" in ds.samples[0].problem
    assert "3_2.tif" in ds.samples[1].problem
    assert "instruction writer failed" in _err(f"ppr10k:{tmp_path}")


def test_ppr10k_generated_instructions_real_writer(tmp_path):
    _ppr10k_tree(tmp_path, names=("5_1",))
    ds = load_dataset(f"ppr10k:{tmp_path}")
    s = ds.samples[0]
    assert s.meta["instruction_source"] == "generated_from_measured_change"
    assert isinstance(s.instruction, str) and s.instruction.strip()


def test_ppr10k_errors(tmp_path):
    _ppr10k_tree(tmp_path)
    _write_jsonl(tmp_path / "val" / "instructions.jsonl", [{"id": n, "instruction": "x"} for n in ("1_1", "1_2", "2_1")])
    assert "expert must be" in _err(f"ppr10k:{tmp_path}", expert="d")
    assert "no split folder 'train'" in _err(f"ppr10k:{tmp_path}", split="train")
    os.remove(tmp_path / "val" / "target_a" / "1_2.tif")
    msg = _err(f"ppr10k:{tmp_path}")
    assert "1_2.tif has no target in target_a" in msg
    ds = load_dataset(f"ppr10k:{tmp_path}", bad_rows="skip")
    assert [s.id for s in ds.samples] == ["1_1", "2_1"]
    ds = load_dataset(f"ppr10k:{tmp_path}")  # default: the source without a target is a failed sample
    assert [s.id for s in ds.samples] == ["1_1", "2_1", "1_2"]
    assert ds.samples[2].row == 2 and "1_2.tif has no target in target_a" in ds.samples[2].problem
    (tmp_path / "val" / "instructions.jsonl").write_text('{"id": "1_1", "instruction": "x"}\n{oops\n')
    msg = _err(f"ppr10k:{tmp_path}", bad_rows="record")  # a sidecar that does not parse stops the load
    assert "instructions.jsonl: row 2:" in msg
    assert "not a PPR10K folder" in _err(f"ppr10k:{tmp_path / 'val' / 'masks'}")


def test_ppr10k_split_folder_and_train(tmp_path):
    _ppr10k_tree(tmp_path, split="train", names=("7_1",))
    _write_jsonl(tmp_path / "instructions.jsonl", [{"id": "7_1", "instruction": "Warm the skin"}])
    ds = load_dataset(f"ppr10k:{tmp_path}")  # no val/: train is the default
    assert ds.meta["split"] == "train" and ds.samples[0].instruction == "Warm the skin"
    _write_jsonl(tmp_path / "train" / "instructions.jsonl", [{"id": "7_1", "instruction": "Cool it"}])
    ds2 = load_dataset(f"ppr10k:{tmp_path / 'train'}")  # PATH may be the split folder itself
    assert ds2.samples[0].instruction == "Cool it"


# ---------------------------------------------------------------------------------------
# hf:PATH


def test_hf_saved_dataset_with_image_feature(tmp_path):
    datasets = pytest.importorskip("datasets")
    files = tmp_path / "files"
    _pairs(files)
    jpg = files / "x.jpg"
    Image.fromarray(np.full((10, 10, 3), 77, np.uint8)).save(jpg, quality=90)
    rows = {
        "id": ["a", "b", "c"],
        "input": [str(files / "in/p0.png"), str(jpg), str(files / "in/p2.png")],
        "target": [str(files / "gt/p0.png"), str(files / "gt/p1.png"), str(files / "gt/p2.png")],
        "instruction": ["Brighten", "Warm it", "Add contrast"],
        "category": ["global", "style", "global"],
        "source": ["s0", "s1", "s2"],
    }
    ds = datasets.Dataset.from_dict(rows).cast_column("input", datasets.Image()).cast_column("target", datasets.Image())
    # embed_external_files (default) stores the encoded bytes inside the arrow files.
    ds.save_to_disk(str(tmp_path / "hfds"))
    jpg_bytes = jpg.read_bytes()
    shutil_rm(files)  # the saved folder must be self-contained
    out = load_dataset(f"hf:{tmp_path / 'hfds'}")
    assert out.name == "hf" and [s.id for s in out.samples] == ["a", "b", "c"]
    b = out.samples[1]
    # Materialised from the original encoded bytes: the JPEG is byte-identical, not re-encoded.
    assert b.input_path.suffix == ".jpg"
    assert b.input_path.read_bytes() == jpg_bytes
    assert b.meta == {"source": "s1"}
    assert str(b.input_path).startswith(str(tmp_path / "cache" / "datasets" / "hf-"))
    assert b.load_input().shape == (10, 10, 3)
    assert out.meta["materialised_files"] == 6
    assert load_dataset(f"hf:{tmp_path / 'hfds'}").content_hash == out.content_hash
    # Same bytes, ids, instructions, categories as a manifest over the original files: same hash.
    _pairs(files)
    Image.fromarray(np.full((10, 10, 3), 77, np.uint8)).save(jpg, quality=90)
    assert jpg.read_bytes() == jpg_bytes
    man = [{"id": i, "input": inp, "target": tgt, "instruction": ins, "category": cat}
           for i, inp, tgt, ins, cat in zip(rows["id"], rows["input"], rows["target"], rows["instruction"],
                                            rows["category"])]
    m = _write_jsonl(tmp_path / "manifest.jsonl", man)
    assert load_dataset(f"iretouch:{m}").content_hash == out.content_hash


def shutil_rm(path: Path) -> None:
    import shutil

    shutil.rmtree(path)


def test_hf_jpeg_bytes_identical(tmp_path):
    datasets = pytest.importorskip("datasets")
    jpg = tmp_path / "x.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(jpg, quality=80)
    original = jpg.read_bytes()
    d = datasets.Dataset.from_dict({"id": ["j"], "input": [str(jpg)], "target": [str(jpg)], "instruction": ["Warm"]})
    d.cast_column("input", datasets.Image()).cast_column("target", datasets.Image()).save_to_disk(str(tmp_path / "h"))
    out = load_dataset(f"hf:{tmp_path / 'h'}")
    assert out.samples[0].input_path.read_bytes() == original


def test_hf_dataset_dict_path_columns_and_errors(tmp_path):
    datasets = pytest.importorskip("datasets")
    _pairs(tmp_path / "hf")
    rel = {"id": ["a", "b"], "input": ["in/p0.png", "in/p1.png"], "target": ["gt/p0.png", "gt/p1.png"],
           "instruction": ["Brighten", "Cool it"]}
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict(rel),
                               "test": datasets.Dataset.from_dict({k: v[:1] for k, v in rel.items()})})
    dd.save_to_disk(str(tmp_path / "hf"))  # path strings are relative to the datasets folder
    out = load_dataset(f"hf:{tmp_path / 'hf'}")
    assert out.meta["split"] == "test" and [s.id for s in out.samples] == ["a"]
    assert out.samples[0].input_path == (tmp_path / "hf" / "in" / "p0.png").absolute()
    assert len(load_dataset(f"hf:{tmp_path / 'hf'}", split="train").samples) == 2
    assert "no split 'dev'" in _err(f"hf:{tmp_path / 'hf'}", split="dev")
    bad = dict(rel, input=["in/p0.png", "in/missing.png"])
    datasets.Dataset.from_dict(bad).save_to_disk(str(tmp_path / "hf2"))
    _pairs(tmp_path / "hf2")
    msg = _err(f"hf:{tmp_path / 'hf2'}")
    assert "row 2:" in msg and "missing.png" in msg
    datasets.Dataset.from_dict({"id": ["a"], "input": ["x"]}).save_to_disk(str(tmp_path / "hf3"))
    assert "missing column(s)" in _err(f"hf:{tmp_path / 'hf3'}")
    (tmp_path / "plain").mkdir()
    assert "not a datasets folder" in _err(f"hf:{tmp_path / 'plain'}")


# ---------------------------------------------------------------------------------------
# embedded, info, list


def test_embedded_uses_builder(tmp_path, monkeypatch):
    """The embedded spec loads the manifest that build_embedded() returns the folder of."""
    root = tmp_path / "emb"
    rows = _pairs(root)
    _write_jsonl(root / "manifest.jsonl", rows)
    from iretouch_bench.datasets import embedded

    monkeypatch.setattr(embedded, "build_embedded", lambda root_=None, force=False: root)
    ds = load_dataset("embedded")
    assert ds.name == "embedded" and ds.card == "data_cards/embedded.md" and len(ds.samples) == 3
    assert ds.content_hash == load_dataset(f"iretouch:{root}").content_hash


def test_dataset_info_and_list(tmp_path):
    m = _write_jsonl(tmp_path / "manifest.jsonl", _pairs(tmp_path))
    info = dataset_info(f"iretouch:{m}")
    assert info["n_samples"] == 3 and info["name"] == "iretouch" and len(info["content_hash"]) == 64
    assert info["categories"] == {"global": 1, "local": 1, "style": 1}
    assert any("no public release" in n for n in info["notes"])
    json.dumps(info, default=str)
    names = [d["name"] for d in list_datasets()]
    assert names == ["embedded", "iretouch", "ppr10k", "hf"]
    repo = Path(__file__).resolve().parents[1]
    for d in list_datasets():
        assert d["description"]
        if d["name"] != "embedded":  # embedded.md is written with the embedded builder
            assert (repo / d["card"]).is_file(), d["card"]


_ORIGINAL_CACHE = os.environ.get("IRETOUCH_BENCH_CACHE")


def test_embedded_real_build(monkeypatch):
    """The real builder (once per machine, in the shared user cache like the other tests)."""
    if _ORIGINAL_CACHE is None:
        monkeypatch.delenv("IRETOUCH_BENCH_CACHE", raising=False)
    else:
        monkeypatch.setenv("IRETOUCH_BENCH_CACHE", _ORIGINAL_CACHE)
    ds = load_dataset("embedded")
    assert ds.name == "embedded" and ds.card == "data_cards/embedded.md"
    assert len(ds.samples) >= 40
    assert {"global", "style", "local", "portrait"} <= set(ds.categories())
    assert len({s.id for s in ds.samples}) == len(ds.samples)
    assert all(s.input_path.is_file() and s.target_path.is_file() for s in ds.samples)
    assert load_dataset("embedded").content_hash == ds.content_hash
