"""Dataset loaders: a spec string -> a :class:`Dataset` of :class:`Sample` pairs.

Specs (DESIGN.md)::

    embedded        the suite's own set, built offline into the user cache (default)
    iretouch:PATH   a manifest (.jsonl/.ndjson/.csv) or a folder holding exactly one
    ppr10k:PATH     the official PPR10K folder layout ({train,val}/source, target_a|b|c, masks)
    hf:PATH         a Hugging Face ``datasets`` folder saved with ``save_to_disk``

Loaders never decode images: they check that every referenced file exists and hash its
bytes (the content hash). An unreadable image is found at run time and the runner records
that sample as failed. The one exception is PPR10K without an instruction sidecar, where
instructions are written from the measured source-to-target change (so both images are
decoded once; the result is cached in the user cache keyed by the two files' sha256).

Bad rows policy: a manifest row that is malformed (bad JSON, missing required field,
duplicate id, a file that does not exist) fails the whole load with a one-line
:class:`~iretouch_bench.core.errors.DatasetError` naming the manifest, the row number of the first
bad row (1-based, as an editor numbers lines; in a CSV the header is row 1) and the rows of
the others. Silently skipping rows would change what is evaluated while the table still
looks complete. ``skip_bad_rows=True`` loads the good rows instead and records every skipped
row (number and reason) in ``Dataset.meta["skipped_rows"]``; the content hash then covers
only the rows loaded.

Ids must be unique and safe as file names (``[A-Za-z0-9._-]``, not starting with ``.``):
other characters are replaced by ``_`` (the original is kept in ``Sample.meta["original_id"]``);
two ids that become equal, or equal up to letter case (they would collide on macOS and
Windows file systems), are an error naming both rows.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..core.errors import DatasetError, ImageReadError, one_line
from ..core.resize import block_mean
from .hashing import content_hash, files_sha256
from .sample import CATEGORIES, Sample

MANIFEST_SUFFIXES = (".jsonl", ".ndjson", ".csv")
REQUIRED_COLUMNS = ("id", "input", "target", "instruction")
OPTIONAL_COLUMNS = ("category", "mask")
PATH_COLUMNS = ("input", "target", "mask")
PPR10K_EXPERTS = ("a", "b", "c")
PPR10K_TARGET_SUFFIXES = (".tif", ".tiff", ".jpg", ".jpeg", ".png")
PPR10K_NAME = re.compile(r"^(?P<group>\d+)_(?P<idx>\d+)(?:_(?P<aug>\d+))?$")
HF_DEFAULT_SPLITS = ("test", "validation", "val", "train")

_CARDS = {
    "embedded": "data_cards/embedded.md",
    "iretouch": "data_cards/iretouch.md",
    "ppr10k": "data_cards/ppr10k.md",
    "hf": "data_cards/hf.md",
}
_ID_BAD = re.compile(r"[^A-Za-z0-9._-]")
_MAX_ID = 200


@dataclass
class Dataset:
    """A loaded dataset.

    Attributes:
        name: ``embedded``, ``iretouch``, ``ppr10k`` or ``hf``.
        spec: the spec it was loaded from, as given.
        root: the folder the files live under (manifest folder, PPR10K root, HF folder).
        samples: the pairs, in manifest / file-name order.
        content_hash: sha256 hex over the sorted rows (see :mod:`iretouch_bench.datasets.hashing`).
        card: repository-relative path of the data card (``data_cards/<name>.md``).
        meta: loader facts (manifest path, split, expert, instruction sources, skipped rows, ...).
    """

    name: str
    spec: str
    root: Path
    samples: list[Sample]
    content_hash: str
    card: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def categories(self) -> dict[str, int]:
        """Sample count per category (``None`` counted under ``"uncategorised"``)."""
        counts: dict[str, int] = {}
        for s in self.samples:
            key = s.category or "uncategorised"
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))


# --------------------------------------------------------------------------------------
# Public entry points


def parse_spec(spec: str) -> tuple[str, Path | None]:
    """``"iretouch:PATH"`` -> ``("iretouch", Path)``; ``"embedded"`` -> ``("embedded", None)``."""
    if not isinstance(spec, str) or not spec.strip():
        raise DatasetError("empty dataset spec; use embedded, iretouch:PATH, ppr10k:PATH or hf:PATH")
    spec = spec.strip()
    if spec == "embedded":
        return "embedded", None
    scheme, sep, rest = spec.partition(":")
    if sep and scheme in ("iretouch", "ppr10k", "hf"):
        if not rest.strip():
            raise DatasetError(f"dataset spec {spec!r} has no path after '{scheme}:'")
        return scheme, Path(os.path.expanduser(rest.strip()))
    raise DatasetError(
        f"unknown dataset spec {spec!r}; use embedded, iretouch:PATH (manifest or folder), "
        "ppr10k:PATH (PPR10K root) or hf:PATH (datasets folder from save_to_disk)"
    )


def load_dataset(
    spec: str = "embedded", *, expert: str = "a", split: str | None = None, skip_bad_rows: bool = False
) -> Dataset:
    """Load ``spec`` (see module docstring).

    Args:
        spec: ``embedded`` | ``iretouch:PATH`` | ``ppr10k:PATH`` | ``hf:PATH``.
        expert: PPR10K retoucher whose edits are the targets: ``a``, ``b`` or ``c``.
        split: PPR10K ``train``/``val`` (default ``val`` if present); HF split of a
            DatasetDict (default test, validation, val, train, or the only one); for a
            manifest with a ``split`` column, keeps the rows of that split.
        skip_bad_rows: load the good rows and record the bad ones in ``meta["skipped_rows"]``
            instead of failing (see module docstring).

    Raises:
        DatasetError: one line naming the file (and row) and the problem.
    """
    kind, path = parse_spec(spec)
    if kind == "embedded":
        return _load_embedded(spec, split=split, skip_bad_rows=skip_bad_rows)
    if kind == "iretouch":
        return _load_iretouch(spec, path, split=split, skip_bad_rows=skip_bad_rows)
    if kind == "ppr10k":
        return _load_ppr10k(spec, path, expert=expert, split=split, skip_bad_rows=skip_bad_rows)
    return _load_hf(spec, path, split=split, skip_bad_rows=skip_bad_rows)


def dataset_info(
    spec: str = "embedded", *, expert: str = "a", split: str | None = None, skip_bad_rows: bool = False
) -> dict[str, Any]:
    """What ``iretouch-bench data info SPEC`` prints: name, size, categories, hash, root, card, notes."""
    ds = load_dataset(spec, expert=expert, split=split, skip_bad_rows=skip_bad_rows)
    notes = list(ds.meta.get("notes", []))
    return {
        "name": ds.name,
        "spec": ds.spec,
        "n_samples": len(ds.samples),
        "categories": ds.categories(),
        "content_hash": ds.content_hash,
        "hash_version": "v1",
        "root": str(ds.root),
        "card": ds.card,
        "notes": notes,
        "meta": {k: v for k, v in ds.meta.items() if k != "notes"},
    }


def list_datasets() -> list[dict[str, str]]:
    """The dataset kinds the suite reads, for ``iretouch-bench data list``."""
    return [
        {"name": "embedded", "spec": "embedded", "card": _CARDS["embedded"],
         "description": "default; built offline from photos that installed packages ship (photo-finishing pipeline)"},
        {"name": "iretouch", "spec": "iretouch:PATH", "card": _CARDS["iretouch"],
         "description": "your manifest (.jsonl/.csv: id,input,target,instruction[,category,mask]); iRetouch has no public release"},
        {"name": "ppr10k", "spec": "ppr10k:PATH", "card": _CARDS["ppr10k"],
         "description": "PPR10K folder layout (Liang et al., CVPR 2021), non-commercial research use only; --expert a|b|c"},
        {"name": "hf", "spec": "hf:PATH", "card": _CARDS["hf"],
         "description": "a Hugging Face datasets folder saved with save_to_disk, same columns as the manifest"},
    ]


# --------------------------------------------------------------------------------------
# Shared row checking


class _Problems:
    """Collects bad rows; raises one line naming the first and listing the rest."""

    def __init__(self, source: Path | str, skip: bool) -> None:
        self.source = source
        self.skip = skip
        self.items: list[tuple[int | None, str]] = []

    def add(self, row: int | None, message: str) -> None:
        self.items.append((row, one_line(message)))

    def raise_or_record(self, meta: dict[str, Any]) -> None:
        if not self.items:
            return
        if self.skip:
            meta["skipped_rows"] = [{"row": r, "reason": m} for r, m in self.items]
            meta.setdefault("notes", []).append(f"{len(self.items)} bad row(s) skipped (skip_bad_rows=True)")
            return
        row, msg = self.items[0]
        where = f"{self.source}: row {row}: " if row is not None else f"{self.source}: "
        more = ""
        if len(self.items) > 1:
            rest = [str(r) for r, _ in self.items[1:] if r is not None]
            shown = ", ".join(rest[:10]) + (", ..." if len(rest) > 10 else "")
            more = f" (and {len(self.items) - 1} more bad row(s)" + (f": {shown}" if shown else "") + ")"
        raise DatasetError(where + msg + more)


def safe_id(raw: Any) -> str:
    """A file-name-safe id: ``[A-Za-z0-9._-]``, no leading dot, at most 200 characters.

    Raises ValueError for an empty id.
    """
    text = "" if raw is None else str(raw).strip()
    if not text:
        raise ValueError("empty id")
    out = _ID_BAD.sub("_", text)
    if out.startswith("."):  # hidden files, and "." / ".." are not ids
        out = "_" + out[1:]
    if len(out) > _MAX_ID:
        # Keep it unique: truncate and add a short digest of the full id.
        out = out[: _MAX_ID - 17] + "-" + hashlib.sha256(text.encode()).hexdigest()[:16]
    return out


def _text(value: Any) -> str | None:
    """A cell as stripped text; None/NaN/empty -> None."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN from pandas-made CSVs
        return None
    text = str(value).strip()
    return text or None


