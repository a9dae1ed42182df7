"""Syslog framing, vectorised: read rotated (possibly compressed) files, split each line into
timestamp, host, program and message, infer the missing year, expand repeat lines.

Everything works on polars frames of whole batches of lines; no per-line Python.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl

BATCH_BYTES = 64 << 20  # decompressed bytes per batch: bounded memory whatever the file size
READ_PIECE = 1 << 20  # read size inside a batch: what a damaged archive can lose before the damage

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)

_MONTHS = {m: i + 1 for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}

# Header forms (docs/sources.md lists them with examples). Each regex is one capture pass.
# Host: optional (files written by the program itself have none), never holding "[" or ending in ":"
# (that is a tag), forwarded "src@host" and "host/host" are normalised to the host below.
_HOST = r"(?:([^\s\[\]]*[^\s\[\]:]) )?"
# RFC 3164 / BSD: "Feb  6 14:30:01 host rest", "Feb 06", "Nov 9", a "<pri>" a relay kept, and
# FreeBSD `syslogd -v` "<mail.info>" after the stamp.
_BSD = r"^(?:<\d{1,3}>)?([A-Za-z]{3}) +(\d{1,2}) (\d\d:\d\d:\d\d) (?:<[\w.]+> )?" + _HOST + r"(.*)$"
# RFC 3339 / journald short-iso: "2024-08-26T01:33:38.572449+00:00 host rest", "+0900", "Z", or no
# offset at all (then it is site-local time like a BSD stamp).
_ISO = (r"^(?:<\d{1,3}>)?(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?)(Z|[+-]\d\d:?\d\d)? "
        r"(?:<[\w.]+> )?" + _HOST + r"(.*)$")
# RFC 5424: "<pri>1 TIMESTAMP HOST APP PROCID MSGID SD [MSG]" with "-" for nil fields.
_5424 = (r"^<\d{1,3}>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)(Z|[+-]\d\d:?\d\d) (\S+) (\S+) (\S+) \S+ "
         r"(?:-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: +\x{FEFF}?(.*))?$")
# Program tag up to the first ": " (tags may hold spaces or slashes), optional [pid], then the message.
_TAG = r"^([^\s\[:]+(?: [\d.]+)?)(?:\[(\d+)\])?: (?:\[ID \d+ [\w.]+\] )?(.*)$"
_REPEAT = r"^(?:last message repeated|last message buffered|above message repeats) (\d+) times?$"


class LogFileError(RuntimeError):
    """A log file that cannot be read; the message names the file (and offset where known)."""


def compression_of(path: Path) -> str | None:
    """Compression detected from the file's first bytes, not its name."""
    with open(path, "rb") as fh:
        head = fh.read(6)
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


class _CountingReader:
    """A binary file that counts the compressed bytes consumed, so an error can name the offset."""

    def __init__(self, raw):
        self.raw, self.consumed = raw, 0

    def read(self, n=-1):
        data = self.raw.read(n)
        self.consumed += len(data)
        return data

    def readinto(self, buf):
        n = self.raw.readinto(buf)
        self.consumed += n or 0
        return n

    def readable(self):
        return True

    def seekable(self):
        return False

    def close(self):
        self.raw.close()

    @property
    def closed(self):
        return self.raw.closed


def _open(path: Path):
    """(decompressing reader, counting reader of the bytes on disk, compression name or None)."""
    kind = compression_of(path)
    raw = _CountingReader(open(path, "rb"))
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw, kind
    if kind == "bzip2":
        return bz2.BZ2File(raw, "rb"), raw, kind
    if kind == "xz":
        return lzma.LZMAFile(raw, "rb"), raw, kind
    return raw, raw, None


