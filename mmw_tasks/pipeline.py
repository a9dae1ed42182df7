"""The daily job's stages as plain functions: fetch, parse, aggregate, fit, detect, report, trends.

Each takes the config path and the day as strings and returns a small JSON-able dict, so the
Airflow tasks (dags/mmw_daily.py), `mmw run` and the tests call exactly the same code.
Data moves through the lake only.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from mmw_tasks import detect, ingest, lake, report, sources
from mmw_tasks.config import Site, load_site
from mmw_tasks.syslog import local_day_bounds

STAGES = ("fetch", "parse", "aggregate", "fit", "detect", "report", "trends")


def _site_day(config: str | Path, day: str | date) -> tuple[Site, date]:
    return load_site(config), date.fromisoformat(str(day))


def server_names(config: str | Path) -> list[str]:
    return [s.name for s in load_site(config).servers]


def _server(site: Site, name: str):
    for s in site.servers:
        if s.name == name:
            return s
    raise KeyError(f"no server named {name!r} in {site.config_path}")


def fetch(config: str | Path, server: str, day: str | date) -> dict:
    """Find the server's rotated files that hold the day's lines."""
    site, d = _site_day(config, day)
    files = sources.files_for_day(site, _server(site, server), d)
    return {"server": server, "day": str(d), "files": [str(p) for p in files]}


def parse(config: str | Path, server: str, day: str | date, files: list[str]) -> dict:
    site, d = _site_day(config, day)
    return ingest.parse_server_day(site, _server(site, server), d, [Path(f) for f in files])


def _params(site: Site, d: date) -> dict:
    start, end = local_day_bounds(d, site.timezone)
    return {"day": d, "day_start": start, "day_end": end, "interval": site.interval, "site": site.name,
            "mail_server_ips": list(site.mail_server_ips), "local_domains": list(site.local_domains)}


def aggregate(config: str | Path, day: str | date) -> dict:
    site, d = _site_day(config, day)
    con = lake.connect(site.lake)
    out = {}
    for name in ("intervals", "user_intervals", "domain_deferrals"):
        out[name] = lake.copy_query(con, f"aggregate/{name}", _params(site, d), lake.part_path(site.lake, name, d))
    return {"day": str(d), "rows": out}


def fit(config: str | Path, day: str | date) -> dict:
    site, d = _site_day(config, day)
    con = lake.connect(site.lake)
    lake.copy_query(con, "model/model_fits", _params(site, d), lake.part_path(site.lake, "model_fits", d))
    return {"day": str(d), **_fit_row(lake.refresh_views(con, site.lake), d)}


def _fit_row(con, d: date) -> dict:
    rows = con.sql("select * exclude (site, day) from model_fits where day = $day", params={"day": d}).pl()
    return rows.row(0, named=True) if rows.height else {}


def run_detect(config: str | Path, day: str | date) -> dict:
    site, d = _site_day(config, day)
    con = lake.connect(site.lake)
    start, end = local_day_bounds(d, site.timezone)
    found = detect.detect_day(con, site, d, start, end, _fit_row(con, d))
    lake.write_frame(found, lake.part_path(site.lake, "incidents", d))
    return {"day": str(d), "incidents": found.height,
            "by_kind": dict(found.group_by("kind").len().iter_rows()) if found.height else {}}


def make_report(config: str | Path, day: str | date) -> dict:
    site, d = _site_day(config, day)
    con = lake.connect(site.lake)
    iv = con.sql("select * from intervals where day = $day order by interval_start", params={"day": d}).pl()
    totals = iv.select(pl.col(list(report.TOTAL_KEYS)).sum()).row(0, named=True)
    inc = con.sql("select * from incidents where day = $day order by start", params={"day": d}).pl()
    notes = detect.report_notes(con, d)
    rep = report.build(site, d, totals, _fit_row(con, d), inc.to_dicts(), iv.to_dicts(), notes)
    path = report.write(site, rep)
    return {"day": str(d), "report": str(path), "incidents": len(rep["incidents"])}


def trends(config: str | Path, day: str | date) -> dict:
    site, d = _site_day(config, day)
    con = lake.connect(site.lake)
    lake.copy_query(con, "trends/daily_trends", _params(site, d), lake.part_path(site.lake, "daily_trends", d))
    return {"day": str(d)}


def is_done(config: str | Path, day: str | date) -> bool:
    site, d = _site_day(config, day)
    return (report.report_dir(site, d) / "report.json").is_file() and lake.part_path(
        site.lake, "daily_trends", d).is_file()


def run_day(config: str | Path, day: str | date, log=print) -> dict:
    """The whole daily job without Airflow; returns what each stage returned."""
    site, d = _site_day(config, day)
    out: dict = {"day": str(d), "servers": {}}
    t0 = time.monotonic()
    for s in site.servers:
        fetched = fetch(config, s.name, d)
        out["servers"][s.name] = parse(config, s.name, d, fetched["files"])
        log(f"{d} {s.name}: {out['servers'][s.name]['lines_read']} lines from "
            f"{len(fetched['files'])} file(s), {out['servers'][s.name]['malformed']} malformed")
    out["aggregate"] = aggregate(config, d)
    out["fit"] = fit(config, d)
    out["detect"] = run_detect(config, d)
    out["report"] = make_report(config, d)
    out["trends"] = trends(config, d)
    out["seconds"] = round(time.monotonic() - t0, 2)
    return out


def resolve_run(config: str | Path, day: str | None, logical_date) -> dict:
    """What an Airflow run works on: the `day` param, else the local day before the logical date."""
    site = load_site(config)
    if day:
        d = date.fromisoformat(str(day))
    elif logical_date is not None:
        d = (logical_date.astimezone(site.tz) - timedelta(days=1)).date()
    else:
        raise ValueError("no day given and the run has no logical date")
    return {"config": str(site.config_path), "day": str(d), "servers": [s.name for s in site.servers]}
