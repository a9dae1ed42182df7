"""The deployment, for real: api-server, scheduler and dag-processor (LocalExecutor, SQLite, free
ports) run the site's DAGs. A backfill of three simulated days goes through the scheduler (fetch and
parse in parallel, detection in day order), the trends DAG follows the asset, `mmw backfill` gives
the same lake, a day already done is skipped, and a server that cannot be fetched is retried, named
in its task log and in the notification, and then the day fails or is reported partial as its
config says."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from airflow_stack import AirflowStack, wait_until
from conftest import ROOT
from notify_sinks import WebhookSink

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

START = date(2002, 2, 15)
DAYS = [START + timedelta(days=i) for i in range(3)]
NOTIFY_KINDS = ("mmw_suspect", "deferred_surge", "dns_anomaly")


def _with_keys(toml: Path, site_keys: str = "", tables: str = "", lake: str | None = None) -> str:
    """The site config with extra [site] keys and tables appended."""
    text = toml.read_text()
    if lake:
        text = re.sub(r"(?m)^lake\s*=.*$", f'lake = "{lake}"', text)
    if site_keys:
        text = text.replace("[site]\n", f"[site]\n{site_keys}\n", 1)
    return text + "\n" + tables


@pytest.fixture(scope="module")
def webhook():
    with WebhookSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def site(tmp_path_factory, webhook):
    from mmw_tasks.config import load_site
    from mmw_tasks.simulate import simulate_site

    out = tmp_path_factory.mktemp("stack_site")
    toml = Path(simulate_site(out, START, len(DAYS), scenario="klez", seed=11, scale=0.1))
    sim = toml.with_name("simulated.toml")
    sim.write_text(toml.read_text())
    toml.write_text(
        _with_keys(
            sim,
            tables=(
                f"[schedule]\nend = {DAYS[-1]}\nfetch_retries = 1\n"
                'fetch_retry_delay = "1s"\nmax_active_runs = 3\n'
                f'[notify]\nwebhook = "{webhook.url}"\nincident_kinds = {json.dumps(list(NOTIFY_KINDS))}\n'
            ),
        )
    )
    # the same site with its DNS server's logs gone, once per policy, each with its own lake
    dns = next(s.source for s in load_site(toml).servers if s.role == "dns")
    for policy in ("partial", "fail"):
        broken = toml.with_name(f"broken_{policy}.toml")
        broken.write_text(
            _with_keys(sim, f'on_missing_server = "{policy}"', lake=f"lake_{policy}").replace(
                f'"{dns}"', '"gone/nothing-here*"', 1
            )
        )
    return toml


@pytest.fixture(scope="module")
def stack(tmp_path_factory, site):
    home = tmp_path_factory.mktemp("airflow_stack")
    s = AirflowStack(home, {"MMW_SITE_CONFIG": str(site)})
    t0 = time.monotonic()
    try:
        s.start(["mmw_daily", "mmw_trends"])
        print(f"\nstack ready in {time.monotonic() - t0:.0f}s", file=sys.stderr)
        yield s
    finally:
        s.stop()


def _lake_snapshot(lake: Path) -> dict:
    """Every dataset's rows for the days, sorted, plus the reports: what 'the same lake' means."""
    snap = {}
    for dataset in sorted(p.name for p in lake.iterdir() if p.is_dir() and p.name != "reports"):
        files = sorted(lake.glob(f"{dataset}/**/*.parquet"))
        if files:
            df = pl.concat(
                [pl.read_parquet(f).with_columns(pl.lit(f.parent.name).alias("_part")) for f in files],
                how="diagonal_relaxed",
            )
            snap[dataset] = df.sort(df.columns).to_dicts()
    for d in DAYS:
        snap[f"report {d}"] = json.loads((lake / "reports" / f"day={d}" / "report.json").read_text())
    return snap


@pytest.fixture(scope="module")
def started(stack, site):
    """Everything the scheduler works on at once, as a site's morning would have it: the backfill,
    and the same site re-run for one day with its DNS server's logs gone, under each policy (their
    own lakes; manual runs have no logical date, so they neither wait for nor hold back other days)."""
    t0 = time.monotonic()
    stack.post(
        "/backfills",
        {
            "dag_id": "mmw_daily",
            "from_date": f"{DAYS[0]}T00:00:00Z",
            "to_date": f"{DAYS[-1]}T00:00:00Z",
            "max_active_runs": 3,
            "reprocess_behavior": "failed",
        },
    )
    broken = {}
    for policy in ("partial", "fail"):
        conf = {"config": str(site.with_name(f"broken_{policy}.toml")), "day": str(DAYS[1]), "force": True}
        broken[policy] = stack.post("/dags/mmw_daily/dagRuns", {"logical_date": None, "conf": conf})["dag_run_id"]
    return {"t0": t0, "broken": broken}