class _RowBuilder:
    """Turns raw rows into Samples, checking ids, required fields and file existence."""

    def __init__(self, problems: _Problems, base: Path, path_note: str = "relative to the manifest") -> None:
        self.problems = problems
        self.base = base
        self.path_note = path_note
        self.samples: list[Sample] = []
        self._ids: dict[str, int] = {}  # casefolded id -> row

    def resolve(self, value: str) -> Path:
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else self.base / p

    def add(self, row: int, rec: dict[str, Any], resolved: dict[str, Path] | None = None) -> Sample | None:
        """``rec`` holds the columns; ``resolved`` may pre-resolve path columns (HF bytes)."""
        resolved = resolved or {}
        missing = [c for c in REQUIRED_COLUMNS if c != "target" and _text(rec.get(c)) is None and c not in resolved]
        if missing:
            self.problems.add(row, "empty or missing " + ", ".join(repr(c) for c in missing))
            return None
        raw_id = _text(rec["id"])
        try:
            sid = safe_id(raw_id)
        except ValueError as err:
            self.problems.add(row, str(err))
            return None
        key = sid.casefold()
        if key in self._ids:
            first = self._ids[key]
            if sid == raw_id:
                self.problems.add(row, f"duplicate id {raw_id!r} (first at row {first})")
            else:
                self.problems.add(row, f"id {raw_id!r} (as a file name {sid!r}) collides with the id at row {first}")
            return None
        paths: dict[str, Path | None] = {}
        for col in PATH_COLUMNS:
            if col in resolved:
                paths[col] = resolved[col]
                continue
            value = _text(rec.get(col))
            if value is None:
                paths[col] = None
                continue
            p = self.resolve(value)
            if not p.is_file():
                what = "is a folder, not a file" if p.is_dir() else "not found"
                self.problems.add(row, f"{col} file {value!r} {what} ({p}; paths are {self.path_note})")
                return None
            paths[col] = p
        category = _text(rec.get("category"))
        meta = {k: v for k, v in rec.items() if k not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS}
        if sid != raw_id:
            meta["original_id"] = raw_id
        sample = Sample(
            id=sid,
            input_path=paths["input"],
            instruction=_text(rec["instruction"]),
            target_path=paths["target"],
            category=category.lower() if category and category.lower() in CATEGORIES else category,
            mask_path=paths["mask"],
            meta=meta,
        )
        self._ids[key] = row
        self.samples.append(sample)
        return sample


