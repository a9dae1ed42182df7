"""
### mmw_intraday

The day so far, every `[schedule].intraday_every` (default 10 minutes; `0` or `"off"`: never by
itself, only when triggered): fetch and parse the lines of today stamped before now, aggregate,
fit, detect and report them into the day's partial area (`<lake>/partial/YYYY-MM-DD/`, which the
daily run replaces), then notify `[notify]` once per new incident of `incident_kinds`. One run at a
time; a run still going when the next is due makes the scheduler skip that one, not queue it. The
tasks only call `mmw_tasks.intraday`; docs/deployment.md has the details. **Params:** `config`
(site TOML), `day` and `until` (HH:MM) to replay a day as it stood then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pendulum
from airflow.sdk import Param, dag, task
from airflow.sdk.exceptions import AirflowSkipException
from mmw_airflow import MmwNotifier

from mmw_tasks.deploy import DagSite, dag_sites

if TYPE_CHECKING:  # what the tasks hand each other (documented there)
    from mmw_tasks.intraday import PartialRun


def _intraday():
    """mmw_tasks.intraday, imported when a task runs (parsing the DAG file stays cheap)."""
    from mmw_tasks import intraday

    return intraday


def build_intraday(site: DagSite):
    every = site.schedule.intraday_every if site.site else None  # no site known: triggered runs only

    @dag(
        dag_id=site.intraday_dag_id,
        schedule=every,
        start_date=pendulum.datetime(2000, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        params={
            "config": Param(site.config, type="string", description="site TOML file"),
            "day": Param(None, type=["null", "string"], description="local day YYYY-MM-DD (default: today)"),
            "until": Param(None, type=["null", "string"], description="HH:MM local: the day as it stood then"),
        },
        default_args={"owner": "mmw", "retries": 0, "on_failure_callback": MmwNotifier.callbacks("failure", site)},
        tags=["mmw", "intraday", site.name],
        doc_md=__doc__,
    )
    def mmw_intraday():
        @task
        def resolve(params=None) -> PartialRun:
            """Which day, as of when; a day the daily run has done already is skipped."""
            try:
                return _intraday().plan_run(params["config"], params.get("day"), params.get("until"))
            except _intraday().NothingToDo as e:
                raise AirflowSkipException(str(e)) from None

        @task
        def intake(run: PartialRun) -> PartialRun:
            return _intraday().intake(run)

        @task
        def analyse(run: PartialRun) -> PartialRun:
            return _intraday().analyse(run)

        @task
        def notify(run: PartialRun, **context) -> list[dict]:
            notifier = MmwNotifier.for_site("incidents", site)
            send = (lambda msg: notifier.send(msg, context)) if notifier else None
            return _intraday().notify_new(run, send)

        notify(analyse(intake(resolve())))

    return mmw_intraday()


for _site in dag_sites():
    build_intraday(_site)
