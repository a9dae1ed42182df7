"""Syslog timestamps into times: every stamp form mmw reads, the anchors that give year-less (BSD)
stamps their year (years.py finds a file's years), local time to UTC across DST.

A busy log has thousands of lines a second but one stamp text per second, so stamps are read once
per *run* of equal stamps (`run_heads`, `stamp_runs`), by arithmetic for BSD stamps and by slices
or regexes for the others. Lines in RFC 5424 or behind a relay's `<pri>` are first rewritten to
the BSD layout (`normalise_headers`), so one reader serves every header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import cast

import numpy as np
import polars as pl

from mmw_tasks.parse import kernels

_MONTHS = {
    m: i + 1 for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])
}

# Stamp forms, tried on the first line of each run of equal stamps. Group 1 is the whole stamp.
_ST_BSD = r"^((?:(\d{4}) )?([A-Za-z]{3}) +(\d{1,2}) +(\d{1,2}):(\d\d):(\d\d)(?:\.\d+)?) "
_ST_ISO = r"^((\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:[.,]\d+)?(Z|[+-]\d\d:?\d\d)?) "
_ST_PLAIN = r"^((\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:[.,]\d+)?) "  # Exim, Dovecot's own log
_ST_BINDF = r"^((\d\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d)(?:\.\d+)?) "  # BIND file channel
_ST_EPOCH = r"^(\[(\d{9,11})(?:\.\d+)?\]) "  # Unbound's own log file
_ST_TAI64N = r"^(@(4[0-9a-f]{15})[0-9a-f]{8}) "  # daemontools multilog


@dataclass(frozen=True)
class YearAnchor:
    """The date that year-less stamps are placed next to: the run's day."""

    day: date

    def year_expr(self, month: pl.Expr) -> pl.Expr:
        # A month more than six months after the anchor's is last year's; six before, next year's.
        y, m = self.day.year, self.day.month
        return pl.when(month - m > 6).then(y - 1).when(m - month > 6).then(y + 1).otherwise(y)


class ProbeYears(YearAnchor):
    """The anchor for a file not scanned yet: frames like YearAnchor(day) and records whether a
    year-less stamp was met (`saw_yearless`). Until one is, the anchor cannot matter (every stamp
    carries its year), so ingest reads such files without a scan and scans only a file that has
    year-less stamps, from the batch where the first one appears."""

    saw_yearless: bool

    def __init__(self, day: date):
        super().__init__(day)
        object.__setattr__(self, "saw_yearless", False)


@dataclass(frozen=True)
class FileYears:
    """The years of one file's year-less stamps, found by `StampScan`: `breaks` holds
    (first line number, year) pairs, sorted; a line takes the year of the last break at or before it."""

    breaks: tuple[tuple[int, int], ...]

    def year_expr(self, month: pl.Expr) -> pl.Expr:
        starts = pl.Series([b[0] for b in self.breaks], dtype=pl.Int64)
        years = pl.Series([b[1] for b in self.breaks], dtype=pl.Int32)
        if len(years) == 1:
            return pl.lit(years[0], pl.Int32)
        idx = (pl.lit(starts).search_sorted(pl.col("line_no"), side="right").cast(pl.Int64) - 1).clip(0)
        return pl.lit(years).gather(idx)


YEARLESS_YEAR = 1600  # a leap year no real log has: marks the stamps that carry no year


class Yearless:
    def year_expr(self, month: pl.Expr) -> pl.Expr:
        return pl.lit(YEARLESS_YEAR, pl.Int32)


_STAMP_FORMS = ("bsd", "iso", "plain", "bindf", "epoch", "tai64n")
_STAMP_RE = dict(zip(_STAMP_FORMS, (_ST_BSD, _ST_ISO, _ST_PLAIN, _ST_BINDF, _ST_EPOCH, _ST_TAI64N), strict=True))


def _num(x: pl.Expr) -> pl.Expr:
    return x.cast(pl.Int32, strict=False)


