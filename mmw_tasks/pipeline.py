"""The daily job's stages as plain functions: fetch, parse, aggregate, fit, detect, report, trends,
then commit.

Each takes the config path and the day as strings and returns a small JSON-able dict, so the
Airflow tasks (dags/mmw_daily.py), `mmw run` and the tests call exactly the same code.
Data moves through the lake only; what the stages hand each other (XCom in Airflow) are the
TypedDicts below, every key documented once. What an Airflow run works on (which day, one job
per server, whether the day is done already) is decided here too, so the DAG file only wires.

A run writes the day under a new generation (generations.py), chosen once when the run begins
(run_day; plan_run in Airflow, where it travels in every task's payload as `generation`); the
stages write into it and read the day from it, and commit switches it in, so that every output of
the day becomes visible at once. A stage called without a generation works on a copy of the day
as committed and commits it when it succeeds.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, NotRequired, Protocol, Required, TypedDict, cast

import duckdb

from mmw_tasks import failures, generations, lake
from mmw_tasks import sql as sqlfiles
from mmw_tasks.config import Server, Site, load_site
from mmw_tasks.detect import day as detect
from mmw_tasks.fetch import sources
from mmw_tasks.fetch.sftp import CredentialsDict
from mmw_tasks.fetch.sources import SourceError
from mmw_tasks.parse import ingest
from mmw_tasks.parse.ingest import Parsed
from mmw_tasks.parse.logfiles import BadFile, LogFileError
from mmw_tasks.parse.stamps import local_day_bounds
from mmw_tasks.report import build as report
from mmw_tasks.report import gaps
from mmw_tasks.report import trends as trends_report
from mmw_tasks.report.trends import RollUps

STAGES = ("fetch", "parse", "aggregate", "fit", "detect", "report", "trends", "commit")
INPUT_ERRORS = (LogFileError,)  # a log file that cannot be read: unusable input (exit 2), not a failed stage

# ---------------------------------------------------------------- what the stages hand each other


class RunDay(TypedDict):
    """Which site's which day a run works on (resolve_run)."""

    config: str  # the site TOML file, as an absolute path
    day: str  # the site's local day, YYYY-MM-DD
    servers: list[str]  # every server of the site, in config order


class Run(RunDay):
    """What one run of the daily job works on: one site's one day (plan_run)."""

    generation: str  # the day's new generation (generations.begin): stages write into it, commit switches it in


class Job(Run):
    """One server's share of a run: what fetch and parse are mapped over in Airflow."""

    server: str  # the server this job fetches and parses


class FetchResult(TypedDict):
    """What fetch found for one server and day: sources.Fetched as JSON (see there for each key)."""

    server: str
    day: str  # YYYY-MM-DD
    files: list[str]  # paths, oldest first
    pulled: dict[str, int]
    gaps: list[str]
    years: dict[str, list[list[int]]]
    bad_files: list[BadFile]  # files that may hold lines of the day, left out as unreadable (on_bad_file = "skip")


class FetchedJob(Job, FetchResult):
    """A job with what fetch found: the fetch task's XCom, which the parse task reads."""


class Settled(TypedDict):
    """What settle decided about the servers that did not arrive (on_missing_server)."""

    day: str  # YYYY-MM-DD
    missing: list[str]  # the servers with no data for the day; [] when all arrived
    partial: bool  # the day is analysed without the missing servers
    why: NotRequired[str]  # per missing server, why it is missing (only when some are)


class SettledRun(Run, Settled):
    """A run after settle: what aggregate, fit, detect, report and trends are given in Airflow."""


class Aggregated(TypedDict):
    day: str  # YYYY-MM-DD
    rows: dict[str, int]  # rows written, by dataset: intervals, user_intervals, domain_deferrals


class ModelFit(TypedDict, total=False):
    """The day's model_fits row less site and day (sql/model/model_fits.sql); {} before a fit.
    The coefficients mean what report.model.Model says; None (or NaN) where they cannot be fitted."""

    m_s: float | None
    m_p: float | None
    r2: float | None
    q: float | None
    n: float | None
    m_sd: float | None
    r2_sd: float | None
    n_intervals: int  # the intervals the fit is over


