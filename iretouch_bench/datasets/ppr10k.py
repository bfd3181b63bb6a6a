"""``ppr10k:PATH``: the official PPR10K folder layout (Liang et al., CVPR 2021; non-commercial).

``PATH`` is the root holding ``train/`` and ``val/`` (or one split folder), each with
``source/`` (16-bit TIFFs; ``source_aug/`` for augmented training sources named
``{group}_{idx}_{aug}``), ``target_a|b|c/`` (the three experts' edits) and ``masks/``.

PPR10K ships no instructions: an ``instructions.jsonl`` sidecar (``{id, instruction[,
expert]}``) supplies them where it has the id; otherwise they are written from the measured
source-to-target change by :func:`iretouch_bench.synth.describe.describe_files` (cached, so
each pair is decoded once per machine and describer version). The loader itself never
decodes an image. A source without a target, or a pair whose instruction cannot be written
(an unreadable image), is a bad row (:mod:`.base`).
"""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..core.errors import DatasetError, ImageReadError, error_line, one_line
from ..synth.describe import describe_files
from .base import CARDS, Dataset, RowBuilder, RowProblems, cell_text
from .hashing import content_hash, files_sha256

PPR10K_EXPERTS = ("a", "b", "c")
PPR10K_TARGET_SUFFIXES = (".tif", ".tiff", ".jpg", ".jpeg", ".png")
PPR10K_NAME = re.compile(r"^(?P<group>\d+)_(?P<idx>\d+)(?:_(?P<aug>\d+))?$")


def _ppr10k_split_dir(root: Path, split: str | None) -> tuple[Path, str]:
    if not root.is_dir():
        raise DatasetError(f"{root}: PPR10K folder not found")
    if (root / "source").is_dir() or (root / "source_aug").is_dir():
        # PATH is a split folder itself (e.g. .../val)
        if split is not None and split != root.name:
            raise DatasetError(f"{root}: is the {root.name!r} split folder, but split {split!r} was asked for")
        return root, root.name
    if split is None:
        split = "val" if (root / "val").is_dir() else "train" if (root / "train").is_dir() else None
        if split is None:
            raise DatasetError(f"{root}: not a PPR10K folder (expected train/ or val/ holding source/ and target_a/)")
    d = root / split
    if not d.is_dir():
        have = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise DatasetError(f"{root}: no split folder {split!r} (has {', '.join(have) or 'no folders'})")
    return d, split


