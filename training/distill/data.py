"""Sec. 3.1 training triplets: build them from a folder of photos, and read them for training.

**Building** (``iretouch-bench train data --photos DIR --out DIR``): every photo in ``--photos``
(JPEG/PNG/TIFF, read with the suite's reader) is a high-quality target ``x*``; the suite's
photo-finishing pipeline (:func:`iretouch_bench.synth.pairs.make_pair`) degrades it with random
exposure / gamma / white balance / contrast / tone / saturation / shadows-highlights edits,
globally or inside a soft region mask (sky band, corners, subject or background ellipse,
luminance range, or a detected face), to make the input ``x``; the suite's rule-based writer
words the instruction ``c_T``. ``style`` pairs go the other way (plain photo -> a look). Every
pair is verified (the measured change follows the instruction). The paper's MUSIQ / LAION
aesthetic filtering of the targets and its VLM-written instructions are not reproduced: curate
the photos yourself; the instructions come from the suite's writer.

Output folder (an iRetouch manifest folder, readable as ``iretouch:DIR``)::

    manifest.jsonl   one row per triplet: id, input, target, instruction, category, [mask],
                     attributes, intents, params, photo, photo_sha256, sha256 {input, target, mask}
    inputs/ targets/ masks/   8-bit PNGs (masks: grey replicated on 3 channels)
    dataset.json     written last: counts, seed, photos, builder fingerprint, content_hash

Resumable like a run: images are written atomically first, then the row is appended (one
``write`` of one line, flushed and fsynced), so a killed build loses at most the triplet in
flight and a rerun skips the ids already in the manifest. Deterministic: a triplet's random
stream is seeded by ``(seed, sha256 of the photo file, k)``, so adding photos never changes
the triplets of the others. ``content_hash`` follows the suite's dataset hash definition v1
(:mod:`iretouch_bench.datasets.hashing`; ``iretouch-bench data info iretouch:DIR`` prints the
same value, which the tests check) from the digests recorded in the rows.

**Reading** (:class:`TripletDataset`): a JSONL manifest in the suite's format (paths relative
to it; training cannot import the suite's dataset loaders, which are a harness layer), each
item resized for the low-resolution branch (and, in stage 2, a full-resolution view).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import torch

from iretouch_bench.core.atomic import write_json_atomic
from iretouch_bench.core.errors import DatasetError
from iretouch_bench.core.fingerprint import code_fingerprint
from iretouch_bench.core.hashing import sha256_bytes, sha256_file
from iretouch_bench.core.images import read_image, write_image
from iretouch_bench.core.resize import shrink_to
from iretouch_bench.synth.instructions import InstructionError
from iretouch_bench.synth.pairs import make_pair
from iretouch_bench.synth.photos import TRAIN_PHOTOS, find_face, load_photo

from .prompts import attributes_of

__all__ = ["PHOTO_SUFFIXES", "build_triplets", "read_manifest", "TripletDataset", "StepBatches", "collate",
           "content_hash_v1"]

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp")
_CATEGORY_CYCLE = ("global", "style", "local", "global", "local", "style")


def content_hash_v1(rows: list[dict[str, Any]]) -> str:
    """The suite's dataset content hash (definition v1 of :mod:`iretouch_bench.datasets.hashing`,
    restated because training may not import the harness's dataset layer) from recorded digests."""
    lines = sorted(json.dumps([r["id"], r["instruction"], r.get("category"), r["sha256"]["input"],
                               r["sha256"].get("target"), r["sha256"].get("mask")],
                              ensure_ascii=True, separators=(",", ":")) for r in rows)
    h = hashlib.sha256(b"iretouch-bench/dataset/v1\n")
    h.update("\n".join(lines).encode("ascii"))
    return h.hexdigest()


def _photo_sources(photos: Optional[Path]) -> list[tuple[str, Any]]:
    """``[(stem, loader)]``: files of ``photos`` or, with None, the packages' training photos."""
    if photos is None:
        def load_package(name: str):
            photo = load_photo(name)
            return photo, sha256_bytes(np.ascontiguousarray(photo).tobytes())  # of the decoded pixels

        return [(name, (lambda n=name: load_package(n))) for name in TRAIN_PHOTOS]
    if not photos.is_dir():
        raise DatasetError(f"{photos}: --photos must be a folder of photos")
    files = sorted(p for p in photos.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    if not files:
        raise DatasetError(f"{photos}: no photos ({', '.join(PHOTO_SUFFIXES)})")
    stems: dict[str, Path] = {}
    for p in files:
        stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in p.stem).lstrip(".") or "photo"
        if stem.lower() in {s.lower() for s in stems}:
            raise DatasetError(f"{p}: same name as {stems[next(s for s in stems if s.lower() == stem.lower())]} "
                               "once made safe for ids; rename one")
        stems[stem] = p
    return [(stem, (lambda p=p: (read_image(p), sha256_file(p)))) for stem, p in stems.items()]


