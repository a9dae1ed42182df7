"""Every SQL file under sql/ run on a small hand-written site whose answers were counted by hand.

The mini site (tests/fixtures/minisite) has a DNS server (iplog) and a mail server (sendmail,
qpopper), each rotated once during 2002-02-16 (Asia/Tokyo), with a repeat line, a truncated
to= line, a garbage line and lines of the days before and after.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from conftest import FIXTURES, ROOT

from mmw_tasks import lake, pipeline
from mmw_tasks import sql as sqlfiles

JST = timezone(timedelta(hours=9))
DAY = "2002-02-16"
MTIMES = {  # each file's last line, as syslogd leaves it
    "logs/1dns/messages.1": datetime(2002, 2, 16, 3, 9, 59, tzinfo=JST),
    "logs/1dns/messages": datetime(2002, 2, 17, 0, 0, 2, tzinfo=JST),
    "logs/1mx/syslog.0": datetime(2002, 2, 16, 3, 9, 59, tzinfo=JST),
    "logs/1mx/syslog": datetime(2002, 2, 17, 0, 0, 1, tzinfo=JST),
}


def copy_minisite(dst: Path) -> Path:
    shutil.copytree(FIXTURES / "minisite", dst)
    for rel, when in MTIMES.items():
        os.utime(dst / rel, (when.timestamp(), when.timestamp()))
    return dst / "site.toml"


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    toml = copy_minisite(tmp_path_factory.mktemp("mini") / "site")
    pipeline.run_day(toml, DAY, log=lambda m: None)
    return toml, lake.connect(toml.parent / "data_lake")


def test_every_sql_file_is_exercised():
    """A new SQL file must get a test here or in another test module."""
    names = {str(p.relative_to(sqlfiles.SQL_DIR).with_suffix("")) for p in sqlfiles.SQL_DIR.rglob("*.sql")}
    run_by_pipeline = {
        "aggregate/intervals",
        "aggregate/user_intervals",
        "aggregate/domain_deferrals",
        "model/model_fits",
        "trends/daily_trends",
        "views/_mmw_lake",
        "views/_lake_dataset",
        "views/_lake_dataset_overlay",
        "lake/view_names",
        "lake/lake_root",
        # the report's and trends' files: tests/test_report.py and tests/test_trends.py
        "report/top_sources",
        "report/host_intervals",
        "report/most_deferred_domain",
        "report/reverse_names",
        "report/evidence_lines",
        "report/dq_by_type",
        "trends/coefficient_bands",
        "trends/weekly_trends",
        "trends/monthly_trends",
        "views/_lake_rollup",
        "views/_mail_attributed",
        "views/_trends_rollup",
        # what the stages read back: the day's rows for the report, the fit, the trends page
        "model/day_fit",
        "report/day_intervals",
        "report/day_fit",
        "report/day_incidents",
        "trends/page_days",
        "trends/page_weeks",
        "trends/page_months",
        "trends/days_done",
        # the empty dns_queries of a site without a DNS server: tests/test_mail_only.py
        "views/dns_queries_none",
        # the hours a server has no line in: tests/test_gaps.py (on this mini site among others)
        "gaps/server_holes",
    }
    # the detect stage's queries (tests/test_detect.py checks what they find)
    run_by_pipeline |= {
        f"detect/{n}"
        for n in (
            "history_intervals",
            "history_fits",
            "day_clients",
            "judged_events",
            "entity_bins",
            "entity_evidence",
            "entity_history",
            "entity_hours",
            "entity_suspect_days",
            "novel_recipients",
            "address_book_day",
            "host_lookups",
            "learnt_relays",
            "dns_clients",
            "dns_client_day",
            "dns_client_history",
            "day_domain_deferrals",
            "deferral_history",
            "deferral_history_days",
            "deferral_onset",
            "retry_cadence",
            "query_lines",
            "domain_lines",
            "day_intervals",
            "day_user_intervals",
            "day_domain_deferrals",
            "run_note",
        )
    }
    views = {f"views/{v}" for v in lake.VIEWS}
    assert names - run_by_pipeline - views == set()


def test_files_chosen_for_the_day(mini):
    toml, _ = mini
    names = {s: [Path(f).name for f in pipeline.fetch(toml, s, DAY)["files"]] for s in ("1dns", "1mx")}
    assert names == {"1dns": ["messages.1", "messages"], "1mx": ["syslog.0", "syslog"]}


def test_line_accounting_counts_every_line_of_the_day(mini):
    _, con = mini
    acct = con.sql(
        "select server, parse_filename(file) as f, lines_read, parsed, ignored, malformed, "
        "repeats_expanded from line_accounting order by server, f"
    ).pl()
    assert acct.rows() == [
        ("1dns", "messages", 6, 4, 2, 0, 3),
        ("1dns", "messages.1", 3, 3, 0, 0, 0),
        ("1mx", "syslog", 10, 5, 3, 2, 2),
        ("1mx", "syslog.0", 3, 3, 0, 0, 0),
    ]
    bad = con.sql("select parse_filename(file), line_no, reason from malformed_lines order by line_no").fetchall()
    assert bad == [("syslog", 6, "to= line truncated (no delay=/stat=)"), ("syslog", 9, "no syslog header")]


def test_intervals(mini):
    _, con = mini
    iv = con.sql("select * exclude (site, day) from intervals order by interval_start").pl()
    assert iv.height == 144 and iv["interval_start"][0] == datetime(2002, 2, 15, 15, 0, tzinfo=UTC)
    busy = iv.filter(pl.sum_horizontal(pl.exclude("interval_start")) > 0)
    local = [t.astimezone(JST).strftime("%H:%M") for t in busy["interval_start"]]
    assert local == ["00:00", "03:00", "14:30"]
    cols = ["dq", "n_from", "n_to", "n_sent", "n_deferred", "n_pop", "n_user_unknown"]
    assert busy.select(cols).rows() == [(1, 0, 1, 1, 0, 1, 0), (2, 1, 0, 0, 0, 0, 0), (5, 1, 2, 1, 1, 1, 1)]


def test_user_intervals_attribute_rejections_to_the_sending_host(mini):
    _, con = mini
    ui = con.sql(
        "select sender, client_ip, n_from, n_to, n_deferred, n_user_unknown, n_recipients "
        "from user_intervals where hour(interval_start) = 5 order by sender nulls last"
    ).fetchall()
    assert ui == [("x@y.com", "10.1.3.77", 1, 1, 0, 1, 3), (None, None, 0, 1, 1, 0, 1)]


def test_domain_deferrals(mini):
    _, con = mini
    rows = con.sql(
        "select recipient_domain, sum(n_to), sum(n_sent), sum(n_deferred) from domain_deferrals group by 1 order by 1"
    ).fetchall()
    assert rows == [("bigisp.ne.jp", 1, 0, 1), ("example.ac.jp", 1, 1, 0), ("remote.com", 2, 2, 0)]


def test_model_fit_equals_direct_least_squares(mini):
    _, con = mini
    iv = con.sql("select dq, n_from, n_pop, n_deferred from intervals").pl()
    x = iv.select("n_from", "n_pop").to_numpy().astype(float)
    y = iv["dq"].to_numpy().astype(float)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ coef
    r2 = 1 - (resid**2).sum() / ((y - y.mean()) ** 2).sum()
    slope, _ = np.polyfit(iv["n_deferred"].to_numpy().astype(float), resid, 1)
    fit = con.sql("select * from model_fits").pl().row(0, named=True)
    assert fit["m_s"] == pytest.approx(coef[0], abs=1e-9) and fit["m_p"] == pytest.approx(coef[1], abs=1e-9)
    assert fit["r2"] == pytest.approx(r2, abs=1e-9)
    assert fit["m_sd"] == pytest.approx(slope, abs=1e-9)
    # q: 1 of the 4 distinct recipients delivered locally; n = (m_s - 2) / (4 (1 - q))
    assert fit["q"] == pytest.approx(0.25)
    assert fit["n"] == pytest.approx((coef[0] - 2) / 3)


def test_daily_trends_row(mini):
    _, con = mini
    row = con.sql("select * from daily_trends").pl().row(0, named=True)
    assert (row["site"], row["day"], row["dq"], row["n_from"], row["n_to"], row["n_pop"]) == (
        "mini",
        date(2002, 2, 16),
        8,
        2,
        3,
        2,
    )


def test_entity_counts_and_evidence(mini):
    """pc77's one message: its refused recipient (logged before the from=, tied by queue id), its
    two delivered ones, its foreign sender, as the detect stage's per-bin counts and evidence."""
    toml, con = mini
    from mmw_tasks.config import load_site
    from mmw_tasks.detect import features
    from mmw_tasks.parse.stamps import local_day_bounds

    site, day = load_site(toml), date(2002, 2, 16)
    start, _ = local_day_bounds(day, site.timezone)
    ents = features.gather(con, site, day, start, day - timedelta(days=28))
    pc = ents.bins.filter(pl.col("client_ip") == "10.1.3.77").row(0, named=True)
    assert pc["sender"] is None and pc["client_kind"] == "local"
    assert pc["bin"] == datetime(2002, 2, 16, 5, 30, tzinfo=UTC)
    got = {k: pc[k] for k in ("messages", "user_unknown", "attempts", "new_senders", "new_foreign_senders")}
    assert got == {"messages": 1, "user_unknown": 1, "attempts": 3, "new_senders": 1, "new_foreign_senders": 1}
    assert (pc["new_recipients"], pc["new_domains"], pc["refused"]) == (3, 2, 1)
    # remote clients are not judged: nothing to unplug
    assert "remote" not in set(ents.bins["client_kind"]) and "1.2.3.4" not in set(ents.bins["client_ip"])
    span = pl.DataFrame(
        {
            "client_ip": ["10.1.3.77"],
            "sender": [None],
            "span_start": [pc["bin"]],
            "span_end": [pc["bin"] + timedelta(minutes=10)],
        },
        schema_overrides={"sender": pl.String},
    )
    con.register("candidates", span.to_arrow())
    act = sqlfiles.query(con, "detect/entity_evidence", {"local_domains": ["example.ac.jp"]}).pl().row(0, named=True)
    assert (act["messages"], act["user_unknown"], act["recipients_attempted"], act["distinct_senders"]) == (1, 1, 3, 1)
    assert (act["distinct_recipients"], act["recipient_domains"], act["foreign_sender_messages"]) == (3, 2, 1)
    assert sorted(ln["line_no"] for ln in act["sample_lines"]) == [2, 3]


