"""One simulated site across New Year (logs from 2001-12-30 to 2002-01-02), re-rotated each way
real servers rotate (logrotate numbered + delaycompress, logrotate dateext + gz, BSD/Solaris
newsyslog, bzip2, xz): every layout gives the day totals the simulator wrote in truth.json."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest
from logsite import SCHEMES, LogSite, simulated_servers, write_scheme

from mmw_tasks import pipeline
from mmw_tasks.simulate import simulate_site

DAYS = (date(2001, 12, 31), date(2002, 1, 1))
pytestmark = pytest.mark.integration  # twelve days through every stage: make test only (not test-fast)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    toml = simulate_site(out, DAYS[0], len(DAYS), scenario="klez", seed=3, scale=0.1)
    truth = json.loads((out / "truth.json").read_text())
    return toml, truth, simulated_servers(toml)


def _totals(toml: Path, day: date) -> dict:
    """The day's report totals, less `partial` (checked false: every day of these sites is whole)."""
    out = pipeline.run_day(toml, day, log=lambda m: None)
    totals = json.loads(Path(out["report"]["report"]).read_text())["totals"]
    assert totals.pop("partial") is False, day
    return totals


def test_simulated_site_as_written(simulated):
    toml, truth, _ = simulated
    for d in DAYS:
        assert _totals(toml, d) == truth["days"][str(d)]["totals"], d


@pytest.mark.parametrize("scheme", SCHEMES)
def test_each_rotation_scheme_gives_the_simulated_days(simulated, tmp_path, scheme):
    toml, truth, servers = simulated
    site = LogSite(tz=truth["timezone"], servers=servers, truth={})
    globs = write_scheme(site, tmp_path / "logs", scheme, style="raw")
    cfg = toml.read_text()
    for name, glob in globs.items():
        cfg = re.sub(rf'(name = "{name}"[^\[]*?source = )"[^"]*"', rf'\1"logs/{glob}"', cfg, flags=re.S)
    (tmp_path / "site.toml").write_text(cfg)
    names = sorted(p.name for p in (tmp_path / "logs" / "1mx").iterdir())
    assert len(names) >= 4, names  # several rotated files, named the scheme's way
    for d in DAYS:
        assert _totals(tmp_path / "site.toml", d) == truth["days"][str(d)]["totals"], (scheme, d, names)
