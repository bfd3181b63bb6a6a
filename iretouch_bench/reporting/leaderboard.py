"""The leaderboard: measured results grouped by comparability key, published rows apart.

Rows come from run folders (their ``result.json``) or submission files (the same schema). Rows
are ranked only inside one comparability key (dataset content hash, fidelity protocol, judge
snapshot + prompt hash; :func:`runner.result.comparability_key`), never across keys. The paper's
Table 1 rows, when asked for, form their own labelled block and are never ranked with measured
rows (their dataset, judge and hardware differ).

Columns follow the paper's Table 1: latency per resolution, fidelity, L1/L2, SC/PQ/O (or the
offline ``attr_acc``), ``face_sim`` where measured. Each mean carries its 95% bootstrap interval.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import BenchError
from ..metrics.keys import HIGHER_IS_BETTER, LATENCY_KEYS
from ..runner.result import Result, comparability_key, load_result
from .paper_tables import load_published, tex_escape
from .shipped import submissions_dir

#: Table 1's column order, plus the suite's offline instruction score and identity score.
COLUMNS = LATENCY_KEYS + ("ssim", "cw_ssim", "gmsd", "dists", "l1", "l2", "sc", "pq", "o", "attr_acc", "face_sim")
LABELS = {"latency_720p": "720p s", "latency_1k": "1K s", "latency_2k": "2K s", "latency_4k": "4K s",
          "ssim": "SSIM", "cw_ssim": "CW-SSIM", "gmsd": "GMSD", "dists": "DISTS", "l1": "L1", "l2": "L2",
          "sc": "SC", "pq": "PQ", "o": "O", "attr_acc": "attr_acc", "face_sim": "face_sim"}
FORMATS = ("md", "csv", "latex", "html")


@dataclass
class Cell:
    mean: float | None
    lo: float | None = None
    hi: float | None = None
    n: int | None = None
    of: int | None = None
    printed: str | None = None  # published figures: the text as printed

    def text(self, key: str, ci: bool = True) -> str:
        if self.printed is not None:
            return self.printed
        if self.mean is None:
            return "—"
        digits = 4
        s = f"{self.mean:.{digits}f}"
        if ci and self.lo is not None and self.hi is not None and key not in LATENCY_KEYS:
            s += f" [{self.lo:.{digits}f}, {self.hi:.{digits}f}]"
        if self.n is not None and self.of is not None and self.n < self.of:
            s += f" (n={self.n}/{self.of})"
        return s


@dataclass
class Row:
    label: str
    source: str  # run folder or submission file (a link in the HTML page)
    cells: dict[str, Cell]
    kind: str = "measured"  # measured | published
    rank: int | None = None
    notes: list[str] = field(default_factory=list)
    result: Result | None = None


@dataclass
class Board:
    title: str
    key: tuple[str, str, str] | None
    rows: list[Row]
    columns: list[str]
    kind: str = "measured"
    note: str = ""
    best: set[tuple[int, str]] = field(default_factory=set)  # (row index, column)


def row_label(res: Result) -> str:
    label = res.model.name
    if res.model.api_model_id:
        label += f" ({res.model.api_model_id})"
    if res.model.strength != 1.0:
        label += f" (strength {res.model.strength:g})"
    if res.model.weights:
        label += f" [{res.model.weights}]"
    return label


def row_from_result(res: Result, source: str) -> Row:
    cells: dict[str, Cell] = {}
    metrics = res.metrics.model_dump()
    for key in COLUMNS:
        if key in LATENCY_KEYS:
            lat = (res.latency.model_dump() if res.latency else {}).get(key) or {}
            cells[key] = Cell(mean=lat.get("median_s"))
            continue
        st = metrics.get(key)
        if not st:
            cells[key] = Cell(mean=None)
            continue
        ci = st.get("ci") or {}
        cells[key] = Cell(mean=st["mean"], lo=ci.get("lo"), hi=ci.get("hi"), n=st["n"], of=res.counts.n_ok)
    env = res.environment
    notes = [f"{env.device}" + (f" {env.gpu}" if env.gpu else f", {env.cpu_count} CPUs" if env.cpu_count else "")]
    if res.counts.n_failed:
        notes.append(f"{res.counts.n_failed} failed")
    if res.counts.n_refused:
        notes.append(f"{res.counts.n_refused} refused (not scored)")
    if res.counts.n_records < res.counts.n_dataset:
        notes.append(f"{res.counts.n_records}/{res.counts.n_dataset} samples")
    return Row(label=row_label(res), source=source, cells=cells, notes=notes, result=res)


def load_rows(paths: list[str | Path]) -> list[Row]:
    """Run folders (``result.json`` inside) or result/submission files -> rows."""
    rows = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            f = p / "result.json"
            if not f.is_file():
                raise BenchError(f"{p}: no result.json (run `iretouch-bench aggregate {p}` first)")
            rows.append(row_from_result(load_result(f), str(p)))
        elif p.is_file():
            rows.append(row_from_result(load_result(p), str(p)))
        else:
            raise BenchError(f"{p}: no such run folder or result file")
    return rows


def shipped_rows() -> list[Row]:
    """The submissions shipped in ``leaderboard/submissions/``."""
    d = submissions_dir()
    rows = load_rows(sorted(d.glob("*.json"))) if d.is_dir() else []
    for r in rows:  # shown as the repository path, not this machine's
        r.source = f"leaderboard/submissions/{Path(r.source).name}"
    return rows


def _primary(cols: list[str]) -> str | None:
    """The instruction score rows are ranked by: the judge's O, else the offline attr_acc."""
    return "o" if "o" in cols else ("attr_acc" if "attr_acc" in cols else None)