# --------------------------------------------------------------------------------------
# iRetouch manifest


def find_manifest(path: Path) -> Path:
    """``path`` itself if it is a manifest file, else the one manifest inside the folder."""
    if not path.exists():
        raise DatasetError(f"{path}: no such manifest file or folder")
    if path.is_file():
        if path.suffix.lower() not in MANIFEST_SUFFIXES:
            raise DatasetError(f"{path}: not a manifest (expected .jsonl, .ndjson or .csv)")
        return path
    found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES)
    if len(found) == 1:
        return found[0]
    named = [p for p in found if p.stem.lower() == "manifest"]
    if len(named) == 1:
        return named[0]
    if not found:
        raise DatasetError(f"{path}: folder holds no manifest (.jsonl, .ndjson or .csv)")
    raise DatasetError(
        f"{path}: folder holds {len(found)} manifests ({', '.join(p.name for p in found)}); "
        "name the file in the spec, e.g. iretouch:" + str(found[0])
    )


def _read_jsonl(path: Path, problems: _Problems) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue  # blank lines (a trailing newline) are not rows
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                problems.add(lineno, f"malformed JSON ({err.msg} at column {err.colno})")
                continue
            if not isinstance(rec, dict):
                problems.add(lineno, f"expected a JSON object, got {type(rec).__name__}")
                continue
            absent = [c for c in REQUIRED_COLUMNS if c not in rec]
            if absent:
                problems.add(lineno, "missing required field(s) " + ", ".join(repr(c) for c in absent))
                continue
            yield lineno, rec