def iter_line_batches(path: Path, batch_bytes: int | None = None,
                      on_chunk: Callable[[bytes], None] | None = None) -> Iterator[tuple[int, pl.Series]]:
    """Yield (number of the batch's first line, Series of lines); line numbers start at 1.

    `on_chunk` sees every decompressed chunk in order (the manifest hashes content with it).
    A truncated or corrupt compressed file raises LogFileError naming the file, the byte offset
    on disk where reading stopped, and how many lines came out before.
    """
    batch_bytes = batch_bytes or BATCH_BYTES
    line_no = 1
    tail = b""
    fh, raw, kind = _open(path)
    out = 0

    def read_batch() -> bytes:
        parts: list[bytes] = []
        got = 0
        while got < batch_bytes:
            try:
                piece = fh.read(min(batch_bytes - got, READ_PIECE))
            except (EOFError, OSError, zlib.error, lzma.LZMAError) as e:
                lines_done = line_no - 1 + tail.count(b"\n") + sum(p.count(b"\n") for p in parts)
                raise LogFileError(
                    f"{path}: corrupt or truncated {kind or 'file'} data at byte {raw.consumed} of "
                    f"{path.stat().st_size} on disk, after {out + got} decompressed bytes "
                    f"({lines_done} complete lines): {e}") from e
            if not piece:
                break
            parts.append(piece)
            got += len(piece)
        return b"".join(parts)

    try:
        while True:
            chunk = read_batch()
            if not chunk:
                break
            out += len(chunk)
            if on_chunk is not None:
                on_chunk(chunk)
            data = tail + chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                tail = data
                continue
            tail = data[cut + 1:]
            lines = _split(data[:cut])
            yield line_no, lines
            line_no += len(lines)
        if tail:
            yield line_no, _split(tail)
    finally:
        fh.close()
        raw.close()


def _split(data: bytes) -> pl.Series:
    text = data.decode("utf-8", errors="replace")
    return pl.Series("line", [text]).str.split("\n").explode().str.strip_suffix("\r")


@dataclass(frozen=True)
class YearAnchor:
    """The date that year-less stamps are placed next to: the run's day (used when a file's own
    years are unknown, and by tests that frame loose lines)."""

    day: date

    def year_expr(self, month: pl.Expr) -> pl.Expr:
        # A month more than six months after the anchor's is last year's; six before, next year's.
        y, m = self.day.year, self.day.month
        return (pl.when(month - m > 6).then(y - 1)
                .when(m - month > 6).then(y + 1)
                .otherwise(y))


@dataclass(frozen=True)
class FileYears:
    """The years of one file's year-less stamps, found by `StampScan`: `breaks` holds
    (first line number, year) pairs, sorted; a line takes the year of the last break at or before it."""

    breaks: tuple[tuple[int, int], ...]

    def year_expr(self, month: pl.Expr) -> pl.Expr:
        starts = pl.Series([b[0] for b in self.breaks], dtype=pl.Int64)
        years = pl.Series([b[1] for b in self.breaks], dtype=pl.Int32)
        idx = (pl.lit(starts).search_sorted(pl.col("line_no"), side="right").cast(pl.Int64) - 1).clip(0)
        return pl.lit(years).gather(idx)


_REF = datetime(2000, 1, 1)  # a leap year: every month-day, Feb 29 included, has a place in it
_YEAR_S = 366 * 86400
_HALF_S = _YEAR_S // 2
# Just the stamp, for the manifest's pass over a whole file (cheaper than the full header).
_BSD_STAMP = r"^(?:<\d{1,3}>)?([A-Za-z]{3}) +(\d{1,2}) (\d\d):(\d\d):(\d\d)"
_ISO_STAMP = (r"^(?:<\d{1,3}>1? ?)?(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:[.,]\d+)?(Z|[+-]\d\d:?\d\d)? ")