def test_rerun_replaces_partitions(mini):
    toml, con = mini

    def parts() -> dict[Path, bytes]:  # the public paths (the day's files are under .days/, by generation)
        lake_dir = toml.parent / "data_lake"
        return {p: p.read_bytes() for p in lake_dir.rglob("*.parquet") if ".days" not in p.relative_to(lake_dir).parts}

    before = parts()
    pipeline.run_day(toml, DAY, log=lambda m: None)
    after = parts()
    assert after == before  # the same parts, the same bytes
    con2 = lake.connect(toml.parent / "data_lake")
    assert (
        con2.sql("select count(*) from mail_events").fetchone()[0]
        == con.sql("select count(*) from mail_events").fetchone()[0]
    )
    assert not list((toml.parent / "data_lake").rglob("*.tmp"))


def test_mail_attributed_puts_a_refused_recipient_on_the_host_that_sent_it(mini):
    """The "User unknown" line comes before its from= and names no host; the analysts' macro (in
    the session and in the catalog file) ties it to pc77 through the queue id."""
    toml, con = mini
    q = "select host_ip, msg_sender, recipient from mail_attributed(date '2002-02-16') where status = 'user_unknown'"
    assert con.sql(q).fetchall() == [("10.1.3.77", "x@y.com", "nouser@example.ac.jp")]
    catalog = duckdb.connect(str(lake.write_catalog(toml.parent / "data_lake")), read_only=True)
    try:
        assert catalog.sql(q).fetchall() == [("10.1.3.77", "x@y.com", "nouser@example.ac.jp")]
    finally:
        catalog.close()


