"""Parse one server's lines of one local day into the lake, accounting for every line.

Each line ends up parsed, ignored (not ours) or malformed (kept in `malformed_lines` with its
file and line number). Writes, per server and day, one part of `mail_events` or `dns_queries`,
of `line_accounting` and of `malformed_lines`, each replaced atomically.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypedDict, runtime_checkable

import polars as pl

from mmw_tasks import lake
from mmw_tasks.config import Server, Site
from mmw_tasks.parse.dns import QUERY_SCHEMA, parse_bind, parse_dnsmasq, parse_iplog, parse_unbound
from mmw_tasks.parse.exim import parse_exim
from mmw_tasks.parse.fields import PER_BATCH, Schema, detached, in_file_order
from mmw_tasks.parse.logfiles import (
    BadFile,
    LogFileError,
    bad_file_message,
    iter_raw_batches,
    prefetched,
    split_lines_raw,
)
from mmw_tasks.parse.postfix import PostfixParser
from mmw_tasks.parse.sendmail import EVENT_SCHEMA, parse_mail
from mmw_tasks.parse.stamps import FileYears, ProbeYears, YearAnchor
from mmw_tasks.parse.syslog import expand_repeats, frame_lines
from mmw_tasks.parse.years import OnlineYears, YearsMoved, anchor_of, scan_years

log = logging.getLogger(__name__)

ACCOUNTING_SCHEMA: Schema = {
    "server": pl.String,
    "file": pl.String,
    "lines_read": pl.Int64,
    "parsed": pl.Int64,
    "ignored": pl.Int64,
    "malformed": pl.Int64,
    "repeats_expanded": pl.Int64,
    "first_line_no": pl.Int64,
    "last_line_no": pl.Int64,
}
MALFORMED_SCHEMA: Schema = {
    "server": pl.String,
    "file": pl.String,
    "line_no": pl.Int64,
    "ts": pl.Datetime("us", "UTC"),
    "reason": pl.String,
    "line": pl.String,  # the line as text (bytes that are not UTF-8 read as U+FFFD)
    "raw_base64": pl.String,  # the line's bytes as read, base64, when they were not UTF-8 (else null)
}

# what the parsers read (the raw line, host and stamp details stay behind for the malformed lines;
# server and file, one value per batch, are added to the events as they are written)
PARSER_COLUMNS = ["line_no", "ts", "prog", "msg", "framed", "plain", "repeat", "copy", "in_day"]

# Parquet dictionaries only for the columns whose values repeat: a dictionary of mostly distinct
# values (DNS names; times, line numbers, sizes and queue ids of mail) fills up, is dropped, and
# cost the writing 30% (dns_queries) and 12% (mail_events, whose files are 15% smaller without)
DICTIONARY_COLUMNS = {
    "dns_queries": ["server", "file", "client_ip", "client_name", "qtype"],
    "mail_events": [c for c in EVENT_SCHEMA if c not in ("ts", "line_no", "size", "queue_id")],
}

Parser = Callable[[pl.DataFrame], tuple[pl.DataFrame, pl.DataFrame]]  # a batch's rows -> (events, fates)


@runtime_checkable
class TwoStageParser(Protocol):
    """A parser that keeps state from one batch to the next (Postfix): `prepare` needs no state
    and may run on two batches at once, `complete` runs batch by batch in file order."""

    def prepare(self, rows: pl.DataFrame) -> Any: ...

    def complete(self, prepared: Any) -> tuple[pl.DataFrame, pl.DataFrame]: ...


class Parsed(TypedDict):
    """What parsing one server's day returns (the parse task's XCom, `mmw run`'s per-server line):
    counts only, the lines themselves are in the lake. The four line counts are summed over
    `files` and count the day's lines only; lines_read = parsed + ignored + malformed."""

    server: str  # the server's name in the site config
    day: str  # the local day, YYYY-MM-DD
    dataset: str  # the lake dataset its events went to: "mail_events" or "dns_queries"
    rows: int  # events written to that dataset (a line may make none, one, or several)
    files: list[str]  # the files read, in the order given
    lines_read: int  # lines of the day read (copies made by "last message repeated" not counted)
    parsed: int  # lines that made events or were understood as ours
    ignored: int  # lines of other programs (not ours)
    malformed: int  # our lines that could not be read; kept in the malformed_lines dataset
    bad_files: list[BadFile]  # files left out as unreadable (on_bad_file = "skip"; fetch's are in its result)