class Fitted(ModelFit):
    day: Required[str]  # YYYY-MM-DD


class Detected(TypedDict):
    day: str  # YYYY-MM-DD
    incidents: int  # incidents written to the lake for the day
    by_kind: dict[str, int]  # how many of each kind (report.model.KIND_TITLES); {} on a quiet day


class Reported(TypedDict):
    day: str  # YYYY-MM-DD
    report: str  # path of the day's report.json (report.md and report.html beside it)
    headline: list[str]  # the report's verdict lines, most severe first; [] on a quiet day
    incidents: int  # incidents in the report
    drift: list[str]  # the model coefficients that left their history band
    partial: bool  # the report leaves out servers that did not arrive, or hours a server has no line in
    missing_servers: list[str]  # the servers it leaves out
    gaps: list[str]  # each gap in words: "1mx: no lines 13:04-24:00 (the day is partial)" (report/gaps.py)


class Trended(RollUps):
    day: str  # YYYY-MM-DD
    trends_page: str | None  # path of the site's trends.html, when this call rendered it


class Committed(TypedDict):
    """The day's generation switched in (generations.commit)."""

    day: str  # YYYY-MM-DD
    generation: str  # the day's current generation now
    files: int  # the files it holds (every dataset's parts and the report's files)
    removed: int  # leftovers removed: superseded generations, links to nothing, abandoned temp files
    catalog: str  # path of the lake's DuckDB catalog
    catalog_rewritten: bool  # the catalog was out of date (a dataset appeared, the lake moved) and was rewritten


class Delivered(TypedDict):
    """Whether the day's report was mailed ([report.email]); when it was, to whom (deliver.Sent)."""

    sent: bool
    day: str  # YYYY-MM-DD
    to: NotRequired[list[str]]
    refused: NotRequired[list[str]]
    subject: NotRequired[str]


class TrendsPage(TypedDict):
    days: int  # days in the lake's daily_trends
    trends_page: str | None  # path of the page; None with no day done yet


class DayRun(TypedDict):
    """Everything `mmw run` did for one day (run_day), stage by stage."""

    day: str  # YYYY-MM-DD
    servers: dict[str, Parsed]  # by server name, the servers that arrived
    settle: Settled
    aggregate: Aggregated
    fit: Fitted
    detect: Detected
    report: Reported
    trends: Trended
    commit: Committed
    deliver: NotRequired[Delivered]  # left out when mailing was not asked for (a backfill)
    stages: dict[str, StageCost]  # what each stage cost, in the order they ran (see run_day)
    seconds: float  # wall time of the whole day


class StageCost(TypedDict):
    """What one stage of run_day cost (getrusage before and after it)."""

    wall: float  # seconds
    cpu: float  # CPU seconds of the process: user + system, every thread, and children waited for
    peak_mb: float  # the process's peak RSS so far, MB


OnStage = Callable[[str, StageCost | None], Any]


class MissingServersError(SourceError):
    """A day whose servers did not all arrive, under on_missing_server = "fail"; names them."""


class DayDone(Exception):
    """An automated or repeated run whose day has its report and trend row already (plan_run);
    the DAG skips the run. The message says how to redo the day."""


class NotDue(Exception):
    """An Airflow run for a local day whose logs have not rotated yet: a day D runs from D+1
    [schedule].run_at local time on (plan_run). The DAG fails such a run at once, without retries;
    the message says when the day can run and what to use for the day so far."""


def due_at(site: Site, day: date) -> datetime:
    """When an Airflow run for local day `day` may start: [schedule].run_at on the next local
    morning, once every server has rotated the day's logs (the scheduler's own runs start then)."""
    hour, minute = (int(x) for x in site.schedule.run_at.split(":"))
    nxt = day + timedelta(days=1)
    return datetime(nxt.year, nxt.month, nxt.day, hour, minute, tzinfo=site.tz)


def _site_day(config: str | Path, day: str | date) -> tuple[Site, date]:
    return load_site(config), date.fromisoformat(str(day))


def server_names(config: str | Path) -> list[str]:
    return [s.name for s in load_site(config).servers]


