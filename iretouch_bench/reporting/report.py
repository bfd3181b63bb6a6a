"""``iretouch-bench report RUN_DIR... -o report.html``: one self-contained HTML file people look at.

The page holds the summary table (leaderboard layout, intervals), the plots as inline SVG (radar,
instruction score against fidelity with sweep curves, latency against resolution), the sweep
tables, and one row per sample with input, output(s) and target side by side as ``data:``
thumbnails (click for a larger copy), the instruction and every metric, worst first and sortable.
No file beside it is needed and a content-security policy forbids any network request.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..core.atomic import write_text_atomic
from ..core.errors import BenchError
from ..core.images import read_image, to_uint8
from ..metrics.keys import HIGHER_IS_BETTER, SAMPLE_KEYS
from ..runner.records import read_all
from ..runner.result import Result, load_result
from . import plots
from .leaderboard import group_measured, headers, row_from_result, row_label
from .sweep import is_sweep, load_sweep


@dataclass
class RunView:
    label: str
    run_dir: Path
    result: Result
    records: dict[str, dict[str, Any]] = field(default_factory=dict)


def _collect(paths: list[Path]) -> tuple[list[RunView], dict[str, list[tuple[float, Result]]], list[dict]]:
    runs, sweeps, sweep_tables = [], {}, []
    for p in paths:
        if is_sweep(p):
            meta, points = load_sweep(p)
            name = f"{meta.get('model')} sweep {p.name}"
            sweeps[name] = [(pt.strength, pt.result) for pt in points]
            sweep_tables.append({"name": name, "rows": [
                {"strength": pt.strength, "run": str(pt.run_dir), "n": pt.result.counts.n_ok,
                 "cells": {k: _stat_text(pt.result, k) for k in ("ssim", "cw_ssim", "gmsd", "dists", "o", "attr_acc")}}
                for pt in points]})
        elif (p / "result.json").is_file():
            res = load_result(p / "result.json")
            runs.append(RunView(row_label(res), p, res, read_all(p, "samples")))
        else:
            raise BenchError(f"{p}: neither a run folder with result.json nor a sweep folder (sweep.json)")
    labels = [r.label for r in runs]
    for r in runs:  # two runs of one model: tell them apart by folder
        if labels.count(r.label) > 1:
            r.label = f"{r.label} ({r.run_dir.name})"
    return runs, sweeps, sweep_tables


def _stat_text(res: Result, key: str) -> str:
    st = getattr(res.metrics, key, None)
    if st is None or st.mean is None:
        return "—"
    ci = st.ci
    return f"{st.mean:.4f}" + (f" [{ci.lo:.4f}, {ci.hi:.4f}]" if ci and ci.lo is not None else "")


def _data_uri(image: np.ndarray, long_side: int | None = None, height: int | None = None, quality: int = 82) -> str:
    """float RGB [H, W, 3] in [0, 1] -> ``data:image/jpeg;base64,...`` resized to the given size."""
    im = Image.fromarray(to_uint8(image))
    w, h = im.size
    scale = (height / h) if height else (long_side / max(w, h) if long_side else 1.0)
    if scale < 1.0:
        im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _image(path: Path | None, label: str, thumb_px: int, full_px: int) -> dict[str, str] | None:
    if path is None or not Path(path).is_file():
        return None
    try:
        arr = read_image(path)
    except BenchError:
        return None
    return {"label": label, "thumb": _data_uri(arr, height=thumb_px, quality=80),
            "full": _data_uri(arr, long_side=full_px or None, quality=88)}


def _samples_by_id(result: Result, run_dir: Path) -> dict[str, Any]:
    """The dataset's samples (for input and target pictures); empty if the dataset is not here."""
    info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    spec = (info.get("config") or {}).get("dataset") or info["dataset"]["spec"]
    try:
        from ..datasets import load_dataset

        ds = load_dataset(spec, expert=info["config"].get("expert", "a"), split=info["config"].get("split"))
    except Exception:  # noqa: BLE001 - the report still shows outputs and metrics without the dataset
        return {}
    if ds.content_hash != result.dataset.content_hash:
        return {}  # another version of the data: its pictures would not be the ones scored
    return {s.id: s for s in ds.samples}


