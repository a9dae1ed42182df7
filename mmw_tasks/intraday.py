"""The day so far: `mmw run --partial [--until HH:MM]` and the mmw_intraday DAG (docs/deployment.md).

A partial run analyses the lines of the local day stamped before `as_of` (now, or `--until` for a
replay), with the daily job's own stages, thresholds and baselines, and writes everything to the
day's partial area, `<lake>/partial/YYYY-MM-DD/`, never to the lake's datasets:

    <lake>/partial/D/<dataset>/day=D/...      what parse, aggregate, fit and detect wrote
    <lake>/partial/D/<dataset>/day=X -> ../../../<dataset>/day=X   every committed earlier day
    <lake>/partial/D/reports/day=D/report.*   the partial report ("partial": true, "as_of")
    <lake>/partial/D/alerts.json              the incidents already notified (alert once)

The area is a lake of its own (the same views and SQL work on it): its earlier days are links to
the lake's committed days (those with a daily_trends row), so detection's baselines are exactly
the daily run's, and it has nothing of later days (no look-ahead in a replay). Lines are cut at
`as_of` while they are parsed, and the intervals end with the one holding `as_of`. The daily run
removes the area (discard), so a partial run never counts as the day done (pipeline.is_done) and
leaves no trace in the finished lake. Fetching still goes through the lake's raw area and its
manifest: that is the intake's cache, not the day's results.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, NotRequired, TypedDict, cast

import polars as pl

from mmw_tasks import failures, lake
from mmw_tasks.config import Site, load_site
from mmw_tasks.detect import day as detect
from mmw_tasks.fetch import sources
from mmw_tasks.parse import ingest
from mmw_tasks.parse.ingest import Parsed
from mmw_tasks.parse.stamps import local_day_bounds
from mmw_tasks.report import build as report
from mmw_tasks.report.model import ATTENTION, Incident, Report, who

STATE = "alerts.json"  # per site and day, in the day's partial area
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


class PartialRun(TypedDict):
    """What one partial run works on and found (the mmw_intraday DAG's XCom)."""

    config: str  # the site TOML, absolute
    day: str  # the site's local day, YYYY-MM-DD
    as_of: str  # ISO 8601 with the site's offset: lines stamped before it are analysed
    area: str  # the day's partial area, <lake>/partial/D
    servers: NotRequired[dict[str, Parsed]]  # intake: by server, those that arrived
    missing: NotRequired[list[str]]  # intake: servers with no data (on_missing_server = "partial")
    report: NotRequired[str]  # analyse: the partial report.json
    incidents: NotRequired[int]  # analyse: incidents in it
    by_kind: NotRequired[dict[str, int]]  # analyse: how many of each kind
    seconds: NotRequired[float]  # run_partial: wall time


class PartialError(ValueError):
    """A partial run that cannot be made (a day not begun, a bad --until); `mmw` exits 2."""


class NothingToDo(Exception):
    """A scheduled look at a day the daily run has done already (plan_run); the DAG skips it."""


# ---------------------------------------------------------------- the area


def area_dir(lake_dir: Path, day: date | str) -> Path:
    return lake.partial_dir(lake_dir, day)


def partial_site(site: Site, day: date | str) -> Site:
    """The site as a partial run sees it: the same config, its lake the day's partial area."""
    return dataclasses.replace(site, lake=area_dir(site.lake, day))


discard = lake.discard_partial  # the daily run's trends stage calls it, once the day is in the lake


def committed_days(lake_dir: Path) -> set[str]:
    """The days the daily run has finished (their daily_trends row is its last write)."""
    root = Path(lake_dir) / "daily_trends"
    if not root.is_dir():
        return set()
    return {p.name[4:] for p in root.glob("day=*") if (p / "part-0.parquet").is_file()}


def link_history(site: Site, day: date) -> int:
    """Link every committed day before `day` of every per-day dataset into the partial area
    (relative links, so the lake can move); drop links whose day is gone. Returns the links."""
    area = area_dir(site.lake, day)
    done = {d for d in committed_days(site.lake) if d < str(day)}
    n = 0
    for dataset in lake.VIEWS:
        if dataset in lake.ROLLUPS:
            continue
        src, dst = Path(site.lake) / dataset, area / dataset
        for link in dst.glob("day=*") if dst.is_dir() else ():
            if link.is_symlink() and (link.name[4:] not in done or not link.exists()):
                link.unlink()
        if not src.is_dir():
            continue
        for part in src.glob("day=*"):
            if part.name[4:] not in done:
                continue
            link = dst / part.name
            if not link.is_symlink():
                dst.mkdir(parents=True, exist_ok=True)
                os.symlink(Path("..", "..", "..", dataset, part.name), link)
            n += 1
    return n


# ---------------------------------------------------------------- when


def as_of_for(site: Site, day: date, until: str | None = None, now: datetime | None = None) -> datetime:
    """The moment a partial run stands at, in the site's time zone: `until` (HH:MM local on `day`,
    24:00 the day's end), else `now` (default: the clock), no later than the day's end."""
    start, end = (t.astimezone(site.tz) for t in local_day_bounds(day, site.timezone))
    if until is not None:
        if not _HHMM.match(until):
            raise PartialError(f"--until {until!r} is not a local time like 15:00")
        h, m = (int(x) for x in until.split(":"))
        at = end if h == 24 else datetime(day.year, day.month, day.day, h, m, tzinfo=site.tz)
    else:
        at = min((now or datetime.now(site.tz)).astimezone(site.tz), end)
    if at <= start:
        raise PartialError(f"day {day} has not begun at {at.isoformat()}: nothing to analyse")
    return at


def _bins_end(site: Site, day: date, as_of: datetime) -> datetime:
    """The end of the interval that holds `as_of` (UTC): the partial day's intervals stop there."""
    start, end = local_day_bounds(day, site.timezone)
    n = math.ceil((as_of - start) / site.interval)
    return min(start + n * site.interval, end)


# ---------------------------------------------------------------- the stages


def plan(
    config: str | Path, day: str | date | None = None, until: str | None = None, now: datetime | None = None
) -> PartialRun:
    """What a partial run works on: `day` (default: today, local) as of `until` or now."""
    site = load_site(config)
    clock = (now or datetime.now(site.tz)).astimezone(site.tz)
    d = date.fromisoformat(str(day)) if day else clock.date()
    as_of = as_of_for(site, d, until, clock)
    return {
        "config": str(site.config_path),
        "day": str(d),
        "as_of": as_of.isoformat(),
        "area": str(area_dir(site.lake, d)),
    }


def plan_run(config: str | Path, day: str | None = None, until: str | None = None) -> PartialRun:
    """plan for the mmw_intraday DAG: today as of now, or `day` as of `until` (a replay). Raises
    NothingToDo for a day already done, unless it is a replay."""
    run = plan(config, day, until)
    from mmw_tasks import pipeline

    if until is None and pipeline.is_done(run["config"], run["day"]):
        raise NothingToDo(f"{run['day']} is done already: the daily report replaces the partial ones")
    return run


def _when(run: PartialRun) -> tuple[Site, Site, date, datetime]:
    site = load_site(run["config"])
    d = date.fromisoformat(run["day"])
    return site, partial_site(site, d), d, datetime.fromisoformat(run["as_of"])


def intake(run: PartialRun, log: Callable[[str], Any] = lambda m: None) -> PartialRun:
    """Fetch and parse every server's lines of the day stamped before as_of, into the area.
    A server that cannot be fetched follows [site].on_missing_server, as in the daily run; a
    failure is a failures.StageError naming the day, the stage and the server, as there."""
    from mmw_tasks.pipeline import INPUT_ERRORS

    site, psite, d, as_of = _when(run)
    with failures.stage(d, "history", lake=site.lake):
        link_history(site, d)
    until = as_of.astimezone(site.tz).replace(tzinfo=None)
    servers: dict[str, Parsed] = {}
    missing: list[str] = []
    for srv in site.servers:
        try:
            with failures.stage(d, "fetch", srv.name, INPUT_ERRORS, site.lake):
                got = sources.fetch_for_day(site, srv, d)
            with failures.stage(d, "parse", srv.name, INPUT_ERRORS, site.lake):
                servers[srv.name] = ingest.parse_server_day(psite, srv, d, got.files, got.years, until=until)
        except failures.StageError as e:
            if site.on_missing_server == "fail":
                raise
            log(f"{d} {srv.name}: missing ({e.why})")
            missing.append(srv.name)
            _, dataset, schema = ingest.parser_for(srv)
            lake.drop_server_parts(psite.lake, d, srv.name)
            lake.write_frame(pl.DataFrame(schema=schema), lake.part_path(psite.lake, dataset, d, srv.name))
            continue
        log(f"{d} {srv.name}: {servers[srv.name]['lines_read']} lines before {until:%H:%M}")
    if not any(s.role == "mail" and s.name in servers for s in site.servers):
        raise sources.SourceError(f"day {d}: no mail server arrived ({', '.join(missing)}); nothing to analyse")
    return {**run, "servers": servers, "missing": missing}


def _params(site: Site, d: date, as_of: datetime) -> dict[str, Any]:
    from mmw_tasks import pipeline

    return {**pipeline._params(site, d), "day_end": _bins_end(site, d, as_of)}


def analyse(run: PartialRun) -> PartialRun:
    """Aggregate, fit, detect and report the area's day as of as_of (the daily run's SQL and
    detection; the intervals end with the one holding as_of)."""
    from mmw_tasks import pipeline

    site, psite, d, as_of = _when(run)
    con = lake.connect(psite.lake, memory_limit=site.memory_limit)
    params = _params(psite, d, as_of)
    for name in ("intervals", "user_intervals", "domain_deferrals"):
        lake.copy_query(con, f"aggregate/{name}", params, lake.part_path(psite.lake, name, d))
    lake.refresh_views(con, psite.lake)  # the first day of a new site: the views are made now
    lake.copy_query(con, "model/model_fits", params, lake.part_path(psite.lake, "model_fits", d))
    lake.refresh_views(con, psite.lake)
    fit = dict(pipeline._fit_row(con, d))
    start, _ = local_day_bounds(d, site.timezone)
    found = detect.detect_day(con, psite, d, start, as_of, fit)
    lake.write_frame(found, lake.part_path(psite.lake, "incidents", d))
    lake.refresh_views(con, psite.lake)
    path = write_report(con, psite, d, as_of, run.get("missing", []))
    return {
        **run,
        "report": str(path),
        "incidents": found.height,
        "by_kind": dict(found.group_by("kind").len().iter_rows()) if found.height else {},
    }


def _hhmm(as_of: datetime, site: Site) -> str:
    local = as_of.astimezone(site.tz)
    end = local_day_bounds(local.date() - timedelta(days=1), site.timezone)[1].astimezone(site.tz)
    return "24:00" if local == end else f"{local:%H:%M}"


def banner(rep: Report, site: Site) -> str:
    """The line that opens a partial report: what it covers and that it will be replaced."""
    as_of = datetime.fromisoformat(rep["as_of"]) if rep.get("as_of") else None
    when = _hhmm(as_of, site) if as_of else "?"
    return (
        f"Intraday report (partial, as of {when} {site.timezone}): only the lines stamped before "
        f"{when}; the daily run replaces it with the whole day."
    )


def write_report(con: Any, psite: Site, d: date, as_of: datetime, missing: list[str]) -> Path:
    """report.json/.md/.html of the partial day in the area: the daily report's content with
    `"partial": true` and `"as_of"`, and a banner at the top of report.md and report.html."""
    from html import escape

    notes = detect.report_notes(con, d)
    if missing:
        notes.insert(0, f"PARTIAL: no data from server(s) {', '.join(missing)} so far.")
    rep = report.gather(con, psite, d, notes)
    rep["partial"], rep["missing_servers"] = True, list(missing)
    rep["as_of"] = as_of.astimezone(psite.tz).isoformat()
    line = banner(rep, psite)
    rep["notes"].insert(0, line)
    out = report.report_dir(psite, d)
    out.mkdir(parents=True, exist_ok=True)
    page = report.html_page(rep).replace(
        "<body>", f"<body><p class='alert partial-banner'><b>{escape(line)}</b></p>", 1
    )
    for name, text in (
        ("report.md", f"**{line}**\n\n" + report.markdown(rep)),
        ("report.html", page),
        ("report.json", json.dumps(rep, indent=2, default=str) + "\n"),
    ):
        with lake.atomic_file(out / name) as tmp:
            tmp.write_text(text)
    return out / "report.json"


def run_partial(
    config: str | Path,
    day: str | date | None = None,
    until: str | None = None,
    now: datetime | None = None,
    log: Callable[[str], Any] = lambda m: None,
) -> PartialRun:
    """The whole partial run (what `mmw run --partial` does): plan, intake, analyse. A failure
    is one line (failures.StageError: the day, the stage, the server); a lake that cannot be
    written is a ConfigError before anything runs, as for the daily run."""
    t0 = time.monotonic()
    planned = plan(config, day, until, now)
    failures.usable_lake(load_site(planned["config"]))
    taken = intake(planned, log)
    with failures.stage(planned["day"], "analyse", lake=Path(planned["area"])):
        run = analyse(taken)
    run["seconds"] = round(time.monotonic() - t0, 2)
    return run


# ---------------------------------------------------------------- alert once


def incident_key(i: dict[str, Any]) -> str:
    """What makes an incident the same one from run to run: its kind and who (host, sender, domain)."""
    return "|".join(str(i.get(k) or "") for k in ("kind", "client_ip", "sender", "domain"))


def load_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(Path(path).read_text())
    except (FileNotFoundError, ValueError):
        return {"notified": {}}
    return state if isinstance(state.get("notified"), dict) else {"notified": {}}


def save_state(path: Path, state: dict[str, Any]) -> None:
    with lake.atomic_file(Path(path)) as tmp:
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")


def new_alerts(rep: dict[str, Any], state: dict[str, Any], kinds: Iterable[str] = ATTENTION) -> list[dict[str, Any]]:
    """The report's incidents of `kinds` that `state` has not notified yet, in the report's order."""
    seen = state.get("notified", {})
    wanted = set(kinds)
    out, keys = [], set()
    for i in rep.get("incidents", []):
        k = incident_key(i)
        if i.get("kind") in wanted and k not in seen and k not in keys:
            out.append(i)
            keys.add(k)
    return out


def remember(state: dict[str, Any], alerts: Iterable[dict[str, Any]], as_of: str | None) -> dict[str, Any]:
    notified = dict(state.get("notified", {}))
    for i in alerts:
        notified[incident_key(i)] = {"as_of": as_of, "start": i.get("start"), "score": i.get("score")}
    return {**state, "notified": notified}


def alert_message(site: str, rep: dict[str, Any], alerts: list[dict[str, Any]], report_path: str | Path) -> dict:
    """One message for the new incidents of a partial report (the [notify] channels' JSON)."""
    day, as_of = rep.get("day"), rep.get("as_of")
    lines = [
        f"- {i.get('title') or i['kind']}: {who(cast(Incident, i))} from {i.get('start')} (score {i.get('score')})"
        for i in alerts
    ]
    brief = ", ".join(
        f"{i['kind']} {i.get('client_ip') or i.get('domain') or i.get('sender') or ''}".strip() for i in alerts[:3]
    )
    head = f"{len(alerts)} new incident(s) as of {str(as_of)[11:16]}"
    return {
        "source": "mmw",
        "event": "intraday",
        "site": site,
        "day": day,
        "as_of": as_of,
        "partial": True,
        "incidents": [
            {k: i.get(k) for k in ("kind", "start", "end", "sender", "client_ip", "domain", "score")} for i in alerts
        ],
        "report": str(report_path),
        "subject": f"[mmw {site}] {day}: {head}: {brief}"[:200],
        "text": "\n".join([f"mmw {site}, day {day} (partial): {head}.", *lines, f"Report: {report_path}"]),
    }


def notify_new(run: PartialRun, send: Callable[[dict], Any] | None = None) -> list[dict]:
    """Tell [notify] about the partial report's incidents not told before, once: the message is
    handed to `send` (the DAG's channels; None: none, the alerts are only remembered) and only
    then remembered in the area's alerts.json, so that a send that fails is tried again."""
    site = load_site(run["config"])
    path = Path(run["report"]) if run.get("report") else None
    if path is None or not path.is_file():
        return []
    rep = json.loads(path.read_text())
    state_path = Path(run["area"]) / STATE
    state = load_state(state_path)
    alerts = new_alerts(rep, state, site.notify.incident_kinds)
    if not alerts:
        return []
    msg = alert_message(site.name, rep, alerts, path.with_name("report.html"))
    if send is not None:
        send(msg)
    save_state(state_path, remember(state, alerts, rep.get("as_of")))
    return [msg]