def parser_for(server: Server) -> tuple[Parser, str, Schema]:
    """(parse function, dataset, schema) for a server's format; a fresh parser per call, since
    some (Postfix) keep state from one batch to the next."""
    if server.role == "mail":
        mail: dict[str, Parser] = {"sendmail": parse_mail, "postfix": PostfixParser(), "exim": parse_exim}
        if server.format in mail:
            return mail[server.format], "mail_events", EVENT_SCHEMA
    else:
        dns: dict[str, Parser] = {
            "iplog": parse_iplog,
            "bind": parse_bind,
            "dnsmasq": parse_dnsmasq,
            "unbound": parse_unbound,
        }
        if server.format in dns:
            return dns[server.format], "dns_queries", QUERY_SCHEMA
    raise NotImplementedError(f"server {server.name}: format {server.format!r} is not parsed yet")


def _day_rows(
    framed: pl.DataFrame, day: date, last_ts: datetime | None, until: datetime | None = None
) -> tuple[pl.DataFrame, datetime | None]:
    """Mark the rows of the local `day` (`in_day`); unframed lines take the time of the line
    before them. Returns the rows and the batch's last site-local time, for the next batch.
    `until` (site-local, naive): only the lines stamped before it count (a partial day)."""
    start = datetime(day.year, day.month, day.day)
    end = start + timedelta(days=1)
    if until is not None:
        end = min(end, until)
    stats = framed.select(
        lo=pl.col("ts_site").min(),
        hi=pl.col("ts_site").max(),
        nulls=pl.col("ts_site").null_count(),
        last=pl.col("ts_site").drop_nulls().last(),
    )
    lo, hi, nulls, last = stats.row(0)
    new_last = last if last is not None else last_ts
    if nulls == 0 and lo is not None and lo >= start and hi < end:
        return framed.with_columns(in_day=pl.lit(True)), new_last
    when = pl.coalesce(pl.col("ts_site").forward_fill(), pl.lit(last_ts, pl.Datetime("us"))).fill_null(
        strategy="backward"
    )
    return framed.with_columns(in_day=(when >= start) & (when < end)), new_last


class _FileAccount:
    """Per-file counts, summed over batches."""

    def __init__(self, server: str, path: Path):
        self.server, self.path = server, path
        self.read = self.ignored = self.malformed = self.repeats = 0
        self.lo: int | None = None
        self.hi: int | None = None

    def add(self, rows: pl.DataFrame, fates: pl.DataFrame) -> None:
        day = rows.filter(pl.col("in_day")) if not rows.select(pl.col("in_day").all()).item() else rows
        if day.height == 0:
            return
        c = day.select(
            n=(pl.col("copy") == 0).sum(),
            rep=pl.col("repeat").sum(),
            lo=pl.col("line_no").min(),
            hi=pl.col("line_no").max(),
        ).row(0, named=True)
        f = (
            fates.filter(pl.col("copy") == 0)
            .select(ign=(pl.col("fate") == "ignored").sum(), bad=(pl.col("fate") == "malformed").sum())
            .row(0, named=True)
        )
        self.read += c["n"]
        self.repeats += c["rep"] or 0
        self.ignored += f["ign"] or 0
        self.malformed += f["bad"] or 0
        self.lo = c["lo"] if self.lo is None else min(self.lo, c["lo"])
        self.hi = c["hi"] if self.hi is None else max(self.hi, c["hi"])

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            [
                {
                    "server": self.server,
                    "file": str(self.path),
                    "lines_read": self.read,
                    "parsed": self.read - self.ignored - self.malformed,
                    "ignored": self.ignored,
                    "malformed": self.malformed,
                    "repeats_expanded": self.repeats,
                    "first_line_no": self.lo,
                    "last_line_no": self.hi,
                }
            ],
            schema=ACCOUNTING_SCHEMA,
        )


