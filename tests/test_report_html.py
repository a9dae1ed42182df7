"""report.html and trends.html in a real headless Chromium: the figures and incident cards render,
nothing is fetched, no console errors; a full-page screenshot of each is saved in the test's
tmp dir (tests/setup_chromium.sh installs Chromium and its driver; `make test` runs it)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import ROOT

from mmw_tasks.config import load_site
from mmw_tasks.report.model import report_dir
from mmw_tasks.report.trends import page_path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (browser and driver):  # a machine the Makefile did not prepare: install as the Makefile does
        subprocess.run(["bash", str(ROOT / "tests/setup_chromium.sh")], check=True)
        browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert browser and driver, "Chromium and chromedriver are needed (tests/setup_chromium.sh)"
    return browser, driver


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = _chromium()
    profile = tempfile.mkdtemp(prefix="mmw-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for f in (*FLAGS, f"--user-data-dir={profile}", "--window-size=1000,1000"):
        opts.add_argument(f)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(driver), options=opts)
    yield d
    d.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _open(d, path: Path, shot: Path) -> list[dict]:
    """Load a page, screenshot it whole, return the console messages."""
    d.get_log("browser")  # drop what an earlier page left
    d.get(path.as_uri())
    height = d.execute_script("return document.documentElement.scrollHeight")
    d.set_window_size(1000, min(height + 40, 12000))
    assert d.save_screenshot(str(shot))
    return d.get_log("browser")


def _box(d, el) -> dict:
    return d.execute_script("const r = arguments[0].getBoundingClientRect(); return {w: r.width, h: r.height};", el)


def test_report_renders_figures_and_cards(browser, klez_site, tmp_path):
    site = load_site(klez_site)
    folder = report_dir(site, "2002-02-16")
    rep = json.loads((folder / "report.json").read_text())
    shot = tmp_path / "report-2002-02-16.png"
    logs = _open(browser, folder / "report.html", shot)
    assert [m for m in logs if m["level"] in ("SEVERE", "WARNING")] == []
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    css = browser.find_elements
    figure1 = css("css selector", "#figure1 svg.chart")
    assert len(figure1) == 3
    for svg in figure1 + css("css selector", "#figure2 svg.chart") + css("css selector", "#model svg.chart"):
        box = _box(browser, svg)
        assert box["w"] > 200 and box["h"] > 100, "every figure is drawn at a readable size"
    assert len(css("css selector", "#figure1 polyline.series")) >= 3
    cards = css("css selector", "article.incident-card")
    attention = [i for i in rep["incidents"] if i["kind"] in ("mmw_suspect", "deferred_surge", "dns_anomaly")]
    assert len(cards) == len(attention) >= 1
    assert all(c.is_displayed() and _box(browser, c)["h"] > 80 for c in cards)
    benign = css("css selector", "li.incident-line > details > summary")
    assert len(benign) == len(rep["incidents"]) - len(attention)
    assert all(c.is_displayed() and _box(browser, c)["h"] < 40 for c in benign), "one line each"
    worm = next(i for i in rep["incidents"] if i["kind"] == "mmw_suspect")
    card = browser.find_element("id", f"incident-{worm['number']}")
    raw = worm["raw_lines"][0]["text"][:40]
    assert worm["client_ip"] in card.text and raw not in card.text, "the log lines are behind <details>"
    card.find_element("css selector", "details.raw summary").click()
    assert raw in card.text, "and open with a click"
    markers = css("css selector", f"#figure1 g.incident-marker[data-incident='incident-{worm['number']}'] rect")
    assert len(markers) == 3 and all(_box(browser, m)["w"] > 1 for m in markers)
    assert shot.stat().st_size > 50_000


def test_trends_page_renders(browser, klez_site, tmp_path):
    shot = tmp_path / "trends.png"
    logs = _open(browser, page_path(load_site(klez_site)), shot)
    assert [m for m in logs if m["level"] in ("SEVERE", "WARNING")] == []
    charts = browser.find_elements("css selector", "svg.chart")
    assert len(charts) >= 5 + 6 + 1
    assert all(_box(browser, c)["w"] > 200 for c in charts)
    rows = browser.find_elements("css selector", "#days tr[id^='day-']")
    assert [r.get_attribute("id") for r in rows] == ["day-2002-02-16", "day-2002-02-15"]
    # every table fits the page: none wider than the column, nothing to scroll sideways
    overflow = browser.execute_script(
        """const main = document.querySelector('main').getBoundingClientRect();
        return [...document.querySelectorAll('table')].map(t => [t.closest('section').id,
            Math.round(t.getBoundingClientRect().right - main.right), t.parentElement.scrollWidth
            - t.parentElement.clientWidth]).filter(([, right, scroll]) => right > 0 || scroll > 0);"""
    )
    assert overflow == [], "(section, px beyond the page, px to scroll)"
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    assert shot.stat().st_size > 30_000