def _stamp_fields(form: str, g, anchor: YearAnchor) -> dict[str, pl.Expr]:
    """year, month, dom, hms, off (ISO offset text), epoch and stamp of one stamp form's groups."""
    null_i, null_s = pl.lit(None, pl.Int32), pl.lit(None, pl.String)
    f = {"off": null_s, "epoch": pl.lit(None, pl.Int64), "stamp": g.field("1")}
    hms = pl.concat_str([g.field("5").str.zfill(2), g.field("6"), g.field("7")], separator=":")
    if form == "bsd":
        mon = g.field("3").str.to_lowercase().replace_strict(_MONTHS, default=None, return_dtype=pl.Int32)
        year = pl.coalesce(_num(g.field("2")), anchor.year_expr(mon).cast(pl.Int32))
        f |= {"year": year, "month": mon, "dom": _num(g.field("4")), "hms": hms}
    elif form in ("iso", "plain"):
        f |= {"year": _num(g.field("2")), "month": _num(g.field("3")), "dom": _num(g.field("4")), "hms": hms}
        if form == "iso":
            f["off"] = g.field("8")
    elif form == "bindf":
        mon = g.field("3").str.to_lowercase().replace_strict(_MONTHS, default=None, return_dtype=pl.Int32)
        f |= {"year": _num(g.field("4")), "month": mon, "dom": _num(g.field("2")), "hms": hms}
    else:
        epoch = (
            g.field("2").cast(pl.Int64, strict=False)
            if form == "epoch"
            else g.field("2").str.to_integer(base=16, strict=False) - (1 << 62) - 10
        )
        f |= {"year": null_i, "month": null_i, "dom": null_i, "hms": null_s, "epoch": epoch}
    return f


_STAMP_SCHEMA = {
    "i": pl.UInt32,
    "plain": pl.Boolean,
    "off": pl.String,
    "epoch": pl.Int64,
    "stamp": pl.String,
    "year": pl.Int32,
    "month": pl.Int32,
    "dom": pl.Int32,
    "hms": pl.String,
}


def _stamp_forms(rest: pl.DataFrame, anchor) -> pl.DataFrame:
    """The stamp fields of heads `rest` (i, h, line_no) in any form: each form's regex takes the
    heads the ones before it left (most batches are all one form: the first takes every head)."""
    parts = []
    for form in _STAMP_FORMS:
        if rest.height == 0:
            break
        g = rest.with_columns(g=pl.col("h").str.extract_groups(_STAMP_RE[form]))
        hit = pl.col("g").struct.field("1").is_not_null()
        fields = _stamp_fields(form, pl.col("g").struct, anchor)
        if form == "bsd" and isinstance(anchor, ProbeYears) and not anchor.saw_yearless:
            yearless = g.select((hit & pl.col("g").struct.field("2").is_null()).any()).item()
            object.__setattr__(anchor, "saw_yearless", bool(yearless))
        parts.append(
            g.filter(hit).select("i", plain=pl.lit(form not in ("bsd", "iso")), **{k: v for k, v in fields.items()})
        )
        rest = g.filter(~hit).select("i", "h", "line_no")
    parts.append(rest.select("i", plain=pl.lit(True)))
    return pl.concat(
        [
            p.select(
                [pl.col(c).cast(t) if c in p.columns else pl.lit(None, t).alias(c) for c, t in _STAMP_SCHEMA.items()]
            )
            for p in parts
        ]
    ).sort("i")


# The two layouts of nearly every batch, read by slices when every head has one of them (a
# regex with eight captures per head cost a quarter of the framing): classic syslog
# "Feb 16 14:30:01 " (no year) and rsyslog's RFC 3339 "2024-03-05T00:40:00.123456+01:00 ".
_FIXED_BSD = r"^[A-Za-z]{3} [ \d]\d \d\d:\d\d:\d\d "
_FIXED_ISO = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(?:[+-]\d\d:\d\d|Z) "


def _fixed_stamps(rest: pl.DataFrame, anchor) -> pl.DataFrame | None:
    """_stamp_forms' fields when every head has one fixed layout; None otherwise."""
    h = pl.col("h")
    if rest.height == 0:
        return None
    if rest.select(h.str.contains(_FIXED_BSD).all()).item():
        mon = h.str.slice(0, 3).str.to_lowercase().replace_strict(_MONTHS, default=None, return_dtype=pl.Int32)
        df = rest.with_columns(month=mon)
        if df.select(pl.col("month").is_null().any()).item():
            return None  # not a month's name: the regexes decide what it is
        if isinstance(anchor, ProbeYears):
            object.__setattr__(anchor, "saw_yearless", True)
        fields = {
            "off": pl.lit(None, pl.String),
            "epoch": pl.lit(None, pl.Int64),
            "stamp": h.str.slice(0, 15),
            "year": anchor.year_expr(pl.col("month")).cast(pl.Int32),
            "month": pl.col("month"),
            "dom": _num(h.str.slice(4, 2).str.strip_chars_start(" ")),
            "hms": h.str.slice(7, 8),
        }
    elif rest.select(h.str.contains(_FIXED_ISO).all()).item():
        zulu = h.str.slice(26, 1) == "Z"
        df = rest
        fields = {
            "off": pl.when(zulu).then(pl.lit("Z")).otherwise(h.str.slice(26, 6)),
            "epoch": pl.lit(None, pl.Int64),
            "stamp": h.str.slice(0, pl.when(zulu).then(27).otherwise(32)),
            "year": _num(h.str.slice(0, 4)),
            "month": _num(h.str.slice(5, 2)),
            "dom": _num(h.str.slice(8, 2)),
            "hms": h.str.slice(11, 8),
        }
    else:
        return None
    return df.select(pl.col("i"), plain=pl.lit(False), **fields).select(
        [pl.col(c).cast(t) for c, t in _STAMP_SCHEMA.items()]
    )