def _server(site: Site, name: str) -> Server:
    for s in site.servers:
        if s.name == name:
            return s
    raise KeyError(f"no server named {name!r} in {site.config_path}")


def fetch(config: str | Path, server: str, day: str | date, credentials: CredentialsDict | None = None) -> FetchResult:
    """Find the server's rotated files that hold the day's lines, pulling sftp sources into the
    lake's raw area first. `credentials` (sftp only): plain login details the DAG resolved from
    the server's Airflow connection; without them the SSH agent and key files are used."""
    site, d = _site_day(config, day)
    got = sources.fetch_for_day(site, _server(site, server), d, credentials)
    return {
        "server": server,
        "day": str(d),
        "files": [str(p) for p in got.files],
        "pulled": got.pulled,
        "gaps": got.gaps,
        "years": got.years,
        "bad_files": got.bad_files,
    }


def fetch_job(job: Job, credentials: Callable[[str, str], CredentialsDict | None] | None = None) -> FetchedJob:
    """fetch for one job of a run, any error raised again naming the server and day.
    `credentials(config, server)`: the server's sftp login (the DAG reads its Airflow connection);
    called inside that naming, so a connection that cannot be read is reported like a fetch."""
    try:
        creds = credentials(job["config"], job["server"]) if credentials else None
        return {**job, **fetch(job["config"], job["server"], job["day"], credentials=creds)}
    except Exception as e:
        why = f"{type(e).__name__}: {e}"
        raise RuntimeError(f"server {job['server']}: cannot fetch {job['day']}: {why}") from e


def parse_job(fetched: FetchedJob) -> Parsed:
    """parse for one job of a run, with the files and years its fetch found."""
    return parse(
        fetched["config"],
        fetched["server"],
        fetched["day"],
        fetched["files"],
        fetched.get("years"),
        fetched["generation"],
    )


@contextmanager
def _day_generation(site: Site, d: date, generation: str | None) -> Iterator[None]:
    """A stage's writes and reads of the day: inside the run's generation `generation`; without one
    (a stage run on its own), inside a copy of the day as committed, switched in when the stage
    succeeds (and left to the next run of the day when it fails)."""
    if generation:
        with generations.writing(site.lake, d, generation):
            yield
        return
    own = generations.begin(site.lake, d, seed=True)
    with generations.writing(site.lake, d, own):
        yield
    _commit(site, d, own)


def parse(
    config: str | Path,
    server: str,
    day: str | date,
    files: list[str],
    years: dict[str, list[list[int]]] | None = None,
    generation: str | None = None,
) -> Parsed:
    """Parse a server's files for the day; `years`: what fetch found of each file's years (else
    what the manifest knows of them)."""
    site, d = _site_day(config, day)
    srv = _server(site, server)
    paths = [Path(f) for f in files]
    if years is None:
        years = sources.known_years(site, srv, d, paths)
    with _day_generation(site, d, generation):
        return ingest.parse_server_day(site, srv, d, paths, years)


def _params(site: Site, d: date) -> dict[str, Any]:
    start, end = local_day_bounds(d, site.timezone)
    return {
        "day": d,
        "day_start": start,
        "day_end": end,
        "interval": site.interval,
        "site": site.name,
        "mail_server_ips": list(site.mail_server_ips),
        "local_domains": list(site.local_domains),
        "has_dns": bool(site.servers_by_role("dns")),
    }


def aggregate(config: str | Path, day: str | date, generation: str | None = None) -> Aggregated:
    site, d = _site_day(config, day)
    out: dict[str, int] = {}
    with _day_generation(site, d, generation):
        con = lake.connect(site.lake, memory_limit=site.memory_limit)
        for name in ("intervals", "user_intervals", "domain_deferrals"):
            out[name] = lake.copy_query(con, f"aggregate/{name}", _params(site, d), lake.part_path(site.lake, name, d))
    return {"day": str(d), "rows": out}


def fit(config: str | Path, day: str | date, generation: str | None = None) -> Fitted:
    site, d = _site_day(config, day)
    with _day_generation(site, d, generation):
        con = lake.connect(site.lake, memory_limit=site.memory_limit)
        lake.copy_query(con, "model/model_fits", _params(site, d), lake.part_path(site.lake, "model_fits", d))
        return {"day": str(d), **_fit_row(lake.refresh_views(con, site.lake), d)}


