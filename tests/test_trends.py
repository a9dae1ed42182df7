"""Trends over a six-week simulated backfill: daily_trends and its weekly and monthly roll-ups add
up, the planted incidents show on the trends page, the m_s band is stable, and the DuckDB catalog
file opens from any directory with plain duckdb."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from conftest import HISTORY_DAYS, HISTORY_START, OUTBREAK_DAYS

from mmw_tasks import lake, pipeline
from mmw_tasks import sql as sqlfiles
from mmw_tasks.config import load_site
from mmw_tasks.report.model import band_params, fit_problems
from mmw_tasks.report.trends import page_path

DAYS = [HISTORY_START + timedelta(days=k) for k in range(HISTORY_DAYS)]


@pytest.fixture(scope="module")
def hist(six_weeks):
    site = load_site(six_weeks)
    con = lake.connect(site.lake)
    return {
        "site": site,
        "con": con,
        "toml": six_weeks,
        "daily": con.sql("select * from daily_trends order by day").pl(),
        "truth": json.loads((six_weeks.parent / "truth.json").read_text()),
    }


def planted_worm_days(truth: dict) -> dict[date, set[str]]:
    """{day: infected hosts} of the outbreaks the simulator planted (truth.json)."""
    out: dict[date, set[str]] = {}
    for day, d in truth["days"].items():
        for i in d["incidents"]:
            if i["kind"] == "mmw_suspect":
                out.setdefault(date.fromisoformat(day), set()).add(i["client_ip"])
    return out


def test_every_day_has_a_trend_row(hist):
    assert hist["daily"]["day"].to_list() == DAYS
    assert hist["daily"]["m_s"].null_count() == 0


def test_no_day_has_a_gap(hist):
    """Weekdays and weekends at a quarter of the papers' traffic, outbreaks among them: no server
    is silent long enough around busy hours to be a gap (tests/test_gaps.py), no day is partial."""
    reports = [json.loads(p.read_text()) for p in sorted((hist["site"].lake / "reports").glob("day=*/report.json"))]
    assert len(reports) == HISTORY_DAYS
    assert [r["day"] for r in reports if r["gaps"] or r["partial"] or r["totals"]["partial"]] == []


@pytest.mark.parametrize(
    ("dataset", "key", "label"),
    [
        ("weekly_trends", "week", pl.col("day").dt.strftime("%G-W%V")),
        ("monthly_trends", "month", pl.col("day").dt.strftime("%Y-%m")),
    ],
)
def test_rollups_add_up_to_the_days(hist, dataset, key, label):
    got = hist["con"].sql(f"select * from {dataset} order by {key}").pl()
    want = (
        hist["daily"]
        .group_by(label.alias(key))
        .agg(
            pl.len().alias("days"),
            pl.col("n_from", "dq", "n_user_unknown", "n_mmw_suspect").sum(),
            pl.col("m_s").median().alias("m_s"),
            pl.col("m_s").max().alias("m_s_max"),
        )
        .sort(key)
    )
    assert got[key].to_list() == want[key].to_list()
    for c in ("days", "n_from", "dq", "n_user_unknown", "n_mmw_suspect"):
        assert got[c].cast(pl.Int64).to_list() == want[c].cast(pl.Int64).to_list(), c
    assert got["m_s"].to_list() == pytest.approx(want["m_s"].to_list())
    assert got["m_s_max"].to_list() == pytest.approx(want["m_s_max"].to_list())
    parts = sorted(p.parent.name for p in (hist["site"].lake / dataset).glob("*/part-0.parquet"))
    assert parts == [f"{key}={v}" for v in want[key]]


def test_rerun_replaces_the_week_and_month(hist):
    before = hist["con"].sql("select week, days, n_from from weekly_trends order by week").fetchall()
    pipeline.trends(hist["toml"], DAYS[-1])
    assert hist["con"].sql("select week, days, n_from from weekly_trends order by week").fetchall() == before


def test_planted_incidents_show_in_the_trends(hist):
    worms = planted_worm_days(hist["truth"])
    assert sorted(worms) == list(OUTBREAK_DAYS), "the simulator planted the outbreaks asked for"
    flagged = dict(hist["daily"].select("day", "n_mmw_suspect").iter_rows())
    for day, hosts in worms.items():
        assert flagged[day] >= 1, f"{day}: planted outbreak not in daily_trends"
        found = {
            r[0]
            for r in hist["con"]
            .sql("select client_ip from incidents where day = $d and kind = 'mmw_suspect'", params={"d": day})
            .fetchall()
        }
        assert hosts <= found
    false_alarms = [d for d, n in flagged.items() if n and d not in worms]
    assert len(false_alarms) <= 1, false_alarms
    page = page_path(hist["site"]).read_text()
    for day in worms:
        assert f'data-incident="day-{day}"' in page, f"{day} is marked on the trends page"
        assert f'id="day-{day}"' in page
    assert page.count("<svg") >= 12


def test_m_s_band_is_stable(hist):
    """With a month of history the band settles: on weekdays (the days with most of the history)
    its centre wanders by a small part of its width, its width stays put, and no quiet day with a
    reliable fit leaves it (the outbreak days may)."""
    r = hist["site"].report
    bands = (
        sqlfiles.query(hist["con"], "trends/coefficient_bands", band_params(hist["site"]))
        .pl()
        .filter(pl.col("coefficient") == "m_s")
    )
    settled = bands.filter((pl.col("day") >= DAYS[r.history_days]) & (pl.col("day_kind") == "weekday"))
    assert settled.height == sum(d.weekday() < 5 for d in DAYS[r.history_days :])
    assert settled["history_days"].min() >= r.min_history
    centre, half = settled["median"], (settled["hi"] - settled["lo"]) / 2
    assert 6 < centre.mean() < 14, "m_s is about the papers' 8 to 9 DNS queries per SMTP access"
    # the centre rests on the reliable weekdays only (9 to 14 here; a quarter-size site's m_p is
    # often below 0): it wanders by about a quarter of the half-width (0.26 on this lake)
    assert centre.max() - centre.min() < half.mean() / 3, "the centre barely moves"
    # nor does the width stray from the one every reliable fit of the run gives (each kind of day
    # about its own median): the band breathes, but within a factor of 2 of that width
    fits = hist["con"].sql("select day, m_s, m_p, r2, q, n from model_fits").pl().iter_rows(named=True)
    kept = [(f["day"].weekday() >= 5, f["m_s"]) for f in fits if not fit_problems(f, r.min_r2)]
    strays = np.concatenate(
        [np.abs(v - np.median(v)) for v in (np.array([m for w, m in kept if w == we]) for we in (False, True))]
    )
    whole = r.band_k * 1.4826 * float(np.median(strays))
    assert whole / 2 < half.min() and half.max() < 2 * whole, "nor does the width"
    worms = planted_worm_days(hist["truth"])
    quiet = bands.filter(
        ~pl.col("day").is_in(list(worms)) & (pl.col("history_days") >= r.min_history) & pl.col("reliable")
    )
    assert quiet.filter(pl.col("drift")).height == 0
    assert quiet.filter((pl.col("value") < pl.col("lo")) | (pl.col("value") > pl.col("hi"))).height == 0
    # the daily report of the last day carries the same band, and the trends page draws it
    rep = json.loads((hist["site"].lake / "reports" / f"day={DAYS[-1]}" / "report.json").read_text())
    last = bands.filter(pl.col("day") == DAYS[-1]).row(0, named=True)
    assert rep["history"]["coefficients"]["m_s"]["lo"] == pytest.approx(last["lo"])
    assert "m_s" not in rep["history"]["drift"] and not rep["history"]["too_short"]
    page = page_path(hist["site"]).read_text()
    assert page.count('<g class="band"') == 5, "one band per coefficient chart"


def test_unreliable_fits_are_marked_on_the_trends_page(hist):
    """A day whose fit is unreliable (a negative coefficient, or R² below [report] min_r2) is a
    grey dot on the coefficient charts and says so in the days' table."""
    site = hist["site"]
    fits = hist["con"].sql("select day, m_s, m_p, r2, q, n from model_fits order by day").pl()
    unreliable = [f["day"] for f in fits.iter_rows(named=True) if fit_problems(f, site.report.min_r2)]
    assert unreliable, "a quarter-size site has noisy fits: m_p below 0 on some days"
    page = page_path(site).read_text()
    assert page.count('class="point unreliable"') == len(unreliable) * 5, "one dot per coefficient chart"
    for day in unreliable:
        row = re.search(rf'<tr id="day-{day}">.*?</tr>', page, re.S).group(0)
        assert "unreliable" in row


