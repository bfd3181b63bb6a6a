"""Latency results as a table and a latency-vs-resolution plot."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..core.atomic import atomic_path
from ..runner.latency import resolve_resolution


def format_table(results_by_model: dict[str, dict]) -> str:
    """A Markdown table: one row per model, median seconds (and peak extra MB) per size."""
    labels: list[str] = []
    for res in results_by_model.values():
        for rec in res.get("records", []):
            if rec["resolution"] not in labels:
                labels.append(rec["resolution"])
    head = "| model | device | " + " | ".join(
        f"{lab} ({_size_text(lab)}) s [peak MB]" for lab in labels) + " |"
    rows = [head, "|" + "---|" * (len(labels) + 2)]
    for name, res in results_by_model.items():
        by = {r["resolution"]: r for r in res.get("records", [])}
        cells = []
        for lab in labels:
            r = by.get(lab)
            if r is None:
                cells.append("")
            elif r["median_s"] is None:
                cells.append(f"n/a ({r.get('error') or 'not measured'})")
            else:
                mem = "" if r["peak_mem_bytes"] is None else f" [{r['peak_mem_bytes'] / 2**20:.0f}]"
                cells.append(f"{r['median_s']:.4f} ± {r['iqr_s']:.4f}{mem}")
        rows.append(f"| {name} | {res.get('device', '')} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _size_text(label: str) -> str:
    _, w, h = resolve_resolution(label)
    return f"{w}x{h}"


def _series(result: Any) -> list[tuple[str, float | None]]:
    """(label, median seconds) from a measure_latency result, ``{"720p": s}`` or ``{"latency_720p": s}``."""
    if isinstance(result, dict) and "records" in result:
        return [(r["resolution"], r["median_s"]) for r in result["records"]]
    out = []
    for k, v in dict(result).items():
        label = k[len("latency_"):] if str(k).startswith("latency_") else str(k)
        out.append((resolve_resolution(label)[0], None if v is None else float(v)))
    return out


def plot_latency(results_by_model: dict[str, dict], path: str | os.PathLike, title: str | None = None) -> Path:
    """Latency vs resolution, one line per model (:func:`latency_figure`); writes a PNG to ``path``."""
    fig = latency_figure(results_by_model, title)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def latency_figure(results_by_model: dict[str, dict], title: str | None = None) -> Figure:
    """Latency vs resolution, one line per model, as a matplotlib Figure (PNG file or inline SVG).

    x: megapixels of each size (ticks labelled with the size names), y: median seconds on a
    log axis. Sizes a model could not run are left out of its line and listed in the legend.
    ``results_by_model``: ``{name: measure_latency result}`` (or ``{name: {"720p": seconds}}``
    for published figures).
    """
    fig = Figure(figsize=(7, 4.5), dpi=120)
    FigureCanvasAgg(fig)  # Agg, whatever the user's global backend: no display needed
    ax = fig.add_subplot(1, 1, 1)
    ticks: dict[float, str] = {}
    plotted = 0
    for name, result in results_by_model.items():
        xs, ys, missing = [], [], []
        for label, sec in _series(result):
            _, w, h = resolve_resolution(label)
            mp = w * h / 1e6
            ticks[mp] = label
            if sec is None or not math.isfinite(sec) or sec <= 0:
                missing.append(label)
            else:
                xs.append(mp)
                ys.append(sec)
        order = np.argsort(xs)
        legend = name + (f" (n/a: {', '.join(missing)})" if missing else "")
        if xs:
            ax.plot(np.asarray(xs)[order], np.asarray(ys)[order], marker="o", label=legend)
            plotted += 1
        else:
            ax.plot([], [], marker="x", linestyle="none", label=legend)
    if plotted:
        ax.set_yscale("log")
    ax.set_xticks(sorted(ticks))
    ax.set_xticklabels([f"{ticks[m]}\n{m:.2f} MP" for m in sorted(ticks)])
    ax.set_xlabel("resolution (megapixels)")
    ax.set_ylabel("median latency (s, log scale)")
    ax.set_title(title or "Latency vs resolution (end to end, median)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