def _read_csv(path: Path, problems: _Problems) -> Iterator[tuple[int, dict[str, Any]]]:
    # utf-8-sig: spreadsheets often write a byte-order mark before the header.
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            problems.add(1, "empty CSV (no header row)")
            return
        except csv.Error as err:
            problems.add(1, f"malformed CSV header ({err})")
            return
        header = [h.strip() for h in header]
        absent = [c for c in REQUIRED_COLUMNS if c not in header]
        if absent:
            problems.add(1, "header lacks required column(s) " + ", ".join(repr(c) for c in absent)
                         + f" (has {', '.join(header)})")
            return
        while True:
            start = reader.line_num + 1  # a quoted cell may span lines: report where the row starts
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                problems.add(start, f"malformed CSV ({err})")
                return
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                problems.add(start, f"has {len(cells)} cells, the header has {len(header)}")
                continue
            yield start, dict(zip(header, cells))


def load_manifest(
    manifest: Path, *, name: str, spec: str, card: str | None, split: str | None = None, skip_bad_rows: bool = False
) -> Dataset:
    """Load an iRetouch-format manifest file (JSONL or CSV)."""
    manifest = manifest.absolute()
    problems = _Problems(manifest, skip_bad_rows)
    builder = _RowBuilder(problems, manifest.parent)
    reader = _read_csv if manifest.suffix.lower() == ".csv" else _read_jsonl
    n_rows = 0
    has_split = False
    try:
        for row, rec in reader(manifest, problems):
            n_rows += 1
            if "split" in rec:
                has_split = True
                if split is not None and _text(rec.get("split")) != split:
                    continue
            builder.add(row, rec)
    except UnicodeDecodeError as err:
        raise DatasetError(f"{manifest}: not UTF-8 text ({err.reason} at byte {err.start})") from err
    except OSError as err:
        raise DatasetError(f"{manifest}: cannot read ({err.strerror or err})") from err
    meta: dict[str, Any] = {"manifest": str(manifest), "format": manifest.suffix.lower().lstrip(".")}
    problems.raise_or_record(meta)
    if split is not None:
        if not has_split:
            raise DatasetError(f"{manifest}: split {split!r} asked for, but the manifest has no 'split' column")
        meta["split"] = split
    if not builder.samples:
        raise DatasetError(f"{manifest}: no samples" + (f" in split {split!r}" if split else ""))
    return Dataset(name=name, spec=spec, root=manifest.parent, samples=builder.samples,
                   content_hash=content_hash(builder.samples), card=card, meta=meta)