def _fit_row(con: duckdb.DuckDBPyConnection, d: date) -> ModelFit:
    rows = sqlfiles.query(con, "model/day_fit", {"day": d}).pl()
    return cast(ModelFit, rows.row(0, named=True) if rows.height else {})


def run_detect(config: str | Path, day: str | date, generation: str | None = None) -> Detected:
    site, d = _site_day(config, day)
    start, end = local_day_bounds(d, site.timezone)
    with _day_generation(site, d, generation):
        con = lake.connect(site.lake, memory_limit=site.memory_limit)
        fit_row = dict(_fit_row(con, d))
        found = lake.beyond_budget(con, "detect", lambda: detect.detect_day(con, site, d, start, end, fit_row))
        lake.write_frame(found, lake.part_path(site.lake, "incidents", d))
    return {
        "day": str(d),
        "incidents": found.height,
        "by_kind": dict(found.group_by("kind").len().iter_rows()) if found.height else {},
    }


def settle(
    config: str | Path,
    day: str | date,
    arrived: list[str],
    reasons: dict[str, str] | None = None,
    generation: str | None = None,
) -> Settled:
    """After fetch and parse: apply [site].on_missing_server to the servers that did not arrive.

    "fail" raises, naming them. "partial" empties their parts of the day (so totals mean exactly the
    servers that arrived) and lets the analysis run; the report then says it is partial. A day with
    no mail server at all cannot be analysed either way.
    """
    site, d = _site_day(config, day)
    missing = [s.name for s in site.servers if s.name not in set(arrived)]
    if not missing:
        return {"day": str(d), "missing": [], "partial": False}
    reasons = reasons or {}
    why = "; ".join(f"{m}: {reasons.get(m, 'fetch or parse failed, see its task log')}" for m in missing)
    mail_left = [s for s in site.servers_by_role("mail") if s.name not in missing]
    if site.on_missing_server == "fail" or not mail_left:
        rule = 'on_missing_server = "fail"' if site.on_missing_server == "fail" else "no mail server arrived"
        raise MissingServersError(
            f"day {d}: no data from server(s) {', '.join(missing)} ({why}); {rule}, so the day is not analysed"
        )
    import polars as pl

    with _day_generation(site, d, generation):
        for m in missing:  # an empty part, so the day's totals count nothing (not stale data) from it
            lake.drop_server_parts(site.lake, d, m)
            _, dataset, schema = ingest.parser_for(_server(site, m))
            lake.write_frame(pl.DataFrame(schema=schema), lake.part_path(site.lake, dataset, d, m))
    return {"day": str(d), "missing": missing, "partial": True, "why": why}


def settle_run(jobs: list[Job], parsed: object) -> SettledRun:
    """settle for an Airflow run: `parsed` is the mapped fetch-and-parse's output, the results of
    the servers whose parse succeeded. Airflow hands it over as a sequence (where a server's parse
    failed: nothing, None or a placeholder), or as the one result itself when only one exists;
    any of these is read here, and whatever is not a parse result counts as a server missing."""
    first = jobs[0]
    run: Run = {
        "config": first["config"],
        "day": first["day"],
        "servers": first["servers"],
        "generation": first["generation"],
    }
    results = [parsed] if isinstance(parsed, dict) else list(cast(Iterable[object], parsed or ()))
    arrived = [p["server"] for p in results if isinstance(p, dict) and isinstance(p.get("server"), str)]
    return {**run, **settle(run["config"], run["day"], arrived, generation=run["generation"])}


