"""
### mmw_daily

One run per local day of a site: fetch and parse each server's logs (mapped over the servers), settle
the missing ones, aggregate, fit, detect, report, trends, all into a new generation of the day that
`commit` switches in at once (docs/reliability.md). The tasks only call `mmw_tasks.pipeline`;
docs/deployment.md says which day, in which order, and what a missing server does. **Params:**
`config` (site TOML), `day` (YYYY-MM-DD to (re)process), `force` (redo a day already done).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from airflow.sdk import Param, TriggerRule, dag, task, task_group
from mmw_airflow import LocalDayTimetable, MmwNotifier, day_assets, day_bounds, fetch_retries, pipeline, plan_or_skip
from mmw_connections import sftp_credentials

from mmw_tasks.deploy import DagSite, dag_sites

if TYPE_CHECKING:  # what the tasks hand each other (TypedDicts, documented there)
    import mmw_tasks.pipeline as mp


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
        default_args={
            "owner": "mmw",
            "retries": site.schedule.retries,  # fetch has its own ([schedule] fetch_retries)
            "retry_delay": site.schedule.retry_delay,
            "on_failure_callback": MmwNotifier.callbacks("failure", site),
        },
        tags=["mmw", site.name],
        doc_md=__doc__,
    )
    def mmw_daily():
        @task
        def resolve(params=None, dag_run=None) -> list[mp.Job]:
            """The day to work on, as one job per server, and the day's new generation (skipped if done)."""
            return plan_or_skip(params, dag_run)

        @task(**fetch_retries(site))
        def fetch(job: mp.Job) -> mp.FetchedJob:
            return pipeline.fetch_job(job, credentials=sftp_credentials)

        @task
        def parse(fetched: mp.FetchedJob) -> mp.Parsed:
            return pipeline.parse_job(fetched)

        @task_group(prefix_group_id=False)  # mapped as a group: one server's failed fetch stops no other parse
        def fetch_and_parse(job: mp.Job):
            return parse(fetch(job))

        @task(trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS)
        def settle(jobs: list[mp.Job], parsed: Iterable[mp.Parsed]) -> mp.SettledRun:
            """Apply [site].on_missing_server to the servers whose fetch or parse failed for good."""
            return pipeline.settle_run(jobs, parsed)

        @task
        def aggregate(run: mp.SettledRun) -> mp.Aggregated:
            return pipeline.aggregate(run["config"], run["day"], run["generation"])

        @task
        def fit(run: mp.SettledRun, _aggregated: mp.Aggregated) -> mp.Fitted:
            return pipeline.fit(run["config"], run["day"], run["generation"])

        @task(depends_on_past=True, wait_for_downstream=True)  # baselines: after the day before is committed
        def detect(run: mp.SettledRun, _fitted: mp.Fitted) -> mp.Detected:
            return pipeline.run_detect(run["config"], run["day"], run["generation"])

        @task
        def report(run: mp.SettledRun, _detected: mp.Detected) -> mp.Reported:
            return pipeline.make_report(run["config"], run["day"], run["missing"], run["generation"])

        @task(depends_on_past=True)  # roll-ups in day order; the page: mmw_trends
        def trends(run: mp.SettledRun, _reported: mp.Reported) -> mp.Trended:
            return pipeline.trends(run["config"], run["day"], with_page=False, generation=run["generation"])

        @task(outlets=day_assets(site), on_success_callback=MmwNotifier.callbacks("incidents", site))
        def commit(run: mp.SettledRun, _trended: mp.Trended) -> mp.Committed:
            return pipeline.commit_run(run)  # the day's outputs appear at once, and only now

        jobs = resolve()
        run = settle(jobs, fetch_and_parse.expand(job=jobs))  # `run` also says which servers are missing
        found = detect(run, fit(run, aggregate(run)))
        found >> commit(run, trends(run, report(run, found)))  # the next day's detect waits for this commit

    return mmw_daily()


for _site in dag_sites():
    build_daily(_site)