def _load_iretouch(spec: str, path: Path, *, split: str | None, skip_bad_rows: bool) -> Dataset:
    manifest = find_manifest(path)
    ds = load_manifest(manifest, name="iretouch", spec=spec, card=_CARDS["iretouch"], split=split,
                       skip_bad_rows=skip_bad_rows)
    ds.meta.setdefault("notes", []).insert(
        0, "iRetouch has no public release; this is a user manifest in the suite's iRetouch format")
    return ds


def _load_embedded(spec: str, *, split: str | None, skip_bad_rows: bool) -> Dataset:
    try:
        from ..synth.embedded import build_embedded
    except ImportError as err:
        raise DatasetError(f"embedded dataset builder unavailable ({one_line(err)})") from err
    root = Path(build_embedded())
    manifest = root / "manifest.jsonl" if (root / "manifest.jsonl").is_file() else find_manifest(root)
    ds = load_manifest(manifest, name="embedded", spec=spec, card=_CARDS["embedded"], split=split,
                       skip_bad_rows=skip_bad_rows)
    return ds


# --------------------------------------------------------------------------------------
# PPR10K


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


def _read_sidecar(path: Path, expert: str, problems: _Problems) -> dict[str, str]:
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
            if not isinstance(rec, dict) or _text(rec.get("id")) is None or _text(rec.get("instruction")) is None:
                problems.add(lineno, "expected an object with non-empty 'id' and 'instruction'")
                continue
            e = _text(rec.get("expert"))
            if e is None:
                general[_text(rec["id"])] = _text(rec["instruction"])
            elif e.lower() == expert:
                specific[_text(rec["id"])] = _text(rec["instruction"])
    return {**general, **specific}


def _instructions_module_digest() -> str:
    """sha256 of the instruction writer's source: a changed writer invalidates cached text."""
    from ..synth import instructions

    return hashlib.sha256(Path(instructions.__file__).read_bytes()).hexdigest()[:16]


#: Longest side the images are reduced to (box filter) before measuring the change: the
#: measurement is of global tone/colour statistics, which a 1024-px view keeps, and a 4K
#: 16-bit decode+measure per pair would dominate loading time.
MEASURE_MAX_SIDE = 1024


