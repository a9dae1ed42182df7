"""The CeleryExecutor deployment (docker-compose.yml), run for real: PostgreSQL as the metadata
database, Redis as the broker, two Celery workers as two machines sharing the lake path. A 7-day
backfill of a two-server site runs to success on the two workers (both take tasks) and gives the
lake `mmw backfill` gives, row for row; the site-days per hour are printed for docs/deployment.md."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from airflow_stack import wait_until
from celery_stack import CeleryStack
from conftest import ROOT
from notify_sinks import WebhookSink

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.timeout(600)]

START = date(2002, 2, 15)
DAYS = [START + timedelta(days=i) for i in range(7)]
# one site per phase, all on the same simulated logs, each with its lake and its pair of DAGs
PHASES = ("cel-two", "cel-kill")
REF = "cel-ref"  # the same days through `mmw backfill`, outside Airflow
NOTIFY_KINDS = ("mmw_suspect", "deferred_surge", "dns_anomaly")


def _site_toml(sim: Path, name: str, webhook_url: str | None = None) -> str:
    text = (sim / "site.toml").read_text()
    text = re.sub(r'(?m)^name = "example-u"$', f'name = "{name}"', text, count=1)
    text = re.sub(r"(?m)^lake\s*=.*$", f'lake = "lake-{name}"', text)
    # a retry for every task: a worker killed mid-task fails it, and the retry runs on the other
    text += f'\n[schedule]\nend = {DAYS[-1]}\nmax_active_runs = 4\nretries = 2\nretry_delay = "2s"\n'
    if webhook_url:  # the notifier runs on the workers, the sink in this process
        text += f'\n[notify]\nwebhook = "{webhook_url}"\nincident_kinds = {json.dumps(list(NOTIFY_KINDS))}\n'
    return text


@pytest.fixture(scope="module")
def webhook():
    with WebhookSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def site(tmp_path_factory, webhook) -> Path:
    """A simulated two-server site (DNS and mail, klez outbreak, tenth scale): one TOML per phase
    in the folder MMW_SITE_CONFIGS names, and the reference's beside the logs."""
    from mmw_tasks.simulate import simulate_site

    sim = Path(simulate_site(tmp_path_factory.mktemp("celery_site"), START, len(DAYS), scenario="klez", seed=11,
                             scale=0.1)).parent  # fmt: skip
    for name in (*PHASES, REF):
        (sim / f"{name}.toml").write_text(_site_toml(sim, name, webhook.url if name in PHASES else None))
    return sim


@pytest.fixture(scope="module")
def stack(tmp_path_factory, site):
    home = tmp_path_factory.mktemp("celery_home")
    s = CeleryStack(home, sites_glob=str(site / "cel-[!r]*.toml"))
    t0 = time.monotonic()
    try:
        s.start([f"mmw_daily__{p}" for p in PHASES])
        for name in ("worker1", "worker2"):
            s.add_worker(name)
        s.wait_for_workers(["worker1", "worker2"])
        print(f"\ncelery stack ready in {time.monotonic() - t0:.0f}s", file=sys.stderr)
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def reference(site) -> Path:
    r = subprocess.run(
        [sys.executable, "-m", "mmw_tasks", "backfill", "--config", str(site / f"{REF}.toml"),
         "--from", str(DAYS[0]), "--to", str(DAYS[-1])],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    return site / f"lake-{REF}"


def _snapshot(lake: Path, name: str) -> dict[str, object]:
    """The lake as readers see it: every public file, Parquet as rows, text as text, the site's
    name and lake path made alike; not the generations behind the links (`.days/`, their names
    hold the run's time), DuckDB's spill folder or raw/ (the intake's cache, with wall-clock times)."""
    subs = ((str(lake), "<lake>"), (name, "<site>"))

    def alike(text: str) -> str:
        for old, new in subs:
            text = text.replace(old, new)
        return text

    out: dict[str, object] = {}
    for p in sorted(lake.rglob("*")):
        rel = str(p.relative_to(lake))
        # (and not the trends page: mmw_trends renders it, `mmw backfill` with each day)
        if p.is_dir() or rel.startswith(("raw/", ".days/", ".spill/")) or rel == "reports/trends.html":
            continue
        if p.name == "mmw.duckdb":  # a database file: its bytes hold the lake's path
            out[rel] = "catalog"
        elif p.suffix == ".parquet":
            df = pl.read_parquet(p)
            for old, new in subs:
                df = df.with_columns(
                    pl.col(c).str.replace_all(old, new, literal=True) for c, t in df.schema.items() if t == pl.String
                )
            out[rel] = df
        else:
            out[rel] = alike(p.read_text(errors="replace"))
    return out


def _differ(got: dict[str, object], want: dict[str, object]) -> list[str]:
    keys = sorted(set(got) | set(want))
    return [
        k
        for k in keys
        if k not in got
        or k not in want
        or not (got[k].equals(want[k]) if isinstance(want[k], pl.DataFrame) else got[k] == want[k])  # type: ignore[union-attr]
    ]


def _backfill(stack: CeleryStack, name: str) -> tuple[list[dict], float]:
    """Unpause the site's daily DAG, backfill the days through the REST API, wait for every run."""
    dag_id = f"mmw_daily__{name}"
    r = stack.client.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False})
    r.raise_for_status()
    t0 = time.monotonic()
    stack.post(
        "/backfills",
        {
            "dag_id": dag_id,
            "from_date": f"{DAYS[0]}T00:00:00Z",
            "to_date": f"{DAYS[-1]}T00:00:00Z",
            "max_active_runs": 4,
            "reprocess_behavior": "failed",
        },
    )
    runs = stack.wait_for_runs(dag_id, len(DAYS), 400, run_type="backfill")
    wall = time.monotonic() - t0
    for run in runs:
        assert run["state"] == "success", stack.explain(dag_id, run["dag_run_id"])
    return runs, wall