def test_catalog_of_a_lake_whose_path_has_quotes(mini, tmp_path):
    """The catalog stores the lake's path as a SQL literal: a quote in it stays itself."""
    toml, con = mini
    moved = tmp_path / "o'brien's lake"
    shutil.copytree(toml.parent / "data_lake", moved, ignore=shutil.ignore_patterns(lake.CATALOG))
    lake.write_catalog(moved)
    assert lake.catalog_is_current(moved)
    catalog = duckdb.connect(str(moved / lake.CATALOG), read_only=True)
    try:
        q = "select count(*) from mail_events"
        assert catalog.sql(q).fetchone()[0] == con.sql(q).fetchone()[0] > 0
    finally:
        catalog.close()


def test_the_lake_readme_recipe_makes_a_view(mini):
    """data_lake/README.md's lines for any DuckDB (SET VARIABLE, then .read of sql/views/ files)."""
    toml, con = mini
    readme = (ROOT / "data_lake" / "README.md").read_text()
    recipe = readme.split("in any DuckDB:\n\n```sql\n", 1)[1].split("```", 1)[0].splitlines()
    plain = duckdb.connect()
    for line in recipe:
        if line.startswith("SET VARIABLE mmw_lake"):
            plain.execute("SET VARIABLE mmw_lake = ?", [str(toml.parent / "data_lake")])
        elif line.startswith(".read "):
            plain.execute((ROOT / line.split()[1]).read_text())
    q = "select event, count(*) from mail_events group by all order by all"
    assert plain.sql(q).fetchall() == con.sql(q).fetchall()