def _done_rows(manifest: Path) -> list[dict[str, Any]]:
    """Rows already written (a torn last line from a killed build is dropped and rewritten)."""
    if not manifest.is_file():
        return []
    rows, keep = [], 0
    data = manifest.read_bytes()
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        try:
            rows.append(json.loads(line))
        except ValueError:
            break
        keep += len(line)
    if keep != len(data):
        with open(manifest, "r+b") as f:
            f.truncate(keep)
    return rows


def build_triplets(out: str | Path, photos: str | Path | None = None, *, per_photo: int = 4, seed: int = 0,
                   max_side: int = 1024, progress: bool = True) -> dict[str, Any]:
    """Build (or resume) the triplet folder ``out``; returns the ``dataset.json`` content.

    ``photos=None`` uses the training photos that installed packages ship (``--tiny``; their
    ``photo_sha256`` is of the decoded float32 pixels, as they are not files of their own).
    ``per_photo`` triplets per photo cycle through global / style / local categories, plus
    ``portrait`` ones where the photo has a detectable face (scikit-image's LBP cascade).
    """
    from tqdm import tqdm  # imported with the builder only

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.jsonl"
    info_path = out / "dataset.json"
    sources = _photo_sources(Path(photos) if photos is not None else None)
    done = _done_rows(manifest)
    done_ids = {r["id"] for r in done}
    seen = [r["instruction"] for r in done]
    fingerprint = code_fingerprint(__name__)
    old = json.loads(info_path.read_text()) if info_path.is_file() else None
    if old is not None and (old.get("seed") != seed or old.get("max_side") != max_side):
        raise DatasetError(f"{info_path}: this folder was built with seed {old.get('seed')} and max side "
                           f"{old.get('max_side')}; use the same values or a new --out")
    bar = tqdm(total=len(sources) * per_photo, initial=len(done_ids), desc="triplets", disable=not progress)
    with open(manifest, "ab") as f:
        for stem, load in sources:
            ids = [f"{stem}-{k:03d}" for k in range(per_photo)]
            if all(i in done_ids for i in ids):
                continue
            photo, photo_sha = load()
            if max(photo.shape[:2]) > max_side:
                photo = shrink_to(photo, max_side, "lanczos")
            face = find_face(photo)
            photo_key = int(hashlib.sha256(photo_sha.encode()).hexdigest()[:12], 16)
            for k, pid in enumerate(ids):
                if pid in done_ids:
                    continue
                rng = np.random.default_rng([seed, photo_key, k])
                cat = "portrait" if face is not None and k % 4 == 3 else _CATEGORY_CYCLE[k % len(_CATEGORY_CYCLE)]
                try:
                    pair = make_pair(photo, rng, cat, face=face, seen=seen)
                except (InstructionError, ValueError) as err:
                    bar.write(f"{stem}: triplet {k} skipped ({err})")
                    bar.update(1)
                    continue
                row: dict[str, Any] = {"id": pid, "input": f"inputs/{pid}.png", "target": f"targets/{pid}.png",
                                       "instruction": pair["instruction"], "category": pair["category"]}
                write_image(out / row["input"], pair["input"])
                write_image(out / row["target"], pair["target"])
                digests = {"input": sha256_file(out / row["input"]), "target": sha256_file(out / row["target"]),
                           "mask": None}
                if pair["mask"] is not None:
                    row["mask"] = f"masks/{pid}.png"
                    write_image(out / row["mask"], np.repeat(pair["mask"][..., None], 3, axis=2))
                    digests["mask"] = sha256_file(out / row["mask"])
                row.update(attributes=pair["attributes"], intents=pair["intents"], params=pair["params"],
                           photo=stem, photo_sha256=photo_sha, sha256=digests)
                f.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
                seen.append(pair["instruction"])
                done.append(row)
                done_ids.add(pid)
                bar.update(1)
    bar.close()
    counts: dict[str, int] = {}
    for r in done:
        counts[r["category"]] = counts.get(r["category"], 0) + 1
    info = {"name": out.name, "kind": "iretouch-bench training triplets (paper Sec. 3.1)", "count": len(done),
            "categories": dict(sorted(counts.items())), "photos": sorted({r["photo"] for r in done}),
            "per_photo": per_photo, "seed": seed, "max_side": max_side, "builder": fingerprint,
            "content_hash": content_hash_v1(done), "hash_definition": "iretouch-bench/dataset/v1"}
    write_json_atomic(info_path, info)  # last: marks a finished build
    return info