def make_report(
    config: str | Path, day: str | date, missing: list[str] | None = None, generation: str | None = None
) -> Reported:
    """The day's report. It is partial when servers are missing (on_missing_server = "partial")
    or one that arrived has a gap in the day (report/gaps.py): `partial` at the top and in the
    totals, each gap in `gaps` and told in the notes. Gaps are looked for in the day as the run
    wrote it (its generation), like everything else the report reads."""
    site, d = _site_day(config, day)
    missing = list(missing or [])
    with _day_generation(site, d, generation):
        con = lake.connect(site.lake, memory_limit=site.memory_limit)
        start, end = local_day_bounds(d, site.timezone)
        found = gaps.find(con, site, d, start, end, [s.name for s in site.servers if s.name not in missing])
        notes = [gaps.note(g) for g in found] + detect.report_notes(con, d)
        if missing:
            notes.insert(
                0,
                f"PARTIAL: no data from server(s) {', '.join(missing)}; totals and incidents cover "
                'the other servers only (on_missing_server = "partial").',
            )
        dns = [s.name for s in site.servers_by_role("dns")]
        if not dns:
            notes.insert(0, report.NO_DNS)
        rep = lake.beyond_budget(con, "report", lambda: report.gather(con, site, d, notes))
        partial = bool(missing or found)
        rep["partial"], rep["missing_servers"], rep["gaps"] = partial, missing, found
        rep["totals"]["partial"] = partial
        rep["dns_servers"] = dns
        path = report.write(site, rep)
    return {
        "day": str(d),
        "report": str(path),
        "headline": list(rep["headline"]),
        "incidents": len(rep["incidents"]),
        "drift": rep["history"].get("drift", []),
        "partial": partial,
        "missing_servers": missing,
        "gaps": [g["text"] for g in found],
    }


def trends(config: str | Path, day: str | date, with_page: bool = True, generation: str | None = None) -> Trended:
    """The day's daily_trends row, and the roll-ups of its week and month (rewritten in place: they
    are derived, and a day not committed is redone). `with_page=False`: leave the site's trends page
    to trends_page() (the Airflow deployment)."""
    site, d = _site_day(config, day)
    with _day_generation(site, d, generation):
        con = lake.connect(site.lake, memory_limit=site.memory_limit)
        lake.copy_query(con, "trends/daily_trends", _params(site, d), lake.part_path(site.lake, "daily_trends", d))
        rolled = trends_report.roll_up(lake.ensure_views(con, site.lake), site, d)
        page = trends_report.write_page(lake.ensure_views(con, site.lake), site) if with_page else None
    return {"day": str(d), **rolled, "trends_page": str(page) if page else None}


def commit(config: str | Path, day: str | date, generation: str) -> Committed:
    """Switch the day's new generation in: all its outputs become visible at once (generations.commit),
    what earlier runs left over is removed, and the lake's catalog is rewritten if it is out of date."""
    site, d = _site_day(config, day)
    return _commit(site, d, generation)


def _commit(site: Site, d: date, generation: str) -> Committed:
    done = generations.commit(site.lake, d, generation)
    fresh = lake.catalog_is_current(site.lake)
    if not fresh:
        lake.write_catalog(site.lake)
    lake.discard_partial(site.lake, d)  # the day is in the lake: its partial runs' area goes
    return {
        "day": done["day"],
        "generation": done["generation"],
        "files": done["files"],
        "removed": done["removed"],
        "catalog": str(Path(site.lake) / lake.CATALOG),
        "catalog_rewritten": not fresh,
    }


def commit_run(run: SettledRun) -> Committed:
    """commit for an Airflow run: its last task."""
    return commit(run["config"], run["day"], run["generation"])


def deliver(config: str | Path, day: str | date) -> Delivered:
    """Mail the day's report when the config has [report.email]; a no-op otherwise."""
    site, d = _site_day(config, day)
    if site.report.email is None:
        return {"day": str(d), "sent": False}
    from mmw_tasks.report import deliver as mail

    return {"sent": True, **mail.send_report(site, d)}


def trends_page(config: str | Path) -> TrendsPage:
    """The site's trends page over every day done so far (what the asset-triggered mmw_trends DAG
    runs once for a batch of days, instead of each day's trends task re-rendering it)."""
    site = load_site(config)
    con = lake.ensure_views(lake.connect(site.lake, memory_limit=site.memory_limit), site.lake)
    days = (
        (sqlfiles.query(con, "trends/days_done", {}).fetchone() or (0,))[0]
        if lake.has_files(site.lake, "daily_trends")
        else 0
    )
    return {"days": days, "trends_page": str(trends_report.write_page(con, site)) if days else None}