def _mark_best(board: Board) -> None:
    for c in board.columns:
        vals = [(i, r.cells[c].mean) for i, r in enumerate(board.rows) if r.cells.get(c) and r.cells[c].mean is not None]
        if len(vals) < 2:
            continue
        target = (max if HIGHER_IS_BETTER[c] else min)(v for _, v in vals)
        board.best |= {(i, c) for i, v in vals if v == target}


def _key_title(key: tuple[str, str, str]) -> str:
    data, proto, judge = key
    return f"dataset {data[:12]} · fidelity protocol {proto} · judge {judge}"


def subset_label(res: Result) -> str:
    """Which samples a row's means are over: the whole dataset, or a part (``--limit``, shards)."""
    c = res.counts
    if c.n_records == c.n_dataset and res.config.get("limit") is None:
        return f"all {c.n_dataset} samples"
    limit = res.config.get("limit")
    return (f"first {limit} of {c.n_dataset} samples (--limit)" if limit is not None
            else f"{c.n_records} of {c.n_dataset} samples")


def group_measured(rows: list[Row]) -> list[Board]:
    """One board per comparability key (and sample subset: a mean over the first 15 samples is not
    ranked against one over all 45); rows ranked by the primary instruction score inside it."""
    groups: dict[tuple[str, ...], list[Row]] = {}
    for r in rows:
        assert r.result is not None
        groups.setdefault(comparability_key(r.result) + (subset_label(r.result),), []).append(r)
    boards = []
    for gkey, rs in groups.items():
        key, subset = gkey[:3], gkey[3]
        cols = [c for c in COLUMNS if any(r.cells[c].mean is not None for r in rs)]
        prim = _primary(cols)
        if prim:
            sign = -1 if HIGHER_IS_BETTER[prim] else 1
            rs.sort(key=lambda r: (r.cells[prim].mean is None, sign * (r.cells[prim].mean or 0.0), r.label))
            for i, r in enumerate(rs):
                r.rank = i + 1 if r.cells[prim].mean is not None else None
        names = {r.result.dataset.name for r in rs if r.result}
        board = Board(title=f"Measured on {', '.join(sorted(names))} ({subset})", key=key, rows=rs, columns=cols,
                      note=(f"Ranked by {prim} (mean over samples; 95% bootstrap interval in brackets); "
                            f"comparable rows only: {_key_title(key)}.") if prim else _key_title(key))
        _mark_best(board)
        boards.append(board)
    return boards


def published_board() -> Board:
    """The paper's Table 1 as a labelled, unranked block (figures as printed)."""
    doc = load_published()
    t1 = next(t for t in doc.tables if t.table == 1)
    by_col = {c.key: c.id for c in t1.columns}
    rows = []
    for r in t1.rows:
        cells = {}
        for key in COLUMNS:
            if key in by_col:
                f = next(f for f in doc.figures if (f.table, f.row, f.column) == (1, r.printed, by_col[key]))
                cells[key] = Cell(mean=f.value, printed=f.printed)
            else:
                cells[key] = Cell(mean=None, printed="")
        rows.append(Row(label=r.printed, source=f"arXiv {doc.source.get('arxiv')} Table 1", cells=cells,
                        kind="published", notes=[r.note] if r.note else []))
    cols = [c for c in COLUMNS if c in by_col]
    board = Board(title=f"Published (arXiv {doc.source.get('arxiv')}, Table 1) — not measured by this suite",
                  key=None, rows=rows, columns=cols, kind="published",
                  note=("Figures as printed in the paper, on its iRetouch set (500 pairs, not released) with a "
                        "GPT-4o judge and its hardware: not comparable with the measured rows above and never "
                        "ranked with them. '-' is a blank in the paper."))
    _mark_best(board)
    return board


def build_boards(paths: list[str | Path], with_published: bool = False) -> list[Board]:
    """Boards for ``iretouch-bench leaderboard``: with no paths, the shipped submissions and the
    published rows."""
    rows = load_rows(paths) if paths else shipped_rows()
    boards = group_measured(rows)
    if with_published or not paths:
        boards.append(published_board())
    return boards


# --------------------------------------------------------------------------- rendering


