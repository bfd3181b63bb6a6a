"""The report and the HTML leaderboard in a real browser: Debian's chromium driven by Playwright
through ``executable_path`` (never ``playwright install``). Checks: no console error, no network
request, every image decoded, the plots laid out, sorting by a column header works; screenshots are
saved (to ``$IRETOUCH_BENCH_SCREENSHOTS`` when set, else the test's temporary folder).

CI installs chromium with apt (.ci/run); under IRETOUCH_BENCH_STRICT=1 a missing browser is a
failure, not a skip.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from iretouch_bench import api

from test_leaderboard_runs import real_runs

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser")


def _chromium() -> str:
    exe = os.environ.get("IRETOUCH_BENCH_CHROMIUM") or next(
        (p for p in map(shutil.which, CHROMIUM_CANDIDATES) if p), None)
    if not exe:
        pytest.skip("no chromium on PATH (Debian: apt-get install -y chromium)")
    return exe


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    exe = _chromium()
    with sync_api.sync_playwright() as p:
        # --no-sandbox: CI runs as root, where chromium refuses its sandbox
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def _shots(tmp_path: Path) -> Path:
    d = Path(os.environ.get("IRETOUCH_BENCH_SCREENSHOTS") or tmp_path)
    d.mkdir(parents=True, exist_ok=True)
    return d


def _open(browser, path: Path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    events = {"console": [], "requests": [], "errors": []}
    page.on("console", lambda m: events["console"].append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: events["errors"].append(str(e)))
    page.on("request", lambda r: events["requests"].append(r.url))
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    return page, events


def _no_network(events, path: Path):
    own = path.resolve().as_uri()
    outside = [u for u in events["requests"] if u != own and not u.startswith("data:")]
    assert not outside, f"network requests: {outside[:5]}"
    assert not events["console"] and not events["errors"], events


def _column_values(page, table: str, col: int) -> list[str]:
    return page.eval_on_selector_all(f"{table} tbody tr", f"rows => rows.map(r => r.cells[{col}].textContent.trim())")


def test_report_in_chromium(browser, tmp_path):
    runs = real_runs()
    out = tmp_path / "report.html"
    api.report([runs["identity"], runs["ours"], runs["sweep"]], out)
    page, events = _open(browser, out)
    _no_network(events, out)
    # every picture decoded (a broken data: URI has naturalWidth 0)
    widths = page.eval_on_selector_all("img.thumb", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
    assert len(widths) == 20 and min(widths) > 0
    # plots laid out with a real size
    boxes = page.eval_on_selector_all("figure.plot svg", "s => s.map(e => e.getBoundingClientRect().width)")
    assert len(boxes) == 3 and min(boxes) > 200
    # sorting: click the id header twice -> ascending then descending
    ids_before = _column_values(page, "#samples", 0)
    page.click("#samples thead th:nth-child(1)")
    asc = _column_values(page, "#samples", 0)
    page.click("#samples thead th:nth-child(1)")
    desc = _column_values(page, "#samples", 0)
    assert asc == sorted(ids_before) and desc == sorted(ids_before, reverse=True)
    # a numeric column sorts as numbers (nulls last)
    page.click("#samples thead th:nth-child(5)")
    nums = [float(v) for v in _column_values(page, "#samples", 4) if v != "—"]
    assert nums == sorted(nums)
    # click a thumbnail: the larger copy opens
    page.click("img.thumb >> nth=0")
    assert page.eval_on_selector("#lightbox", "b => b.classList.contains('open')")
    assert page.eval_on_selector("#lightbox img", "i => i.naturalWidth") > 0
    page.click("#lightbox")
    d = _shots(tmp_path)
    page.screenshot(path=str(d / "report.png"), full_page=True)
    page.close()
    assert (d / "report.png").stat().st_size > 10_000


def test_html_leaderboard_in_chromium(browser, tmp_path):
    runs = real_runs()
    out = tmp_path / "leaderboard.html"
    out.write_text(api.leaderboard([runs["identity"], runs["ours"]], fmt="html", with_published=True, out_path=out),
                   encoding="utf-8")
    page, events = _open(browser, out)
    _no_network(events, out)
    assert page.locator("table.board").count() == 2
    assert "published" in page.locator("h2 >> nth=1").inner_text()
    # sort the published block by its SSIM column (ascending numbers, blanks last)
    heads = page.eval_on_selector_all("table.published thead th", "h => h.map(x => x.textContent.trim())")
    col = next(i for i, h in enumerate(heads) if h.startswith("SSIM"))
    page.click(f"table.published thead th:nth-child({col + 1})")
    vals = [float(v) for v in _column_values(page, "table.published", col)]
    assert vals == sorted(vals)
    page.screenshot(path=str(_shots(tmp_path) / "leaderboard.png"), full_page=True)
    page.close()
