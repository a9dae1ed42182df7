"""Shared fixtures. Airflow settings are read at import time, so the environment is set here,
before any test module can import airflow."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
_HOME = Path(tempfile.mkdtemp(prefix="mmw-airflow-home-"))
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")  # the timetable and notifiers
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME}/airflow.db"
os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", "mmw-test-" + "x" * 55)

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def sample_block(title_part: str) -> list[str]:
    """The lines of the sample-lines.txt block whose '## ' title contains `title_part`."""
    text = (Path(__file__).resolve().parent / "data" / "sample-lines.txt").read_text(errors="replace")
    blocks = re.split(r"^## ", text, flags=re.M)
    for b in blocks[1:]:
        title, _, body = b.partition("\n")
        if title_part in title:
            return [ln for ln in body.splitlines() if ln.strip() and not ln.startswith("# ")]
    raise KeyError(title_part)


def frame(lines: list[str], day: date = date(2002, 2, 16), tz: str = "UTC") -> pl.DataFrame:
    """Lines as the parsers receive them from ingest (framed, repeats expanded, tagged)."""
    from mmw_tasks.parse.stamps import YearAnchor, to_utc
    from mmw_tasks.parse.syslog import expand_repeats, frame_lines

    framed = frame_lines(pl.Series("line", lines), 1, YearAnchor(day))
    return to_utc(expand_repeats(framed, {}), tz).with_columns(server=pl.lit("test"), file=pl.lit("sample"))


@pytest.fixture(scope="session")
def klez_site(tmp_path_factory) -> Path:
    """A simulated 2-day klez site, parsed and analysed once for the session."""
    from mmw_tasks import pipeline
    from mmw_tasks.simulate import simulate_site

    out = tmp_path_factory.mktemp("klez")
    toml = simulate_site(out, date(2002, 2, 15), 2, scenario="klez", seed=7)
    for d in ("2002-02-15", "2002-02-16"):
        pipeline.run_day(toml, d, log=lambda m: None)
    return toml


@pytest.fixture(scope="session")
def truncated_site(klez_site, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The klez site's 2002-02-16 with its mail log cut after 13:04 (a truncated file: the rest of
    the day has no line of 1mx), run by `mmw run` as a user would; its toml and what it printed."""
    from datetime import datetime, timezone

    out = tmp_path_factory.mktemp("truncated")
    shutil.copytree(klez_site.parent / "logs", out / "logs")
    log = out / "logs" / "1mx" / "syslog.0"  # Feb 16 03:10 .. Feb 17 03:09
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(ln for ln in lines if ln[:12] <= "Feb 16 13:04"))
    when = datetime(2002, 2, 16, 13, 5, tzinfo=timezone(timedelta(hours=9))).timestamp()
    os.utime(log, (when, when))  # as syslogd leaves a file it stopped writing at 13:04
    toml = out / "site.toml"
    toml.write_text((klez_site.parent / "site.toml").read_text())
    r = subprocess.run(
        [sys.executable, "-m", "mmw_tasks", "run", "--config", str(toml), "--date", "2002-02-16"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return toml, r


HISTORY_START = date(2002, 1, 1)  # a Tuesday
HISTORY_DAYS = 42  # six weeks over two months: 14 days with the band's full 28 days of history
OUTBREAK_DAYS = (date(2002, 1, 12), date(2002, 1, 30), date(2002, 2, 5))  # Sat, Wed, Tue


def simulate_outbreaks(out: Path, start: date, days: int, outbreaks, seed: int, scale: float) -> Path:
    """The simulator's klez scenario with the worm at work on the `outbreaks` days only (the other
    days are the clean scenario's): planted incidents among quiet days, for a trends history."""
    from mmw_tasks.simulate import engine, scenarios, simulate_site

    class OnSomeDays(scenarios.Scenario):
        def start_day(self, d: int, weekday: int) -> None:
            super().start_day(d, weekday)
            if self.sim.origin + timedelta(days=d) not in outbreaks:
                self.worm_next = None

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine, "Scenario", OnSomeDays)
        return simulate_site(out, start, days, scenario="klez", seed=seed, scale=scale)


@pytest.fixture(scope="session")
def six_weeks(tmp_path_factory) -> Path:
    """HISTORY_DAYS simulated days at a quarter of the papers' volume, three worm outbreaks among
    them, backfilled day by day through every stage (trends, roll-ups, the trends page, the
    catalog): tests/test_trends.py and tests/test_analysts.py. Six weeks, not more: a backfill
    day costs more the longer the lake's history (1 s on the first days, 2 s by day 60), and six
    weeks hold what those tests check (two months, a fortnight of full-history bands, outbreaks
    before and after the band fills)."""
    from mmw_tasks import pipeline

    out = tmp_path_factory.mktemp("six_weeks")
    toml = simulate_outbreaks(out, HISTORY_START, HISTORY_DAYS, OUTBREAK_DAYS, seed=11, scale=0.25)
    for k in range(HISTORY_DAYS):
        pipeline.run_day(toml, HISTORY_START + timedelta(days=k), log=lambda m: None, mail=False)
    return toml


# -- running in parallel (pytest-xdist, make test-fast) ------------------------------------------
# Each worker is a process of its own: the environment above (AIRFLOW_HOME, its SQLite database,
# the temporary directories) is per worker, and so is every fixture. So that each expensive one is
# built once, `--dist loadfile` keeps a module's tests on one worker, and here it also keeps
# together the modules that use one of the session sites below; those go first, the costliest
# first. (xdist's loadgroup marks do nothing under pytest 9.2, which no longer reads the
# item._nodeid that xdist 3.8 rewrites: pytest-xdist issue 1386; once fixed, this can go.)
SHARED_SITES = ("six_weeks", "klez_site")  # the costliest first
BUILT_ON = {"truncated_site": "klez_site"}  # session fixtures made from one of the sites above


def _site_of_module() -> dict[str, str]:
    """{test module: the session site its tests or fixtures take}, read from the sources (the
    scheduler sees test ids only)."""
    out = {}
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        text = path.read_text()
        for name in (*SHARED_SITES, *BUILT_ON):
            if re.search(rf"^\s*def \w+\([^)]*\b{name}\b", text, flags=re.M):
                out.setdefault(f"tests/{path.name}", BUILT_ON.get(name, name))
    return out


def _group(nodeid: str, sites: dict[str, str]) -> str:
    module = nodeid.split("::", 1)[0]
    return sites.get(module, module)


@pytest.hookimpl(optionalhook=True)  # (a hook of pytest-xdist, which make test does without)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    sites = _site_of_module()

    class BySite(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid, sites)

    config.option.loadscopereorder = False  # the workers' order (below), not the number of tests
    return BySite(config, log)


def pytest_collection_modifyitems(config, items):
    """In an xdist worker, the session sites' tests first, the costliest first (the scheduler
    hands out the groups in this order; every worker sorts alike)."""
    if not hasattr(config, "workerinput"):
        return
    sites = _site_of_module()

    def rank(item) -> int:
        g = _group(item.nodeid, sites)
        return SHARED_SITES.index(g) if g in SHARED_SITES else len(SHARED_SITES)

    items.sort(key=rank)  # stable: each module keeps its order


# -- the browser test --------------------------------------------------------------------------
def pytest_addoption(parser):
    parser.addoption(
        "--browser-optional",
        action="store_true",
        help="skip the tests that need Chromium when it is not installed (make test-fast); "
        "without it they fail (make test, which installs it first: make browser)",
    )
