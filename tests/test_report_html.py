"""report.html and trends.html in a real headless Chromium: the figures and incident cards render,
nothing is fetched, no console errors; a full-page screenshot of each is saved in the test's
tmp dir, and at 1280x800 the verdict fits the first screen (those screenshots kept in
test-artifacts/). No test installs Chromium: `make browser` does (tests/setup_chromium.sh), and `make test`
runs it first. Without Chromium these tests fail, or skip under `--browser-optional` (make test-fast)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import date
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


def _chromium(optional: bool) -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (browser and driver):
        missing = " and ".join(n for n, p in (("chromium", browser), ("chromedriver", driver)) if not p)
        reason = f"{missing} not found on PATH: `make browser` installs them"
        if optional:
            pytest.skip(reason)
        pytest.fail(reason, pytrace=False)
    return browser, driver


@pytest.fixture(scope="module")
def browser(request):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    optional = request.config.getoption("--browser-optional") and not os.environ.get("MMW_REQUIRE_BROWSER")
    binary, driver = _chromium(optional)  # make test sets MMW_REQUIRE_BROWSER: there it never skips
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


# a laptop's first screen: the headline and the suspect's own N_SMTP(i) against Dq must fit it
FIRST_SCREEN = (1280, 800)


def artefacts() -> Path:
    """Where the first-screen screenshots are kept for people to look at (CI uploads the folder):
    $MMW_TEST_ARTIFACTS, else test-artifacts/ in the checkout (ignored by git)."""
    out = Path(os.environ.get("MMW_TEST_ARTIFACTS") or ROOT / "test-artifacts")
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def clean_day(tmp_path_factory) -> Path:
    """A day of the simulator's clean scenario, at a quarter of the papers' volume: no worm."""
    from mmw_tasks import pipeline
    from mmw_tasks.simulate import simulate_site

    toml = simulate_site(tmp_path_factory.mktemp("clean"), date(2002, 2, 15), 1, scenario="clean", seed=5, scale=0.25)
    pipeline.run_day(toml, "2002-02-15", log=lambda m: None, mail=False)
    return toml


@pytest.mark.parametrize(("which", "day"), [("worm", "2002-02-16"), ("clean", "2002-02-15")])
def test_the_verdict_fits_the_first_screen(browser, klez_site, clean_day, which, day):
    """At 1280x800, unscrolled: the headline, and under it Dq against the suspect's own N_SMTP(i)
    (on a clean day, the site's); the screenshots are kept in artefacts()."""
    site = load_site(klez_site if which == "worm" else clean_day)
    folder = report_dir(site, day)
    rep = json.loads((folder / "report.json").read_text())
    w, h = FIRST_SCREEN
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": w, "height": h, "deviceScaleFactor": 1, "mobile": False}
    )
    try:
        browser.get(folder.as_uri() + "/report.html")
        assert browser.execute_script("return [window.innerWidth, window.innerHeight]") == [w, h]
        assert browser.save_screenshot(str(artefacts() / f"first-screen-{which}-{day}.png"))

        def bottom(el) -> float:
            return browser.execute_script("return arguments[0].getBoundingClientRect().bottom", el)

        verdict = browser.find_element("css selector", "#verdict ul.headline")
        assert bottom(verdict) <= h, "the whole headline is on the first screen"
        lines = [" ".join(li.text.split()) for li in verdict.find_elements("css selector", "li")]
        assert lines == (rep["headline"] or ["no incident needs attention"])
        charts = browser.find_elements("css selector", "#host-figure svg.chart")
        assert charts and all(bottom(c) <= h for c in charts), "Dq and the N_SMTP(i) under it, unscrolled"
        suspects = [i for i in rep["incidents"] if i["kind"] == "mmw_suspect"]
        assert bool(suspects) == (which == "worm")
        if suspects:
            ip = suspects[0]["client_ip"]
            assert ip in verdict.text and ip in browser.find_element("id", "host-figure").text
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


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
