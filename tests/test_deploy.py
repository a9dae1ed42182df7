"""Deployment pieces without a running Airflow: the local-day timetable, per-site DAGs from the
environment, the new config keys, and the missing-server policy in `mmw run`."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pendulum
import pytest
from conftest import ROOT
from test_sql_minisite import copy_minisite

from mmw_tasks import pipeline
from mmw_tasks.config import ConfigError, load_site
from mmw_tasks.deploy import dag_sites

sys.path.insert(0, str(ROOT / "plugins"))


def _timetable(tz="Asia/Tokyo", run_at="06:30"):
    from mmw_airflow import LocalDayTimetable

    return LocalDayTimetable(tz, run_at)


def _days_between(tt, earliest, latest):
    from airflow.timetables.base import TimeRestriction

    out, last = [], None
    while info := tt.next_dagrun_info(
        last_automated_data_interval=last, restriction=TimeRestriction(earliest, latest, catchup=True)
    ):
        out.append(info)
        last = info.data_interval
    return out


def test_backfill_dates_are_the_sites_local_days_in_any_timezone():
    """`backfill create --from-date 2002-02-16 --to-date 2002-02-18` must run exactly those local days,
    east and west of UTC, whatever offset the bounds arrive with."""
    utc = pendulum.UTC
    for tz in ("Asia/Tokyo", "America/New_York", "UTC"):
        tt = _timetable(tz)
        for lo, hi in (
            (pendulum.datetime(2002, 2, 16, tz=utc), pendulum.datetime(2002, 2, 18, tz=utc)),
            (pendulum.datetime(2002, 2, 16, tz=tz), pendulum.datetime(2002, 2, 18, tz=utc)),
        ):
            infos = _days_between(tt, lo, hi)
            days = [tt.day_of(i.data_interval.start) for i in infos]
            assert days == [dt.date(2002, 2, 16), dt.date(2002, 2, 17), dt.date(2002, 2, 18)], (tz, lo)
    jst = _timetable("Asia/Tokyo")
    info = _days_between(jst, pendulum.datetime(2002, 2, 16), pendulum.datetime(2002, 2, 16))[0]
    assert info.data_interval.start == pendulum.datetime(2002, 2, 16, tz="Asia/Tokyo")
    assert info.data_interval.end == pendulum.datetime(2002, 2, 17, tz="Asia/Tokyo")
    assert info.run_after == pendulum.datetime(2002, 2, 17, 6, 30, tz="Asia/Tokyo")


def test_dst_days_are_23_and_25_hours_and_run_at_local_time():
    ny = _timetable("America/New_York", "07:15")
    spring = ny.interval_of(dt.date(2024, 3, 10))
    autumn = ny.interval_of(dt.date(2024, 11, 3))
    assert spring.end - spring.start == dt.timedelta(hours=23)
    assert autumn.end - autumn.start == dt.timedelta(hours=25)
    run = pendulum.instance(ny.run_after_of(dt.date(2024, 3, 10))).in_timezone("America/New_York")
    assert (run.date(), run.hour, run.minute) == (dt.date(2024, 3, 11), 7, 15)


def test_manual_run_and_scheduler_without_catchup():
    from airflow.timetables.base import TimeRestriction

    tt = _timetable("Asia/Tokyo")
    manual = tt.infer_manual_data_interval(run_after=pendulum.datetime(2002, 2, 17, 6, 30, tz="Asia/Tokyo"))
    assert tt.day_of(manual.start) == dt.date(2002, 2, 16)
    # no catchup: a DAG unpaused today runs the latest day whose morning run time has passed, once
    info = tt.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(pendulum.datetime(2000, 1, 1), None, catchup=False),
    )
    now = pendulum.now("Asia/Tokyo")
    assert info.run_after <= now < info.run_after + dt.timedelta(days=1)
    # an end date stops the scheduler, not backfills
    assert (
        tt.next_dagrun_info(
            last_automated_data_interval=None,
            restriction=TimeRestriction(pendulum.datetime(2002, 2, 15), pendulum.datetime(2002, 2, 17), catchup=False),
        )
        is None
    )


def test_timetable_survives_serialization_and_names_runs_by_day():
    """The scheduler stores DAGs serialized; an unregistered timetable would fail right here."""
    from airflow.serialization.decoders import decode_timetable
    from airflow.serialization.encoders import encode_timetable
    from airflow.utils.types import DagRunType

    tt = _timetable("Asia/Tokyo", "05:45")
    back = decode_timetable(encode_timetable(tt))
    assert back.serialize() == {"timezone": "Asia/Tokyo", "run_at": "05:45"}
    info = back.info_for(dt.date(2002, 2, 16))
    assert (
        back.generate_run_id(run_type=DagRunType.SCHEDULED, run_after=info.run_after, data_interval=info.data_interval)
        == "scheduled__2002-02-16"
    )


def _site_with(tmp_path: Path, name: str, extra: str = "") -> Path:
    toml = copy_minisite(tmp_path / name)
    toml.write_text(toml.read_text().replace('name = "mini"', f'name = "{name}"') + extra)
    return toml


def test_one_dag_pair_per_site_from_the_environment(tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    for n in ("north", "south"):
        _site_with(tmp_path / "sites", n, '\n[schedule]\nrun_at = "05:10"\nfetch_retries = 2\n')
    monkeypatch.setenv("MMW_SITE_CONFIGS", str(tmp_path / "sites" / "*" / "site.toml"))
    monkeypatch.setenv("MMW_SITE_CONFIG", str(copy_minisite(tmp_path / "main")))
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {
        "mmw_daily",
        "mmw_trends",
        "mmw_daily__north",
        "mmw_trends__north",
        "mmw_daily__south",
        "mmw_trends__south",
        "mmw_intraday",
        "mmw_intraday__north",
        "mmw_intraday__south",
    }
    north = bag.dags["mmw_daily__north"]
    assert north.timetable.serialize() == {"timezone": "Asia/Tokyo", "run_at": "05:10"}
    assert north.get_task("fetch").retries == 2 and north.get_task("fetch").retry_exponential_backoff
    assert north.get_task("detect").depends_on_past and north.get_task("trends").depends_on_past
    assert not north.get_task("parse").depends_on_past
    assert north.params["config"] == str(tmp_path / "sites" / "north" / "site.toml")
    # the day's datasets are announced by the commit that makes them visible, not by the stages
    outlets = {a.name for a in north.get_task("commit").outlets}
    assert "mmw/north/daily_trends" in outlets and "mmw/north/reports" in outlets
    assert not north.get_task("trends").outlets and not north.get_task("parse").outlets
    trends = bag.dags["mmw_trends__north"]
    assert {a.name for a in trends.timetable.asset_condition.objects} == {"mmw/north/daily_trends"}


def test_broken_site_config_is_an_import_error_naming_the_key(tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    bad = _site_with(tmp_path, "bad", '\n[schedule]\nrun_at = "6.30"\n')
    monkeypatch.setenv("MMW_SITE_CONFIG", str(bad))
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    errors = "\n".join(bag.import_errors.values())
    assert "run_at" in errors and "bad" in errors and "mmw_daily" not in bag.dag_ids


@pytest.mark.parametrize(
    "extra, key",
    [
        ("[site]\n", None),
        ('[schedule]\nfetch_retry_delay = "soon"\n', "fetch_retry_delay"),
        ("[schedule]\nstart = 2002-02-20\nend = 2002-02-10\n", "end"),
        ('[notify]\nwebhook = "ftp://x"\n', "webhook"),
        ('[notify]\nemial = ["a@b"]\n', "emial"),
    ],
)
def test_deployment_keys_are_checked(tmp_path, extra, key):
    toml = copy_minisite(tmp_path / "s")
    text = toml.read_text()
    if key is None:  # on_missing_server goes into [site]
        toml.write_text(text.replace('interval = "10m"', 'interval = "10m"\non_missing_server = "maybe"'))
        key = "on_missing_server"
    else:
        toml.write_text(text + "\n" + extra)
    with pytest.raises(ConfigError, match=key):
        load_site(toml)


def test_deployment_keys_parse(tmp_path):
    toml = copy_minisite(tmp_path / "s")
    toml.write_text(
        toml.read_text().replace('interval = "10m"', 'interval = "10m"\non_missing_server = "partial"')
        + '\n[schedule]\nrun_at = "07:05"\nstart = 2002-02-01\ncatchup = true\nfetch_retry_delay = "30s"\n'
        + '[notify]\nemail = "noc@example.ac.jp"\nwebhook = "https://chat.example/hook"\n'
    )
    site = load_site(toml)
    assert site.on_missing_server == "partial"
    assert (site.schedule.run_at, site.schedule.start, site.schedule.catchup) == (
        "07:05",
        dt.date(2002, 2, 1),
        True,
    )
    assert site.schedule.fetch_retry_delay == dt.timedelta(seconds=30)
    assert site.notify.email == ("noc@example.ac.jp",) and site.notify.enabled
    assert (
        dag_sites({"MMW_SITE_CONFIG": str(toml)})[0].asset("intervals")[1]
        == (tmp_path / "s" / "data_lake" / "intervals").resolve().as_uri()
    )


def test_missing_server_fails_the_day_naming_it(tmp_path):
    toml = copy_minisite(tmp_path / "s")
    toml.write_text(toml.read_text().replace("logs/1dns/messages*", "logs/gone/messages*"))
    with pytest.raises(pipeline.MissingServersError) as e:
        pipeline.settle(toml, "2002-02-16", ["1mx"], {"1dns": "SourceError: no file covers 2002-02-16"})
    assert "1dns" in str(e.value) and "2002-02-16" in str(e.value) and "fail" in str(e.value)
    with pytest.raises(Exception, match="1dns"):  # mmw run: the same, exit 1
        pipeline.run_day(toml, "2002-02-16", log=lambda m: None)
    assert not (tmp_path / "s/data_lake/reports/day=2002-02-16/report.json").exists()


def test_partial_policy_reports_the_servers_that_arrived_and_says_so(tmp_path):
    toml = copy_minisite(tmp_path / "s")
    full = pipeline.run_day(toml, "2002-02-16", log=lambda m: None)["report"]
    assert full["partial"] is False
    toml.write_text(
        toml.read_text()
        .replace("logs/1dns/messages*", "logs/gone/messages*")
        .replace('interval = "10m"', 'interval = "10m"\non_missing_server = "partial"')
    )
    out = pipeline.run_day(toml, "2002-02-16", log=lambda m: None)
    rep = json.loads(Path(out["report"]["report"]).read_text())
    assert rep["partial"] is True and rep["missing_servers"] == ["1dns"]
    assert rep["totals"]["dq"] == 0  # the stale 1dns part of the earlier run was dropped, not counted
    assert rep["totals"]["n_from"] == 2  # the mail server's lines are all there
    assert any("PARTIAL" in n and "1dns" in n for n in rep["notes"])
    assert not pipeline.is_done(toml, "2002-02-16")  # a partial day is redone by the next backfill
    # without a mail server there is nothing to analyse, whatever the policy
    with pytest.raises(pipeline.MissingServersError, match="no mail server"):
        pipeline.settle(toml, "2002-02-16", ["1dns"])


def test_settle_reads_the_mapped_parse_results_in_every_shape_airflow_hands_over(tmp_path):
    """settle's `parsed` is the mapped fetch-and-parse's output: a sequence with gaps where a
    server failed (None, or a placeholder), or, when one server alone succeeded, its result itself."""
    toml = copy_minisite(tmp_path / "s")
    toml.write_text(toml.read_text().replace('interval = "10m"', 'interval = "10m"\non_missing_server = "partial"'))
    jobs = pipeline.plan_run(toml, "2002-02-16")
    assert [j["server"] for j in jobs] == ["1dns", "1mx"] and all(j["day"] == "2002-02-16" for j in jobs)
    mx = {"server": "1mx", "day": "2002-02-16", "rows": 9}
    dns = {"server": "1dns", "day": "2002-02-16", "rows": 8}
    assert pipeline.settle_run(jobs, iter([dns, mx]))["missing"] == []
    for one_missing in (mx, [mx], [None, mx], [object(), mx], (p for p in [mx])):
        run = pipeline.settle_run(jobs, one_missing)
        assert (run["missing"], run["partial"], run["config"], run["servers"]) == (
            ["1dns"],
            True,
            jobs[0]["config"],
            ["1dns", "1mx"],
        )
    with pytest.raises(pipeline.MissingServersError, match="no mail server"):
        pipeline.settle_run(jobs, dns)


def test_plan_run_picks_the_day_by_run_type_and_skips_a_done_day(tmp_path):
    from types import SimpleNamespace

    toml = copy_minisite(tmp_path / "s")  # Asia/Tokyo
    start = pendulum.datetime(2002, 2, 15, 15, tz="UTC")  # 2002-02-16 00:00 in Tokyo
    logical = pendulum.datetime(2002, 2, 17, 21, tz="UTC")  # 2002-02-18 06:00 in Tokyo

    def day(run_type: str, day: str | None = None, **times) -> str:
        times = {"logical_date": None, "run_after": None, "data_interval_start": None, **times}
        return pipeline.plan_run(toml, day, dag_run=SimpleNamespace(run_type=run_type, **times))[0]["day"]

    assert day("scheduled", data_interval_start=start, logical_date=logical) == "2002-02-16"
    assert day("backfill", data_interval_start=start, run_after=logical) == "2002-02-16"
    # a manual run's interval is not a day of the site's: the day before its logical date, or run_after
    assert day("manual", data_interval_start=start, logical_date=logical) == "2002-02-17"
    assert day("manual", run_after=logical) == "2002-02-17"
    assert day("scheduled", "2002-02-10", data_interval_start=start) == "2002-02-10"
    pipeline.run_day(toml, "2002-02-16", log=lambda m: None, mail=False)
    with pytest.raises(pipeline.DayDone, match="2002-02-16 is done already"):
        pipeline.plan_run(toml, "2002-02-16")
    assert len(pipeline.plan_run(toml, "2002-02-16", force=True)) == 2


def test_trends_page_covers_every_day_done(tmp_path):
    """What the asset-triggered mmw_trends DAG writes, and the daily task leaves to it."""
    toml = copy_minisite(tmp_path / "s")
    assert pipeline.trends_page(toml) == {"days": 0, "trends_page": None}  # nothing done yet
    pipeline.run_day(toml, "2002-02-16", log=lambda m: None)
    page = tmp_path / "s/data_lake/reports/trends.html"
    page.unlink()
    assert pipeline.trends(toml, "2002-02-16", with_page=False)["trends_page"] is None and not page.exists()
    out = pipeline.trends_page(toml)
    assert out == {"days": 1, "trends_page": str(page)} and "2002-02-16" in page.read_text()
