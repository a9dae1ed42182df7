"""The `mmw` command as a user types it: exit codes, one-line errors, sql output, backfill skips."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT
from test_sql_minisite import copy_minisite


def mmw(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mmw_tasks", *args], cwd=cwd, capture_output=True, text=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return copy_minisite(tmp_path_factory.mktemp("cli") / "site")


@pytest.fixture(scope="module")
def ran(site) -> subprocess.CompletedProcess:
    """`mmw run` of the mini site's day, once for the tests that need the day done (each command
    starts an interpreter whose imports alone take a CPU-second)."""
    return mmw("run", "--config", str(site), "--date", "2002-02-16")


def test_run_prints_the_headline_then_the_report_path(ran):
    assert ran.returncode == 0, ran.stderr
    *verdict, path = ran.stdout.strip().splitlines()
    assert path.endswith("reports/day=2002-02-16/report.json")
    rep = json.loads(open(path).read())
    assert rep["totals"]["dq"] == 8
    assert verdict == (rep["headline"] or ["no incident needs attention"])


def test_sql_formats(site, ran):
    r = mmw(
        "sql",
        "--config",
        str(site),
        "--format",
        "csv",
        "select server, sum(lines_read) as lines from line_accounting group by all order by server",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["server,lines", "1dns,9", "1mx,13"]
    j = json.loads(mmw("sql", "--config", str(site), "--format", "json", "select sum(dq) as dq from intervals").stdout)
    assert j == [{"dq": 8}]
    bad = mmw("sql", "--config", str(site), "select * from no_such_table")
    assert bad.returncode == 2 and "no_such_table" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_config_error_names_the_key(tmp_path, site):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(site.read_text().replace('format = "iplog"', 'format = "djbdns"'))
    r = mmw("run", "--config", str(cfg), "--date", "2002-02-16")
    assert r.returncode == 2
    assert "key 'format'" in r.stderr and "bad.toml" in r.stderr and "'1dns'" in r.stderr


def test_bad_usage_exits_2(site):
    assert mmw("run", "--config", str(site), "--date", "16/02/2002").returncode == 2
    assert mmw("frobnicate").returncode == 2


def test_day_without_files_fails_naming_server_and_day(site):
    r = mmw("run", "--config", str(site), "--date", "2002-03-20")
    assert r.returncode == 1
    assert "1dns" in r.stderr and "2002-03-20" in r.stderr and "messages" in r.stderr


def test_backfill_skips_days_done_unless_forced(site, ran):
    r = mmw("backfill", "--config", str(site), "--from", "2002-02-16", "--to", "2002-02-16")
    assert r.returncode == 0 and "0 run, 1 skipped" in r.stdout
    r = mmw("backfill", "--config", str(site), "--from", "2002-02-16", "--to", "2002-02-16", "--force")
    assert r.returncode == 0 and "1 run, 0 skipped" in r.stdout
