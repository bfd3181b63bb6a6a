"""The paper's Tables 1-3 (arXiv 2606.05071v1) as data, and ``iretouch-bench tables --paper``.

The data file (``leaderboard/published/instantretouch-2606.05071v1.json``) holds every figure as
printed with its provenance (table, row, column); this module validates it and renders it back in
the paper's column order, with the printed precision, the arrows, and the best value per column
marked (ties all marked; ``-`` blanks never compete). Published figures are always labelled as
published; they are never mixed into a ranking of measured rows (see :mod:`.leaderboard`).
"""

from __future__ import annotations

import csv
import io
import json
from functools import lru_cache
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..core.errors import BenchError
from .shipped import published_dir

PAPER_FILE = "instantretouch-2606.05071v1.json"
FORMATS = ("md", "csv", "latex")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class PublishedColumn(_Strict):
    id: str = Field(description="the column's label as printed, e.g. '720p', 'SSIM', 'GSMD'")
    group: str = Field(description="the header above it as printed, e.g. 'Content Fidelity'")
    printed: str = Field(description="the header text as extracted, arrow in LaTeX")
    arrow: Literal["↑", "↓"]
    key: str = Field(description="the suite's metric key ('latency' where no resolution is stated)")
    decimals: int = Field(ge=0)


class PublishedRow(_Strict):
    printed: str
    method: str
    ref: Optional[int] = None
    suite_model: Optional[str] = Field(default=None, description="the suite's model of the same name, if any")
    note: Optional[str] = None
    latex: Optional[str] = None


class PublishedTable(_Strict):
    table: int
    title: str
    row_header: str
    source_line: int = Field(description="line of the caption in the extracted paper text")
    measured_on: dict[str, str]
    columns: list[PublishedColumn]
    rows: list[PublishedRow]


class Figure(_Strict):
    table: int
    row: str
    column: str
    printed: str = Field(description="exactly as printed; '-' is a blank")
    value: Optional[float]
    decimals: Optional[int]

    @model_validator(mode="after")
    def _agrees(self) -> "Figure":
        if self.printed == "-":
            if self.value is not None:
                raise ValueError(f"{self.table}/{self.row}/{self.column}: printed '-' must have value null")
        elif self.value != float(self.printed) or self.decimals != (len(self.printed.split(".")[1])
                                                                   if "." in self.printed else 0):
            raise ValueError(f"{self.table}/{self.row}/{self.column}: value/decimals disagree with printed "
                             f"{self.printed!r}")
        return self


class PublishedDoc(_Strict):
    kind: Literal["published"]
    source: dict[str, object]
    tables: list[PublishedTable]
    figures: list[Figure]

    @model_validator(mode="after")
    def _complete(self) -> "PublishedDoc":
        cells = {(f.table, f.row, f.column) for f in self.figures}
        if len(cells) != len(self.figures):
            raise ValueError("a (table, row, column) cell appears twice in figures")
        want = {(t.table, r.printed, c.id) for t in self.tables for r in t.rows for c in t.columns}
        if cells != want:
            raise ValueError(f"figures and table layout disagree: missing {sorted(want - cells)[:3]}, "
                             f"extra {sorted(cells - want)[:3]}")
        return self