def is_done(config: str | Path, day: str | date) -> bool:
    """The day has its report and trend row, the report is not partial (a partial day is redone),
    and no run of the day began after the one committed (its generation was not switched in: the
    run was killed or failed, and the day is redone)."""
    site, d = _site_day(config, day)
    if generations.pending(site.lake, d):
        return False
    rep = report.report_dir(site, d) / "report.json"
    if not (rep.is_file() and lake.part_path(site.lake, "daily_trends", d).is_file()):
        return False
    try:
        return not json.loads(rep.read_text()).get("partial", False)
    except ValueError:
        return False


@contextmanager
def _stage(stages: dict[str, StageCost], name: str, on_stage: OnStage | None) -> Iterator[None]:
    """Time a stage of run_day into stages[name]; tell on_stage as it starts (None) and ends."""
    if on_stage:
        on_stage(name, None)
    t0, c0 = time.monotonic(), _cpu_seconds()
    yield
    rec: StageCost = {
        "wall": round(time.monotonic() - t0, 3),
        "cpu": round(_cpu_seconds() - c0, 3),
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    stages[name] = rec
    if on_stage:
        on_stage(name, rec)


def _cpu_seconds() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_day(
    config: str | Path,
    day: str | date,
    log: Callable[[str], Any] = print,
    mail: bool = True,
    on_stage: OnStage | None = None,
) -> DayRun:
    """The whole daily job without Airflow; returns what each stage returned, and in "stages" the
    cost of each (fetch and parse per server, settle, aggregate, fit, detect, report, trends,
    commit, deliver). `mail`: send the report when the config asks for it (a backfill does not).
    `on_stage(name, cost)`: called as each stage starts (cost None) and ends. The day is written
    under a new generation and committed after trends: killed or failed before that, the lake
    keeps the day as it was, and the next run of the day starts again. A stage that fails (the
    commit too) raises a failures.StageError naming the day, the stage and the server (the cause
    chained to it); a lake that cannot be written is a ConfigError before any stage runs."""
    site, d = _site_day(config, day)
    failures.usable_lake(site)
    servers: dict[str, Parsed] = {}
    stages: dict[str, StageCost] = {}
    t0 = time.monotonic()
    reasons: dict[str, str] = {}
    gen = generations.begin(site.lake, d)
    for s in site.servers:
        try:
            with (
                _stage(stages, f"fetch {s.name}", on_stage),
                failures.stage(d, "fetch", s.name, INPUT_ERRORS, site.lake),
            ):
                fetched = fetch(config, s.name, d)
            with (
                _stage(stages, f"parse {s.name}", on_stage),
                failures.stage(d, "parse", s.name, INPUT_ERRORS, site.lake),
            ):
                servers[s.name] = parse(config, s.name, d, fetched["files"], fetched["years"], gen)
        except failures.StageError as e:
            if site.on_missing_server == "fail":
                raise
            reasons[s.name] = e.why
            log(f"{d} {s.name}: missing ({e})")
            continue
        log(
            f"{d} {s.name}: {servers[s.name]['lines_read']} lines from "
            f"{len(fetched['files'])} file(s), {servers[s.name]['malformed']} malformed"
        )
        for between in fetched["gaps"]:  # stretches between two files that neither covers
            log(f"{d} {s.name}: no file covers {between}")
    with _stage(stages, "settle", on_stage), failures.stage(d, "settle", lake=site.lake):
        settled = settle(config, d, list(servers), reasons, gen)
    with _stage(stages, "aggregate", on_stage), failures.stage(d, "aggregate", lake=site.lake):
        aggregated = aggregate(config, d, gen)
    with _stage(stages, "fit", on_stage), failures.stage(d, "fit", lake=site.lake):
        fitted = fit(config, d, gen)
    with _stage(stages, "detect", on_stage), failures.stage(d, "detect", lake=site.lake):
        detected = run_detect(config, d, gen)
    with _stage(stages, "report", on_stage), failures.stage(d, "report", lake=site.lake):
        reported = make_report(config, d, settled["missing"], gen)
    for gap in reported["gaps"]:
        log(f"{d} {gap}")
    with _stage(stages, "trends", on_stage), failures.stage(d, "trends", lake=site.lake):
        trended = trends(config, d, generation=gen)
    with _stage(stages, "commit", on_stage), failures.stage(d, "commit", lake=site.lake):
        committed = commit(config, d, gen)
    out: DayRun = {
        "day": str(d),
        "servers": servers,
        "settle": settled,
        "aggregate": aggregated,
        "fit": fitted,
        "detect": detected,
        "report": reported,
        "trends": trended,
        "commit": committed,
        "stages": stages,
        "seconds": 0.0,
    }
    if mail:
        with _stage(stages, "deliver", on_stage), failures.stage(d, "deliver", lake=site.lake):
            out["deliver"] = deliver(config, d)
    out["seconds"] = round(time.monotonic() - t0, 2)
    return out


def resolve_run(
    config: str | Path, day: str | None, logical_date: datetime | None, interval_start: datetime | None = None
) -> RunDay:
    """What an Airflow run works on: the `day` param; else the local day its data interval starts
    (scheduled and backfill runs: the interval is the site's local day); else the local day before
    the logical date (manual runs and `airflow dags test`)."""
    site = load_site(config)
    if day:
        d = date.fromisoformat(str(day))
    elif interval_start is not None:
        d = interval_start.astimezone(site.tz).date()
    elif logical_date is not None:
        # by calendar dates: a pendulum DateTime (what Airflow passes) minus a timedelta comes out
        # in UTC, without its zone, which is the wrong day east of Greenwich
        d = logical_date.astimezone(site.tz).date() - timedelta(days=1)
    else:
        raise ValueError("no day given and the run has no logical date")
    return {"config": str(site.config_path), "day": str(d), "servers": [s.name for s in site.servers]}


AUTOMATED_RUNS = ("scheduled", "backfill")  # run types whose data interval is the day they work on


class DagRunInfo(Protocol):
    """What plan_run reads of an Airflow run (its DagRun; mmw_tasks does not import Airflow)."""

    @property
    def run_type(self) -> object: ...  # DagRunType, or its value ("scheduled", "manual", ...)
    @property
    def logical_date(self) -> datetime | None: ...  # None for a manual run of Airflow 3 by default
    @property
    def run_after(self) -> datetime | None: ...  # when the run was due or asked for
    @property
    def data_interval_start(self) -> datetime | None: ...


def plan_run(
    config: str | Path,
    day: str | None = None,
    *,
    force: bool = False,
    dag_run: DagRunInfo | None = None,
    now: datetime | None = None,
) -> list[Job]:
    """An Airflow run's jobs, one per server, for the day resolve_run gives it. The data interval
    of `dag_run` counts for AUTOMATED_RUNS only (a manual run's interval is not a day of the
    site's); a run without a logical date goes by when it was asked to run (`run_after`). Raises
    NotDue when the day's logs have not rotated yet (before due_at; `force` does not lift that),
    DayDone when the day has its report and trend row and `force` is not set. Otherwise begins the
    day's new generation (removing what earlier runs of the day left), which every job carries."""
    when = interval_start = None
    if dag_run is not None:
        when = dag_run.logical_date or dag_run.run_after
        if str(getattr(dag_run.run_type, "value", dag_run.run_type)) in AUTOMATED_RUNS:
            interval_start = dag_run.data_interval_start
    run = resolve_run(config, day, when, interval_start)
    site = load_site(run["config"])
    due = due_at(site, date.fromisoformat(run["day"]))
    if (now or datetime.now(site.tz)) < due:
        raise NotDue(
            f"{run['day']} cannot run before {due:%Y-%m-%d %H:%M} {site.tz.key} ([schedule].run_at the next "
            f"morning, when its logs have rotated); run it then, or see the day so far with "
            f"`mmw run --partial` or the {site.name} intraday DAG"
        )
    if not force and is_done(run["config"], run["day"]):
        raise DayDone(
            f"{run['day']} is done already (report and trend row in the lake); set the force param to redo it"
        )
    gen = generations.begin(site.lake, run["day"])
    return [{**run, "generation": gen, "server": name} for name in run["servers"]]
