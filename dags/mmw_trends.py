"""
### mmw_trends

Runs whenever the site's `daily_trends` asset is updated (the daily DAG's last task, for any day,
also during a backfill) and rewrites the site's trend table over every day done so far:
`<lake>/reports/trends.json` and `trends.md` (totals, m_s and m_p with their 7-day medians,
incident counts per day).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, Param, dag, task

from mmw_tasks.deploy import DagSite, dag_sites


def build_trends(site: DagSite):
    name, uri = site.asset("daily_trends")
    out_name, out_uri = site.asset("trends_summary")

    @dag(
        dag_id=site.trends_dag_id,
        schedule=[Asset(name=name, uri=uri)],
        start_date=pendulum.datetime(2000, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        params={"config": Param(site.config, type="string", description="site TOML file")},
        default_args={"owner": "mmw", "retries": 1},
        tags=["mmw", site.name],
        doc_md=__doc__,
    )
    def mmw_trends():
        @task(outlets=[Asset(name=out_name, uri=out_uri)])
        def summarise(params=None, triggering_asset_events=None) -> dict:
            from mmw_tasks import pipeline

            return pipeline.trends_summary(params["config"])

        summarise()

    return mmw_trends()


for _site in dag_sites():
    build_trends(_site)
