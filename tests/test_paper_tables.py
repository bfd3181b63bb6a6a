"""The paper's Tables 1-3 as data: every figure against the text as printed, and the renderings.

``PRINTED`` below is the tables' text as the arXiv HTML extraction of 2606.05071v1 prints it
(header words, then one run-on line of figures per row). The test parses it on its own, so a
figure mistyped in ``leaderboard/published/`` (or a row, a column, a blank) fails here.
"""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from iretouch_bench.core.errors import BenchError
from iretouch_bench.reporting import paper_tables as pt
from iretouch_bench.reporting.shipped import published_dir

# Table -> (column labels in printed order, [(row label as printed, figures as printed)]).
PRINTED = {
    1: ("720p 1K 2K 4K SSIM CW-SSIM GSMD DISTS L1 L2 SC PQ O",
        """3DLUT [49] 0.066 0.079 0.112 0.201 0.982 0.981 0.013 0.024 0.136 0.034 - - -
RSFNet [32] 0.029 0.047 0.086 0.189 0.975 0.976 0.012 0.038 0.137 0.034 - - -
InstructPix2Pix [2] 4.632 - - - 0.742 0.768 0.149 0.177 0.164 0.050 7.11 7.58 7.34
Step1X-Edit [28] 57.932 - - - 0.706 0.694 0.174 0.167 0.140 0.036 7.63 8.52 8.06
GPT-Image-[17] 15.427 21.889 - - 0.505 0.397 0.242 0.216 0.215 0.082 8.09 8.56 8.32
Qwen-Image [44] 7.720 - - - 0.689 0.744 0.174 0.147 0.168 0.054 8.12 8.67 8.39
FLUX.1-Kontext-Pro [22] 10.235 - - - 0.802 0.857 0.112 0.132 0.161 0.050 7.56 8.72 8.12
Gemini-2.5-Flash [6] 14.440 - - - 0.676 0.796 0.175 0.115 0.137 0.036 8.56 8.94 8.74
Ours 0.065 0.065 0.066 0.068 0.989 0.973 0.012 0.022 0.099 0.018 8.14 8.98 8.54"""),
    2: ("Runtime(s) SSIM GSMD DISTS SC PQ O",
        """Bilateral Grid Prediction 0.001 0.996 0.003 0.005 4.48 8.28 6.09
Teacher (Multi-step Diffusion) 4.602 0.833 0.095 0.121 7.96 8.71 8.33
Hybrid (Teacher Features + Bilateral) 0.065 0.904 0.073 0.107 5.65 7.62 6.56
Student (Diffusion-Only) 0.319 0.788 0.130 0.152 8.43 8.85 8.64
Ours (Full Model) 0.065 0.989 0.012 0.022 8.14 8.98 8.54"""),
    3: ("SC PQ O",
        """L_base 5.978 8.280 7.036
L_base+L_VSD 7.257 9.013 8.087
L_base+L_VSD+L_align 8.140 8.984 8.553"""),
}
TOKEN = re.compile(r"^(?:-|\d+\.\d+)$")


def printed_cells() -> dict[tuple[int, str, str], str]:
    """``{(table, row, column): figure as printed}`` parsed from PRINTED (trailing figure tokens)."""
    out = {}
    for table, (head, body) in PRINTED.items():
        cols = head.split()
        for line in body.splitlines():
            toks = line.split()
            figs = toks[-len(cols):]
            assert all(TOKEN.match(t) for t in figs), line
            label = " ".join(toks[:-len(cols)])
            for c, f in zip(cols, figs):
                out[(table, label, c)] = f
    return out


@pytest.fixture(scope="module")
def doc():
    return pt.load_published()


def test_every_figure_matches_the_paper(doc):
    want = printed_cells()
    have = {(f.table, f.row, f.column): f.printed for f in doc.figures}
    assert have == want  # same cells, same text: nothing missing, extra or mistyped
    assert len(have) == 9 * 13 + 5 * 7 + 3 * 3 == 161
    for f in doc.figures:
        assert f.value == (None if f.printed == "-" else float(f.printed))