class StampScan:
    """One streaming pass over a file's lines that finds its time span and the year of every
    year-less stamp.

    Year-less stamps are placed on a 366-day circle; walking the file, each step to the next
    stamp is taken the short way round (at most half a year forward or back), so Dec 31 -> Jan 1
    is one day forward into the next year, a Jan 1 line followed by a late Dec 31 line from
    another host steps back a few seconds, not a year. Lines out of order by seconds or hours
    never change the year; a file silent for more than half a year would (documented limit).
    `resolve` then fixes the absolute year from an anchor known to be at or after the file's
    last stamp (its mtime or dateext date).
    """

    def __init__(self) -> None:
        self.lines = 0
        self._prev_key: int | None = None
        self._cum: int | None = None  # unwrapped position of the last stamp (seconds)
        self._offset: int | None = None  # year offset of the last stamp from the first
        self.offsets: list[tuple[int, int]] = []  # (first line number, year offset)
        self.min_cum: int | None = None
        self.max_cum: int | None = None
        self.iso_min: datetime | None = None  # UTC-aware, from stamps with an offset
        self.iso_max: datetime | None = None
        self.naive_min: datetime | None = None  # site-local, from ISO stamps without an offset
        self.naive_max: datetime | None = None

    def feed(self, first_no: int, lines: pl.Series) -> None:
        self.lines += len(lines)
        df = pl.DataFrame({"line": lines}).with_row_index("line_no", offset=first_no)
        b = pl.col("line").str.extract_groups(_BSD_STAMP).struct
        mon = b.field("1").str.to_lowercase().replace_strict(_MONTHS, default=None, return_dtype=pl.Int64)
        day = b.field("2").cast(pl.Int64)
        valid = mon.is_not_null() & (day >= 1) & (day <= pl.lit(_MONTH_DAYS).gather((mon - 1).clip(0, 11)))
        doy = pl.lit(_MONTH_START).gather((mon - 1).clip(0, 11)) + day - 1
        key = (doy * 86400 + b.field("3").cast(pl.Int64) * 3600 + b.field("4").cast(pl.Int64) * 60
               + b.field("5").cast(pl.Int64))
        keys = df.select("line_no", key=pl.when(valid).then(key)).drop_nulls("key")
        if keys.height:
            self._unwrap(keys)
        iso = df.select(pl.col("line").str.extract_groups(_ISO_STAMP).alias("i")).unnest("i")
        iso = iso.drop_nulls("1")
        if iso.height:
            self._iso(iso)

    def _unwrap(self, keys: pl.DataFrame) -> None:
        k = keys["key"]
        prev = self._prev_key if self._prev_key is not None else k[0]
        start = self._cum if self._cum is not None else k[0]
        step = k.diff().fill_null(k[0] - prev)
        wrapped = step - _YEAR_S * ((step + _HALF_S) // _YEAR_S)
        cum = start + wrapped.cum_sum()
        off = (cum - k) // _YEAR_S
        last_off = self._offset
        changes = keys.select("line_no").with_columns(off=off).filter(
            pl.col("off") != pl.col("off").shift(1, fill_value=last_off if last_off is not None else -1 << 40))
        self.offsets.extend(changes.iter_rows())
        self._prev_key, self._cum, self._offset = int(k[-1]), int(cum[-1]), int(off[-1])
        lo, hi = int(cum.min()), int(cum.max())
        self.min_cum = lo if self.min_cum is None else min(self.min_cum, lo)
        self.max_cum = hi if self.max_cum is None else max(self.max_cum, hi)

    def _iso(self, iso: pl.DataFrame) -> None:
        text = pl.concat_str([pl.col("1"), pl.lit("T"), pl.col("2")])
        with_off = iso.filter(pl.col("3").is_not_null()).select(
            pl.concat_str([text, pl.col("3").str.replace(r"^Z$", "+00:00")
                           .str.replace(r"^([+-]\d\d)(\d\d)$", "$1:$2")])
            .str.to_datetime("%Y-%m-%dT%H:%M:%S%:z", strict=False, time_zone="UTC").alias("t")
        )["t"].drop_nulls()
        if len(with_off):
            self.iso_min = _min(self.iso_min, with_off.min())
            self.iso_max = _max(self.iso_max, with_off.max())
        naive = iso.filter(pl.col("3").is_null()).select(
            text.str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False).alias("t"))["t"].drop_nulls()
        if len(naive):
            self.naive_min = _min(self.naive_min, naive.min())
            self.naive_max = _max(self.naive_max, naive.max())

    @property
    def has_yearless(self) -> bool:
        return self.max_cum is not None

    def resolve(self, anchor: datetime, tz: str) -> tuple[FileYears | None, datetime | None, datetime | None]:
        """(years of the year-less stamps, first and last site-local time of the file).

        `anchor` (site-local, naive) is at or after the file's latest stamp: the latest stamp gets
        the latest year that puts it no more than a day after the anchor.
        """
        first = last = None
        years = None
        if self.max_cum is not None:
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
            if first is None:  # Feb 29 in a year without one: the stamp is unusable, not the span
                first = _on_year(_REF + timedelta(seconds=lo_key - 86400), base + lo_off)
        from zoneinfo import ZoneInfo

        z = ZoneInfo(tz)
        for t in (self.iso_min, self.iso_max):
            if t is not None:
                loc = t.astimezone(z).replace(tzinfo=None)
                first, last = _min(first, loc), _max(last, loc)
        for loc in (self.naive_min, self.naive_max):
            if loc is not None:
                first, last = _min(first, loc), _max(last, loc)
        return years, first, last


