"""``iretouch-bench report``: one self-contained HTML file (content checks; the browser test is
test_report_browser.py)."""

from __future__ import annotations

import html
import re

import pytest

from iretouch_bench import api
from iretouch_bench.core.errors import BenchError

from test_leaderboard_runs import real_runs


@pytest.fixture(scope="module")
def report_html(tmp_path_factory):
    runs = real_runs()
    out = tmp_path_factory.mktemp("report") / "report.html"
    api.report([runs["ours"], runs["identity"], runs["sweep"]], out, thumb_px=64, full_px=160)
    return out.read_text(encoding="utf-8")


def test_self_contained_and_offline(report_html):
    text = html.unescape(report_html)
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', text).group(1)
    assert "default-src 'none'" in csp and "img-src data:" in csp and "script-src 'sha256-" in csp
    # nothing is fetched: every src is a data: URI, no stylesheet or script is linked
    srcs = re.findall(r'\bsrc="([^"]*)"', text)
    assert srcs and all(s.startswith("data:image/") for s in srcs)
    assert "<link" not in text and "<script src" not in text and "@import" not in text
    assert not re.search(r"(?:src|href)=\"https?://", text)


def test_samples_pictures_and_order(report_html):
    rows = re.findall(r'<tr><td class="text"><code>([a-z_]+)</code></td>', report_html)
    assert sorted(rows) == sorted(["astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field"])
    # input, ours output, identity output, target for each of the 5 samples (thumb + full each)
    assert report_html.count('class="thumb"') == 5 * 4 and report_html.count('data-full="data:image/jpeg') == 20
    # worst first: by the first run's (ours) attr_acc, ascending
    table = report_html[report_html.index('id="samples"'):]
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", table[:table.index("</thead>")])
    col = next(i for i, h in enumerate(heads) if h.startswith("attr_acc") and "ours" in h) - 3
    body = table[table.index("<tbody>"):]
    per_row = [re.findall(r'<td data-sort="([^"]*)"', r) for r in body.split("<tr>")[1:]]
    primary = [float(r[col]) for r in per_row]
    assert primary == sorted(primary) and len(primary) == 5


def test_plots_and_sweep(report_html):
    assert report_html.count("<svg") >= 3  # radar, quality vs fidelity, latency vs resolution
    for title in ("Radar", "Quality vs fidelity", "Latency vs resolution"):
        assert f'data-title="{title}"' in report_html
    assert "Strength sweeps" in report_html and "s=1.5" in report_html  # the curve is annotated
    ids = re.findall(r'\bid="([^"]+)"', report_html)
    assert len(ids) == len(set(ids)), "element ids are unique across the inline plots"


def test_not_a_run_is_one_clear_line(tmp_path):
    with pytest.raises(BenchError, match="neither a run folder"):
        api.report([tmp_path], tmp_path / "r.html")