def test_layout_is_the_papers(doc):
    for t in doc.tables:
        head, body = PRINTED[t.table]
        assert [c.id for c in t.columns] == head.split()
        assert [r.printed for r in t.rows] == [" ".join(line.split()[:-len(head.split())]) for line in body.splitlines()]
        for c in t.columns:  # precision is the printed one, per column
            printed = [pt.cell(doc, t.table, r.printed, c.id).printed for r in t.rows]
            assert {len(p.split(".")[1]) for p in printed if p != "-"} == {c.decimals}
    t1 = doc.tables[0]
    arrows = {c.id: c.arrow for c in t1.columns}
    assert arrows == {"720p": "↓", "1K": "↓", "2K": "↓", "4K": "↓", "SSIM": "↑", "CW-SSIM": "↑", "GSMD": "↓",
                      "DISTS": "↓", "L1": "↓", "L2": "↓", "SC": "↑", "PQ": "↑", "O": "↑"}
    assert {c.key for c in t1.columns} >= {"latency_720p", "ssim", "cw_ssim", "gmsd", "dists", "l1", "l2", "o"}


def test_best_per_column(doc):
    best = pt.best_cells(doc, doc.tables[0])
    assert ("Ours", "SSIM") in best and ("Gemini-2.5-Flash [6]", "O") in best
    assert {("RSFNet [32]", "GSMD"), ("Ours", "GSMD")} <= best  # a tie marks both
    assert ("3DLUT [49]", "SC") not in best  # a blank never competes
    assert ("RSFNet [32]", "720p") in best and ("Ours", "720p") not in best
    t3 = pt.best_cells(doc, doc.tables[2])
    assert t3 == {("L_base+L_VSD", "PQ"), ("L_base+L_VSD+L_align", "SC"), ("L_base+L_VSD+L_align", "O")}


def test_markdown_rows_in_paper_order(doc):
    md = pt.render_paper_tables("md", (1,))
    rows = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| Method")]
    want = printed_cells()
    cols = PRINTED[1][0].split()
    for line, (label, _) in zip(rows, [(r.printed, r) for r in doc.tables[0].rows]):
        cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
        assert cells[0] == label
        assert cells[1:] == [want[(1, label, c)] for c in cols]
    assert "| **0.989** |" in md and "published" in md.lower()
    assert "SSIM ↑" in md and "720p ↓" in md


def test_csv_round_trips(doc):
    rows = list(csv.DictReader(io.StringIO(pt.render_paper_tables("csv", (2,)))))
    want = printed_cells()
    assert [r["Method"] for r in rows] == [r.printed for r in doc.tables[1].rows]
    for r in rows:
        for c in PRINTED[2][0].split():
            col = next(k for k in r if k.split(": ")[-1].rsplit(" ", 1)[0] == c)
            assert r[col] == want[(2, r["Method"], c)]
        assert r["source"].startswith("published: arXiv 2606.05071v1 Table 2")
    assert next(r for r in rows if r["Method"] == "Bilateral Grid Prediction")["best"] == "Runtime(s);SSIM;GSMD;DISTS"


def test_latex_booktabs(doc):
    tex = pt.render_paper_tables("latex")
    assert tex.count(r"\begin{tabular}") == 3 and tex.count(r"\toprule") == 3 and tex.count(r"\bottomrule") == 3
    assert r"\cmidrule(lr){2-5}" in tex  # Runtime(s) over the four resolutions
    assert r"SSIM$\uparrow$" in tex and r"GSMD$\downarrow$" in tex
    assert r"\textbf{0.989}" in tex and r"\textbf{8.74}" in tex
    assert r"$\mathcal{L}_{\mathrm{base}}+\mathcal{L}_{\mathrm{VSD}}$" in tex
    for f in doc.figures:  # every printed figure appears in its table's LaTeX
        assert f.printed in tex


def test_a_tampered_file_is_refused(tmp_path):
    data = json.loads((published_dir() / pt.PAPER_FILE).read_text(encoding="utf-8"))
    fig = next(f for f in data["figures"] if f["row"] == "Ours" and f["column"] == "SSIM")
    fig["value"] = 0.999  # printed still says 0.989
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(BenchError, match="bad.json"):
        pt.load_published(bad)
    data["figures"].remove(fig)
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(BenchError, match="disagree"):
        pt.load_published(bad)


def test_cli_tables(capsys):
    from iretouch_bench.cli import main

    main(["tables", "--paper", "--format", "csv", "--table", "3"])
    out = capsys.readouterr().out
    assert out.splitlines()[1].startswith("3,L_base,5.978,8.280,7.036")
