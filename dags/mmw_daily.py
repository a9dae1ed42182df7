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
days of a backfill (`max_active_runs`); `detect` and `trends` depend on the previous day's
(`depends_on_past`), so baselines and roll-ups are built in day order. A failed day therefore
holds back the detection of later days until it is cleared or re-run.

**Missing servers.** fetch is retried with back-off (`[schedule].fetch_retries`); a server still
missing is named in its task log and in the failure notification, and then `settle` applies
`[site].on_missing_server`: "fail" fails the day, "partial" analyses the servers that arrived
and the report says `"partial": true`.

**Params.** `config` (site TOML), `day` (YYYY-MM-DD to (re)process), `force` (redo a day whose
report is already in the lake; without it such a day is skipped).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pendulum
from airflow.sdk import Asset, Param, TriggerRule, dag, task, task_group
from airflow.sdk.exceptions import AirflowSkipException
from mmw_airflow import LocalDayTimetable, MmwNotifier
from mmw_connections import sftp_credentials

from mmw_tasks.deploy import STAGE_OUTPUTS, DagSite, dag_sites

if TYPE_CHECKING:  # what the tasks hand each other; mmw_tasks.pipeline is imported when a task runs
    from collections.abc import Iterable

    from mmw_tasks.parse.ingest import Parsed
    from mmw_tasks.pipeline import FetchedJob, Job, SettledRun


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
        def resolve(
            params=None, dag_run=None, data_interval_start=None, logical_date=None, run_after=None
        ) -> list[Job]:
            """The day to work on, as one job per server (what fetch and parse are mapped over)."""
            from mmw_tasks import pipeline

            try:
                return pipeline.plan_run(
                    params["config"],
                    params.get("day"),
                    force=bool(params.get("force")),
                    run_type=dag_run.run_type,
                    logical_date=logical_date,
                    run_after=run_after,
                    interval_start=data_interval_start,
                )
            except pipeline.DayDone as e:
                raise AirflowSkipException(str(e)) from None

        @task(
            retries=sched.fetch_retries,
            retry_delay=sched.fetch_retry_delay,
            retry_exponential_backoff=True,
            max_retry_delay=sched.fetch_max_retry_delay,
        )
        def fetch(job: Job) -> FetchedJob:
            from mmw_tasks import pipeline

            return pipeline.fetch_job(job, credentials=sftp_credentials)

        @task(outlets=_assets(site, "parse"))
        def parse(fetched: FetchedJob) -> Parsed:
            from mmw_tasks import pipeline

            return pipeline.parse_job(fetched)

        @task(trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS)
        def settle(jobs: list[Job], parsed: Iterable[Parsed]) -> SettledRun:
            """Apply [site].on_missing_server to the servers whose fetch or parse failed for good
            (`parsed`: the mapped fetch-and-parse's results, of the servers that succeeded)."""
            from mmw_tasks import pipeline

            return pipeline.settle_run(jobs, parsed)

        @task(outlets=_assets(site, "aggregate"))
        def aggregate(run: dict) -> dict:
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
        def report(run: dict, _detected: dict) -> dict:
            from mmw_tasks import pipeline

            return pipeline.make_report(run["config"], run["day"], run["missing"])

        @task(depends_on_past=True, outlets=_assets(site, "trends"))  # weekly/monthly roll-ups in day order
        def trends(run: dict, _reported: dict) -> dict:
            from mmw_tasks import pipeline

            # the trends page over all days is mmw_trends' job, once per batch of days
            return pipeline.trends(run["config"], run["day"], with_page=False)

        @task_group(prefix_group_id=False)
        def fetch_and_parse(job: Job):
            # mapped as a group, so a server whose fetch failed does not stop the others' parse
            return parse(fetch(job))

        jobs = resolve()
        run = settle(jobs, fetch_and_parse.expand(job=jobs))  # `run` also says which servers are missing
        trends(run, report(run, detect(run, fit(run, aggregate(run)))))

    return mmw_daily()


for _site in dag_sites():
    build_daily(_site)