def _generate_instruction(source: Path, target: Path, src_sha: str, tgt_sha: str,
                          describe: Callable[..., str], writer_digest: str) -> tuple[str, bool]:
    """Instruction for a source->target pair, from the cache or freshly measured.

    Returns (text, from_cache). The rng is seeded from the two file digests so phrasing
    varies across pairs but is the same on every machine and rerun.
    """
    from ..core.images import read_image
    from ..core.atomic import cache_dir

    key = hashlib.sha256(f"{src_sha}:{tgt_sha}:{writer_digest}".encode()).hexdigest()
    cache_file = cache_dir("instructions", "ppr10k") / f"{key}.json"
    if cache_file.is_file():
        try:
            return json.loads(cache_file.read_text())["instruction"], True
        except (OSError, ValueError, KeyError):
            pass  # a damaged entry is recomputed
    src = block_mean(read_image(source), MEASURE_MAX_SIDE)
    tgt = block_mean(read_image(target), MEASURE_MAX_SIDE)
    if src.shape != tgt.shape:
        from skimage.transform import resize

        tgt = resize(tgt, src.shape, order=1, anti_aliasing=True).astype(np.float32)
    rng = np.random.default_rng(int(key[:16], 16))
    text = describe(src, tgt, rng=rng)
    tmp = cache_file.with_name(f".{cache_file.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps({"instruction": text, "source_sha256": src_sha, "target_sha256": tgt_sha}))
    os.replace(tmp, cache_file)
    return text, False


def _load_ppr10k(spec: str, root: Path, *, expert: str, split: str | None, skip_bad_rows: bool) -> Dataset:
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

    problems = _Problems(src_dir, skip_bad_rows)
    sidecar_path = next((p for p in (split_dir / "instructions.jsonl", root / "instructions.jsonl") if p.is_file()), None)
    sidecar: dict[str, str] = {}
    if sidecar_path is not None:
        side_problems = _Problems(sidecar_path, False)
        sidecar = _read_sidecar(sidecar_path, expert, side_problems)
        side_problems.raise_or_record({})

    rows: list[dict[str, Any]] = []
    for i, src in enumerate(sources, start=1):
        m = PPR10K_NAME.match(src.stem)
        base = f"{m['group']}_{m['idx']}" if (m and augmented) else src.stem
        tgt = targets.get(base)
        if tgt is None:
            problems.add(None, f"source {src.name} has no target in {tgt_dir.name}/ "
                         f"(looked for {base} with {', '.join(PPR10K_TARGET_SUFFIXES)})")
            continue
        mask = mask_dir / f"{base}.png"
        meta: dict[str, Any] = {"expert": expert, "split": split}
        if m:
            meta["group"] = m["group"]
            meta["index"] = m["idx"]
            if m["aug"] is not None:
                meta["augmentation"] = m["aug"]
        rows.append({"id": src.stem, "input": str(src), "target": str(tgt),
                     "mask": str(mask) if mask.is_file() else None, "category": "portrait", **meta})
    meta_out: dict[str, Any] = {}
    problems.raise_or_record(meta_out)

    # Instructions: the sidecar where it has the id, else measured from the pair.
    need = [r for r in rows if r["id"] not in sidecar]
    digests = files_sha256([r["input"] for r in need] + [r["target"] for r in need]) if need else {}
    describe = writer_digest = None
    if need:
        try:
            from ..synth.instructions import describe_change

            describe, writer_digest = describe_change, _instructions_module_digest()
        except ImportError as err:
            raise DatasetError(
                f"{split_dir}: {len(need)} pair(s) have no instruction in an instructions.jsonl sidecar and the "
                f"instruction writer is unavailable ({one_line(err)})") from err
    def _one(r: dict[str, Any]):
        src, tgt = Path(r["input"]), Path(r["target"])
        try:
            return _generate_instruction(src, tgt, digests[src.absolute()], digests[tgt.absolute()],
                                         describe, writer_digest), None
        except Exception as err:  # sorted out below, in row order
            return None, err

    todo = [r for r in rows if r["id"] not in sidecar]
    # Decoding and measuring release the GIL for most of their time (Pillow/tifffile decode,
    # numpy); threads overlap them. pool.map keeps row order, so results are deterministic.
    workers = min(4, os.cpu_count() or 1, len(todo)) if todo else 1
    if workers > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_one, todo))
    else:
        results = [_one(r) for r in todo]
    generated = {id(r): res for r, res in zip(todo, results)}

    n_cached = n_measured = n_failed = 0
    for r in rows:
        if r["id"] in sidecar:
            r["instruction"] = sidecar[r["id"]]
            r["instruction_source"] = "sidecar"
            continue
        out, err = generated[id(r)]
        if isinstance(err, ImageReadError):  # an unreadable image: the runner fails this sample at run time
            r["instruction"] = ""
            r["instruction_source"] = "unavailable"
            r["instruction_error"] = one_line(err)
            n_failed += 1
            continue
        if err is not None:  # a writer failure on readable images is a bug, said in one line
            raise DatasetError(f"{r['input']}: the instruction writer failed on this pair "
                               f"({type(err).__name__}: {one_line(err)})") from err
        text, cached = out
        if not isinstance(text, str) or not text.strip():
            raise DatasetError(f"{r['input']}: the instruction writer returned no text for this pair")
        r["instruction"] = text
        r["instruction_source"] = "generated_from_measured_change"
        n_cached += cached
        n_measured += not cached

    builder = _RowBuilder(_Problems(src_dir, False), split_dir)
    for i, r in enumerate(rows, start=1):
        if not r["instruction"]:
            # Sample.instruction is required text; an empty one is kept (with the reason in
            # meta) so the sample is still run and recorded as failed, not silently dropped.
            sample = Sample(id=safe_id(r["id"]), input_path=Path(r["input"]), instruction="",
                            target_path=Path(r["target"]), category="portrait",
                            mask_path=Path(r["mask"]) if r["mask"] else None,
                            meta={k: v for k, v in r.items() if k not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS})
            builder.samples.append(sample)
            continue
        builder.add(i, r)
    builder.problems.raise_or_record({})
    samples = builder.samples
    n_side = sum(1 for s in samples if s.meta.get("instruction_source") == "sidecar")
    meta = {
        "split": split, "expert": expert, "source_folder": str(src_dir), "target_folder": str(tgt_dir),
        "augmented_sources": augmented, "instructions_sidecar": str(sidecar_path) if sidecar_path else None,
        "instruction_sources": {"sidecar": n_side, "generated_from_measured_change": n_cached + n_measured,
                                "unavailable": n_failed},
        "generated_now": n_measured, "generated_from_cache": n_cached,
        "masks": sum(1 for s in samples if s.mask_path is not None),
    }
    if "skipped_rows" in meta_out:
        meta["skipped_rows"] = meta_out["skipped_rows"]
    meta["notes"] = ["PPR10K (Liang et al., CVPR 2021) is for non-commercial research use only",
                     f"targets: expert {expert}; split: {split}"] + meta_out.get("notes", [])
    if n_failed:
        meta["notes"].append(f"{n_failed} pair(s) could not be decoded to write an instruction; they will fail at run time")
    return Dataset(name="ppr10k", spec=spec, root=root, samples=samples, content_hash=content_hash(samples),
                   card=_CARDS["ppr10k"], meta=meta)