@lru_cache(maxsize=4)
def _load(path: str) -> PublishedDoc:
    p = Path(path)
    try:
        return PublishedDoc.model_validate(json.loads(p.read_text(encoding="utf-8")))
    except ValidationError as err:
        first = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'file'}: {e['msg']}" for e in err.errors()[:3])
        raise BenchError(f"{p}: not a valid published-tables file ({first})") from err
    except (OSError, ValueError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise BenchError(f"{p}: not a valid published-tables file ({first})") from err


def load_published(path: str | Path | None = None) -> PublishedDoc:
    """The paper's tables (validated)."""
    return _load(str(path or published_dir() / PAPER_FILE))


def cell(doc: PublishedDoc, table: int, row: str, column: str) -> Figure:
    for f in doc.figures:
        if (f.table, f.row, f.column) == (table, row, column):
            return f
    raise KeyError((table, row, column))


def best_cells(doc: PublishedDoc, table: PublishedTable) -> set[tuple[str, str]]:
    """``{(row, column)}`` holding the best value of each column (all of a tie)."""
    best: set[tuple[str, str]] = set()
    for c in table.columns:
        vals = [(r.printed, cell(doc, table.table, r.printed, c.id).value) for r in table.rows]
        vals = [(r, v) for r, v in vals if v is not None]
        if not vals:
            continue
        target = (max if c.arrow == "↑" else min)(v for _, v in vals)
        best |= {(r, c.id) for r, v in vals if v == target}
    return best


def _source_line(doc: PublishedDoc, t: PublishedTable) -> str:
    return (f"Published: arXiv {doc.source.get('arxiv')} Table {t.table} ({t.title}); "
            f"figures as printed, not measured by this suite; best per column marked.")


def render_markdown(doc: PublishedDoc, table: PublishedTable) -> str:
    best = best_cells(doc, table)
    heads = [table.row_header] + [_head(c) for c in table.columns]
    lines = [f"**Table {table.table}: {table.title}** (published)", "",
             "| " + " | ".join(heads) + " |", "|" + "|".join(["---"] + ["---:"] * len(table.columns)) + "|"]
    for r in table.rows:
        cells = [r.printed]
        for c in table.columns:
            f = cell(doc, table.table, r.printed, c.id)
            cells.append(f"**{f.printed}**" if (r.printed, c.id) in best else f.printed)
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", _source_line(doc, table)]
    return "\n".join(lines) + "\n"


def _head(c: PublishedColumn) -> str:
    return f"{c.id} {c.arrow}" if c.group == c.id else f"{c.group}: {c.id} {c.arrow}"


def render_csv(doc: PublishedDoc, table: PublishedTable) -> str:
    """Wide CSV in the paper's column order, values as printed; ``best`` names the columns where
    the row holds the best value; ``source`` labels every row as published."""
    best = best_cells(doc, table)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["table", table.row_header] + [_head(c) for c in table.columns] + ["best", "source"])
    src = f"published: arXiv {doc.source.get('arxiv')} Table {table.table}"
    for r in table.rows:
        vals = [cell(doc, table.table, r.printed, c.id).printed for c in table.columns]
        marks = ";".join(c.id for c in table.columns if (r.printed, c.id) in best)
        w.writerow([table.table, r.printed] + vals + [marks, src])
    return buf.getvalue()


_TEX_ESCAPE = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
               "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def tex_escape(text: str) -> str:
    return "".join(_TEX_ESCAPE.get(ch, ch) for ch in text)


def render_latex(doc: PublishedDoc, table: PublishedTable) -> str:
    """A booktabs table (``\\usepackage{booktabs}``): grouped headers with cmidrules, arrows in
    math mode, best values in bold."""
    best = best_cells(doc, table)
    n = len(table.columns)
    arrow = {"↑": r"$\uparrow$", "↓": r"$\downarrow$"}
    groups: list[tuple[str, int]] = []
    for c in table.columns:
        g = "" if c.group == c.id else c.group
        if groups and groups[-1][0] == g and g:
            groups[-1] = (g, groups[-1][1] + 1)
        else:
            groups.append((g, 1))
    out = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{l" + "c" * n + "}", r"\toprule"]
    top, rules, col = [""], [], 2
    for g, span in groups:
        top.append(rf"\multicolumn{{{span}}}{{c}}{{{tex_escape(g)}}}" if span > 1 or g else "")
        if g:
            rules.append(rf"\cmidrule(lr){{{col}-{col + span - 1}}}")
        col += span
    if any(g for g, _ in groups):
        out.append(" & ".join(top) + r" \\")
        out.append(" ".join(rules))
    out.append(" & ".join([tex_escape(table.row_header)] + [f"{tex_escape(c.id)}{arrow[c.arrow]}"
                                                            for c in table.columns]) + r" \\")
    out.append(r"\midrule")
    for r in table.rows:
        label = f"${r.latex}$" if r.latex else tex_escape(r.printed)
        cells = [label]
        for c in table.columns:
            f = cell(doc, table.table, r.printed, c.id)
            cells.append(rf"\textbf{{{f.printed}}}" if (r.printed, c.id) in best else f.printed)
        out.append(" & ".join(cells) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}",
            rf"\caption{{{tex_escape(_source_line(doc, table))}}}",
            rf"\label{{tab:published-{table.table}}}", r"\end{table}"]
    return "\n".join(out) + "\n"


RENDERERS = {"md": render_markdown, "csv": render_csv, "latex": render_latex}


def render_paper_tables(fmt: str = "md", tables: tuple[int, ...] | None = None,
                        path: str | Path | None = None) -> str:
    """All (or the chosen) published tables in ``fmt`` (``md``, ``csv``, ``latex``)."""
    if fmt not in RENDERERS:
        raise BenchError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    doc = load_published(path)
    chosen = [t for t in doc.tables if not tables or t.table in tables]
    if tables and len(chosen) != len(set(tables)):
        raise BenchError(f"the paper has Tables {', '.join(str(t.table) for t in doc.tables)}; asked for {tables}")
    return "\n".join(RENDERERS[fmt](doc, t) for t in chosen)