def _framed_batches(
    site: Site, path: Path, day: date, known: YearAnchor | FileYears | None, online: bool = True
) -> Iterator[pl.DataFrame]:
    """A file's batches read, framed and with repeats expanded, in order. ingest runs this in a
    thread of its own (`prefetched`), so that framing the next batch overlaps parsing this one.

    The years of year-less stamps are the file's own (`known`: what fetch's manifest says). A file
    fetch did not hand over is framed with ProbeYears until a year-less stamp appears; from the first batch on,
    its years are then found while it is read (OnlineYears; `online=False`, or year-less
    stamps that begin later in the file, scan the whole file first)."""
    carry: dict = {}
    anchor = known or ProbeYears(day)
    online_years: OnlineYears | None = None
    for first_no, lines, raw in prefetched(iter_raw_batches(path)):
        runs = None
        if online_years is not None:
            anchor = online_years.next_anchor(first_no, lines)
            runs = online_years.scan.last_runs  # found for the scan: not again for the framing
        # without the stamp's parts: repeats copy every column they keep
        framed = frame_lines(lines, first_no, anchor, site.timezone, stamp_parts=False, runs=runs)
        if isinstance(anchor, ProbeYears) and anchor.saw_yearless:
            if online and first_no == 1:
                online_years = OnlineYears(path, site.timezone, day)
                anchor = online_years.next_anchor(first_no, lines)
            else:
                anchor = scan_years(path, site.timezone, day)
            framed = frame_lines(lines, first_no, anchor, site.timezone, stamp_parts=False)
        yield expand_repeats(_with_raw(framed, raw), carry)
    if online_years is not None and not online_years.holds():
        raise YearsMoved(str(path))


def _with_raw(framed: pl.DataFrame, raw: pl.Series | None) -> pl.DataFrame:
    """The framed lines with `raw`: the bytes as read of the lines that were not UTF-8 (only in
    the batches that have such a line; malformed_lines keeps them as raw_base64)."""
    return framed if raw is None else framed.with_columns(raw.alias("raw"))


def _malformed_rows(fates: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """The rows of malformed_lines for a batch's malformed lines (MALFORMED_SCHEMA)."""
    bad = fates.filter((pl.col("fate") == "malformed") & (pl.col("copy") == 0))
    raw = pl.col("raw").bin.encode("base64") if "raw" in rows.columns else pl.lit(None, pl.String)
    return bad.join(rows.filter(pl.col("copy") == 0), on="line_no").select(
        "server", "file", "line_no", "ts", "reason", "line", raw.alias("raw_base64")
    )


def _day_batches(
    framed_batches: Iterator[pl.DataFrame],
    day: date,
    server: Server,
    path: Path,
    parse: Parser,
    until: datetime | None = None,
) -> Iterator[pl.DataFrame]:
    """The framed batches with `in_day`, `server` and `file`; batches with no line of the day
    (before `until`, when given) are left out (unless the parser keeps state from one batch to
    the next)."""
    last_ts: datetime | None = None
    for framed in framed_batches:
        rows, last_ts = _day_rows(framed, day, last_ts, until)
        if not rows.select(pl.col("in_day").any()).item() and not getattr(parse, "stateful", False):
            continue
        yield rows.with_columns(server=pl.lit(server.name), file=pl.lit(str(path)))


def _parsed(
    parse: Parser, batches: Iterator[pl.DataFrame]
) -> Iterator[tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]]:
    """(rows, events, fates) per batch, in order. Two batches are parsed at once (polars releases
    the GIL), so one batch's single-threaded stretches overlap the other's: the whole parse of a
    stateless parser, or the `prepare` half of one that keeps state (Postfix), whose `complete`
    half then runs batch by batch in file order. Parsers get only PARSER_COLUMNS, so that each
    of their filters copies fewer columns."""
    first: Callable[[pl.DataFrame], Any] = parse
    then: Callable[[Any], tuple[pl.DataFrame, pl.DataFrame]] | None = None
    if isinstance(parse, TwoStageParser):
        first, then = parse.prepare, parse.complete
    pending: deque[tuple[pl.DataFrame, Future[Any]]] = deque()

    def take() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        done, job = pending.popleft()
        return (done, *(then(job.result()) if then else job.result()))

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="mmw-parse") as pool:
        for rows in batches:
            pending.append((rows, pool.submit(first, rows.select(PARSER_COLUMNS))))
            if len(pending) == 2:
                yield take()
        while pending:
            yield take()