def _ppr10k_sort_key(stem: str) -> tuple:
    m = PPR10K_NAME.match(stem)
    if m:
        return (0, int(m["group"]), int(m["idx"]), int(m["aug"] or -1), stem)
    return (1, 0, 0, 0, stem)


# --------------------------------------------------------------------------------------
# Hugging Face datasets folder

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", ".png"), (b"\xff\xd8\xff", ".jpg"), (b"II*\x00", ".tif"), (b"MM\x00*", ".tif"),
    (b"BM", ".bmp"), (b"GIF8", ".gif"),
)


def _suffix_for(data: bytes, hint: str | None) -> str:
    """File suffix from the encoded bytes' magic number (no decoding), else the original name's."""
    for magic, suffix in _MAGIC:
        if data.startswith(magic):
            return suffix
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    if hint and Path(hint).suffix:
        return Path(hint).suffix.lower()
    return ".img"


def _write_bytes_once(path: Path, data: bytes) -> None:
    if path.is_file() and path.stat().st_size == len(data):
        return  # content-addressed name: same name and size means already materialised
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _load_hf(spec: str, path: Path, *, split: str | None, skip_bad_rows: bool) -> Dataset:
    path = path.absolute()
    if not path.is_dir():
        raise DatasetError(f"{path}: no such datasets folder")
    try:
        import datasets as hfds
    except ImportError as err:
        raise DatasetError("hf: datasets need the 'datasets' package (pip install datasets)") from err
    try:
        obj = hfds.load_from_disk(str(path))
    except Exception as err:  # FileNotFoundError, or datasets' own errors for a non-dataset folder
        raise DatasetError(f"{path}: not a datasets folder saved with save_to_disk ({one_line(err)})") from err
    if isinstance(obj, hfds.DatasetDict):
        names = list(obj.keys())
        if split is None:
            split = next((s for s in HF_DEFAULT_SPLITS if s in obj), names[0] if len(names) == 1 else None)
            if split is None:
                raise DatasetError(f"{path}: several splits ({', '.join(names)}); choose one with --split")
        if split not in obj:
            raise DatasetError(f"{path}: no split {split!r} (has {', '.join(names)})")
        ds = obj[split]
    else:
        if split is not None and split != str(obj.split or ""):
            raise DatasetError(f"{path}: a single dataset (split {obj.split!s}), not a DatasetDict; drop --split")
        ds = obj
    source = f"{path}" + (f" [split {split}]" if split else "")
    absent = [c for c in REQUIRED_COLUMNS if c not in ds.column_names]
    if absent:
        raise DatasetError(f"{source}: missing column(s) {', '.join(repr(c) for c in absent)} "
                           f"(has {', '.join(ds.column_names)})")
    image_cols = [c for c in PATH_COLUMNS if c in ds.features and isinstance(ds.features[c], hfds.Image)]
    for c in image_cols:
        # decode=False yields {"bytes": ..., "path": ...}: the original encoded file, never re-encoded.
        ds = ds.cast_column(c, hfds.Image(decode=False))
    fingerprint = getattr(ds, "_fingerprint", None) or hashlib.sha256(str(path).encode()).hexdigest()[:16]
    out_dir = None
    if image_cols:
        from ..core.atomic import cache_dir

        out_dir = cache_dir("datasets", f"hf-{fingerprint}")
    problems = _Problems(source, skip_bad_rows)
    builder = _RowBuilder(problems, path, path_note="relative to the datasets folder")
    n_materialised = 0
    for row, rec in enumerate(ds, start=1):
        resolved: dict[str, Path] = {}
        bad = False
        for c in image_cols:
            cell = rec.get(c)
            if cell is None:
                if c != "mask" and c != "target":
                    problems.add(row, f"empty {c!r} image")
                    bad = True
                    break
                resolved[c] = None
                continue
            data, orig = cell.get("bytes"), cell.get("path")
            if data:
                # Content-addressed names: two rows never overwrite each other's file, and
                # an identical image is stored once.
                dest = out_dir / f"{hashlib.sha256(data).hexdigest()[:24]}{_suffix_for(data, orig)}"
                _write_bytes_once(dest, data)
                resolved[c] = dest
                n_materialised += 1
            elif orig:
                p = builder.resolve(orig)
                if not p.is_file():
                    problems.add(row, f"{c} image path {orig!r} not found ({p}) and the row holds no bytes")
                    bad = True
                    break
                resolved[c] = p
            else:
                problems.add(row, f"{c!r} image holds neither bytes nor a path")
                bad = True
                break
        if bad:
            continue
        builder.add(row, dict(rec), resolved)
    meta: dict[str, Any] = {"split": split, "fingerprint": fingerprint, "n_rows": ds.num_rows,
                            "image_columns": image_cols,
                            "materialised_to": str(out_dir) if out_dir else None,
                            "materialised_files": n_materialised}
    problems.raise_or_record(meta)
    if not builder.samples:
        raise DatasetError(f"{source}: no samples")
    for s in builder.samples:  # image cells are materialised files now; keep meta JSON-friendly
        for c in image_cols:
            s.meta.pop(c, None)
    return Dataset(name="hf", spec=spec, root=path, samples=builder.samples,
                   content_hash=content_hash(builder.samples), card=_CARDS["hf"], meta=meta)