def _sample_rows(runs: list[RunView], thumb_px: int, full_px: int) -> tuple[list[dict], list[str], str | None]:
    if not runs:
        return [], [], None
    keys = [k for k in SAMPLE_KEYS if any((r.records.get(i) or {}).get("metrics", {}).get(k) is not None
                                          for r in runs for i in r.records)]
    primary = "o" if "o" in keys else ("attr_acc" if "attr_acc" in keys else (keys[0] if keys else None))
    first = runs[0]
    samples = _samples_by_id(first.result, first.run_dir)
    ids = list(dict.fromkeys(i for r in runs for i in r.records))
    rows = []
    for sid in ids:
        base = next(r.records[sid] for r in runs if sid in r.records)
        sample = samples.get(sid)
        images = [_image(sample.input_path if sample else None, "input", thumb_px, full_px)]
        cells, statuses = [], []
        for r in runs:
            rec = r.records.get(sid) or {}
            statuses.append(rec.get("status", "missing"))
            out = rec.get("output")
            images.append(_image(r.run_dir / out if out else None, f"output: {r.label}", thumb_px, full_px)
                          or {"label": f"output: {r.label}", "missing": rec.get("error") or rec.get("status", "missing")})
            for k in keys:
                v = (rec.get("metrics") or {}).get(k)
                why = (rec.get("null_reasons") or {}).get(k) or rec.get("error")
                cells.append({"text": "—" if v is None else f"{v:.4f}", "sort": v, "title": why if v is None else ""})
        images.append(_image(sample.target_path if sample else None, "target", thumb_px, full_px))
        pv = (first.records.get(sid) or {}).get("metrics", {}).get(primary) if primary else None
        rows.append({"id": sid, "category": base.get("category") or "", "instruction": base.get("instruction") or "",
                     "images": [im for im in images if im], "cells": cells, "status": ", ".join(sorted(set(statuses))),
                     "primary": pv})
    # worst first: by the first run's instruction score (higher is better), nulls (failed) on top
    rows.sort(key=lambda r: (r["primary"] is not None, r["primary"] if r["primary"] is not None else 0.0, r["id"]))
    heads = [f"{k} {'↑' if HIGHER_IS_BETTER[k] else '↓'}" + (f" · {r.label}" if len(runs) > 1 else "")
             for r in runs for k in keys]
    return rows, heads, primary


def build_report(paths: list[Path], thumb_px: int = 128, full_px: int = 768) -> str:
    from .html import render_page

    runs, sweeps, sweep_tables = _collect(paths)
    if not runs and not sweeps:
        raise BenchError("nothing to report: give run folders or sweep folders")
    rows = []
    for r in runs:
        row = row_from_result(r.result, str(r.run_dir))
        row.label = r.label
        rows.append(row)
    for name, pts in sweeps.items():
        for s, res in pts:
            row = row_from_result(res, f"{name} strength {s:g}")
            rows.append(row)
    boards = []
    for b in group_measured(rows):
        brows = [{"rank": r.rank, "label": r.label, "notes": "; ".join(r.notes), "source": r.source, "href": None,
                  "cells": [{"text": r.cells[c].text(c), "sort": r.cells[c].mean, "best": (i, c) in b.best}
                            for c in b.columns]} for i, r in enumerate(b.rows)]
        boards.append({"title": b.title, "note": b.note, "kind": b.kind, "heads": headers(b), "rows": brows})
    series = [plots.Series(r.label, r.result) for r in runs]
    figures = []
    if series:
        figures.append({"title": "Radar", "svg": plots.radar_svg(series),
                        "caption": "Each axis has a fixed range (centre → rim, printed under its name); speed on a "
                                   "log scale. Outer is better on every axis."})
    if series or sweeps:
        figures.append({"title": "Quality vs fidelity", "svg": plots.quality_fidelity_svg(series, sweeps),
                        "caption": "Mean instruction score against mean SSIM with 95% bootstrap intervals; a sweep "
                                   "draws the trade-off as the strength s changes (Sec. 4.4)."})
    lat = plots.latency_svg(series + [plots.Series(f"{n} s={s:g}", r) for n, pts in sweeps.items() for s, r in pts
                                      if s == 1.0])
    if lat:
        figures.append({"title": "Latency vs resolution", "svg": lat,
                        "caption": "Median end-to-end seconds per size on the machine that ran (see provenance)."})
    sample_rows, sample_heads, primary = _sample_rows(runs, thumb_px, full_px)
    prov = [{"label": r.label, "dir": str(r.run_dir), "dataset": f"{r.result.dataset.name} "
             f"({r.result.dataset.content_hash[:12]}, {r.result.dataset.n_samples} samples)",
             "judge": r.result.protocols.judge.spec + (f" {','.join(r.result.protocols.judge.snapshots)}"
                                                      if r.result.protocols.judge.snapshots else ""),
             "device": r.result.environment.device + (f" ({r.result.environment.gpu})" if r.result.environment.gpu
                                                      else f" ({r.result.environment.platform or '?'})"),
             "suite": f"{r.result.suite.version} @ {(r.result.suite.git_commit or '?')[:10]}"
                      + (" (dirty)" if r.result.suite.git_dirty else ""),
             "counts": f"{r.result.counts.n_ok} ok, {r.result.counts.n_failed} failed, "
                       f"{r.result.counts.n_refused} refused"} for r in runs]
    return render_page("report.html.j2", title="iretouch-bench report", boards=boards, figures=figures,
                       sweeps=sweep_tables, samples=sample_rows, sample_heads=sample_heads, primary=primary,
                       runs=prov)


def write_report(paths: list[Path], out: Path, thumb_px: int = 128, full_px: int = 768) -> Path:
    write_text_atomic(out, build_report(paths, thumb_px=thumb_px, full_px=full_px))
    return out
