"""The years of a file's year-less stamps: found in one streaming pass (`StampScan`), or while
the file is parsed (`OnlineYears`), and fixed by what the file itself says of when it ended
(`year_anchor`: its mtime, a logrotate dateext name, the gzip header). Fetch keeps what it scanned
in its manifest and hands each file's years to parse as data (`years_or_day`, `anchor_of`)."""

from __future__ import annotations

import re
import struct
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import cast
from zoneinfo import ZoneInfo

import polars as pl

from mmw_tasks.parse import kernels
from mmw_tasks.parse.logfiles import compression_of, iter_line_batches
from mmw_tasks.parse.stamps import (
    YEARLESS_YEAR,
    FileYears,
    YearAnchor,
    Yearless,
    bsd_times,
    normalise_headers,
    run_heads,
    stamp_runs,
)

# logrotate dateext: "mail.log-20260315", "-2026031504" (hourly), before any compression suffix.
_DATEEXT = re.compile(r"-(\d{8})(\d\d)?(?:\.(?:gz|bz2|xz|z|zst))?$", re.I)
_REF = datetime(YEARLESS_YEAR, 1, 1)
_YEAR_S = 366 * 86400
_HALF_S = _YEAR_S // 2


class StampScan:
    """One streaming pass over a file's lines that finds its time span and the year of every
    year-less stamp (manifest.py keeps the result, so each file is scanned once).

    Year-less stamps are placed on a 366-day circle; walking the file, each step to the next
    stamp is taken the short way round (at most half a year forward or back), so Dec 31 -> Jan 1
    is one day forward into the next year, and a Jan 1 line followed by a late Dec 31 line from
    another host steps back a few seconds, not a year. Lines out of order by seconds or hours
    never change the year; only a file silent for more than half a year could fool it.
    `resolve` then fixes the absolute year from an anchor known to be at or after the file's
    last stamp (its mtime, dateext date or gzip header time).
    """

    def __init__(self, keep_heads: bool = False, fast: bool = True) -> None:
        self.lines = 0
        self.fast = fast  # runs found by the compiled pass where the batch allows (tests compare)
        self.last_runs: tuple | None = None  # the last batch's compiled runs, for its framing (frame_lines)
        # (line_no, month) of each batch's year-less run heads, when kept (sources.OnlineYears)
        self.heads: list[pl.DataFrame] | None = [] if keep_heads else None
        self._prev_key: int | None = None
        self._cum: int | None = None  # unwrapped position of the last year-less stamp (seconds)
        self._offset: int | None = None  # its year offset from the file's first such stamp
        self.offsets: list[tuple[int, int]] = []  # (first line number, year offset)
        self.min_cum: int | None = None
        self.max_cum: int | None = None
        self.abs_min: datetime | None = None  # site-local naive, from stamps that carry a year
        self.abs_max: datetime | None = None
        self.utc_min: datetime | None = None  # from stamps with an offset or epoch
        self.utc_max: datetime | None = None

    def feed(self, first_no: int, lines: pl.Series) -> None:
        self.lines += len(lines)
        # the runs' first lines only: a run's lines share its stamp, so they add no step, year
        # change or extreme of their own
        runs = self.last_runs = run_heads(lines, first_no) if self.fast else None
        fields = kernels.bsd_stamps(runs[0]) if runs is not None else None
        if fields is not None and runs is not None:  # every run head a BSD stamp, which its run key holds whole:
            t, head_nos = bsd_times(*fields, Yearless(), runs[1]), runs[1]  # its year-less time
        else:  # another form among them (its seconds may lie past that key): the general runs
            t, _, head_nos = stamp_runs(normalise_headers(lines), Yearless(), "UTC", first_no)
        df = t.select("ts_local", "ts_utc_given").with_columns(line_no=head_nos)
        local = pl.col("ts_local")
        yearless = df.filter(local.dt.year() == YEARLESS_YEAR).select(
            "line_no", key=(local - pl.lit(_REF)).dt.total_seconds()
        )
        if yearless.height:
            self._unwrap(yearless)
        if self.heads is not None:
            self.heads.append(
                df.filter(local.dt.year() == YEARLESS_YEAR).select("line_no", month=local.dt.month().cast(pl.Int32))
            )
        stats = df.select(
            lo=local.filter(local.dt.year() != YEARLESS_YEAR).min(),
            hi=local.filter(local.dt.year() != YEARLESS_YEAR).max(),
            ulo=pl.col("ts_utc_given").min(),
            uhi=pl.col("ts_utc_given").max(),
        ).row(0)
        self.abs_min, self.abs_max = _min(self.abs_min, stats[0]), _max(self.abs_max, stats[1])
        self.utc_min, self.utc_max = _min(self.utc_min, stats[2]), _max(self.utc_max, stats[3])

    def _unwrap(self, keys: pl.DataFrame) -> None:
        k = keys["key"]
        prev = self._prev_key if self._prev_key is not None else k[0]
        start = self._cum if self._cum is not None else k[0]
        step = k.diff().fill_null(k[0] - prev)
        wrapped = step - _YEAR_S * ((step + _HALF_S) // _YEAR_S)
        cum = start + wrapped.cum_sum()
        off = (cum - k) // _YEAR_S
        before = self._offset if self._offset is not None else -(1 << 40)
        changes = (
            keys.select("line_no")
            .with_columns(off=off)
            .filter(pl.col("off") != pl.col("off").shift(1, fill_value=before))
        )
        self.offsets.extend(changes.iter_rows())
        self._prev_key, self._cum, self._offset = int(k[-1]), int(cum[-1]), int(off[-1])
        lo, hi = cast(int, cum.min()), cast(int, cum.max())
        self.min_cum = lo if self.min_cum is None else min(self.min_cum, lo)
        self.max_cum = hi if self.max_cum is None else max(self.max_cum, hi)

    def resolve(self, anchor: datetime, tz: str) -> tuple[FileYears | None, datetime | None, datetime | None]:
        """(years of the year-less stamps, first and last site-local time of the file).

        `anchor` (site-local, naive) is at or after the file's latest stamp: the latest stamp gets
        the latest year that puts it no more than a day after the anchor.
        """
        first = last = None
        years = None
        if self.max_cum is not None and self.min_cum is not None:
            top_off, top_key = divmod(self.max_cum, _YEAR_S)
            top = _REF + timedelta(seconds=top_key)
            year = anchor.year + 1
            while True:
                cand = _on_year(top, year)
                if cand is not None and cand <= anchor + timedelta(days=1):
                    break
                year -= 1
            base = year - top_off
            years = FileYears(tuple((line, base + off) for line, off in self.offsets))
            last = cand
            lo_off, lo_key = divmod(self.min_cum, _YEAR_S)
            first = _on_year(_REF + timedelta(seconds=lo_key), base + lo_off)
            if first is None:  # Feb 29 in a year without one: that stamp is unusable, not the span
                first = _on_year(_REF + timedelta(seconds=lo_key - 86400), base + lo_off)
        from zoneinfo import ZoneInfo

        z = ZoneInfo(tz)
        for t in (self.utc_min, self.utc_max):
            if t is not None:
                loc = t.astimezone(z).replace(tzinfo=None)
                first, last = _min(first, loc), _max(last, loc)
        first, last = _min(first, self.abs_min), _max(last, self.abs_max)
        return years, first, last


def _on_year(ref: datetime, year: int) -> datetime | None:
    try:
        return ref.replace(year=year)
    except ValueError:  # Feb 29
        return None


def _min(a, b):
    return b if a is None else a if b is None else min(a, b)


def _max(a, b):
    return b if a is None else a if b is None else max(a, b)


def _local(ts: float, tz: str) -> datetime:
    return datetime.fromtimestamp(ts, ZoneInfo(tz)).replace(tzinfo=None)


def year_anchor(path: Path, mtime: float, tz: str) -> tuple[datetime, str]:
    """A site-local time at or after the file's last line, and where it came from.

    The earliest of: the file's mtime (syslogd's last write; a copy without -p makes it later,
    never earlier), the end of the date in a logrotate dateext name, and the mtime gzip keeps in
    its header (logrotate's gzip copies the log's own mtime; 0 means none).
    """
    best, how = _local(mtime, tz), "mtime"
    m = _DATEEXT.search(path.name)
    if m:
        try:
            day = datetime.strptime(m.group(1), "%Y%m%d")
            end = day + (timedelta(hours=int(m.group(2)) + 1) if m.group(2) else timedelta(days=1))
            if end < best:
                best, how = end, "dateext"
        except ValueError:
            pass
    if compression_of(path) == "gzip":
        with open(path, "rb") as fh:
            head = fh.read(10)
        if len(head) == 10:
            (gz_mtime,) = struct.unpack("<I", head[4:8])
            if gz_mtime > 0:
                t = _local(gz_mtime, tz)
                if t < best:
                    best, how = t, "gzip header"
    return best, f"{how} {best.isoformat(sep=' ')}"


def years_or_day(
    years: FileYears | None, first: datetime | None, last: datetime | None, day: date
) -> YearAnchor | FileYears:
    start = datetime(day.year, day.month, day.day)
    if years is None or first is None or last is None or first >= start + timedelta(days=1) or last < start:
        return YearAnchor(day)
    return years


class YearsMoved(RuntimeError):
    """OnlineYears found, at the end of a file, other years than those it framed it with."""


class OnlineYears:
    """years_for without a pass of its own, for a file not in the manifest whose stamps lack
    years: each batch is fed to a StampScan just before it is framed, and framed with the years
    the scan gives so far (the file's year changes up to that batch, placed by the stamps met
    so far). Later lines can still move them (the newest stamp fixes the years, the span decides
    between them and the run's day), so at the end `holds()` checks that the whole file's scan
    gives every run head the year it was framed with; when it does not (rare: a year of log
    parsed for December), ingest parses the day again after a full scan."""

    def __init__(self, path: Path, tz: str, day: date):
        self.scan = StampScan(keep_heads=True)
        self.anchor_at = year_anchor(Path(path).resolve(), Path(path).stat().st_mtime, tz)[0]
        self.tz, self.day = tz, day
        self.used: list[YearAnchor | FileYears] = []

    def _decide(self) -> YearAnchor | FileYears:
        years, first, last = self.scan.resolve(self.anchor_at, self.tz)
        return years_or_day(years, first, last, self.day)

    def next_anchor(self, first_no: int, lines) -> YearAnchor | FileYears:
        self.scan.feed(first_no, lines)
        self.used.append(self._decide())
        return self.used[-1]

    def holds(self) -> bool:
        final = self._decide()
        for heads, used in zip(self.scan.heads or [], self.used, strict=True):  # kept: keep_heads=True
            month = pl.col("month")
            if heads.height and not heads.select((used.year_expr(month) == final.year_expr(month)).all()).item():
                return False
        return True


def scan_years(path: Path, tz: str, day: date) -> YearAnchor | FileYears:
    """The years a file is framed with, from a pass of its own (a file fetch did not hand over)."""
    scan = StampScan()
    for first_no, lines in iter_line_batches(path):
        scan.feed(first_no, lines)
    years, first, last = scan.resolve(year_anchor(Path(path).resolve(), Path(path).stat().st_mtime, tz)[0], tz)
    return years_or_day(years, first, last, day)


def anchor_of(breaks: list | None, day: date) -> YearAnchor | FileYears | None:
    """A file's years as fetch hands them over (`breaks_of`): None unknown, [] framed next to the
    day, else [[first line number, year], ...]."""
    if breaks is None:
        return None
    return FileYears(tuple((int(a), int(b)) for a, b in breaks)) if breaks else YearAnchor(day)


def breaks_of(anchor: YearAnchor | FileYears) -> list[list[int]]:
    """The JSON form of an anchor (what XCom carries from fetch to parse): see anchor_of."""
    return [[a, b] for a, b in anchor.breaks] if isinstance(anchor, FileYears) else []