def _day_of(run: dict, tz: str) -> str:
    import pendulum

    return str(pendulum.parse(run["data_interval_start"]).in_timezone(tz).date())


def test_backfill_runs_on_the_real_scheduler(stack, site, started):
    from mmw_tasks.config import load_site

    runs = stack.wait_for_runs("mmw_daily", len(DAYS), 240, run_type="backfill")
    print(f"backfill of {len(DAYS)} days: {time.monotonic() - started['t0']:.0f}s", file=sys.stderr)
    for r in runs:
        print(stack.timeline("mmw_daily", r["dag_run_id"]), file=sys.stderr)
        assert r["state"] == "success", stack.explain("mmw_daily", r["dag_run_id"])
    # the days are done now: a run for one of them without force must skip it (checked below)
    started["skip"] = stack.post("/dags/mmw_daily/dagRuns", {"logical_date": None, "conf": {"day": str(DAYS[0])}})[
        "dag_run_id"
    ]
    cfg = load_site(site)
    by_day = {_day_of(r, cfg.timezone): r for r in runs}
    assert sorted(by_day) == [str(d) for d in DAYS]  # --from-date/--to-date are the site's local days

    truth = json.loads((site.parent / "truth.json").read_text())
    for d in DAYS:
        rep = json.loads((cfg.lake / "reports" / f"day={d}" / "report.json").read_text())
        assert rep["partial"] is False
        expected = truth["days"][str(d)]["totals"] if "days" in truth else truth[str(d)]["totals"]
        assert rep["totals"] == {**{k: expected[k] for k in rep["totals"] if k != "partial"}, "partial": False}, d

    # detection ran in day order (baselines), each day's after the day before had finished
    tis = {
        d: {(t["task_id"], t["map_index"]): t for t in stack.task_instances("mmw_daily", by_day[str(d)]["dag_run_id"])}
        for d in DAYS
    }
    for task in ("detect", "trends"):  # and the roll-ups in day order
        ordered = [tis[d][(task, -1)] for d in DAYS]
        for before, after in zip(ordered, ordered[1:], strict=False):
            assert after["start_date"] >= before["end_date"], (task, before, after)
    # ...and only once the day before was committed: its history is what detection reads
    for before, after in zip(DAYS, DAYS[1:], strict=False):
        commit, detect = tis[before][("commit", -1)], tis[after][("detect", -1)]
        assert detect["start_date"] >= commit["end_date"], (commit, detect)
    # fetch and parse are mapped over the site's servers
    assert sorted(i for (t, i) in tis[DAYS[0]] if t == "fetch") == list(range(len(cfg.servers)))


def test_scheduler_forks_tasks_with_mmw_preloaded(stack):
    """config/airflow_local_settings.py: tasks fork from a scheduler that has polars and DuckDB
    loaded already, instead of importing them again in every task (about a second each)."""
    scheduler = stack.procs[1]
    maps = Path(f"/proc/{scheduler.pid}/maps").read_text()
    assert "polars" in maps and "duckdb" in maps
    api_server = stack.procs[0]
    assert "polars" not in Path(f"/proc/{api_server.pid}/maps").read_text()


def test_trends_dag_follows_the_daily_trends_asset(stack, site):
    """The daily runs leave the trends page to mmw_trends, which the daily_trends asset triggers."""
    from mmw_tasks.config import load_site
    from mmw_tasks.report.trends import page_path

    page = page_path(load_site(site))

    def every_day_on_the_page():
        runs = stack.runs("mmw_trends")
        done = runs and all(r["state"] == "success" for r in runs)
        return done and page.is_file() and all(str(d) in page.read_text() for d in DAYS)

    wait_until(every_day_on_the_page, 90, "mmw_trends to render every day")
    assert all(r["run_type"] == "asset_triggered" for r in stack.runs("mmw_trends"))


