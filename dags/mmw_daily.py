"""
### mmw_daily

One run per local day of a site: pull each server's rotated logs, parse them into the lake,
aggregate per interval and per user, fit Dq = m_s·N_from + m_p·N_pop, detect incidents, write the
report and the trend row. Tasks only wire `mmw_tasks.pipeline`; data moves through the lake and
XCom carries paths and counts.

Params: `config` (site TOML, default `$MMW_SITE_CONFIG`), `day` (YYYY-MM-DD; default the local day
before the run's logical date).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task
from airflow.timetables.trigger import CronTriggerTimetable

SITE_CONFIG = os.environ.get("MMW_SITE_CONFIG", "site.toml")
# Run after the servers rotated their logs (04:02 and 03:10 in the papers' site).
SCHEDULE = CronTriggerTimetable(os.environ.get("MMW_SCHEDULE_CRON", "30 6 * * *"),
                                timezone=os.environ.get("MMW_SCHEDULE_TZ", "UTC"))


def sftp_credentials(config: str, server: str) -> dict | None:
    """Plain login details for a server's sftp source from its Airflow connection (`connection_id`):
    login, password, and the SSH extras key_file, private_key, private_key_passphrase, host_key,
    known_hosts, allow_agent, look_for_keys. `no_host_key_check` is ignored: host keys are always checked."""
    from mmw_tasks.config import load_site

    srv = next(s for s in load_site(config).servers if s.name == server)
    if not srv.source.startswith("sftp://") or not srv.connection_id:
        return None
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(srv.connection_id)
    extra = conn.extra_dejson or {}

    def flag(key: str, default: bool) -> bool:
        v = extra.get(key, default)
        return v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes")

    return {"username": conn.login or None, "password": conn.password or None,
            "key_file": extra.get("key_file"), "private_key": extra.get("private_key"),
            "passphrase": extra.get("private_key_passphrase"), "host_key": extra.get("host_key"),
            "known_hosts": extra.get("known_hosts"), "allow_agent": flag("allow_agent", False),
            "look_for_keys": flag("look_for_keys", False)}


@dag(
    dag_id="mmw_daily",
    schedule=SCHEDULE,
    start_date=pendulum.datetime(2000, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=4,
    params={
        "config": Param(SITE_CONFIG, type="string", description="site TOML file"),
        "day": Param(None, type=["null", "string"], description="local day YYYY-MM-DD to (re)process"),
    },
    default_args={"owner": "mmw", "retries": 0},
    tags=["mmw"],
    doc_md=__doc__,
)
def mmw_daily():
    @task
    def resolve(params=None, logical_date=None, run_after=None) -> dict:
        from mmw_tasks import pipeline

        return pipeline.resolve_run(params["config"], params.get("day"), logical_date or run_after)

    @task
    def servers(run: dict) -> list[str]:
        return run["servers"]

    @task(retries=3, retry_delay=timedelta(seconds=20), retry_exponential_backoff=True)
    def fetch(run: dict, server: str) -> dict:
        from mmw_tasks import pipeline

        creds = sftp_credentials(run["config"], server)
        return pipeline.fetch(run["config"], server, run["day"], credentials=creds)

    @task
    def parse(run: dict, fetched: dict) -> dict:
        from mmw_tasks import pipeline

        return pipeline.parse(run["config"], fetched["server"], run["day"], fetched["files"])

    @task
    def aggregate(run: dict, _parsed: list[dict]) -> dict:
        from mmw_tasks import pipeline

        return pipeline.aggregate(run["config"], run["day"])  # `parsed` only orders the tasks

    @task
    def fit(run: dict, _aggregated: dict) -> dict:
        from mmw_tasks import pipeline

        return pipeline.fit(run["config"], run["day"])

    @task
    def detect(run: dict, _fitted: dict) -> dict:
        from mmw_tasks import pipeline

        return pipeline.run_detect(run["config"], run["day"])

    @task
    def report(run: dict, _detected: dict) -> dict:
        from mmw_tasks import pipeline

        return pipeline.make_report(run["config"], run["day"])

    @task
    def trends(run: dict, _reported: dict) -> dict:
        from mmw_tasks import pipeline

        return pipeline.trends(run["config"], run["day"])

    run = resolve()
    fetched = fetch.partial(run=run).expand(server=servers(run))
    parsed = parse.partial(run=run).expand(fetched=fetched)
    trends(run, report(run, detect(run, fit(run, aggregate(run, parsed)))))


mmw_daily()