# --------------------------------------------------------------------------------------- reading
def read_manifest(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a JSONL triplet manifest (or the folder holding ``manifest.jsonl``), paths made
    absolute. Every row needs ``id``, ``input``, ``target`` and ``instruction``."""
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.jsonl"
    if not path.is_file():
        raise DatasetError(f"{path}: no triplet manifest (build one with `iretouch-bench train data`)")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except ValueError as err:
            raise DatasetError(f"{path}: row {n}: malformed JSON ({err})") from None
        missing = [k for k in ("id", "input", "target", "instruction") if not r.get(k)]
        if missing:
            raise DatasetError(f"{path}: row {n}: missing {', '.join(missing)} (training needs a target)")
        for k in ("input", "target", "mask"):
            if r.get(k):
                r[k] = str((path.parent / r[k]).resolve())
                if not Path(r[k]).is_file():
                    raise DatasetError(f"{path}: row {n}: {k} file {r[k]} not found")
        rows.append(r)
    if not rows:
        raise DatasetError(f"{path}: the manifest holds no rows")
    return rows


def _to_tensor(img: np.ndarray, size: int) -> torch.Tensor:
    """float32 ``[H, W, 3]`` -> ``[3, size, size]`` by area resize (what inference's low-res view does)."""
    t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None]
    return torch.nn.functional.adaptive_avg_pool2d(t, (size, size))[0]


class TripletDataset(torch.utils.data.Dataset):
    """Item ``i``: ``{"input", "target"}`` ``[3, L, L]`` (low-res view), with ``full=F`` also
    ``{"input_full", "target_full"}`` ``[3, F, F]``, plus ``instruction``, ``attrs`` (long
    ``[K]``, -1 padded) and ``attr_weights`` ``[K]`` from the attribute matcher (Eq. 6)."""

    MAX_ATTRS = 6

    def __init__(self, rows: list[dict[str, Any]], lowres: int, full: Optional[int] = None) -> None:
        self.rows, self.lowres, self.full = rows, int(lowres), full

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        r = self.rows[i]
        inp, tgt = read_image(r["input"]), read_image(r["target"])
        if inp.shape != tgt.shape:
            raise DatasetError(f"{r['input']}: input {inp.shape} and target {tgt.shape} differ in size")
        item: dict[str, Any] = {"input": _to_tensor(inp, self.lowres), "target": _to_tensor(tgt, self.lowres),
                                "instruction": r["instruction"]}
        if self.full:
            item["input_full"], item["target_full"] = _to_tensor(inp, self.full), _to_tensor(tgt, self.full)
        attrs = attributes_of(r["instruction"])[: self.MAX_ATTRS]
        a = torch.full((self.MAX_ATTRS,), -1, dtype=torch.long)
        w = torch.zeros(self.MAX_ATTRS)
        for j, (idx, conf) in enumerate(attrs):
            a[j], w[j] = idx, conf
        item["attrs"], item["attr_weights"] = a, w
        return item


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in items[0]:
        vals = [it[k] for it in items]
        out[k] = torch.stack(vals) if isinstance(vals[0], torch.Tensor) else vals
    return out


class StepBatches(torch.utils.data.Sampler):
    """Batch sampler whose batch at (step, micro-batch) depends only on ``(seed, step, micro, rank)``:
    a resumed run sees exactly the batches it would have seen, and the ranks see different ones."""

    def __init__(self, n: int, batch: int, *, seed: int, start_step: int, steps: int, accum: int, rank: int) -> None:
        self.n, self.batch, self.seed, self.start, self.steps = n, batch, seed, start_step, steps
        self.accum, self.rank = accum, rank

    def __len__(self) -> int:
        return max(0, self.steps - self.start) * self.accum

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.steps):
            for micro in range(self.accum):
                rng = np.random.default_rng([self.seed, step, micro, self.rank])
                yield rng.choice(self.n, size=self.batch, replace=self.batch > self.n).tolist()
