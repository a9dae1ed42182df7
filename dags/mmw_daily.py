"""
### mmw_daily

One run per local day of a site: pull each server's rotated logs, parse them into the lake,
aggregate per interval and per user, fit Dq = m_s·N_from + m_p·N_pop, detect incidents, write the
report and the trend row. Tasks only wire `mmw_tasks.pipeline`; data moves through the lake and
XCom carries paths and counts.

**Which day.** The schedule is the site's local day (`LocalDayTimetable`): the data interval is
00:00-24:00 in `[site].timezone` and the run starts at `[schedule].run_at` (06:30) local time
the next morning. `airflow backfill create --from-date D1 --to-date D2` runs the local days
D1..D2. A manual run works on its `day` param, else the local day before its logical date.

**Order.** fetch and parse are mapped over the site's servers and run in parallel, also across
days of a backfill (`max_active_runs`); `detect` depends on the previous day's detection
(`depends_on_past`), so baselines are built in day order. A failed day therefore holds back the
detection of later days until it is cleared or re-run.

**Missing servers.** fetch is retried with back-off (`[schedule].fetch_retries`); a server still
missing is named in its task log and in the failure notification, and then `settle` applies
`[site].on_missing_server`: "fail" fails the day, "partial" analyses the servers that arrived
and the report says `"partial": true`.

**Params.** `config` (site TOML), `day` (YYYY-MM-DD to (re)process), `force` (redo a day whose
report is already in the lake; without it such a day is skipped).
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import Asset, Param, TriggerRule, dag, task
from airflow.sdk.exceptions import AirflowSkipException
from mmw_airflow import LocalDayTimetable, MmwNotifier

from mmw_tasks.deploy import STAGE_OUTPUTS, DagSite, dag_sites


def _assets(site: DagSite, stage: str) -> list[Asset]:
    return [Asset(name=name, uri=uri) for name, uri in (site.asset(d) for d in STAGE_OUTPUTS[stage])]


def _label(day: dt.date | None) -> pendulum.DateTime | None:
    """start/end dates are calendar-day labels for LocalDayTimetable (midnight UTC of the date)."""
    return pendulum.datetime(day.year, day.month, day.day, tz="UTC") if day else None


def build_daily(site: DagSite):
    sched = site.schedule
    on_failure = MmwNotifier.for_site("failure", site)
    on_incidents = MmwNotifier.for_site("incidents", site)

    @dag(
        dag_id=site.daily_dag_id,
        schedule=LocalDayTimetable(site.timezone, sched.run_at),
        start_date=_label(sched.start or dt.date(2000, 1, 1)),
        end_date=_label(sched.end),
        catchup=sched.catchup,
        max_active_runs=sched.max_active_runs,
        params={
            "config": Param(site.config, type="string", description="site TOML file"),
            "day": Param(None, type=["null", "string"], description="local day YYYY-MM-DD to (re)process"),
            "force": Param(False, type="boolean", description="redo the day even if its report exists"),
        },
        default_args={"owner": "mmw", "retries": 0, "on_failure_callback": [on_failure] if on_failure else []},
        tags=["mmw", site.name],
        doc_md=__doc__,
    )
    def mmw_daily():
        @task
        def resolve(params=None, dag_run=None, data_interval_start=None, logical_date=None, run_after=None) -> dict:
            from mmw_tasks import pipeline

            automated = str(getattr(dag_run.run_type, "value", dag_run.run_type)) in ("scheduled", "backfill")
            run = pipeline.resolve_run(params["config"], params.get("day"), logical_date or run_after,
                                       data_interval_start if automated else None)
            if not params.get("force") and pipeline.is_done(run["config"], run["day"]):
                raise AirflowSkipException(f"{run['day']} is done already (report and trend row in the lake); "
                                           "set the force param to redo it")
            return run

        @task
        def servers(run: dict) -> list[str]:
            return run["servers"]

        @task(retries=sched.fetch_retries, retry_delay=sched.fetch_retry_delay, retry_exponential_backoff=True,
              max_retry_delay=sched.fetch_max_retry_delay)
        def fetch(run: dict, server: str) -> dict:
            from mmw_tasks import pipeline

            try:
                return pipeline.fetch(run["config"], server, run["day"])
            except Exception as e:
                raise RuntimeError(f"server {server}: cannot fetch {run['day']}: {type(e).__name__}: {e}") from e

        @task(outlets=_assets(site, "parse"))
        def parse(run: dict, fetched: dict) -> dict:
            from mmw_tasks import pipeline

            return pipeline.parse(run["config"], fetched["server"], run["day"], fetched["files"])

        @task(trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS)
        def settle(run: dict, parsed) -> dict:
            from mmw_tasks import pipeline

            return pipeline.settle(run["config"], run["day"], [p["server"] for p in parsed if p])

        @task(outlets=_assets(site, "aggregate"))
        def aggregate(run: dict, _settled: dict) -> dict:
            from mmw_tasks import pipeline

            return pipeline.aggregate(run["config"], run["day"])

        @task(outlets=_assets(site, "fit"))
        def fit(run: dict, _aggregated: dict) -> dict:
            from mmw_tasks import pipeline

            return pipeline.fit(run["config"], run["day"])

        @task(depends_on_past=True, outlets=_assets(site, "detect"))
        def detect(run: dict, _fitted: dict) -> dict:
            from mmw_tasks import pipeline

            return pipeline.run_detect(run["config"], run["day"])

        @task(outlets=_assets(site, "report"), on_success_callback=[on_incidents] if on_incidents else [])
        def report(run: dict, _detected: dict, settled: dict) -> dict:
            from mmw_tasks import pipeline

            return pipeline.make_report(run["config"], run["day"], settled["missing"])

        @task(outlets=_assets(site, "trends"))
        def trends(run: dict, _reported: dict) -> dict:
            from mmw_tasks import pipeline

            return pipeline.trends(run["config"], run["day"])

        run = resolve()
        fetched = fetch.partial(run=run).expand(server=servers(run))
        parsed = parse.partial(run=run).expand(fetched=fetched)
        settled = settle(run, parsed)
        trends(run, report(run, detect(run, fit(run, aggregate(run, settled))), settled))

    return mmw_daily()


for _site in dag_sites():
    build_daily(_site)