def parse_stamps(
    heads: pl.Series, anchor: YearAnchor | FileYears, tz: str, line_nos: pl.Series | None = None, fast: bool = True
) -> pl.DataFrame:
    """Times of the stamps that begin `heads` (one per run of equal stamps, so few, in file order).

    Columns: ts (UTC), ts_site (naive site-local), body_at (byte offset of what follows the
    stamp), plain (the program wrote the stamp itself: no syslog host or tag follows).
    Lines with no stamp we know get nulls. Stamps are kept to the second. `line_nos` (the heads'
    line numbers) let a FileYears anchor give each line its file's year. `fast=False` skips the
    compiled pass (kernels.bsd_stamps): this general path is its specification (tests compare).
    """
    line_nos = line_nos if line_nos is not None else pl.int_range(1, len(heads) + 1, dtype=pl.Int64, eager=True)
    fields = kernels.bsd_stamps(heads) if fast else None
    if fields is not None:  # every head a BSD stamp: its time by arithmetic, no text to parse
        return to_utc(bsd_times(*fields, anchor, line_nos), tz).select(
            "ts", "body_at", "plain", "ts_local", "ts_utc_given", "ts_site"
        )
    rest = pl.DataFrame({"h": heads}).with_row_index("i").with_columns(line_no=line_nos)
    df = _fixed_stamps(rest, anchor)
    if df is None:
        df = _stamp_forms(rest, anchor)
    naive = pl.concat_str([pl.col("year"), pl.col("month"), pl.col("dom"), pl.col("hms")], separator=" ").str.strptime(
        pl.Datetime("us"), "%Y %m %d %H:%M:%S", strict=False
    )
    off = pl.col("off").str.replace(":", "", literal=True)
    off_min = (
        pl.when(off == "Z")
        .then(0)
        .otherwise(
            (off.str.slice(1, 2).cast(pl.Int32, strict=False) * 60 + off.str.slice(3, 2).cast(pl.Int32, strict=False))
            * pl.when(off.str.starts_with("-")).then(-1).otherwise(1)
        )
    )
    given_utc = pl.coalesce(
        pl.from_epoch("epoch", time_unit="s"),
        pl.when(pl.col("off").is_not_null()).then(naive - pl.duration(minutes=off_min)),
    ).dt.replace_time_zone("UTC")
    local = pl.when(pl.col("off").is_null() & pl.col("epoch").is_null()).then(naive)
    out = df.select(
        body_at=(pl.col("stamp").str.len_bytes() + 1).cast(pl.Int64),
        plain=pl.col("plain"),
        ts_local=local,
        ts_utc_given=given_utc,
    )
    return to_utc(out, tz).select("ts", "body_at", "plain", "ts_local", "ts_utc_given", "ts_site")


def bsd_times(month: np.ndarray, dom: np.ndarray, sod: np.ndarray, anchor, line_nos: pl.Series) -> pl.DataFrame:
    """parse_stamps' columns for BSD stamps read by kernels.bsd_stamps: the year from `anchor`,
    then the day number by the civil-calendar formula (a day the month lacks, or a time that is
    none, is null, as strptime reads them)."""
    if isinstance(anchor, ProbeYears):
        object.__setattr__(anchor, "saw_yearless", True)
    df = pl.DataFrame({"month": month, "dom": dom, "sod": sod, "line_no": line_nos})
    m, d, sod_e = pl.col("month"), pl.col("dom"), pl.col("sod")
    y = pl.col("year")
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    days_in_month = (
        pl.when(m == 2).then(pl.when(leap).then(29).otherwise(28)).when(m.is_in([4, 6, 9, 11])).then(30).otherwise(31)
    )
    ys = y - (m <= 2).cast(pl.Int32)  # years from March: the leap day ends the year
    era, mp = ys // 400, (m + 9) % 12
    yoe = ys - era * 400
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + (153 * mp + 2) // 5 + d - 1 - 719468
    seconds = days.cast(pl.Int64) * 86400 + sod_e
    valid = (d >= 1) & (d <= days_in_month) & (sod_e >= 0)
    return df.with_columns(year=anchor.year_expr(m).cast(pl.Int32)).select(
        body_at=pl.lit(16, pl.Int64),
        plain=pl.lit(False),
        ts_local=pl.when(valid).then(pl.from_epoch(seconds, time_unit="s")).cast(pl.Datetime("us")),
        ts_utc_given=pl.lit(None, pl.Datetime("us", "UTC")),
    )


