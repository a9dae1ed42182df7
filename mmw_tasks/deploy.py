"""Which sites the Airflow DAG files build DAGs for, read when a DAG file is parsed (no Airflow here).

- `MMW_SITE_CONFIG=/path/site.toml`: one site; its DAGs are `mmw_daily`, `mmw_trends` and
  `mmw_intraday` (and so on, with `__<site>`, below).
- `MMW_SITE_CONFIGS=/etc/mmw/sites/*.toml` (globs, separated by ':'): one pair of DAGs per site,
  `mmw_daily__<site>` and `mmw_trends__<site>`. Both variables may be set.
- Neither: one `mmw_daily` with no site known at parse time; each run names its config in the
  `config` param (what tests and ad-hoc use do). Its schedule is in `MMW_SCHEDULE_TZ` (UTC).

A config that does not load makes the DAG file fail to import, with the config error (file and
key) shown as the import error: a broken site is loud, not silently unscheduled.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

from mmw_tasks.config import ConfigError, Notify, Schedule, Site, load_site

# What a day's commit makes visible, for the assets the daily DAG's commit task declares (dataset
# names under the lake). The stages write into the day's new generation, which no reader sees
# before the commit: an asset event from a stage would announce what is not there yet.
DAY_OUTPUTS = (
    "mail_events",
    "dns_queries",
    "line_accounting",
    "malformed_lines",
    "intervals",
    "user_intervals",
    "domain_deferrals",
    "model_fits",
    "incidents",
    "detect_runs",
    "host_days",
    "address_book",
    "dns_client_days",
    "reports",
    "daily_trends",
)


@dataclass(frozen=True)
class DagSite:
    daily_dag_id: str
    trends_dag_id: str
    config: str  # default of the `config` param
    site: Site | None  # None: no config at parse time
    fallback_timezone: str = "UTC"

    @property
    def intraday_dag_id(self) -> str:
        """mmw_intraday (or mmw_intraday__<site>): the day so far, every [schedule].intraday_every."""
        return self.daily_dag_id.replace("mmw_daily", "mmw_intraday", 1)

    @property
    def name(self) -> str:
        return self.site.name if self.site else "default"

    @property
    def timezone(self) -> str:
        return self.site.timezone if self.site else self.fallback_timezone

    @property
    def schedule(self) -> Schedule:
        return self.site.schedule if self.site else Schedule()

    @property
    def notify(self) -> Notify:
        return self.site.notify if self.site else Notify()

    def asset(self, dataset: str) -> tuple[str, str]:
        """(name, uri) of a lake dataset's asset: unique per site, the uri is where it lives."""
        name = f"mmw/{self.name}/{dataset}"
        if self.site is None:
            return name, f"mmw://{self.name}/{dataset}"
        return name, (Path(self.site.lake).resolve() / dataset).as_uri()


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "site"


def dag_sites(env: dict[str, str] | None = None) -> list[DagSite]:
    env = dict(os.environ if env is None else env)
    tz = env.get("MMW_SCHEDULE_TZ", "UTC")
    out: list[DagSite] = []
    single = env.get("MMW_SITE_CONFIG")
    if single:
        out.append(DagSite("mmw_daily", "mmw_trends", single, load_site(single), tz))
    for pattern in filter(None, env.get("MMW_SITE_CONFIGS", "").split(os.pathsep)):
        for path in sorted(glob.glob(pattern)) or [pattern]:
            site = load_site(path)  # a pattern that matches nothing fails here, naming it
            s = slug(site.name)
            out.append(DagSite(f"mmw_daily__{s}", f"mmw_trends__{s}", path, site, tz))
    if not out:
        out.append(DagSite("mmw_daily", "mmw_trends", "site.toml", None, tz))
    ids = [d.daily_dag_id for d in out]
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise ConfigError(f"two site configs give the same DAG id: {twice}")
    return out
