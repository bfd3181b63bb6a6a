"""Dataset specs -> loaders: a registry ``{scheme: loader}``, like the model registry.

Specs (DESIGN.md)::

    embedded        the suite's own set, built offline into the user cache (default)
    iretouch:PATH   a manifest (.jsonl/.ndjson/.csv) or a folder holding exactly one
    ppr10k:PATH     the official PPR10K folder layout ({train,val}/source, target_a|b|c, masks)
    hf:PATH         a Hugging Face ``datasets`` folder saved with ``save_to_disk``

Another package adds a scheme through the entry-point group ``iretouch_bench.datasets``
(``myscheme = "mypkg.loader:load"``); the loader is called as
``load(spec, path, *, expert, split, bad_rows)`` (``path`` is None for a scheme without one)
and returns a :class:`~.base.Dataset`. Loaders never decode images: they check that every
referenced file exists and hash its bytes (the content hash); an unreadable image is found
at run time and recorded as a failed sample.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from ..core.errors import DatasetError
from .base import BAD_ROWS, CARDS, Dataset
from .hashing import HASH_VERSION

ENTRY_POINT_GROUP = "iretouch_bench.datasets"


@dataclass(frozen=True)
class DatasetKind:
    """One scheme of the registry."""

    name: str
    spec: str
    description: str
    #: "module:function", imported on first use (so ``--help`` never imports a loader)
    loader: str
    takes_path: bool = True

    def load(self) -> Callable[..., Dataset]:
        module, _, attr = self.loader.partition(":")
        return getattr(importlib.import_module(module), attr)


_BUILTIN: dict[str, DatasetKind] = {k.name: k for k in (
    DatasetKind("embedded", "embedded",
                "default; built offline from photos that installed packages ship (photo-finishing pipeline)",
                "iretouch_bench.datasets.embedded:load_embedded", takes_path=False),
    DatasetKind("iretouch", "iretouch:PATH",
                "your manifest (.jsonl/.csv: id,input,target,instruction[,category,mask]); iRetouch has no public release",
                "iretouch_bench.datasets.manifest:load_iretouch"),
    DatasetKind("ppr10k", "ppr10k:PATH",
                "PPR10K folder layout (Liang et al., CVPR 2021), non-commercial research use only; --expert a|b|c",
                "iretouch_bench.datasets.ppr10k:load_ppr10k"),
    DatasetKind("hf", "hf:PATH",
                "a Hugging Face datasets folder saved with save_to_disk, same columns as the manifest",
                "iretouch_bench.datasets.hf:load_hf"),
)}


def _plugins() -> dict[str, DatasetKind]:
    out = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in _BUILTIN:
            out[ep.name] = DatasetKind(ep.name, f"{ep.name}:PATH", f"plug-in ({ep.value})", ep.value)
    return out


def kinds() -> dict[str, DatasetKind]:
    return {**_BUILTIN, **_plugins()}


def parse_spec(spec: str) -> tuple[str, Path | None]:
    """``"iretouch:PATH"`` -> ``("iretouch", Path)``; ``"embedded"`` -> ``("embedded", None)``."""
    known = kinds()
    usage = ", ".join(k.spec for k in known.values())
    if not isinstance(spec, str) or not spec.strip():
        raise DatasetError(f"empty dataset spec; use {usage}")
    spec = spec.strip()
    if spec in known and not known[spec].takes_path:
        return spec, None
    scheme, sep, rest = spec.partition(":")
    if sep and scheme in known and known[scheme].takes_path:
        if not rest.strip():
            raise DatasetError(f"dataset spec {spec!r} has no path after '{scheme}:'")
        return scheme, Path(os.path.expanduser(rest.strip()))
    raise DatasetError(f"unknown dataset spec {spec!r}; use {usage}")


def load_dataset(spec: str = "embedded", *, expert: str = "a", split: str | None = None,
                 bad_rows: str = "record") -> Dataset:
    """Load ``spec`` (see module docstring).

    Args:
        spec: ``embedded`` | ``iretouch:PATH`` | ``ppr10k:PATH`` | ``hf:PATH`` | a plug-in's.
        expert: PPR10K retoucher whose edits are the targets: ``a``, ``b`` or ``c``.
        split: PPR10K ``train``/``val`` (default ``val`` if present); HF split of a
            DatasetDict (default test, validation, val, train, or the only one); for a
            manifest with a ``split`` column, keeps the rows of that split.
        bad_rows: ``record`` (bad rows become failed samples), ``skip`` or ``fail``
            (see :mod:`.base`).

    Raises:
        DatasetError: one line naming the file (and row) and the problem.
    """
    if bad_rows not in BAD_ROWS:
        raise DatasetError(f"bad_rows must be one of {', '.join(BAD_ROWS)}, not {bad_rows!r}")
    scheme, path = parse_spec(spec)
    loader = kinds()[scheme].load()
    args = (spec,) if path is None else (spec, path)
    return loader(*args, expert=expert, split=split, bad_rows=bad_rows)


def dataset_info(spec: str = "embedded", *, expert: str = "a", split: str | None = None,
                 bad_rows: str = "record") -> dict[str, Any]:
    """What ``iretouch-bench data info SPEC`` prints: name, size, categories, hash, root, card, notes."""
    ds = load_dataset(spec, expert=expert, split=split, bad_rows=bad_rows)
    return {
        "name": ds.name,
        "spec": ds.spec,
        "n_samples": len(ds.samples),
        "n_bad_rows": sum(1 for s in ds.samples if s.problem is not None),
        "categories": ds.categories(),
        "content_hash": ds.content_hash,
        "hash_version": HASH_VERSION,
        "root": str(ds.root),
        "card": ds.card,
        "notes": list(ds.meta.get("notes", [])),
        "meta": {k: v for k, v in ds.meta.items() if k != "notes"},
    }


def list_datasets() -> list[dict[str, str]]:
    """The dataset kinds the suite reads, for ``iretouch-bench data list``."""
    return [{"name": k.name, "spec": k.spec, "card": CARDS.get(k.name, ""), "description": k.description}
            for k in kinds().values()]