def parse_server_day(
    site: Site,
    server: Server,
    day: date,
    files: list[Path],
    years: dict[str, list[list[int]]] | None = None,
    online_years: bool = True,
    bad_files: list[BadFile] | None = None,
    until: datetime | None = None,
) -> Parsed:
    """Parse `files` of `server` for the local `day`; returns counts for XCom and the CLI.
    `years`: each file's years as fetch found them (years.breaks_of, by path); a file without
    them has its years found here. (When a file's years turn out other than those found while
    reading it, the day is parsed again with the files scanned first: see _framed_batches.)

    A file that cannot be read to its end (LogFileError: damaged, unreadable) fails the day in
    one line naming it, or, under `[site].on_bad_file = "skip"`, the day is parsed again without
    it and the file is listed in `bad_files` (`bad_files`: those already left out).

    `until` (site-local, naive; a partial day): the lines stamped at or after it are left out as
    if they were of another day, so the parts hold what the logs held at that time."""
    years = years or {}
    bad_files = list(bad_files or [])
    unreadable: tuple[Path, LogFileError] | None = None
    parse, dataset, schema = parser_for(server)
    events_part = lake.StreamingPart(
        lake.part_path(site.lake, dataset, day, server.name),
        schema,
        dictionary=DICTIONARY_COLUMNS.get(dataset),
        constants=PER_BATCH,
    )
    acct_rows: list[pl.DataFrame] = []
    malformed: list[pl.DataFrame] = []
    ok = False
    try:
        for path in files:
            account = _FileAccount(server.name, path)
            try:
                for rows, events, fates in _parsed(
                    parse,
                    _day_batches(
                        prefetched(
                            _framed_batches(site, path, day, anchor_of(years.get(str(path)), day), online_years)
                        ),
                        day,
                        server,
                        path,
                        parse,
                        until,
                    ),
                ):
                    events_part.write(events, server=server.name, file=str(path))
                    account.add(rows, fates)
                    if fates.select(((pl.col("fate") == "malformed") & (pl.col("copy") == 0)).any()).item():
                        malformed.append(detached(_malformed_rows(fates, rows)))
            except LogFileError as e:
                unreadable = (path, e)
                break
            acct_rows.append(account.frame())
        else:
            events_part.close(ok=True)
            ok = True
    except YearsMoved:
        if not online_years:
            raise
    finally:
        if not ok:
            events_part.close(ok=False)
    if unreadable is not None:  # nothing was written: fail, or parse again without that file
        bad_path, error = unreadable
        where = f"server {server.name}, day {day}"
        if site.on_bad_file != "skip":
            raise LogFileError(bad_file_message(where, str(error), site.config_path)) from error
        log.warning("%s: left out (on_bad_file = skip): %s", where, error)
        rest = [f for f in files if f != bad_path]
        left_out: BadFile = {"file": str(bad_path), "why": str(error)}
        return parse_server_day(site, server, day, rest, years, online_years, [*bad_files, left_out], until)
    if not ok:  # a file's years moved: nothing was written, parse again with scanned files
        return parse_server_day(site, server, day, files, years, online_years=False, bad_files=bad_files, until=until)

    acct = pl.concat(acct_rows) if acct_rows else pl.DataFrame(schema=ACCOUNTING_SCHEMA)
    lake.write_frame(acct, lake.part_path(site.lake, "line_accounting", day, server.name))
    bad_df = (
        pl.concat(malformed).select([pl.col(c).cast(t) for c, t in MALFORMED_SCHEMA.items()])
        if malformed
        else pl.DataFrame(schema=MALFORMED_SCHEMA)
    )
    lake.write_frame(bad_df, lake.part_path(site.lake, "malformed_lines", day, server.name))
    totals = acct.select(pl.col("lines_read", "parsed", "ignored", "malformed").sum()).row(0, named=True)
    return Parsed(
        server=server.name,
        day=str(day),
        dataset=dataset,
        rows=events_part.rows,
        files=[str(p) for p in files],
        lines_read=int(totals["lines_read"] or 0),
        parsed=int(totals["parsed"] or 0),
        ignored=int(totals["ignored"] or 0),
        malformed=int(totals["malformed"] or 0),
        bad_files=bad_files,
    )


def parse_lines(
    server: Server, lines: Sequence[str | bytes], day: date, tz: str = "UTC"
) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """What mmw makes of some lines of `server`'s format, with no lake and no day filter (every
    line counts; year-less stamps are placed next to `day`): (events, fates, counts). A line
    given as bytes is read as a file's line is (bytes that are not UTF-8 replaced; a newline
    in it ends a line, so one item may be several lines)."""
    parse, _, schema = parser_for(server)
    data = b"".join((ln if isinstance(ln, bytes) else ln.encode("utf-8")) + b"\n" for ln in lines)
    text, raw = split_lines_raw(data)
    framed = frame_lines(text, 1, YearAnchor(day), tz)
    rows = expand_repeats(_with_raw(framed, raw), {}).with_columns(in_day=pl.lit(True))
    events, fates = parse(rows.select(PARSER_COLUMNS))
    events = in_file_order(events).with_columns(server=pl.lit(server.name), file=pl.lit("<lines>")).select(list(schema))
    acct = _FileAccount(server.name, Path("<lines>"))
    acct.add(rows, fates)
    counts = acct.frame().row(0, named=True)
    return events, fates, counts
