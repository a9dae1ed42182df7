"""Parse one server's lines of one local day into the lake, accounting for every line.

Each line ends up parsed, ignored (not ours) or malformed (kept in `malformed_lines` with its
file and line number). Writes, per server and day, one part of `mail_events` or `dns_queries`,
of `line_accounting` and of `malformed_lines`, each replaced atomically.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl

from mmw_tasks import lake, sources
from mmw_tasks.config import Server, Site
from mmw_tasks.parse_dns import QUERY_SCHEMA, parse_iplog
from mmw_tasks.parse_mail import EVENT_SCHEMA, parse_mail
from mmw_tasks.syslog import expand_repeats, frame_lines, iter_line_batches, to_utc

ACCOUNTING_SCHEMA = {
    "server": pl.String, "file": pl.String, "lines_read": pl.Int64, "parsed": pl.Int64,
    "ignored": pl.Int64, "malformed": pl.Int64, "repeats_expanded": pl.Int64,
    "first_line_no": pl.Int64, "last_line_no": pl.Int64,
}
MALFORMED_SCHEMA = {
    "server": pl.String, "file": pl.String, "line_no": pl.Int64, "ts": pl.Datetime("us", "UTC"),
    "reason": pl.String, "line": pl.String,
}

Parser = Callable[[pl.DataFrame], tuple[pl.DataFrame, pl.DataFrame]]


def parser_for(server: Server) -> tuple[Parser, str, dict]:
    """(parse function, dataset, schema) for a server's format."""
    if server.role == "mail":
        if server.format == "sendmail":
            return parse_mail, "mail_events", EVENT_SCHEMA
    elif server.format == "iplog":
        return parse_iplog, "dns_queries", QUERY_SCHEMA
    raise NotImplementedError(f"server {server.name}: format {server.format!r} is not parsed yet")


def _day_rows(framed: pl.DataFrame, day: date, tz: str, last_ts: datetime | None) -> pl.DataFrame:
    """Rows of the local `day`. Unframed lines take the time of the line before them."""
    df = to_utc(framed, tz)
    seed = pl.lit(last_ts, pl.Datetime("us"))
    df = df.with_columns(_when=pl.coalesce(pl.col("ts_site").forward_fill(), seed)
                         .fill_null(strategy="backward"))
    start = datetime(day.year, day.month, day.day)
    return df.filter((pl.col("_when") >= start) & (pl.col("_when") < start + timedelta(days=1)))


def parse_server_day(site: Site, server: Server, day: date, files: list[Path]) -> dict:
    """Parse `files` of `server` for the local `day`; returns counts for XCom and the CLI."""
    parse, dataset, schema = parser_for(server)
    events_part = lake.StreamingPart(lake.part_path(site.lake, dataset, day, server.name), schema)
    acct_rows: list[pl.DataFrame] = []
    malformed: list[pl.DataFrame] = []
    ok = False
    try:
        for path in files:
            carry: dict = {}
            last_ts: datetime | None = None
            per_file: list[pl.DataFrame] = []
            years = sources.years_for(site, server, path, day)  # the file's own years (manifest)
            for first_no, lines in iter_line_batches(path):
                framed = frame_lines(lines, first_no, years)
                # the last stamp of the batch carries into the next, for unframed lines
                stamps = to_utc(framed.select("ts_local", "ts_utc_given"), site.timezone)["ts_site"]
                expanded = expand_repeats(framed, carry)
                rows = _day_rows(expanded, day, site.timezone, last_ts).with_columns(
                    server=pl.lit(server.name), file=pl.lit(str(path)))
                last_ts = stamps.drop_nulls()[-1] if stamps.null_count() < len(stamps) else last_ts
                if rows.height == 0:
                    continue
                events, fates = parse(rows)
                events_part.write(events)
                fates = fates.filter(pl.col("copy") == 0)
                per_file.append(fates.group_by("fate").agg(pl.len(), pl.col("line_no").min().alias("lo"),
                                                           pl.col("line_no").max().alias("hi")))
                per_file.append(pl.DataFrame({"fate": ["_repeat"], "len": [rows["repeat"].sum()]},
                                             schema_overrides={"len": pl.UInt32}))
                bad = fates.filter(pl.col("fate") == "malformed")
                if bad.height:
                    malformed.append(bad.join(rows.filter(pl.col("copy") == 0), on="line_no").select(
                        pl.col("server"), pl.col("file"), "line_no", "ts", "reason", "line"))
            acct_rows.append(_account(server.name, path, per_file))
        events_part.close(ok=True)
        ok = True
    finally:
        if not ok:
            events_part.close(ok=False)

    acct = pl.concat(acct_rows) if acct_rows else pl.DataFrame(schema=ACCOUNTING_SCHEMA)
    lake.write_frame(acct, lake.part_path(site.lake, "line_accounting", day, server.name))
    bad_df = (pl.concat(malformed).select([pl.col(c).cast(t) for c, t in MALFORMED_SCHEMA.items()])
              if malformed else pl.DataFrame(schema=MALFORMED_SCHEMA))
    lake.write_frame(bad_df, lake.part_path(site.lake, "malformed_lines", day, server.name))
    totals = acct.select(pl.col("lines_read", "parsed", "ignored", "malformed").sum()).row(0, named=True)
    return {"server": server.name, "day": str(day), "dataset": dataset, "rows": events_part.rows,
            "files": [str(p) for p in files], **{k: int(v or 0) for k, v in totals.items()}}


def _account(server: str, path: Path, parts: list[pl.DataFrame]) -> pl.DataFrame:
    counts = {"parsed": 0, "ignored": 0, "malformed": 0, "_repeat": 0}
    lo, hi = None, None
    for p in parts:
        for row in p.iter_rows(named=True):
            counts[row["fate"]] += row["len"]
            if row.get("lo") is not None:
                lo = row["lo"] if lo is None else min(lo, row["lo"])
                hi = row["hi"] if hi is None else max(hi, row["hi"])
    read = counts["parsed"] + counts["ignored"] + counts["malformed"]
    return pl.DataFrame([{
        "server": server, "file": str(path), "lines_read": read, "parsed": counts["parsed"],
        "ignored": counts["ignored"], "malformed": counts["malformed"],
        "repeats_expanded": counts["_repeat"], "first_line_no": lo, "last_line_no": hi,
    }], schema=ACCOUNTING_SCHEMA)
