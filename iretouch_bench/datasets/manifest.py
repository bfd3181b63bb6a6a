"""The iRetouch manifest (the suite's format; iRetouch has no public release).

JSONL or CSV, one row per pair: ``id``, ``input``, ``target``, ``instruction``, optional
``category``, optional ``mask`` (paths relative to the manifest), optional ``split``.
Row numbers are 1-based as an editor numbers lines; in a CSV the header is row 1.

Ids must be unique and safe as file names (``[A-Za-z0-9._-]``, not starting with ``.``):
other characters are replaced by ``_`` (the original is kept in ``Sample.meta["original_id"]``);
two ids that become equal, or equal up to letter case (they would collide on macOS and
Windows file systems), are a bad row naming both rows.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any, Iterator

from ..core.errors import DatasetError
from .base import CARDS, REQUIRED_COLUMNS, Dataset, RowBuilder, RowProblems, cell_text
from .hashing import content_hash

MANIFEST_SUFFIXES = (".jsonl", ".ndjson", ".csv")
_ID_IN_LINE = re.compile(r'"id"\s*:\s*"([^"]*)"')


def _raw_id(line: str) -> str | None:
    """The id of a row whose JSON does not parse, when it can still be read off the text."""
    m = _ID_IN_LINE.search(line)
    return m.group(1) if m else None


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


def _read_jsonl(path: Path, problems: RowProblems) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue  # blank lines (a trailing newline) are not rows
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                problems.add(lineno, f"malformed JSON ({err.msg} at column {err.colno})", _raw_id(line))
                continue
            if not isinstance(rec, dict):
                problems.add(lineno, f"expected a JSON object, got {type(rec).__name__}")
                continue
            absent = [c for c in REQUIRED_COLUMNS if c not in rec]
            if absent:
                problems.add(lineno, "missing required field(s) " + ", ".join(repr(c) for c in absent),
                             cell_text(rec.get("id")))
                continue
            yield lineno, rec


def _read_csv(path: Path, problems: RowProblems) -> Iterator[tuple[int, dict[str, Any]]]:
    # utf-8-sig: spreadsheets often write a byte-order mark before the header.
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise DatasetError(f"{path}: empty CSV (no header row)") from None
        except csv.Error as err:
            raise DatasetError(f"{path}: row 1: malformed CSV header ({err})") from err
        header = [h.strip() for h in header]
        absent = [c for c in REQUIRED_COLUMNS if c not in header]
        if absent:
            raise DatasetError(f"{path}: row 1: header lacks required column(s) "
                               + ", ".join(repr(c) for c in absent) + f" (has {', '.join(header)})")
        while True:
            start = reader.line_num + 1  # a quoted cell may span lines: report where the row starts
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as err:  # the reader cannot go on: the file cannot be parsed from here
                raise DatasetError(f"{path}: row {start}: malformed CSV ({err}); the rows after it cannot be read") from err
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                problems.add(start, f"has {len(cells)} cells, the header has {len(header)}",
                             cell_text(cells[header.index("id")]) if len(cells) > header.index("id") else None)
                continue
            yield start, dict(zip(header, cells))


def load_manifest(
    manifest: Path, *, name: str, spec: str, card: str | None, split: str | None = None, bad_rows: str = "record"
) -> Dataset:
    """Load an iRetouch-format manifest file (JSONL or CSV); bad rows follow ``bad_rows`` (:mod:`.base`)."""
    manifest = manifest.absolute()
    problems = RowProblems(manifest, bad_rows)
    builder = RowBuilder(problems, manifest.parent)
    reader = _read_csv if manifest.suffix.lower() == ".csv" else _read_jsonl
    n_rows = 0
    has_split = False
    try:
        for row, rec in reader(manifest, problems):
            n_rows += 1
            if "split" in rec:
                has_split = True
                if split is not None and cell_text(rec.get("split")) != split:
                    continue
            builder.add(row, rec)
    except UnicodeDecodeError as err:
        raise DatasetError(f"{manifest}: not UTF-8 text ({err.reason} at byte {err.start})") from err
    except OSError as err:
        raise DatasetError(f"{manifest}: cannot read ({err.strerror or err})") from err
    meta: dict[str, Any] = {"manifest": str(manifest), "format": manifest.suffix.lower().lstrip(".")}
    if split is not None:
        if not has_split:
            raise DatasetError(f"{manifest}: split {split!r} asked for, but the manifest has no 'split' column")
        meta["split"] = split
    samples = builder.finish(meta)
    if not samples:
        raise DatasetError(f"{manifest}: no samples" + (f" in split {split!r}" if split else ""))
    return Dataset(name=name, spec=spec, root=manifest.parent, samples=samples,
                   content_hash=content_hash(samples), card=card, meta=meta)


def load_iretouch(spec: str, path: Path, *, split: str | None = None, bad_rows: str = "record", **_: Any) -> Dataset:
    """``iretouch:PATH``: a manifest file, or the one manifest in a folder."""
    manifest = find_manifest(path)
    ds = load_manifest(manifest, name="iretouch", spec=spec, card=CARDS["iretouch"], split=split,
                       bad_rows=bad_rows)
    ds.meta.setdefault("notes", []).insert(
        0, "iRetouch has no public release; this is a user manifest in the suite's iRetouch format")
    return ds