def _read_sidecar(path: Path, expert: str, problems: RowProblems) -> dict[str, str]:
    """``instructions.jsonl`` rows ``{id, instruction[, expert]}``; expert-specific rows win."""
    general: dict[str, str] = {}
    specific: dict[str, str] = {}
    with open(path, encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                problems.add(lineno, f"malformed JSON ({err.msg} at column {err.colno})")
                continue
            if not isinstance(rec, dict) or cell_text(rec.get("id")) is None or cell_text(rec.get("instruction")) is None:
                problems.add(lineno, "expected an object with non-empty 'id' and 'instruction'")
                continue
            e = cell_text(rec.get("expert"))
            if e is None:
                general[cell_text(rec["id"])] = cell_text(rec["instruction"])
            elif e.lower() == expert:
                specific[cell_text(rec["id"])] = cell_text(rec["instruction"])
    return {**general, **specific}


def load_ppr10k(spec: str, root: Path, *, expert: str = "a", split: str | None = None, bad_rows: str = "record",
                **_: Any) -> Dataset:
    """``ppr10k:PATH``: the official folder layout; targets of one expert (module docstring)."""
    expert = (expert or "a").lower()
    if expert not in PPR10K_EXPERTS:
        raise DatasetError(f"PPR10K expert must be a, b or c, not {expert!r}")
    root = root.absolute()
    split_dir, split = _ppr10k_split_dir(root, split)
    src_dir = split_dir / "source"
    augmented = False
    if not src_dir.is_dir():
        # Augmented training sources are named {group}_{idx}_{aug} and share {group}_{idx}'s target.
        src_dir, augmented = split_dir / "source_aug", True
    tgt_dir = split_dir / f"target_{expert}"
    if not tgt_dir.is_dir():
        have = sorted(p.name for p in split_dir.iterdir() if p.is_dir() and p.name.startswith("target_"))
        raise DatasetError(f"{tgt_dir}: expert {expert!r} target folder not found (has {', '.join(have) or 'none'})")
    mask_dir = split_dir / "masks"
    sources = sorted((p for p in src_dir.iterdir() if p.is_file() and p.suffix.lower() in (".tif", ".tiff")),
                     key=lambda p: _ppr10k_sort_key(p.stem))
    if not sources:
        raise DatasetError(f"{src_dir}: no .tif sources")
    targets = {p.stem: p for p in tgt_dir.iterdir() if p.is_file() and p.suffix.lower() in PPR10K_TARGET_SUFFIXES}

    problems = RowProblems(src_dir, bad_rows)
    sidecar_path = next((p for p in (split_dir / "instructions.jsonl", root / "instructions.jsonl") if p.is_file()), None)
    sidecar: dict[str, str] = {}
    if sidecar_path is not None:
        # the sidecar is part of the manifest: a line that cannot be parsed stops the load
        side_problems = RowProblems(sidecar_path, "fail")
        sidecar = _read_sidecar(sidecar_path, expert, side_problems)
        side_problems.finish({})

    rows: list[dict[str, Any]] = []
    for i, src in enumerate(sources, start=1):
        m = PPR10K_NAME.match(src.stem)
        base = f"{m['group']}_{m['idx']}" if (m and augmented) else src.stem
        tgt = targets.get(base)
        if tgt is None:
            problems.add(i, f"source {src.name} has no target in {tgt_dir.name}/ "
                         f"(looked for {base} with {', '.join(PPR10K_TARGET_SUFFIXES)})", src.stem)
            continue
        mask = mask_dir / f"{base}.png"
        meta: dict[str, Any] = {"expert": expert, "split": split}
        if m:
            meta["group"] = m["group"]
            meta["index"] = m["idx"]
            if m["aug"] is not None:
                meta["augmentation"] = m["aug"]
        rows.append({"id": src.stem, "input": str(src), "target": str(tgt), "row": i,
                     "mask": str(mask) if mask.is_file() else None, "category": "portrait", **meta})

    # Instructions: the sidecar where it has the id, else written from the measured change.
    todo = [r for r in rows if r["id"] not in sidecar]
    digests = files_sha256([r["input"] for r in todo] + [r["target"] for r in todo]) if todo else {}

    def _one(r: dict[str, Any]):
        src, tgt = Path(r["input"]), Path(r["target"])
        try:
            return describe_files(src, tgt, digests[src.absolute()], digests[tgt.absolute()]), None
        except Exception as err:  # sorted out below, in row order
            return None, err

    # Decoding and measuring release the GIL for most of their time (Pillow/tifffile decode,
    # numpy); threads overlap them. pool.map keeps row order, so results are deterministic.
    workers = min(4, os.cpu_count() or 1, len(todo)) if todo else 1
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_one, todo))
    else:
        results = [_one(r) for r in todo]
    generated = {id(r): res for r, res in zip(todo, results)}

    n_cached = n_measured = n_failed = 0
    good: list[dict[str, Any]] = []
    for r in rows:
        if r["id"] in sidecar:
            r["instruction"] = sidecar[r["id"]]
            r["instruction_source"] = "sidecar"
            good.append(r)
            continue
        out, err = generated[id(r)]
        text = out[0] if out else None
        if err is None and (not isinstance(text, str) or not text.strip()):
            err = ValueError("the instruction writer returned no text")
        if err is not None:
            # An unreadable image, or a writer failure on this pair: a bad row, recorded as a
            # failed sample with the reason (never a silent empty instruction).
            why = one_line(err) if isinstance(err, ImageReadError) else f"instruction writer failed ({error_line(err)})"
            problems.add(r["row"], f"no instruction for {Path(r['input']).name}: {why}", r["id"])
            n_failed += 1
            continue
        r["instruction"] = text
        r["instruction_source"] = "generated_from_measured_change"
        n_cached += out[1]
        n_measured += not out[1]
        good.append(r)

    builder = RowBuilder(problems, split_dir)
    for r in good:
        builder.add(r.pop("row"), r)
    meta = {
        "split": split, "expert": expert, "source_folder": str(src_dir), "target_folder": str(tgt_dir),
        "augmented_sources": augmented, "instructions_sidecar": str(sidecar_path) if sidecar_path else None,
        "instruction_sources": {"sidecar": sum(1 for r in good if r["instruction_source"] == "sidecar"),
                                "generated_from_measured_change": n_cached + n_measured,
                                "unavailable": n_failed},
        "generated_now": n_measured, "generated_from_cache": n_cached,
        "masks": sum(1 for s in builder.samples if s.mask_path is not None),
        "notes": ["PPR10K (Liang et al., CVPR 2021) is for non-commercial research use only",
                  f"targets: expert {expert}; split: {split}"],
    }
    samples = builder.finish(meta)
    if not samples:
        raise DatasetError(f"{src_dir}: no samples")
    return Dataset(name="ppr10k", spec=spec, root=root, samples=samples, content_hash=content_hash(samples),
                   card=CARDS["ppr10k"], meta=meta)


def _ppr10k_sort_key(stem: str) -> tuple:
    m = PPR10K_NAME.match(stem)
    if m:
        return (0, int(m["group"]), int(m["idx"]), int(m["aug"] or -1), stem)
    return (1, 0, 0, 0, stem)