PLAIN_DUCKDB = """
import json, sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print(json.dumps({v: con.sql(f"select count(*) from {v}").fetchone()[0] for v in sys.argv[2:]}))
"""


def _counts_with_plain_duckdb(catalog, views, cwd) -> dict:
    r = subprocess.run(
        [sys.executable, "-c", PLAIN_DUCKDB, str(catalog), *views],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_catalog_opens_from_another_directory(hist, tmp_path):
    views = [
        "mail_events",
        "dns_queries",
        "intervals",
        "user_intervals",
        "daily_trends",
        "incidents",
        "line_accounting",
        "weekly_trends",
        "monthly_trends",
    ]
    want = {v: hist["con"].sql(f"select count(*) from {v}").fetchone()[0] for v in views}
    assert min(want.values()) > 0
    catalog = hist["site"].lake / lake.CATALOG
    assert _counts_with_plain_duckdb(catalog, views, tmp_path) == want
    assert lake.catalog_is_current(hist["site"].lake)


def test_catalog_follows_a_moved_lake(hist, tmp_path):
    moved = tmp_path / "elsewhere" / "lake"
    shutil.copytree(hist["site"].lake, moved)
    assert not lake.catalog_is_current(moved), "the copied catalog still points at the old lake"
    lake.write_catalog(moved)
    assert lake.catalog_is_current(moved)
    shutil.rmtree(moved / "daily_trends" / f"day={DAYS[0]}")  # only the copy loses a day
    got = _counts_with_plain_duckdb(moved / lake.CATALOG, ["daily_trends"], tmp_path)
    assert got == {"daily_trends": HISTORY_DAYS - 1}
