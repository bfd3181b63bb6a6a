"""``hf:PATH``: a local Hugging Face ``datasets`` folder (``save_to_disk``) with the manifest's columns.

Image columns (``datasets.Image``) are read undecoded (``decode=False``) and their original
bytes materialised once, content-addressed, in the user cache; path columns are resolved
relative to the datasets folder.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ..core.atomic import cache_dir, write_bytes_atomic
from ..core.errors import DatasetError, one_line
from .base import CARDS, PATH_COLUMNS, REQUIRED_COLUMNS, Dataset, RowBuilder, RowProblems, cell_text
from .hashing import content_hash

HF_DEFAULT_SPLITS = ("test", "validation", "val", "train")

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
    write_bytes_atomic(path, data)


def load_hf(spec: str, path: Path, *, split: str | None = None, bad_rows: str = "record", **_: Any) -> Dataset:
    """``hf:PATH``: a ``datasets`` folder saved with ``save_to_disk``, the manifest's columns."""
    path = path.absolute()
    if not path.is_dir():
        raise DatasetError(f"{path}: no such datasets folder")
    try:  # lazy: `datasets` pulls pyarrow and takes seconds; only hf: specs need it
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
        out_dir = cache_dir("datasets", f"hf-{fingerprint}")
    problems = RowProblems(source, bad_rows)
    builder = RowBuilder(problems, path, path_note="relative to the datasets folder")
    n_materialised = 0
    for row, rec in enumerate(ds, start=1):
        resolved: dict[str, Path] = {}
        bad = False
        for c in image_cols:
            cell = rec.get(c)
            if cell is None:
                if c != "mask" and c != "target":
                    problems.add(row, f"empty {c!r} image", cell_text(rec.get("id")))
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
                    problems.add(row, f"{c} image path {orig!r} not found ({p}) and the row holds no bytes",
                                 cell_text(rec.get("id")))
                    bad = True
                    break
                resolved[c] = p
            else:
                problems.add(row, f"{c!r} image holds neither bytes nor a path", cell_text(rec.get("id")))
                bad = True
                break
        if bad:
            continue
        builder.add(row, dict(rec), resolved)
    meta: dict[str, Any] = {"split": split, "fingerprint": fingerprint, "n_rows": ds.num_rows,
                            "image_columns": image_cols,
                            "materialised_to": str(out_dir) if out_dir else None,
                            "materialised_files": n_materialised}
    for s in builder.samples:  # image cells are materialised files now; keep meta JSON-friendly
        for c in image_cols:
            s.meta.pop(c, None)
    samples = builder.finish(meta)
    if not samples:
        raise DatasetError(f"{source}: no samples")
    return Dataset(name="hf", spec=spec, root=path, samples=samples,
                   content_hash=content_hash(samples), card=CARDS["hf"], meta=meta)