_MONTH_DAYS = pl.Series([31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=pl.Int64)
_MONTH_START = pl.Series([0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335], dtype=pl.Int64)


def _on_year(ref: datetime, year: int) -> datetime | None:
    try:
        return ref.replace(year=year)
    except ValueError:  # Feb 29
        return None


def _min(a, b):
    return b if a is None else a if b is None else min(a, b)


def _max(a, b):
    return b if a is None else a if b is None else max(a, b)


def frame_lines(lines: pl.Series, first_line_no: int, anchor: YearAnchor | FileYears) -> pl.DataFrame:
    """Split raw lines into header fields.

    Columns: line_no, line, ts_local (naive local datetime or null), ts_utc_given (for
    RFC 3339/5424 lines that carry an offset), host, prog, pid, msg, repeat_n, framed (bool).
    """
    df = pl.DataFrame({"line": lines}).with_row_index("line_no", offset=first_line_no)
    df = df.with_columns(pl.col("line_no").cast(pl.Int64))
    df = df.with_columns(pl.col("line").str.extract_groups(_BSD).alias("_b"),
                         pl.col("line").str.extract_groups(_ISO).alias("_i"),
                         pl.col("line").str.extract_groups(_5424).alias("_r"))
    b, i, r = pl.col("_b").struct, pl.col("_i").struct, pl.col("_r").struct
    month = b.field("1").str.to_lowercase().replace_strict(_MONTHS, default=None, return_dtype=pl.Int32)
    year = anchor.year_expr(month)
    bsd_ts = pl.concat_str([year.cast(pl.String), b.field("1"), b.field("2"), b.field("3")],
                           separator=" ").str.strptime(pl.Datetime("us"), "%Y %b %d %H:%M:%S", strict=False)
    iso_text = pl.coalesce(i.field("1"), r.field("1")).str.replace(" ", "T").str.replace(",", ".")
    iso_off = (pl.coalesce(i.field("2"), r.field("2")).str.replace(r"^Z$", "+00:00")
               .str.replace(r"^([+-]\d\d)(\d\d)$", "$1:$2"))
    iso_ts = pl.concat_str([iso_text, iso_off]).str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f%:z", strict=False, time_zone="UTC")
    iso_naive = pl.when(iso_off.is_null()).then(
        iso_text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us"))
    # RFC 5424 fields become "APP[PROCID]: MSG" so the tag parser below handles every form alike.
    r_rest = pl.when(r.field("4") != "-").then(pl.concat_str([
        r.field("4"),
        pl.when(r.field("5") != "-").then(pl.concat_str([pl.lit("["), r.field("5"), pl.lit("]")]))
        .otherwise(pl.lit("")),
        pl.lit(": "), r.field("6").fill_null("")])).otherwise(r.field("6"))
    r_host = pl.when(r.field("3") != "-").then(r.field("3"))
    host = (pl.coalesce(b.field("4"), i.field("3"), r_host)
            .str.replace(r"^[^@]*@", "").str.replace(r"/.*$", ""))  # forwarded "src@host", "host/host"
    is_5424 = r.field("1").is_not_null()
    df = df.with_columns(
        ts_local=pl.coalesce(bsd_ts, iso_naive),
        ts_utc_given=iso_ts,
        host=pl.when(is_5424).then(r_host).otherwise(host),
        rest=pl.when(is_5424).then(r_rest).otherwise(pl.coalesce(b.field("5"), i.field("4"))),
    ).drop("_b", "_i", "_r")
    tag = pl.col("rest").str.extract_groups(_TAG)
    df = df.with_columns(
        repeat_n=pl.col("rest").str.extract(_REPEAT, 1).cast(pl.Int64),
        prog=tag.struct.field("1"),
        pid=tag.struct.field("2").cast(pl.Int64, strict=False),
        msg=tag.struct.field("3"),
    )
    return df.with_columns(framed=pl.col("ts_local").is_not_null() | pl.col("ts_utc_given").is_not_null())


DST_JITTER = timedelta(seconds=30)  # a step back larger than this in the repeated hour starts its 2nd pass


def to_utc(df: pl.DataFrame, tz: str) -> pl.DataFrame:
    """Add `ts` (UTC) and `ts_site` (naive site-local) from whichever stamp the line had.

    Local stamps in the hour that repeats when DST ends are read by line order: they are the
    first (summer-time) pass until the file steps back in time by more than DST_JITTER inside
    that hour, or until a line after the hour has been seen; from then on they are the second
    (standard-time) pass. Stamps in the hour that does not exist when DST starts (a clock that
    had not switched yet) are read with the offset in force before the change, so "02:30" on a
    spring-forward night becomes 03:30 summer time: same day, same order.
    """
    local = pl.col("ts_local")
    early = local.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
    if not _dst_changes_within(tz, df["ts_local"].min(), df["ts_local"].max()):
        ts = pl.coalesce(pl.col("ts_utc_given"), early.dt.convert_time_zone("UTC"))  # the common case
        return df.with_columns(ts=ts).with_columns(
            ts_site=pl.col("ts").dt.convert_time_zone(tz).dt.replace_time_zone(None))
    late = local.dt.replace_time_zone(tz, ambiguous="latest", non_existent="null")
    seen = local.fill_null(strategy="forward").cum_max().shift(1)  # the latest stamp before each line
    seen_amb = (seen.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
                != seen.dt.replace_time_zone(tz, ambiguous="latest", non_existent="null"))
    amb = early != late
    step_back = amb & ((seen - local > DST_JITTER) | (~seen_amb.fill_null(True) & (seen > local)))
    second = amb & (step_back.fill_null(False).cast(pl.Int32).cum_sum().over(local.dt.date()) > 0)
    chosen = local.dt.replace_time_zone(
        tz, ambiguous=pl.when(second).then(pl.lit("latest")).otherwise(pl.lit("earliest")),
        non_existent="null")
    gap = (local - timedelta(hours=1)).dt.replace_time_zone(
        tz, ambiguous="latest", non_existent="null") + timedelta(hours=1)
    local_as_utc = pl.coalesce(chosen, gap).dt.convert_time_zone("UTC")
    ts = pl.coalesce(pl.col("ts_utc_given"), local_as_utc)
    return df.with_columns(ts=ts).with_columns(
        ts_site=pl.col("ts").dt.convert_time_zone(tz).dt.replace_time_zone(None))


def _dst_changes_within(tz: str, lo: datetime | None, hi: datetime | None) -> bool:
    """Whether the zone's UTC offset changes between two local times (sampled every 6 hours,
    closer than any two real transitions)."""
    if lo is None or hi is None:
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


def expand_repeats(df: pl.DataFrame, carry: dict[str, tuple[str | None, str | None, int | None]]
                   ) -> pl.DataFrame:
    """Replace each 'last message repeated N times' line by N copies of the host's previous line.

    `carry` maps host -> (prog, msg, pid) of its last line in the previous batch and is updated.
    The copies keep the repeat line's timestamp and line number and are flagged `repeat`.
    """
    is_rep = pl.col("repeat_n").is_not_null()
    if carry:
        seed = pl.DataFrame({"host": list(carry), "_p": [v[0] for v in carry.values()],
                             "_m": [v[1] for v in carry.values()], "_d": [v[2] for v in carry.values()]},
                            schema={"host": pl.String, "_p": pl.String, "_m": pl.String, "_d": pl.Int64})
    else:
        seed = None
    src = pl.when(~is_rep).then(pl.struct("prog", "msg", "pid")).forward_fill().over("host")
    filled = df.with_columns(_src=src)
    if seed is not None:
        filled = filled.join(seed, on="host", how="left")
        seeded = pl.struct(prog=pl.col("_p"), msg=pl.col("_m"), pid=pl.col("_d"))
        filled = filled.with_columns(_src=pl.coalesce("_src", seeded)).drop("_p", "_m", "_d")
    filled = filled.with_columns(
        [pl.when(is_rep).then(pl.col("_src").struct.field(c)).otherwise(pl.col(c)).alias(c)
         for c in ("prog", "msg", "pid")]).drop("_src")
    last = (filled.filter(pl.col("host").is_not_null())
            .group_by("host").agg(pl.col("prog").last(), pl.col("msg").last(), pl.col("pid").last()))
    for host, prog, msg, pid in last.iter_rows():
        carry[host] = (prog, msg, pid)
    # A repeat with nothing before it (its line was in an older file) stays one unexpanded line.
    copies = pl.when(is_rep & pl.col("msg").is_not_null()).then(pl.col("repeat_n")).otherwise(1)
    out = filled.with_columns(
        _n=copies, repeat=is_rep & pl.col("msg").is_not_null(),
    ).with_columns(copy=pl.int_ranges(0, pl.col("_n"))).explode("copy").drop("_n")
    return out.with_columns(pl.col("copy").cast(pl.Int32))


def local_day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    """UTC start and end of the site's local calendar day (23 or 25 hours around DST)."""
    from zoneinfo import ZoneInfo

    z = ZoneInfo(tz)
    start = datetime(day.year, day.month, day.day, tzinfo=z)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=z)
    utc = ZoneInfo("UTC")
    return start.astimezone(utc), end.astimezone(utc)
