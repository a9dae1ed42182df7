"""The `mmw` command (contract section 2; its --help says it without internal references). Exit
codes: 0 success, 1 the work failed, 2 bad usage, bad config or unusable input. Every failure is
one line on stderr (the stage, server and file it was at, and why: mmw_tasks/failures.py);
`--debug` adds the traceback."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from mmw_tasks.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]


class UsageError(Exception):
    pass


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date like 2002-02-16: {text!r}") from None


SITE_CONFIG_ENV = "MMW_SITE_CONFIG"
DEFAULT_CONFIG = "site.toml"


def site_config(given: str | None, other: str = "") -> str:
    """The site config a command works on (contract section 2): --config, else the file
    $MMW_SITE_CONFIG names, else ./site.toml. None of them: a usage error naming all three
    (and `other`, another way the command takes, as `mmw sql --lake`)."""
    if given:
        return given
    env = os.environ.get(SITE_CONFIG_ENV)
    if env:
        if not Path(env).is_file():
            raise UsageError(
                f"{SITE_CONFIG_ENV}={env}: no such config file (it names the site config when --config is not given)"
            )
        return env
    if Path(DEFAULT_CONFIG).is_file():
        return str(Path(DEFAULT_CONFIG).resolve())
    raise UsageError(
        f"no site config: give --config SITE.toml{other}, set {SITE_CONFIG_ENV}, "
        f"or run where ./{DEFAULT_CONFIG} is (not in {Path.cwd()})"
    )


def cmd_simulate(a: argparse.Namespace) -> int:
    from mmw_tasks.simulate import simulate_site

    toml = simulate_site(Path(a.out), a.start, a.days, scenario=a.scenario, seed=a.seed, style=a.style, scale=a.scale)
    print(toml)
    return 0


def cmd_run(a: argparse.Namespace) -> int:
    from mmw_tasks import pipeline
    from mmw_tasks.report.headline import QUIET

    if a.until is not None and not a.partial:
        raise UsageError("--until needs --partial (a replay of the day as it stood then)")
    a.config = site_config(a.config)
    if a.partial:
        from mmw_tasks import intraday

        run = intraday.run_partial(a.config, a.date, a.until, log=lambda m: print(m, file=sys.stderr))
        print(f"partial as of {run['as_of']}: {run.get('incidents', 0)} incident(s)", file=sys.stderr)
        if a.json:
            _print_json({**day_summary(run["report"]), "as_of": run["as_of"]})
        else:
            print(run["report"])
        return 0
    out = pipeline.run_day(a.config, a.date, log=lambda m: print(m, file=sys.stderr))
    if a.json:
        _print_json(day_summary(out["report"]["report"]))
        return 0
    # the verdict first (contract section 5), then each gap of the day (a partial day: its
    # figures count less than they seem), then where the whole report is: the last line
    for line in out["report"]["headline"] or [QUIET]:
        print(line)
    for gap in out["report"]["gaps"]:
        print(f"GAP {gap}")
    print(out["report"]["report"])
    return 0


def day_summary(report: str | Path) -> dict[str, Any]:
    """What `mmw run --json` and `mmw backfill` say of a day, from its report.json: the day, the
    report's path, its headline (one line per incident that needs attention; [] on a quiet day),
    the incidents counted by kind, whether the day is partial, and its gaps in words."""
    rep = json.loads(Path(report).read_text())
    kinds = Counter(str(i.get("kind")) for i in rep.get("incidents") or [])
    return {
        "day": str(rep.get("day")),
        "report": str(report),
        "headline": list(rep.get("headline") or []),
        "incidents": dict(sorted(kinds.items())),
        "partial": bool(rep.get("partial", False)),
        "gaps": [g["text"] if isinstance(g, dict) else str(g) for g in rep.get("gaps") or []],
    }


def _print_json(doc: Any) -> None:
    """The one document `--json` puts on stdout (nothing else goes there)."""
    sys.stdout.write(json.dumps(doc, indent=1, default=str) + "\n")


def _progress(i: int, n: int, label: str, t0: float) -> None:
    """The progress bar (stderr on a terminal only: under cron its \r frames would fill the log)."""
    width = 30
    filled = int(width * i / max(n, 1))
    rate = (time.monotonic() - t0) / max(i, 1)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {i}/{n} {label} (~{rate * (n - i):.0f}s left)   ")
    sys.stderr.flush()


def _attention(summary: dict[str, Any] | None) -> str:
    n = len(summary["headline"]) if summary else 0
    return f"{n} incident(s) need attention" if n else "no incident needs attention"


def cmd_backfill(a: argparse.Namespace) -> int:
    """Each day in turn; on a terminal a progress bar on stderr, else one plain line a day there
    (the day, done/skipped/failed, the incidents that need attention). Then on stdout the counts,
    the failed days and, for each day with incidents that need attention, its headline and report."""
    from mmw_tasks import pipeline

    if a.to < a.from_:
        raise UsageError(f"--to {a.to} is before --from {a.from_}")
    a.config = site_config(a.config)
    days = [a.from_ + timedelta(days=i) for i in range((a.to - a.from_).days + 1)]
    from mmw_tasks import failures
    from mmw_tasks.config import load_site
    from mmw_tasks.report.model import report_dir

    site = load_site(a.config)
    failures.usable_lake(site)  # an unusable lake fails once, not once a day
    bar = sys.stderr.isatty()
    t0, done, skipped = time.monotonic(), 0, 0
    failed: list[tuple[date, str]] = []
    summaries: list[dict[str, Any]] = []
    for i, d in enumerate(days):
        if bar:
            _progress(i, len(days), str(d), t0)
        skip = not a.force and pipeline.is_done(a.config, d)
        try:
            if skip:
                skipped += 1
                status = "skipped (already done)"
                report = report_dir(site, d) / "report.json"
            else:
                report = Path(pipeline.run_day(a.config, d, log=lambda m: None, mail=False)["report"]["report"])
                done += 1
                status = "done"
            summary = {**day_summary(report), "status": "skipped" if status.startswith("skipped") else "done"}
            summaries.append(summary)
            line = f"{d} {status}: {_attention(summary)}"
        except Exception as e:  # one bad day must not stop a years-long backfill
            if a.debug:
                traceback.print_exc()
            failed.append((d, failures.why(e)))
            line = f"{d} failed: {failed[-1][1]}"
        if not bar:
            print(line, file=sys.stderr, flush=True)
    if bar:
        _progress(len(days), len(days), "done", t0)
        sys.stderr.write("\n")
    if a.json:
        _print_json(
            {
                "from": str(a.from_),
                "to": str(a.to),
                "run": done,
                "skipped": skipped,
                "failed": [{"day": str(d), "error": why} for d, why in failed],
                "days": summaries,
            }
        )
        return 1 if failed else 0
    print(f"backfill {a.from_}..{a.to}: {done} run, {skipped} skipped (already done), {len(failed)} failed")
    for d, why in failed:
        print(f"  {d}: {why}")
    for summary in summaries:
        if summary["headline"]:
            print(f"{summary['day']}: {_attention(summary)}")
            for line in summary["headline"]:
                print(f"  {line}")
            print(f"  {summary['report']}")
    return 1 if failed else 0


def _lake_for(a: argparse.Namespace) -> Path:
    if a.lake:
        return Path(a.lake)
    from mmw_tasks.config import load_site

    return load_site(site_config(a.config, " (or --lake DIR)")).lake


def cmd_sql(a: argparse.Namespace) -> int:
    """Read-only unless --unsafe (mmw_tasks/readonly.py): the statements are checked before any
    runs, and the connection cannot open files outside the lake nor change that."""
    import duckdb

    from mmw_tasks import lake, readonly

    root = _lake_for(a)
    if not root.is_dir():
        raise UsageError(f"no lake at {root} ({'not a directory' if root.exists() else 'run a day first'})")
    try:
        statements = [a.query] if a.unsafe else readonly.check(a.query)
        if a.catalog:
            con = duckdb.connect(str(root / lake.CATALOG)) if a.unsafe else readonly.open_catalog(root)
        else:
            con = lake.connect(root) if a.unsafe else readonly.connect(root)
        rel = None
        for text in statements:
            rel = con.sql(text)
    except duckdb.PermissionException as e:
        why = str(e).splitlines()[0].removeprefix("Permission Error: ")
        raise UsageError(f"sql refused: {why} (it reads the lake {root.resolve()} only; --unsafe lifts this)") from None
    except duckdb.Error as e:
        raise UsageError(f"SQL error: {e}".splitlines()[0]) from None
    except FileNotFoundError as e:
        raise UsageError(str(e)) from None
    if rel is None:
        return 0
    import polars as pl

    df = rel.pl()
    # DuckDB's sum() of integers is a HUGEINT/DECIMAL: show it as the number it is
    df = df.with_columns(
        [
            pl.col(c).cast(pl.Int64 if t.scale == 0 else pl.Float64)
            for c, t in df.schema.items()
            if isinstance(t, pl.Decimal)
        ]
    )
    if a.format == "csv":
        sys.stdout.write(df.write_csv())
    elif a.format == "json":
        sys.stdout.write(json.dumps(df.to_dicts(), default=str, indent=1) + "\n")
    else:
        with pl.Config(tbl_rows=a.max_rows, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=200):
            print(df)
    return 0


def airflow_env(home: Path) -> dict[str, str]:
    """Environment for a project-local Airflow on SQLite (no ~/airflow is ever created)."""
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),  # the timetable and notifiers
        # the DAGs' tasks import mmw_tasks from the same checkout as the DAG files
        # ...and config/ holds airflow_local_settings.py, which preloads them into the scheduler
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT / "config"), str(ROOT), os.environ.get("PYTHONPATH")) if p),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__API_AUTH__JWT_SECRET": os.environ.get("AIRFLOW__API_AUTH__JWT_SECRET", "mmw-local-" + "x" * 54),
    }


def cmd_demo(a: argparse.Namespace) -> int:
    """Simulate a site with a worm outbreak and run the real Airflow DAG over it."""
    from mmw_tasks.simulate import simulate_site

    out = Path(a.out).resolve()
    if out.exists():
        shutil.rmtree(out)
    days = [a.start + timedelta(days=i) for i in range(a.days)]
    print(f"simulating {a.days} day(s) of site 'example-u' from {a.start} ({a.scenario}) ...", flush=True)
    toml = simulate_site(out, a.start, a.days, scenario=a.scenario, seed=a.seed)
    print(f"simulated {a.days} day(s) of site 'example-u' ({a.scenario}) under {out}")
    airflow = str(Path(sys.executable).with_name("airflow"))
    env = {**airflow_env(ROOT / ".airflow"), "MMW_SITE_CONFIG": str(toml)}
    (ROOT / ".airflow").mkdir(exist_ok=True)
    from mmw_tasks import dagtest

    print(f"airflow db migrate ({ROOT / '.airflow'}) ...", flush=True)
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    for d in days:
        conf = json.dumps({"config": str(toml), "day": str(d)})
        t0 = time.monotonic()
        print(f"airflow dags test mmw_daily ({d}): Airflow starts first (10 to 60 s), then each task ...", flush=True)
        rc, progress = dagtest.run(
            [airflow, "dags", "test", "mmw_daily", f"{d + timedelta(days=1)}T06:30:00+09:00", "-c", conf],
            env,
            say=lambda line: print(line, flush=True),
        )
        if rc != 0 or progress.state not in (None, "success"):
            sys.stderr.write("\n".join(progress.tail) + "\n")
            print(f"airflow dags test mmw_daily failed for {d} (exit {rc}, run {progress.state})", file=sys.stderr)
            return 1
        print(f"airflow dags test mmw_daily ({d}): success in {time.monotonic() - t0:.0f}s", flush=True)
    from mmw_tasks.config import load_site
    from mmw_tasks.report.model import report_dir
    from mmw_tasks.report.trends import page_path as trends_page

    site = load_site(toml)
    last = report_dir(site, days[-1])
    rep = json.loads((last / "report.json").read_text())
    for i in rep["incidents"]:
        print(
            f"  {i['kind']:15s} {i.get('client_ip') or i.get('domain') or i.get('sender')}  "
            f"{i['start']} .. {i['end']}  score {i['score']}"
        )
    print(f"report: {last / 'report.html'}")
    print(f"report: {last / 'report.json'}")
    print(f"trends: {trends_page(site)}")
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mmw")
    except PackageNotFoundError:
        return "unknown"


CONFIG_HELP = (
    f"the site config, a TOML file (e.g. --config /etc/mmw/site.toml); "
    f"default: the file ${SITE_CONFIG_ENV} names, then ./{DEFAULT_CONFIG}"
)
JSON_HELP = (
    "print one JSON document on stdout instead of lines, for scripts: per day its report path, headline, "
    "incidents by kind, partial and gaps (e.g. --json > out.json)"
)
DESCRIPTION = """Mass-mailing worm detection from the logs a site already keeps: simulate a site, run
the daily job for a day or a range of days, and query the lake with SQL. Exit codes: 0 success,
1 the work failed, 2 bad usage, bad config or unusable input. A failure is one line on stderr;
--debug adds the traceback. No output is ever coloured (NO_COLOR holds)."""
EPILOG = "Each command has its own help, e.g. mmw run --help."


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="on a failure, show the traceback too (or set MMW_DEBUG=1)",
    )
    p = argparse.ArgumentParser(prog="mmw", description=DESCRIPTION, epilog=EPILOG, parents=[common])
    p.add_argument("--version", action="version", version=f"mmw {_version()}", help="print the version and exit")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND", help="what to do; each has its own --help")

    s = sub.add_parser(
        "simulate",
        parents=[common],
        help="write a simulated site's rotated logs, truth.json and site.toml",
        description="Write a simulated site's rotated logs, its truth.json and a site.toml that points at "
        "them; prints the site.toml's path.",
    )
    s.add_argument("--out", required=True, metavar="DIR", help="the directory to write into (e.g. --out /tmp/site)")
    s.add_argument(
        "--start", required=True, type=_day, metavar="YYYY-MM-DD", help="the first day (e.g. --start 2002-02-15)"
    )
    s.add_argument("--days", required=True, type=int, metavar="N", help="how many days (e.g. --days 3)")
    s.add_argument(
        "--scenario",
        default="klez",
        metavar="NAME[,NAME...]",
        help="a scenario for every day, or one per day comma-separated, the last repeating "
        "(e.g. --scenario clean,klez; default: %(default)s)",
    )
    s.add_argument(
        "--seed", type=int, default=0, metavar="N", help="the random seed (e.g. --seed 7; default: %(default)s)"
    )
    s.add_argument(
        "--style",
        choices=["2002", "modern"],
        default="2002",
        help="2002: sendmail 8.12 and qpopper, as in the papers; modern: Postfix, Dovecot and BIND "
        "(e.g. --style modern; default: %(default)s)",
    )
    s.add_argument(
        "--scale",
        type=float,
        default=1.0,
        metavar="N",
        help="a site N times larger, same truth (e.g. --scale 0.5 or --scale 20; default: %(default)s). Below 10: "
        "the papers' site with N times its traffic "
        "(the event simulator, ~75,000 lines/s). From 10 up: N times the users, PCs, remote domains, "
        "mailing lists and traffic, written from columns (~500,000 lines per CPU-second; scenarios clean, "
        "klez, frethem, dns_anomaly, full; one worm-infected PC per 100 of scale). A weekday is about "
        "160,000 lines per unit of scale in the 2002 style (20,000 of them mail), 185,000 in the modern one",
    )
    s.set_defaults(func=cmd_simulate)

    r = sub.add_parser(
        "run",
        parents=[common],
        help="the whole daily job for one day; prints its headline, then the report path",
        description="The whole daily job for one day: fetch, parse, aggregate, fit, detect, report, trends. "
        "Prints one line per incident that needs attention (or that none does), each gap of the day, "
        "then the report path.",
    )
    r.add_argument("--config", metavar="SITE.toml", help=CONFIG_HELP)
    r.add_argument(
        "--date", required=True, type=_day, metavar="YYYY-MM-DD", help="the site's local day (e.g. --date 2002-02-16)"
    )
    r.add_argument(
        "--partial",
        action="store_true",
        help="the day so far, into <lake>/partial/ (the daily run replaces it); e.g. --date 2002-02-16 --partial",
    )
    r.add_argument(
        "--until",
        metavar="HH:MM",
        help="with --partial: the day as it stood at HH:MM local time, a replay (e.g. --until 15:00)",
    )
    r.add_argument("--json", action="store_true", help=JSON_HELP)
    r.set_defaults(func=cmd_run)

    b = sub.add_parser(
        "backfill",
        parents=[common],
        help="the daily job over a range of days",
        description="The daily job over a range of days; days already done are skipped unless --force. "
        "Afterwards, each day with incidents that need attention: its headline and report path.",
    )
    b.add_argument("--config", metavar="SITE.toml", help=CONFIG_HELP)
    b.add_argument(
        "--from",
        dest="from_",
        required=True,
        type=_day,
        metavar="YYYY-MM-DD",
        help="the first day (e.g. --from 2002-01-01)",
    )
    b.add_argument(
        "--to", required=True, type=_day, metavar="YYYY-MM-DD", help="the last day, included (e.g. --to 2002-03-31)"
    )
    b.add_argument("--force", action="store_true", help="re-run days already done (e.g. after a config change)")
    b.add_argument("--json", action="store_true", help=JSON_HELP)
    b.set_defaults(func=cmd_backfill)

    q = sub.add_parser(
        "sql",
        parents=[common],
        help="run SQL on the lake's views (read-only unless --unsafe)",
        description="Run SQL on the lake's views and print the result. Read-only: it cannot write, delete, "
        "attach, install or read outside the lake unless --unsafe.",
    )
    q.add_argument("query", metavar="SQL", help='the statement(s) (e.g. "select * from daily_trends order by day")')
    q.add_argument("--config", metavar="SITE.toml", help=CONFIG_HELP)
    q.add_argument(
        "--lake", metavar="DIR", help="the lake directory, instead of a site config (e.g. --lake /srv/mmw/data_lake)"
    )
    q.add_argument(
        "--format",
        choices=["table", "csv", "json"],
        default="table",
        help="how to print the result (e.g. --format csv; default: %(default)s)",
    )
    q.add_argument(
        "--max-rows",
        type=int,
        default=50,
        metavar="N",
        help="rows a table shows at most (e.g. --max-rows 200; default: %(default)s)",
    )
    q.add_argument(
        "--catalog",
        action="store_true",
        help="query through the catalog file <lake>/mmw.duckdb, read-only too (e.g. --catalog)",
    )
    q.add_argument(
        "--unsafe",
        action="store_true",
        help="lift the read-only guard: any statement, any file (docs/analysts.md)",
    )
    q.set_defaults(func=cmd_sql)

    d = sub.add_parser(
        "demo",
        parents=[common],
        help="simulate an outbreak and run the real Airflow DAG over it",
        description="Simulate a site with a worm outbreak and run the real Airflow DAG over it (what make demo runs).",
    )
    d.add_argument(
        "--out",
        default=str(ROOT / "demo"),
        metavar="DIR",
        help="where the simulated site goes, replaced if there (e.g. --out /tmp/demo; default: %(default)s)",
    )
    d.add_argument(
        "--start",
        type=_day,
        default=date(2002, 2, 15),
        metavar="YYYY-MM-DD",
        help="the first day (e.g. --start 2002-02-15; default: %(default)s)",
    )
    d.add_argument(
        "--days", type=int, default=3, metavar="N", help="how many days (e.g. --days 2; default: %(default)s)"
    )
    d.add_argument(
        "--scenario",
        default="klez",
        metavar="NAME[,NAME...]",
        help="as for simulate (e.g. --scenario frethem; default: %(default)s)",
    )
    d.add_argument(
        "--seed", type=int, default=0, metavar="N", help="the random seed (e.g. --seed 7; default: %(default)s)"
    )
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.debug = bool(getattr(args, "debug", False) or os.environ.get("MMW_DEBUG"))
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("mmw: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # one line, whatever it is; the traceback with --debug
        if args.debug:
            traceback.print_exc()
        from mmw_tasks import failures

        print(f"mmw: {failures.why(e)}", file=sys.stderr)
        return _exit_code(e)


def _exit_code(e: BaseException) -> int:
    """2: bad usage, bad config, unusable input; 1: the work failed (contract section 2)."""
    from mmw_tasks.failures import StageError
    from mmw_tasks.parse.logfiles import LogFileError

    if isinstance(e, StageError):
        return e.code
    if isinstance(e, ConfigError | UsageError | LogFileError | ValueError):
        return 2
    return 1