def stamp_times(lines: pl.Series, anchor: YearAnchor | FileYears, tz: str, first_line_no: int = 1) -> pl.DataFrame:
    """parse_stamps for every line, computed once per run of lines with the same stamp text."""
    times, run, _ = stamp_runs(lines, anchor, tz, first_line_no)
    return times[run.cast(pl.Int64)] if times.height else times


def stamp_runs(lines: pl.Series, anchor, tz: str, first_line_no: int = 1) -> tuple[pl.DataFrame, pl.Series, pl.Series]:
    """(parse_stamps of each run's first line, each line's run number, the runs' first line numbers)."""
    df = pl.DataFrame({"line": lines})
    line = pl.col("line")
    keys = [line.str.slice(0, 20)]  # covers the seconds of every stamp form (ISO fractions excluded)
    iso = (line.str.slice(10, 1) == "T").any()
    if df.select(iso).item():  # an ISO stamp's offset comes after the fraction: add it to the key
        sp = line.str.find(" ", literal=True)
        # the 6 bytes before the first space, as bytes: a character that is not ASCII may straddle them
        keys.append(line.cast(pl.Binary).bin.slice((sp.cast(pl.Int64) - 6).clip(0), 6))
    first = df.select(pl.any_horizontal([k.ne_missing(k.shift(1)) for k in keys]).alias("first"))["first"]
    first = first.fill_null(True)
    if len(first):
        first[0] = True
    run = first.cast(pl.UInt32).cum_sum() - 1
    heads = lines.filter(first).str.slice(0, 48)
    head_nos = pl.int_range(first_line_no, first_line_no + len(lines), dtype=pl.Int64, eager=True)
    head_nos = head_nos.filter(first)
    return parse_stamps(heads, anchor, tz, head_nos), run, head_nos


def run_starts_reference(lines: pl.Series, iso: bool) -> np.ndarray | None:
    """kernels.runs' specification (tests/test_kernel_mutations.py holds it to this), the polars keys it
    replaced: which lines' key differs from the line before's. The key: BSD, the stamp and its
    space (16 bytes); RFC 3339, the seconds (19) and the offset and its space (7 from byte 26).
    None when a line is 12 bytes or shorter, or a value is not ASCII (or null)."""
    df = pl.DataFrame({"line": lines}, schema={"line": pl.String})
    line = pl.col("line")
    if df.select(line.is_null().any() | (line.str.len_bytes() <= 12).any()).item():
        return None
    if df.select((line.str.len_bytes() != line.str.len_chars()).any()).item():
        return None
    keys = [line.str.slice(0, 19), line.str.slice(26, 7)] if iso else [line.str.slice(0, 16)]
    first = pl.any_horizontal([k.ne_missing(k.shift(1)) for k in keys]).fill_null(True)
    return df.select(first.alias("first"))["first"].to_numpy()


_FAST_BSD = re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S")
_FAST_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(?:[+-]\d\d:\d\d|Z) \S")


def run_heads(
    lines: pl.Series, first_line_no: int, lb: kernels.LineBuffers | None = None
) -> tuple[pl.Series, pl.Series, np.ndarray] | None:
    """(heads, their line numbers, which lines begin a run) of the runs of lines with the same
    stamp, by one compiled pass, for a batch of ASCII lines that begins with a BSD stamp
    (`Feb 16 14:30:01 `) or an rsyslog RFC 3339 one with microseconds; None otherwise."""
    if len(lines) == 0:
        return None
    if _FAST_BSD.match(lines[0]):
        iso = False  # key: the stamp and the space after it
    elif _FAST_ISO.match(lines[0]):
        iso = True  # key: the seconds, and the offset and the space after it
    else:
        return None
    lb = lb if lb is not None else kernels.line_buffers(lines)
    first = kernels.runs(lb, iso) if lb is not None else None
    if first is None:  # a line too short for a stamp, or not ASCII: the general path works in bytes
        return None
    head_nos = pl.Series("line_no", np.flatnonzero(first) + first_line_no)
    return lines.filter(pl.Series(first)).str.slice(0, 48), head_nos, first


