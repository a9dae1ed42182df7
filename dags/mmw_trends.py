"""
### mmw_trends

Runs whenever the site's `daily_trends` asset is updated (the daily DAG's last task, for any day,
also during a backfill) and renders the site's trends page over every day done so far
(`<lake>/reports/trends.html`: the coefficients with their history bands, weekly and monthly
roll-ups). Asset events that arrive while it runs are handled by one next run, so a backfill of
a year renders the page a handful of times, not 365.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pendulum
from airflow.sdk import Param, dag, task
from mmw_airflow import lake_asset, pipeline

from mmw_tasks.deploy import DagSite, dag_sites

if TYPE_CHECKING:
    from mmw_tasks.pipeline import TrendsPage


def build_trends(site: DagSite):
    @dag(
        dag_id=site.trends_dag_id,
        schedule=[lake_asset(site, "daily_trends")],
        start_date=pendulum.datetime(2000, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        params={"config": Param(site.config, type="string", description="site TOML file")},
        default_args={"owner": "mmw", "retries": 1},
        tags=["mmw", site.name],
        doc_md=__doc__,
    )
    def mmw_trends():
        @task(outlets=[lake_asset(site, "reports/trends.html")])
        def trends_page(params=None) -> TrendsPage:
            return pipeline.trends_page(params["config"])

        trends_page()

    return mmw_trends()


for _site in dag_sites():
    build_trends(_site)