def test_days_with_incidents_are_notified(stack, site, webhook):
    from mmw_tasks.config import load_site

    lake = load_site(site).lake
    worth = {
        str(d)
        for d in DAYS
        if any(
            i["kind"] in NOTIFY_KINDS
            for i in json.loads((lake / "reports" / f"day={d}" / "report.json").read_text())["incidents"]
        )
    }
    assert worth, "the klez outbreak should give at least one day worth telling"
    told = {m["day"] for m in webhook.received if m["event"] == "incidents" and m["run_id"].startswith("backfill")}
    assert told == worth


def test_mmw_backfill_skips_what_airflow_did_and_forced_gives_the_same_lake(stack, site):
    from mmw_tasks.config import load_site

    lake = load_site(site).lake
    before = _lake_snapshot(lake)
    args = [
        sys.executable,
        "-m",
        "mmw_tasks",
        "backfill",
        "--config",
        str(site),
        "--from",
        str(DAYS[0]),
        "--to",
        str(DAYS[-1]),
    ]
    r = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and f"0 run, {len(DAYS)} skipped" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([*args, "--force"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and f"{len(DAYS)} run, 0 skipped" in r.stdout, r.stdout + r.stderr
    assert _lake_snapshot(lake) == before


def test_airflow_skips_a_day_done_unless_forced(stack, started):
    run_id = started["skip"]
    wait_until(
        lambda: stack.get(f"/dags/mmw_daily/dagRuns/{run_id}")["state"] in ("success", "failed"),
        60,
        "the skip run",
    )
    states = {t["task_id"]: t["state"] for t in stack.task_instances("mmw_daily", run_id)}
    assert states["resolve"] == "skipped" and states["aggregate"] == "skipped", states


def test_unfetchable_server_is_retried_named_and_handled_by_policy(stack, site, webhook, started):
    from mmw_tasks.config import load_site

    day, ids = str(DAYS[1]), started["broken"]
    for policy, run_id in ids.items():
        wait_until(
            lambda r=run_id: stack.get(f"/dags/mmw_daily/dagRuns/{r}")["state"] in ("success", "failed"),
            120,
            f"the {policy} run",
        )

    broken = load_site(site.with_name("broken_partial.toml"))
    dns = next(s for s in broken.servers if s.role == "dns")
    dns_index = [s.name for s in broken.servers].index(dns.name)
    for run_id in ids.values():
        tis = {(t["task_id"], t["map_index"]): t for t in stack.task_instances("mmw_daily", run_id)}
        fetch = tis[("fetch", dns_index)]
        assert fetch["state"] == "failed" and fetch["try_number"] == 2, stack.explain("mmw_daily", run_id)
        log = stack.task_log("mmw_daily", run_id, "fetch", 2, dns_index)
        assert f"server {dns.name}: cannot fetch {day}" in log
        told = webhook.wait_for(
            lambda m, r=run_id: m["event"] == "failure" and m["run_id"] == r and m["task"] == f"fetch[{dns.name}]"
        )
        assert told and dns.name in told[0]["error"] and told[0]["day"] == day and told[0]["tries"] == 2

    run = stack.get(f"/dags/mmw_daily/dagRuns/{ids['partial']}")
    assert run["state"] == "success", stack.explain("mmw_daily", ids["partial"])
    rep = json.loads((broken.lake / "reports" / f"day={day}" / "report.json").read_text())
    assert rep["partial"] is True and rep["missing_servers"] == [dns.name] and rep["totals"]["dq"] == 0
    assert webhook.wait_for(
        lambda m: (
            m["event"] == "incidents"
            and m["run_id"] == ids["partial"]
            and m["partial"]
            and m["missing_servers"] == [dns.name]
        )
    )

    run = stack.get(f"/dags/mmw_daily/dagRuns/{ids['fail']}")
    assert run["state"] == "failed"
    states = {t["task_id"]: t["state"] for t in stack.task_instances("mmw_daily", ids["fail"])}
    assert states["settle"] == "failed" and states["aggregate"] == "upstream_failed", states
    log = stack.task_log("mmw_daily", ids["fail"], "settle", 1)
    assert f"no data from server(s) {dns.name}" in log and "on_missing_server" in log
    told = webhook.wait_for(lambda m: m["event"] == "failure" and m["run_id"] == ids["fail"] and m["task"] == "settle")
    assert told and dns.name in told[0]["error"]
    assert not (load_site(site.with_name("broken_fail.toml")).lake / "reports" / f"day={day}").exists()