# RFC 5424 "<pri>1 STAMP HOST APP PROCID MSGID SD MSG" becomes "STAMP HOST APP[PROCID]: MSG", and a
# relay's "<pri>" before a BSD stamp is dropped, so one header reader serves every form.
_SD = r"(?:-|(?:\[(?:[^\]\\]|\\.)*\])+)"
_5424_NOPID = r"^<\d{1,3}>1 (\S+) (\S+) (\S+) - \S+ " + _SD + r" ?\x{FEFF}?"
_5424_PID = r"^<\d{1,3}>1 (\S+) (\S+) (\S+) (\S+) \S+ " + _SD + r" ?\x{FEFF}?"
_PRI_BSD = r"^<\d{1,3}>([A-Za-z]{3} )"


def normalise_headers(lines: pl.Series) -> pl.Series:
    """Rewrite RFC 5424 lines and "<pri>"-prefixed BSD lines (rare: only when some line starts "<")."""
    if not lines.str.starts_with("<").any():
        return lines
    s = pl.col("line")
    return pl.DataFrame({"line": lines}).select(
        s.str.replace(_5424_NOPID, "${1} ${2} ${3}: ")
        .str.replace(_5424_PID, "${1} ${2} ${3}[${4}]: ")
        .str.replace(_PRI_BSD, "${1}")
    )["line"]


DST_JITTER = timedelta(seconds=30)  # a step back larger than this in the repeated hour starts its 2nd pass


def to_utc(df: pl.DataFrame, tz: str) -> pl.DataFrame:
    """`ts` (UTC) and `ts_site` (naive site-local) from `ts_local` (placed in `tz`) or
    `ts_utc_given` (stamps with an offset keep their instant); rows must be in file order.

    Local stamps in the hour that repeats when DST ends are read by line order: they are the
    first (summer-time) pass until the file steps back in time by more than DST_JITTER inside
    that hour, or until a line after that hour has been seen; from then on they are the second
    (standard-time) pass. Stamps in the hour that does not exist when DST starts (a clock that
    had not switched yet) are read with the offset in force before the change, so "02:30" on a
    spring-forward night becomes 03:30 summer time: same day, same order.
    """
    local = pl.col("ts_local")
    early = local.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
    lo, hi = cast(datetime | None, df["ts_local"].min()), cast(datetime | None, df["ts_local"].max())
    if _dst_changes_within(tz, lo, hi):
        late = local.dt.replace_time_zone(tz, ambiguous="latest", non_existent="null")
        seen = local.fill_null(strategy="forward").cum_max().shift(1)  # the latest stamp before each line
        seen_amb = seen.dt.replace_time_zone(
            tz, ambiguous="earliest", non_existent="null"
        ) != seen.dt.replace_time_zone(tz, ambiguous="latest", non_existent="null")
        amb = early != late
        step_back = amb & ((seen - local > DST_JITTER) | (~seen_amb.fill_null(True) & (seen > local)))
        second = amb & (step_back.fill_null(False).cast(pl.Int32).cum_sum().over(local.dt.date()) > 0)
        chosen = local.dt.replace_time_zone(
            tz, ambiguous=pl.when(second).then(pl.lit("latest")).otherwise(pl.lit("earliest")), non_existent="null"
        )
        gap = (local - timedelta(hours=1)).dt.replace_time_zone(
            tz, ambiguous="latest", non_existent="null"
        ) + timedelta(hours=1)
        early = pl.coalesce(chosen, gap)
    df = df.with_columns(ts=pl.coalesce(pl.col("ts_utc_given"), early.dt.convert_time_zone("UTC")))
    return df.with_columns(
        ts_site=pl.col("ts").dt.convert_time_zone(tz).dt.replace_time_zone(None), framed=pl.col("ts").is_not_null()
    )


def _dst_changes_within(tz: str, lo: datetime | None, hi: datetime | None) -> bool:
    """Whether the zone's UTC offset changes between two local times (sampled every 6 hours,
    closer than any two real transitions)."""
    if lo is None or hi is None or tz == "UTC":
        return False
    from zoneinfo import ZoneInfo

    z = ZoneInfo(tz)
    t, end = lo - timedelta(days=1), hi + timedelta(days=1)
    off = t.replace(tzinfo=z).utcoffset()
    while t < end:
        t = min(t + timedelta(hours=6), end)
        if t.replace(tzinfo=z).utcoffset() != off:
            return True
    return False


def local_day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    """UTC start and end of the site's local calendar day (23 or 25 hours around DST)."""
    from zoneinfo import ZoneInfo

    z = ZoneInfo(tz)
    start = datetime(day.year, day.month, day.day, tzinfo=z)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=z)
    utc = ZoneInfo("UTC")
    return start.astimezone(utc), end.astimezone(utc)