def _rate(wall: float) -> str:
    return f"{len(DAYS)} site-days in {wall:.0f}s = {len(DAYS) * 3600 / wall:.0f} site-days/hour"


def test_two_workers_share_the_backfill_and_give_the_same_lake(stack, site, reference):
    runs, wall = _backfill(stack, "cel-two")
    print(f"two workers: {_rate(wall)}", file=sys.stderr)
    ran = stack.hostnames("mmw_daily__cel-two")
    print(f"task instances per worker: {ran}", file=sys.stderr)
    assert set(ran) == {"worker1", "worker2"}, ran
    tasks_per_day = len(stack.task_instances("mmw_daily__cel-two", runs[0]["dag_run_id"]))
    assert sum(ran.values()) == tasks_per_day * len(DAYS)
    differ = _differ(_snapshot(site / "lake-cel-two", "cel-two"), _snapshot(reference, REF))
    assert differ == []
    reports = [json.loads((site / "lake-cel-two" / "reports" / f"day={d}" / "report.json").read_text()) for d in DAYS]
    assert all(not r.get("partial") for r in reports)


def test_the_workers_notify_the_days_with_incidents(stack, site, reference, webhook):
    """After the two-worker backfill: one notification per day whose report has an incident worth
    telling, sent from a worker, and none for the other days."""
    worth = {
        str(d)
        for d in DAYS
        if any(
            i["kind"] in NOTIFY_KINDS
            for i in json.loads((site / "lake-cel-two" / "reports" / f"day={d}" / "report.json").read_text())[
                "incidents"
            ]
        )
    }
    assert worth, "the klez outbreak should give at least one day worth telling"
    told = [m["day"] for m in webhook.received if m["event"] == "incidents" and m["site"] == "cel-two"]
    assert sorted(told) == sorted(worth)


def test_a_worker_killed_mid_backfill_loses_no_day(stack, site, reference):
    """SIGKILL to one worker (its pool and task processes with it) once the backfill is under way
    and the worker is running a task: the scheduler finds the task's heartbeat gone, the retry runs
    on the other worker, and every day ends committed and whole, the same lake as before."""
    dag_id = "mmw_daily__cel-kill"
    started = {}

    def under_way() -> bool:
        rows = stack.postgres.query(
            "SELECT hostname, state, count(*) FROM task_instance WHERE dag_id = %s GROUP BY 1, 2", dag_id
        )
        running = {h for h, s, _ in rows if s == "running"}
        done = sum(n for _, s, n in rows if s == "success")
        return "worker1" in running and done >= 12  # about a day's worth done, worker1 busy

    def kill_when_under_way():
        wait_until(under_way, 300, "worker1 running a task of the backfill", interval=0.5)
        started["kill"] = time.monotonic()
        started["done_before"] = sum(1 for r in stack.runs(dag_id, run_type="backfill") if r["state"] == "success")
        stack.kill_worker("worker1")

    killer = threading.Thread(target=kill_when_under_way)
    killer.start()
    try:
        runs, wall = _backfill(stack, "cel-kill")
    finally:
        killer.join()
    after = time.monotonic() - started["kill"]
    n_after = len(DAYS) - started["done_before"]
    print(
        f"kill: {started['done_before']} days done when worker1 was killed; the other {n_after} on worker2 "
        f"alone in {after:.0f}s = {n_after * 3600 / after:.0f} site-days/hour (the dead task's heartbeat "
        f"timeout included); whole backfill {wall:.0f}s",
        file=sys.stderr,
    )
    tis = stack.postgres.query(
        "SELECT task_id, map_index, run_id, try_number, hostname FROM task_instance WHERE dag_id = %s", dag_id
    )
    retried = [t for t in tis if t[3] > 1]
    print(f"retried after the kill: {retried}", file=sys.stderr)
    assert retried and all(t[4] == "worker2" for t in retried), retried
    # every try's host: the killed worker's attempts are in the history table
    history = stack.postgres.query(
        "SELECT task_id, map_index, run_id, try_number, hostname FROM task_instance_history WHERE dag_id = %s",
        dag_id,
    )
    assert any(h[4] == "worker1" and (h[0], h[1], h[2]) in {t[:3] for t in retried} for h in history), history
    differ = _differ(_snapshot(site / "lake-cel-kill", "cel-kill"), _snapshot(reference, REF))
    assert differ == []
    from mmw_tasks import pipeline

    assert all(pipeline.is_done(site / "cel-kill.toml", d) for d in DAYS)


def test_postgres_and_redis_were_the_stack(stack):
    """The runs above went through the compose settings: PostgreSQL holds the metadata and the
    Celery results (the worker-side table celery_taskmeta)."""
    assert stack.env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert stack.postgres.query("SELECT count(*) FROM dag_run")[0][0] >= len(DAYS)
    assert stack.postgres.query("SELECT count(*) FROM celery_taskmeta")[0][0] > 0
