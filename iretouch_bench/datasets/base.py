"""What every loader shares: the :class:`Dataset`, the row checks, and the bad-row policy.

Bad rows (a row whose JSON is malformed, a required field missing, an id duplicated, a file
that does not exist, a PPR10K source without a target, ...) follow one policy for every
loader, :data:`BAD_ROWS`:

* ``record`` (the default, what ``run`` uses): each bad row becomes a *failed sample*
  (:attr:`Sample.problem` holds the one-line reason, naming the file and the 1-based row),
  so the run records it as failed with that reason, generates and scores the others, and
  exits with code 3; the table's notes list it. The content hash covers it too.
* ``skip``: the good rows only; the bad ones are listed in ``Dataset.meta["skipped_rows"]``.
* ``fail``: one-line :class:`~iretouch_bench.core.errors.DatasetError` naming the file, the
  first bad row and the others.

Only a source that cannot be parsed at all (unreadable, not UTF-8, a CSV whose header
lacks a required column or that breaks mid-file, a folder that is not the layout asked
for, no rows) stops a load, whatever the policy.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..core.errors import DatasetError, one_line
from .sample import CATEGORIES, Sample

#: Bad-row policies (module docstring).
BAD_ROWS = ("record", "skip", "fail")
REQUIRED_COLUMNS = ("id", "input", "target", "instruction")
OPTIONAL_COLUMNS = ("category", "mask")
PATH_COLUMNS = ("input", "target", "mask")

#: Data cards, repository-relative.
CARDS = {
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
        content_hash: sha256 hex over the sorted rows (see :mod:`.hashing`).
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




class RowProblems:
    """The bad rows of one source file, handled by a :data:`BAD_ROWS` policy."""

    def __init__(self, source: Path | str, policy: str = "record") -> None:
        if policy not in BAD_ROWS:
            raise DatasetError(f"bad-row policy must be one of {', '.join(BAD_ROWS)}, not {policy!r}")
        self.source = source
        self.policy = policy
        self.items: list[tuple[int | None, str, str | None]] = []  # (row, reason, raw id)

    def add(self, row: int | None, message: str, raw_id: str | None = None) -> None:
        self.items.append((row, one_line(message), raw_id))

    def line(self, row: int | None, message: str) -> str:
        """``<source>: row <n>: <message>``, the one line a user sees for a bad row."""
        return (f"{self.source}: row {row}: " if row is not None else f"{self.source}: ") + message

    def finish(self, meta: dict[str, Any], taken: set[str] | None = None) -> list[Sample]:
        """Apply the policy: returns the failed samples (``record``), records (``skip``) or raises (``fail``).

        Args:
            meta: the dataset's meta; gets ``bad_rows`` (``record``) or ``skipped_rows`` (``skip``).
            taken: casefolded ids already used by good samples; a failed sample never reuses one.
        """
        if not self.items:
            return []
        if self.policy == "fail":
            row, msg, _ = self.items[0]
            more = ""
            if len(self.items) > 1:
                rest = [str(r) for r, _, _ in self.items[1:] if r is not None]
                shown = ", ".join(rest[:10]) + (", ..." if len(rest) > 10 else "")
                more = f" (and {len(self.items) - 1} more bad row(s)" + (f": {shown}" if shown else "") + ")"
            raise DatasetError(self.line(row, msg) + more)
        listed = [{"row": r, "reason": m} for r, m, _ in self.items]
        if self.policy == "skip":
            meta["skipped_rows"] = listed
            meta.setdefault("notes", []).append(f"{len(self.items)} bad row(s) skipped (bad_rows=skip)")
            return []
        taken = set(taken or ())
        failed: list[Sample] = []
        for (row, msg, raw_id), entry in zip(self.items, listed):
            sid = _free_id(raw_id, row, len(failed), taken)
            taken.add(sid.casefold())
            entry["id"] = sid
            failed.append(Sample(id=sid, input_path=None, instruction="", problem=self.line(row, msg), row=row))
        meta["bad_rows"] = listed
        meta.setdefault("notes", []).append(
            f"{len(failed)} bad row(s) kept as failed samples (their reasons are in the run's records)")
        return failed


def _free_id(raw_id: str | None, row: int | None, k: int, taken: set[str]) -> str:
    """The row's own id when it is usable and free, else ``row-<n>`` (made unique)."""
    candidates = []
    if raw_id:
        try:
            candidates.append(safe_id(raw_id))
        except ValueError:
            pass
    base = f"row-{row}" if row is not None else f"bad-row-{k + 1}"
    candidates.append(base)
    for c in candidates:
        if c.casefold() not in taken:
            return c
    n = 2
    while f"{base}-{n}".casefold() in taken:
        n += 1
    return f"{base}-{n}"


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


def cell_text(value: Any) -> str | None:
    """A cell as stripped text; None/NaN/empty -> None."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN from pandas-made CSVs
        return None
    text = str(value).strip()
    return text or None


class RowBuilder:
    """Turns raw rows into Samples, checking ids, required fields and file existence."""

    def __init__(self, problems: RowProblems, base: Path, path_note: str = "relative to the manifest") -> None:
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
        raw_id = cell_text(rec.get("id"))
        missing = [c for c in REQUIRED_COLUMNS if c != "target" and cell_text(rec.get(c)) is None and c not in resolved]
        if missing:
            self.problems.add(row, "empty or missing " + ", ".join(repr(c) for c in missing), raw_id)
            return None
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
            value = cell_text(rec.get(col))
            if value is None:
                paths[col] = None
                continue
            p = self.resolve(value)
            if not p.is_file():
                what = "is a folder, not a file" if p.is_dir() else "not found"
                self.problems.add(row, f"{col} file {value!r} {what} ({p}; paths are {self.path_note})", raw_id)
                return None
            paths[col] = p
        category = cell_text(rec.get("category"))
        meta = {k: v for k, v in rec.items() if k not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS}
        if sid != raw_id:
            meta["original_id"] = raw_id
        sample = Sample(
            id=sid,
            input_path=paths["input"],
            instruction=cell_text(rec["instruction"]),
            target_path=paths["target"],
            category=category.lower() if category and category.lower() in CATEGORIES else category,
            mask_path=paths["mask"],
            meta=meta,
        )
        self._ids[key] = row
        self.samples.append(sample)
        return sample

    def finish(self, meta: dict[str, Any]) -> list[Sample]:
        """The good samples followed by the bad rows as failed samples (policy ``record``);
        see :meth:`RowProblems.finish`."""
        return self.samples + self.problems.finish(meta, taken={s.id.casefold() for s in self.samples})