def headers(board: Board) -> list[str]:
    arrow = lambda c: "↑" if HIGHER_IS_BETTER[c] else "↓"  # noqa: E731
    lead = ["#", "model"] if board.kind == "measured" else ["method"]
    return lead + [f"{LABELS[c]} {arrow(c)}" for c in board.columns] + ["notes", "source"]


def render_markdown(boards: list[Board]) -> str:
    out = []
    for b in boards:
        lines = [f"### {b.title}", "", b.note, "", "| " + " | ".join(headers(b)) + " |",
                 "|" + "---|" * len(headers(b))]
        for i, r in enumerate(b.rows):
            lead = [str(r.rank or "—"), r.label] if b.kind == "measured" else [r.label]
            cells = [(f"**{r.cells[c].text(c)}**" if (i, c) in b.best else r.cells[c].text(c)) for c in b.columns]
            lines.append("| " + " | ".join(lead + cells + ["; ".join(r.notes), f"`{r.source}`"]) + " |")
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def render_csv(boards: list[Board]) -> str:
    """Long rows for analysis: one per (board, row), mean and interval bounds in separate columns."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    head = ["block", "kind", "dataset_hash", "fidelity_protocol", "judge", "rank", "model", "source", "notes"]
    for c in COLUMNS:
        head += [c, f"{c}_ci_lo", f"{c}_ci_hi", f"{c}_n"]
    w.writerow(head)
    for b in boards:
        key = b.key or ("", "", "")
        for r in b.rows:
            row = [b.title, r.kind, *key, r.rank or "", r.label, r.source, "; ".join(r.notes)]
            for c in COLUMNS:
                cell = r.cells.get(c) or Cell(mean=None)
                val = cell.printed if cell.printed is not None else ("" if cell.mean is None else repr(cell.mean))
                row += [val, "" if cell.lo is None else repr(cell.lo), "" if cell.hi is None else repr(cell.hi),
                        "" if cell.n is None else cell.n]
            w.writerow(row)
    return buf.getvalue()


def render_latex(boards: list[Board]) -> str:
    """One booktabs table per board; best per column in bold; intervals as ``\\scriptsize`` text."""
    out = []
    for b in boards:
        heads = [tex_escape(h).replace("↑", r"$\uparrow$").replace("↓", r"$\downarrow$") for h in headers(b)[:-2]]
        lines = [r"\begin{table}[t]", r"\centering", r"\resizebox{\linewidth}{!}{%",
                 r"\begin{tabular}{" + ("l" * (2 if b.kind == "measured" else 1)) + "c" * len(b.columns) + "}",
                 r"\toprule", " & ".join(heads) + r" \\", r"\midrule"]
        for i, r in enumerate(b.rows):
            lead = [str(r.rank or "--"), tex_escape(r.label)] if b.kind == "measured" else [tex_escape(r.label)]
            cells = []
            for c in b.columns:
                cell = r.cells[c]
                main = cell.printed if cell.printed is not None else ("--" if cell.mean is None else
                                                                       Cell(cell.mean).text(c, ci=False))
                main = main or "--"
                if (i, c) in b.best:
                    main = rf"\textbf{{{main}}}"
                if cell.printed is None and cell.lo is not None and cell.hi is not None and c not in LATENCY_KEYS:
                    main += rf" {{\scriptsize[{cell.lo:.4f}, {cell.hi:.4f}]}}"
                cells.append(main)
            lines.append(" & ".join(lead + cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}}", rf"\caption{{{tex_escape(b.title)}. {tex_escape(b.note)}}}",
                  r"\end{table}"]
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def render_html(boards: list[Board], out_path: str | Path | None = None) -> str:
    """A static page that opens offline (no network: a content-security policy forbids it)."""
    from .html import render_page

    base = Path(out_path).resolve().parent if out_path else None
    blocks = []
    for b in boards:
        rows = []
        for i, r in enumerate(b.rows):
            cells = [{"text": r.cells[c].text(c), "sort": r.cells[c].mean, "best": (i, c) in b.best}
                     for c in b.columns]
            rows.append({"rank": r.rank, "label": r.label, "cells": cells, "notes": "; ".join(r.notes),
                         "source": r.source, "href": _href(r.source, base) if r.kind == "measured" else None})
        blocks.append({"title": b.title, "note": b.note, "kind": b.kind, "heads": headers(b), "rows": rows})
    return render_page("leaderboard.html.j2", title="iretouch-bench leaderboard", boards=blocks)


def _href(source: str, base: Path | None) -> str | None:
    p = Path(source)
    if not p.exists():
        return None
    if base is not None:
        try:
            return Path(os.path.relpath(p.resolve(), base)).as_posix()
        except ValueError:
            return None
    return p.as_posix()


def render(boards: list[Board], fmt: str, out_path: str | Path | None = None) -> str:
    if fmt == "md":
        return render_markdown(boards)
    if fmt == "csv":
        return render_csv(boards)
    if fmt == "latex":
        return render_latex(boards)
    if fmt == "html":
        return render_html(boards, out_path)
    raise BenchError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
