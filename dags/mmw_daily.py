"""
### mmw_daily

One run per local day of a site: fetch and parse each server's logs (mapped over the servers), settle
the missing ones, aggregate, fit, detect, report, trends. The tasks only call `mmw_tasks.pipeline`,
which also picks the day; docs/deployment.md says which day, in which order days run, and what a
missing server does. **Params:** `config` (site TOML), `day` (YYYY-MM-DD to (re)process), `force`
(redo a day whose report is in the lake; without it such a day is skipped).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from airflow.sdk import Param, TriggerRule, dag, task, task_group
from airflow.sdk.exceptions import AirflowSkipException
from mmw_airflow import LocalDayTimetable, MmwNotifier, day_bounds, fetch_retries, pipeline, stage_assets
from mmw_connections import sftp_credentials

from mmw_tasks.deploy import DagSite, dag_sites

if TYPE_CHECKING:  # what the tasks hand each other (TypedDicts, documented there)
    from mmw_tasks.pipeline import Aggregated, Detected, FetchedJob, Fitted, Job, Parsed, Reported, SettledRun, Trended


def build_daily(site: DagSite):
    @dag(
        dag_id=site.daily_dag_id,
        schedule=LocalDayTimetable(site.timezone, site.schedule.run_at),
        **day_bounds(site),
        catchup=site.schedule.catchup,
        max_active_runs=site.schedule.max_active_runs,
        params={
            "config": Param(site.config, type="string", description="site TOML file"),
            "day": Param(None, type=["null", "string"], description="local day YYYY-MM-DD to (re)process"),
            "force": Param(False, type="boolean", description="redo the day even if its report exists"),
        },
        default_args={"owner": "mmw", "retries": 0, "on_failure_callback": MmwNotifier.callbacks("failure", site)},
        tags=["mmw", site.name],
        doc_md=__doc__,
    )
    def mmw_daily():
        @task
        def resolve(params=None, dag_run=None) -> list[Job]:
            """The day to work on, as one job per server (what fetch and parse are mapped over)."""
            try:
                return pipeline.plan_run(params["config"], params.get("day"), force=params["force"], dag_run=dag_run)
            except pipeline.DayDone as e:
                raise AirflowSkipException(str(e)) from None

        @task(**fetch_retries(site))
        def fetch(job: Job) -> FetchedJob:
            return pipeline.fetch_job(job, credentials=sftp_credentials)

        @task(outlets=stage_assets(site, "parse"))
        def parse(fetched: FetchedJob) -> Parsed:
            return pipeline.parse_job(fetched)

        @task_group(prefix_group_id=False)  # mapped as a group: one server's failed fetch stops no other parse
        def fetch_and_parse(job: Job):
            return parse(fetch(job))

        @task(trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS)
        def settle(jobs: list[Job], parsed: Iterable[Parsed]) -> SettledRun:
            """Apply [site].on_missing_server to the servers whose fetch or parse failed for good."""
            return pipeline.settle_run(jobs, parsed)

        @task(outlets=stage_assets(site, "aggregate"))
        def aggregate(run: SettledRun) -> Aggregated:
            return pipeline.aggregate(run["config"], run["day"])

        @task(outlets=stage_assets(site, "fit"))
        def fit(run: SettledRun, _aggregated: Aggregated) -> Fitted:
            return pipeline.fit(run["config"], run["day"])

        @task(depends_on_past=True, outlets=stage_assets(site, "detect"))  # baselines in day order
        def detect(run: SettledRun, _fitted: Fitted) -> Detected:
            return pipeline.run_detect(run["config"], run["day"])

        @task(outlets=stage_assets(site, "report"), on_success_callback=MmwNotifier.callbacks("incidents", site))
        def report(run: SettledRun, _detected: Detected) -> Reported:
            return pipeline.make_report(run["config"], run["day"], run["missing"])

        @task(depends_on_past=True, outlets=stage_assets(site, "trends"))  # roll-ups in day order
        def trends(run: SettledRun, _reported: Reported) -> Trended:
            return pipeline.trends(run["config"], run["day"], with_page=False)  # the page: mmw_trends

        jobs = resolve()
        run = settle(jobs, fetch_and_parse.expand(job=jobs))  # `run` also says which servers are missing
        trends(run, report(run, detect(run, fit(run, aggregate(run)))))

    return mmw_daily()


for _site in dag_sites():
    build_daily(_site)
