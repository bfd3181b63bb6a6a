"""The report's plots, drawn with matplotlib and returned as inline SVG text.

* :func:`radar_svg`: fidelity, instruction score and speed per model on fixed axis ranges
  (like the paper's Fig. 1 chart; fixed ranges so two reports draw the same value at the same
  radius, never rescaled to flatter whichever models are shown);
* :func:`quality_fidelity_svg`: instruction score against SSIM, 95% intervals as error bars,
  strength sweeps as curves (Sec. 4.4);
* :func:`latency_svg`: latency against resolution (:func:`.latency.latency_figure`).
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..runner.result import Result
from .latency import latency_figure

#: Radar axes: (label, metric key, value at the centre, value at the rim, log scale).
RADAR_AXES = (
    ("SSIM", "ssim", 0.5, 1.0, False),
    ("CW-SSIM", "cw_ssim", 0.5, 1.0, False),
    ("GMSD (lower better)", "gmsd", 0.25, 0.0, False),
    ("DISTS (lower better)", "dists", 0.25, 0.0, False),
    ("speed: 720p latency", "latency_720p", 10.0, 0.001, True),
)
#: The instruction axis: judge O (0-10) when measured, else the offline attr_acc (0-1).
INSTRUCTION_AXES = {"o": ("O (judge)", 0.0, 10.0), "attr_acc": ("attr_acc (offline)", 0.0, 1.0)}


@dataclass
class Series:
    label: str
    result: Result


def _svg(fig: Figure) -> str:
    """The ``<svg>`` element of a figure (no XML prolog; ids unique per figure, text as text)."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "iretouch-bench"}):
        fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    svg = text[text.index("<svg"):]
    # two plots on one page must not share element ids (clip paths would cross over)
    prefix = f"f{id(fig) & 0xFFFFFF:x}"
    return re.sub(r'(id="|url\(#|xlink:href="#|href="#)([A-Za-z_])', rf"\1{prefix}\2", svg)


def _new(figsize=(6.4, 4.6)) -> Figure:
    fig = Figure(figsize=figsize, dpi=100)
    FigureCanvasAgg(fig)  # Agg, whatever the user's backend
    return fig


def _metric(res: Result, key: str) -> float | None:
    if key.startswith("latency_"):
        lat = res.latency.model_dump() if res.latency else {}
        return (lat.get(key) or {}).get("median_s")
    st = getattr(res.metrics, key, None)
    return None if st is None else st.mean


def _ci(res: Result, key: str) -> tuple[float, float] | None:
    st = getattr(res.metrics, key, None)
    if st is None or st.ci is None or st.ci.lo is None:
        return None
    return st.ci.lo, st.ci.hi


def instruction_key(results: list[Result]) -> str:
    return "o" if any(_metric(r, "o") is not None for r in results) else "attr_acc"


def _radius(v: float | None, lo: float, hi: float, log: bool) -> float | None:
    if v is None:
        return None
    if log:
        if v <= 0:
            return 1.0
        v, lo, hi = math.log10(v), math.log10(lo), math.log10(hi)
    return float(np.clip((v - lo) / (hi - lo), 0.0, 1.0))


def radar_svg(series: list[Series]) -> str:
    """One polygon per model; an axis a model lacks is drawn at the centre and named in the legend."""
    ikey = instruction_key([s.result for s in series])
    ilabel, ilo, ihi = INSTRUCTION_AXES[ikey]
    axes = list(RADAR_AXES[:4]) + [(ilabel, ikey, ilo, ihi, False), RADAR_AXES[4]]
    angles = np.linspace(0, 2 * np.pi, len(axes), endpoint=False).tolist()
    fig = _new((6.4, 5.2))
    ax = fig.add_subplot(1, 1, 1, projection="polar")
    for s in series:
        radii, missing = [], []
        for label, key, lo, hi, log in axes:
            r = _radius(_metric(s.result, key), lo, hi, log)
            if r is None:
                missing.append(label.split(" ")[0])
            radii.append(0.0 if r is None else r)
        legend = s.label + (f" (n/a: {', '.join(missing)})" if missing else "")
        ax.plot(angles + angles[:1], radii + radii[:1], marker="o", linewidth=1.5, label=legend)
        ax.fill(angles + angles[:1], radii + radii[:1], alpha=0.12)
    ax.set_xticks(angles)
    ax.set_xticklabels([f"{a[0]}\n[{a[2]:g} → {a[3]:g}]" for a in axes], fontsize=8)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0])
    ax.set_yticklabels([])
    ax.set_ylim(0, 1)
    ax.set_title("Fidelity, instruction score and speed (outer is better)", fontsize=10)
    ax.legend(loc="upper right", bbox_to_anchor=(1.35, 1.12), fontsize=8)
    return _svg(fig)


def quality_fidelity_svg(series: list[Series], sweeps: dict[str, list[tuple[float, Result]]] | None = None) -> str:
    """Instruction score (y) against SSIM (x) per run, with 95% intervals; sweeps as strength curves."""
    results = [s.result for s in series] + [r for pts in (sweeps or {}).values() for _, r in pts]
    ikey = instruction_key(results)
    ilabel = INSTRUCTION_AXES[ikey][0]
    fig = _new()
    ax = fig.add_subplot(1, 1, 1)
    for s in series:
        x, y = _metric(s.result, "ssim"), _metric(s.result, ikey)
        if x is None or y is None:
            continue
        xe, ye = _ci(s.result, "ssim"), _ci(s.result, ikey)
        ax.errorbar([x], [y], xerr=None if xe is None else [[x - xe[0]], [xe[1] - x]],
                    yerr=None if ye is None else [[y - ye[0]], [ye[1] - y]], fmt="o", capsize=3, label=s.label)
    for name, pts in (sweeps or {}).items():
        xs = [_metric(r, "ssim") for _, r in pts]
        ys = [_metric(r, ikey) for _, r in pts]
        keep = [(st, x, y) for (st, _), x, y in zip(pts, xs, ys) if x is not None and y is not None]
        if not keep:
            continue
        ax.plot([k[1] for k in keep], [k[2] for k in keep], marker="s", linestyle="-", label=f"{name} (n={pts[0][1].counts.n_ok})")
        for st, x, y in keep:
            ax.annotate(f"s={st:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel("fidelity: SSIM (grayscale, histogram-matched) →")
    ax.set_ylabel(f"instruction: {ilabel} →")
    ax.set_title("Instruction score against content fidelity (95% intervals)", fontsize=10)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return _svg(fig)


def latency_svg(series: list[Series]) -> str | None:
    """Latency vs resolution of the runs that measured it (None when none did)."""
    data = {}
    for s in series:
        lat = s.result.latency.model_dump() if s.result.latency else {}
        vals = {k: (v or {}).get("median_s") for k, v in lat.items() if v is not None}
        if vals:
            data[s.label] = vals
    if not data:
        return None
    fig = latency_figure(data, title="Latency vs resolution (median, this machine)")
    return _svg(fig)
