"""Syslog framing, vectorised: read rotated (possibly compressed) files, split each line into
timestamp, host, program and message, infer the missing year, expand repeat lines.

Everything works on polars frames of whole batches of lines; no per-line Python. The costly part
of framing, turning stamps into times, is done once per *run* of equal stamps (a busy log has
thousands of lines a second but one stamp text per second), and everything else is cheap byte
offsets (`str.find`) and byte slices. Regexes run only on the runs' first lines.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import queue
import re
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from mmw_tasks import kernels

try:  # ISA-L inflates gzip about twice as fast as zlib; optional
    from isal import igzip as _igzip
except ImportError:  # pragma: no cover - isal is in requirements.lock
    _igzip = None

BATCH_BYTES = 16 << 20  # decompressed bytes per batch: bounded memory whatever the file size (polars
# costs ~0.1 ms per operation whatever the rows: 16 MB beat 12 by 6%, for 100 MB more at the peak)
READ_PIECE = 4 << 20  # read size inside a batch: at most this is lost before a damaged archive's break

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)

_MONTHS = {m: i + 1 for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}

# Stamp forms, tried on the first line of each run of equal stamps. Group 1 is the whole stamp.
_ST_BSD = r"^((?:(\d{4}) )?([A-Za-z]{3}) +(\d{1,2}) +(\d{1,2}):(\d\d):(\d\d)(?:\.\d+)?) "
_ST_ISO = r"^((\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:[.,]\d+)?(Z|[+-]\d\d:?\d\d)?) "
_ST_PLAIN = r"^((\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:[.,]\d+)?) "  # Exim, Dovecot's own log
_ST_BINDF = r"^((\d\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d)(?:\.\d+)?) "  # BIND file channel
_ST_EPOCH = r"^(\[(\d{9,11})(?:\.\d+)?\]) "  # Unbound's own log file
_ST_TAI64N = r"^(@(4[0-9a-f]{15})[0-9a-f]{8}) "  # daemontools multilog
_REPEAT = (r"^ ?(?:last message repeated|last message buffered|above message repeats"
           r"|message repeated) (\d+) times?")
_REPEAT_N = pl.col("msg").str.extract(_REPEAT, 1).cast(pl.Int64)  # anchored: one quick pass


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
    """A binary file that counts the bytes consumed, so an error can name the offset on disk."""

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
        if _igzip is not None:
            return _igzip.IGzipFile(fileobj=raw, mode="rb"), raw, kind
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
    on disk where reading stopped, and how many lines came out whole before it.
    """
    batch_bytes = batch_bytes or BATCH_BYTES
    line_no = 1
    tail = b""
    fh, raw, kind = _open(path)
    out = 0

    def read_batch() -> bytes:
        """Up to batch_bytes: a plain file in one read (no join); a compressed stream in pieces,
        so that a break loses at most a piece of what came before it."""
        parts: list[bytes] = []
        got = 0
        piece = batch_bytes if kind is None else READ_PIECE
        while got < batch_bytes:
            try:
                data = fh.read(min(batch_bytes - got, piece))
            except (EOFError, OSError, zlib.error, lzma.LZMAError) as e:
                lines_done = line_no - 1 + tail.count(b"\n") + sum(p.count(b"\n") for p in parts)
                raise LogFileError(
                    f"{path}: corrupt or truncated {kind or 'file'} data at byte {raw.consumed} of "
                    f"{path.stat().st_size} on disk, after {out + got} decompressed bytes "
                    f"({lines_done} complete lines): {e}") from e
            if not data:
                break
            parts.append(data)
            got += len(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    try:
        while True:
            chunk = read_batch()
            if not chunk:
                break
            out += len(chunk)
            if on_chunk is not None:
                on_chunk(chunk)
            cut = chunk.rfind(b"\n")
            if cut < 0:
                tail += chunk
                continue
            if tail:  # the last batch's unfinished line ends here: only that line is copied
                nl = chunk.find(b"\n")
                lines = split_lines(tail + chunk[:nl + 1])
                if nl < cut:
                    lines = pl.concat([lines, split_lines(chunk, cut + 1, start=nl + 1)], rechunk=True)
            else:
                lines = split_lines(chunk, cut + 1)
            tail = chunk[cut + 1:]
            yield line_no, lines
            line_no += len(lines)
        if tail:
            yield line_no, split_lines(tail + b"\n")
    finally:
        fh.close()
        raw.close()


_VIEW_BYTES = (1 << 31) - 1  # the most bytes one view array's 32-bit offsets can address


def split_lines(data: bytes | bytearray | memoryview, end: int | None = None, start: int = 0) -> pl.Series:
    """Lines of `data[start:end]` (which ends with a newline) as a String Series, without a copy
    per line.

    Each line becomes an Arrow view into the same buffer (16 bytes: its length and its first 4
    bytes and offset, or its text when 12 bytes or fewer), written by one compiled pass
    (kernels); a buffer beyond what 32-bit offsets address is split at a line end. Invalid
    UTF-8 (8-bit mail of 1996) is replaced, never dropped; the CR of CRLF lines is left out.
    """
    if start:
        data, end = memoryview(data)[start:end], None
    end = len(data) if end is None else end
    raw = np.frombuffer(data, dtype=np.uint8, count=end)
    if end > _VIEW_BYTES:  # views hold 32-bit offsets: split at the last line end that fits
        cut = _last_line_end(raw, _VIEW_BYTES)
        if cut == 0:
            raise ValueError(f"a line of more than {_VIEW_BYTES} bytes: not a log line")
        return pl.concat([split_lines(data, cut), split_lines(memoryview(data)[cut:end])])
    views = np.empty((kernels.count_lines(raw), 4), dtype=np.int32)
    n = kernels.line_views(raw, views)
    arr = pa.Array.from_buffers(pa.binary_view(), n, [None, pa.py_buffer(views), pa.py_buffer(raw)])
    try:
        return pl.Series("line", arr, dtype=pl.Binary).cast(pl.String)
    except pl.exceptions.PolarsError:  # not UTF-8: replace what is not, keep every line
        text = bytes(memoryview(data)[:end]).decode("utf-8", errors="replace").encode("utf-8")
        return split_lines(text)


def _last_line_end(raw: np.ndarray, limit: int) -> int:
    """The offset just after the last newline in raw[:limit] (0 when there is none)."""
    hi = limit
    while hi > 0:
        lo = max(0, hi - (1 << 20))
        nl = np.flatnonzero(raw[lo:hi] == 10)
        if len(nl):
            return lo + int(nl[-1]) + 1
        hi = lo
    return 0


def prefetched(it: Iterator, depth: int = 1) -> Iterator:
    """Run an iterator in a background thread, `depth` items ahead (reading and inflating the next
    batch overlaps the parsing of this one; numpy, zlib/isal and polars release the GIL)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def pump():
        try:
            for item in it:
                if stop.is_set():
                    return
                q.put(item)
            q.put(done)
        except BaseException as e:  # re-raised in the consumer
            q.put(e)

    t = threading.Thread(target=pump, daemon=True, name="mmw-reader")
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while t.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.05)


def bslice(expr: pl.Expr, offset, length=None) -> pl.Expr:
    """Slice by *byte* offsets (as `str.find` returns them); `str.slice` counts characters."""
    return expr.cast(pl.Binary).bin.slice(offset, length).cast(pl.String)


@dataclass(frozen=True)
class YearAnchor:
    """The date that year-less stamps are placed next to: the run's day."""

    day: date

    def year_expr(self, month: pl.Expr) -> pl.Expr:
        # A month more than six months after the anchor's is last year's; six before, next year's.
        y, m = self.day.year, self.day.month
        return (pl.when(month - m > 6).then(y - 1)
                .when(m - month > 6).then(y + 1)
                .otherwise(y))


class ProbeYears(YearAnchor):
    """The anchor for a file not scanned yet: frames like YearAnchor(day) and records whether a
    year-less stamp was met (`saw_yearless`). Until one is, the anchor cannot matter (every stamp
    carries its year), so ingest reads such files without a scan and scans only a file that has
    year-less stamps, from the batch where the first one appears."""

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


_YEARLESS_YEAR = 1600  # a leap year no real log has: marks the stamps that carry no year


class _Yearless:
    def year_expr(self, month: pl.Expr) -> pl.Expr:
        return pl.lit(_YEARLESS_YEAR, pl.Int32)


_REF = datetime(_YEARLESS_YEAR, 1, 1)
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
        runs = self.last_runs = _run_heads(lines, first_no) if self.fast else None
        fields = kernels.bsd_stamps(runs[0]) if runs is not None else None
        if fields is not None:  # every run head a BSD stamp, which its run key holds whole:
            t, head_nos = _bsd_times(*fields, _Yearless(), runs[1]), runs[1]  # its year-less time
        else:  # another form among them (its seconds may lie past that key): the general runs
            t, _, head_nos = _stamp_runs(_normalise_headers(lines), _Yearless(), "UTC", first_no)
        df = t.select("ts_local", "ts_utc_given").with_columns(line_no=head_nos)
        local = pl.col("ts_local")
        yearless = df.filter(local.dt.year() == _YEARLESS_YEAR).select(
            "line_no", key=(local - pl.lit(_REF)).dt.total_seconds())
        if yearless.height:
            self._unwrap(yearless)
        if self.heads is not None:
            self.heads.append(df.filter(local.dt.year() == _YEARLESS_YEAR).select(
                "line_no", month=local.dt.month().cast(pl.Int32)))
        stats = df.select(
            lo=local.filter(local.dt.year() != _YEARLESS_YEAR).min(),
            hi=local.filter(local.dt.year() != _YEARLESS_YEAR).max(),
            ulo=pl.col("ts_utc_given").min(), uhi=pl.col("ts_utc_given").max()).row(0)
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
        changes = keys.select("line_no").with_columns(off=off).filter(
            pl.col("off") != pl.col("off").shift(1, fill_value=before))
        self.offsets.extend(changes.iter_rows())
        self._prev_key, self._cum, self._offset = int(k[-1]), int(cum[-1]), int(off[-1])
        lo, hi = int(cum.min()), int(cum.max())
        self.min_cum = lo if self.min_cum is None else min(self.min_cum, lo)
        self.max_cum = hi if self.max_cum is None else max(self.max_cum, hi)

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
        epoch = (g.field("2").cast(pl.Int64, strict=False) if form == "epoch"
                 else g.field("2").str.to_integer(base=16, strict=False) - (1 << 62) - 10)
        f |= {"year": null_i, "month": null_i, "dom": null_i, "hms": null_s, "epoch": epoch}
    return f


_STAMP_SCHEMA = {"i": pl.UInt32, "plain": pl.Boolean, "off": pl.String, "epoch": pl.Int64, "stamp": pl.String,
                 "year": pl.Int32, "month": pl.Int32, "dom": pl.Int32, "hms": pl.String}


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
        parts.append(g.filter(hit).select("i", plain=pl.lit(form not in ("bsd", "iso")),
                                          **{k: v for k, v in fields.items()}))
        rest = g.filter(~hit).select("i", "h", "line_no")
    parts.append(rest.select("i", plain=pl.lit(True)))
    return pl.concat([p.select([pl.col(c).cast(t) if c in p.columns else pl.lit(None, t).alias(c)
                                for c, t in _STAMP_SCHEMA.items()]) for p in parts]).sort("i")


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
        fields = {"off": pl.lit(None, pl.String), "epoch": pl.lit(None, pl.Int64), "stamp": h.str.slice(0, 15),
                  "year": anchor.year_expr(pl.col("month")).cast(pl.Int32), "month": pl.col("month"),
                  "dom": _num(h.str.slice(4, 2).str.strip_chars_start(" ")), "hms": h.str.slice(7, 8)}
    elif rest.select(h.str.contains(_FIXED_ISO).all()).item():
        zulu = h.str.slice(26, 1) == "Z"
        df = rest
        fields = {"off": pl.when(zulu).then(pl.lit("Z")).otherwise(h.str.slice(26, 6)), "epoch": pl.lit(None, pl.Int64),
                  "stamp": h.str.slice(0, pl.when(zulu).then(27).otherwise(32)), "year": _num(h.str.slice(0, 4)),
                  "month": _num(h.str.slice(5, 2)), "dom": _num(h.str.slice(8, 2)), "hms": h.str.slice(11, 8)}
    else:
        return None
    return df.select(pl.col("i"), plain=pl.lit(False), **fields).select(
        [pl.col(c).cast(t) for c, t in _STAMP_SCHEMA.items()])


def parse_stamps(heads: pl.Series, anchor: YearAnchor | FileYears, tz: str,
                 line_nos: pl.Series | None = None) -> pl.DataFrame:
    """Times of the stamps that begin `heads` (one per run of equal stamps, so few, in file order).

    Columns: ts (UTC), ts_site (naive site-local), body_at (byte offset of what follows the
    stamp), plain (the program wrote the stamp itself: no syslog host or tag follows).
    Lines with no stamp we know get nulls. Stamps are kept to the second. `line_nos` (the heads'
    line numbers) let a FileYears anchor give each line its file's year.
    """
    line_nos = line_nos if line_nos is not None else pl.int_range(1, len(heads) + 1, dtype=pl.Int64, eager=True)
    fields = kernels.bsd_stamps(heads)
    if fields is not None:  # every head a BSD stamp: its time by arithmetic, no text to parse
        return to_utc(_bsd_times(*fields, anchor, line_nos), tz).select(
            "ts", "body_at", "plain", "ts_local", "ts_utc_given", "ts_site")
    rest = pl.DataFrame({"h": heads}).with_row_index("i").with_columns(line_no=line_nos)
    df = _fixed_stamps(rest, anchor)
    if df is None:
        df = _stamp_forms(rest, anchor)
    naive = pl.concat_str([pl.col("year"), pl.col("month"), pl.col("dom"), pl.col("hms")], separator=" ").str.strptime(
        pl.Datetime("us"), "%Y %m %d %H:%M:%S", strict=False)
    off = pl.col("off").str.replace(":", "", literal=True)
    off_min = pl.when(off == "Z").then(0).otherwise(
        (off.str.slice(1, 2).cast(pl.Int32, strict=False) * 60 + off.str.slice(3, 2).cast(pl.Int32, strict=False))
        * pl.when(off.str.starts_with("-")).then(-1).otherwise(1))
    given_utc = pl.coalesce(
        pl.from_epoch("epoch", time_unit="s"),
        pl.when(pl.col("off").is_not_null()).then(naive - pl.duration(minutes=off_min)),
    ).dt.replace_time_zone("UTC")
    local = pl.when(pl.col("off").is_null() & pl.col("epoch").is_null()).then(naive)
    out = df.select(body_at=(pl.col("stamp").str.len_bytes() + 1).cast(pl.Int64), plain=pl.col("plain"),
                    ts_local=local, ts_utc_given=given_utc)
    return to_utc(out, tz).select("ts", "body_at", "plain", "ts_local", "ts_utc_given", "ts_site")


def _bsd_times(month: np.ndarray, dom: np.ndarray, sod: np.ndarray, anchor, line_nos: pl.Series) -> pl.DataFrame:
    """parse_stamps' columns for BSD stamps read by kernels.bsd_stamps: the year from `anchor`,
    then the day number by the civil-calendar formula (a day the month lacks, or a time that is
    none, is null, as strptime reads them)."""
    if isinstance(anchor, ProbeYears):
        object.__setattr__(anchor, "saw_yearless", True)
    df = pl.DataFrame({"month": month, "dom": dom, "sod": sod, "line_no": line_nos})
    m, d, sod_e = pl.col("month"), pl.col("dom"), pl.col("sod")
    y = pl.col("year")
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    days_in_month = (pl.when(m == 2).then(pl.when(leap).then(29).otherwise(28))
                     .when(m.is_in([4, 6, 9, 11])).then(30).otherwise(31))
    ys = y - (m <= 2).cast(pl.Int32)  # years from March: the leap day ends the year
    era, mp = ys // 400, (m + 9) % 12
    yoe = ys - era * 400
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + (153 * mp + 2) // 5 + d - 1 - 719468
    seconds = days.cast(pl.Int64) * 86400 + sod_e
    valid = (d >= 1) & (d <= days_in_month) & (sod_e >= 0)
    return df.with_columns(year=anchor.year_expr(m).cast(pl.Int32)).select(
        body_at=pl.lit(16, pl.Int64), plain=pl.lit(False),
        ts_local=pl.when(valid).then(pl.from_epoch(seconds, time_unit="s")).cast(pl.Datetime("us")),
        ts_utc_given=pl.lit(None, pl.Datetime("us", "UTC")))


def _stamp_times(lines: pl.Series, anchor: YearAnchor | FileYears, tz: str, first_line_no: int = 1
                 ) -> pl.DataFrame:
    """parse_stamps for every line, computed once per run of lines with the same stamp text."""
    times, run, _ = _stamp_runs(lines, anchor, tz, first_line_no)
    return times[run.cast(pl.Int64)] if times.height else times


def _stamp_runs(lines: pl.Series, anchor, tz: str, first_line_no: int = 1
                ) -> tuple[pl.DataFrame, pl.Series, pl.Series]:
    """(parse_stamps of each run's first line, each line's run number, the runs' first line numbers)."""
    df = pl.DataFrame({"line": lines})
    line = pl.col("line")
    key = line.str.slice(0, 20)  # covers the seconds of every stamp form (ISO fractions excluded)
    iso = (line.str.slice(10, 1) == "T").any()
    if df.select(iso).item():  # an ISO stamp's offset comes after the fraction: add it to the key
        sp = line.str.find(" ", literal=True)
        key = pl.concat_str([key, bslice(line, (sp.cast(pl.Int64) - 6).clip(0), 6)], ignore_nulls=True)
    keyed = df.select(key.alias("k"))["k"]
    first = keyed.ne_missing(keyed.shift(1)).fill_null(True)
    if len(first):
        first[0] = True
    run = first.cast(pl.UInt32).cum_sum() - 1
    heads = lines.filter(first).str.slice(0, 48)
    head_nos = pl.int_range(first_line_no, first_line_no + len(lines), dtype=pl.Int64, eager=True)
    head_nos = head_nos.filter(first)
    return parse_stamps(heads, anchor, tz, head_nos), run, head_nos


_FAST_BSD = re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S")
_FAST_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(?:[+-]\d\d:\d\d|Z) \S")


def _run_heads(lines: pl.Series, first_line_no: int, lb: kernels.LineBuffers | None = None
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


def _stamp_columns(stamp_parts: bool) -> list[str]:
    return ["ts", "ts_site", *(("ts_local", "ts_utc_given") if stamp_parts else ())]


def _frame_fast(lines: pl.Series, first_line_no: int, anchor: YearAnchor | FileYears, tz: str,
                stamp_parts: bool = True, runs: tuple | None = None) -> pl.DataFrame | None:
    """frame_lines for the common batch: ASCII syslog lines whose stamps are all BSD
    (`Feb 16 14:30:01 `) or all rsyslog RFC 3339 with microseconds. Every line's stamp is its
    run head's (the run key covers the whole stamp and the space after it), so the per-line work
    is one compiled pass for the runs and one for the header fields (kernels). None when the
    batch is anything else (then the general path below handles it, byte-exact)."""
    n = len(lines)
    if n == 0:
        return None
    lb = kernels.line_buffers(lines)
    runs = runs or _run_heads(lines, first_line_no, lb)
    if runs is None:
        return None
    heads, head_nos, first = runs
    run = pl.Series("run", np.cumsum(first, dtype=np.int64) - 1)
    times = parse_stamps(heads, anchor, tz, head_nos)  # line numbers: a FileYears anchor needs them
    if times.select(pl.col("plain").any() | pl.col("ts").is_null().any()
                    | (pl.col("body_at").n_unique() > 1)).item():
        return None  # an unframed line or another stamp form among them
    flags, host, prog, msg, may_repeat = kernels.headers(lb, int(times["body_at"][0]))
    if flags < 0 or flags & kernels.NEEDS_GENERAL:
        return None  # FreeBSD's <facility.level>, Solaris message ids, forwarded src@host: the general path
    stamp = _stamp_columns(stamp_parts)
    df = times.select(stamp)[run].with_columns(
        line_no=pl.int_range(first_line_no, first_line_no + n, dtype=pl.Int64), line=lines, host=host, prog=prog,
        msg=msg)
    if flags & kernels.MAY_REPEAT:  # the pattern read on the messages the kernel marked only
        marked = np.flatnonzero(may_repeat)
        counts = pl.DataFrame({"msg": msg.gather(marked)}).select(_REPEAT_N).to_series()
        repeat_n = pl.repeat(None, n, dtype=pl.Int64, eager=True).scatter(marked, counts)
    else:
        repeat_n = pl.repeat(None, n, dtype=pl.Int64, eager=True)
    return df.select("line_no", "line", *stamp, "host", "prog", "msg", repeat_n=repeat_n.alias("repeat_n"),
                     framed=pl.lit(True), plain=pl.lit(False))


def frame_lines(lines: pl.Series, first_line_no: int, anchor: YearAnchor | FileYears, tz: str = "UTC",
                fast: bool = True, stamp_parts: bool = True, runs: tuple | None = None) -> pl.DataFrame:
    """Split raw lines into header fields.

    Columns: line_no, line, ts (UTC), ts_site (naive site-local), ts_local and ts_utc_given (the
    stamp's parts, unless `stamp_parts` is False), host, prog, msg, repeat_n, framed (the line has
    a stamp we could read), plain (the stamp was the program's own, as in Exim's main log or
    BIND's file channel: no syslog host or tag). `fast=False` skips the fast path (tests compare
    the two). `runs`: these lines' runs as the year scan found them (StampScan.last_runs), if it did.
    """
    done = _frame_fast(lines, first_line_no, anchor, tz, stamp_parts, runs) if fast else None
    if done is not None:
        return done
    n = len(lines)
    original = lines
    lines = _normalise_headers(lines)
    times = _stamp_times(lines, anchor, tz, first_line_no)
    df = pl.DataFrame({"line": lines}).with_columns(
        line_no=pl.int_range(first_line_no, first_line_no + n, dtype=pl.Int64)).hstack(times)
    line, at = pl.col("line"), pl.col("body_at")
    # Header after the stamp: "host tag: msg", "tag: msg" (no host), or "host msg" (no tag).
    df = df.with_columns(c=line.str.find(": ", literal=True).cast(pl.Int64))
    df = df.with_columns(head=pl.when(pl.col("c") > at).then(bslice(line, at, pl.col("c") - at))
                         .otherwise(bslice(line, at)))
    df = df.with_columns(sp=pl.col("head").str.find(" ", literal=True).cast(pl.Int64))
    # a program's own stamp is followed by its text, unless that is "[host ]prog[pid]: "
    host_prog = pl.col("head").str.contains(r"^(?:\S+ )?[\w./-]+\[[\d:]+\]$")
    df = df.with_columns(plain=pl.col("plain") & ~(pl.col("sp").is_not_null() & host_prog))
    has_tag = (pl.col("c") > at) & (pl.col("sp").is_null() | ~pl.col("plain"))
    host = pl.when(~pl.col("plain") & pl.col("sp").is_not_null()).then(bslice(pl.col("head"), 0, pl.col("sp")))
    tag = (pl.when(has_tag & pl.col("plain")).then(pl.col("head"))
           .when(has_tag & pl.col("sp").is_null()).then(pl.col("head"))
           .when(has_tag).then(bslice(pl.col("head"), pl.col("sp") + 1)))
    msg = (pl.when(has_tag).then(bslice(line, pl.col("c") + 2))
           .when(~pl.col("plain") & pl.col("sp").is_not_null()).then(
               bslice(line, at + pl.col("sp") + 1))
           .otherwise(bslice(line, at)))
    df = df.with_columns(host=host, tag=tag, msg=msg)
    if df.select(pl.col("host").str.starts_with("<").any()).item():  # FreeBSD syslogd -v "<mail.info>"
        pri = pl.col("host").str.starts_with("<") & pl.col("tag").str.contains(" ", literal=True)
        df = df.with_columns(
            host=pl.when(pri).then(pl.col("tag").str.extract(r"^(\S+) ", 1)).otherwise(pl.col("host")),
            tag=pl.when(pri).then(pl.col("tag").str.extract(r"^\S+ (.*)$", 1)).otherwise(pl.col("tag")))
    if df.select(pl.col("host").str.contains("[@/]").any()).item():  # forwarded "src@host", "host/host"
        df = df.with_columns(host=pl.col("host").str.replace(r"^[^@]*@", "").str.replace(r"/.*$", ""))
    df = df.with_columns(prog=bslice(pl.col("tag"), 0, pl.col("tag").str.find("[", literal=True)))
    if df.select(pl.col("msg").str.starts_with("[ID ").any()).item():  # Solaris message ids
        df = df.with_columns(msg=pl.col("msg").str.replace(r"^\[ID \d+ [\w.]+\] ", ""))
    df = df.with_columns(repeat_n=_REPEAT_N)
    if lines is not original:
        df = df.with_columns(line=original)  # malformed lines are kept as they were written
    return df.select("line_no", "line", *_stamp_columns(stamp_parts), "host", "prog", "msg",
                     "repeat_n", framed=pl.col("ts").is_not_null(), plain=pl.col("plain").fill_null(False))


# RFC 5424 "<pri>1 STAMP HOST APP PROCID MSGID SD MSG" becomes "STAMP HOST APP[PROCID]: MSG", and a
# relay's "<pri>" before a BSD stamp is dropped, so one header reader serves every form.
_SD = r"(?:-|(?:\[(?:[^\]\\]|\\.)*\])+)"
_5424_NOPID = r"^<\d{1,3}>1 (\S+) (\S+) (\S+) - \S+ " + _SD + r" ?\x{FEFF}?"
_5424_PID = r"^<\d{1,3}>1 (\S+) (\S+) (\S+) (\S+) \S+ " + _SD + r" ?\x{FEFF}?"
_PRI_BSD = r"^<\d{1,3}>([A-Za-z]{3} )"


def _normalise_headers(lines: pl.Series) -> pl.Series:
    """Rewrite RFC 5424 lines and "<pri>"-prefixed BSD lines (rare: only when some line starts "<")."""
    if not lines.str.starts_with("<").any():
        return lines
    s = pl.col("line")
    return pl.DataFrame({"line": lines}).select(
        s.str.replace(_5424_NOPID, "${1} ${2} ${3}: ").str.replace(_5424_PID, "${1} ${2} ${3}[${4}]: ")
        .str.replace(_PRI_BSD, "${1}"))["line"]


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
    if _dst_changes_within(tz, df["ts_local"].min(), df["ts_local"].max()):
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
        early = pl.coalesce(chosen, gap)
    df = df.with_columns(ts=pl.coalesce(pl.col("ts_utc_given"), early.dt.convert_time_zone("UTC")))
    return df.with_columns(
        ts_site=pl.col("ts").dt.convert_time_zone(tz).dt.replace_time_zone(None),
        framed=pl.col("ts").is_not_null())


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


def expand_repeats(df: pl.DataFrame, carry: dict[str, tuple[str | None, str | None]]) -> pl.DataFrame:
    """Replace each 'last message repeated N times' line by N copies of the host's previous line.

    `carry` maps host -> (prog, msg) of its last line in the previous batch and is updated.
    rsyslog's "message repeated N times: [ text]" carries its own text and program.
    The copies keep the repeat line's timestamp and line number and are flagged `repeat`;
    `copy` numbers them (0 for every ordinary line).
    """
    if df.select(pl.col("repeat_n").is_null().all()).item():
        _update_carry(df, carry)
        return df.with_columns(repeat=pl.lit(False), copy=pl.lit(0, pl.Int32))
    done = _expand_after_previous_line(df, carry)
    if done is not None:
        return done
    is_rep = pl.col("repeat_n").is_not_null()
    inline = is_rep & pl.col("msg").str.contains(r"times: \[", literal=False)
    df = df.with_columns(
        msg=pl.when(inline).then(pl.col("msg").str.extract(r"times: \[ ?(.*)\]\s*$", 1)).otherwise(pl.col("msg")),
        repeat_n=pl.col("repeat_n"), _inline=inline)
    from_prev = is_rep & ~pl.col("_inline")
    src = pl.when(~from_prev).then(pl.struct("prog", "msg")).forward_fill().over("host")
    filled = df.with_columns(_src=src)
    if carry:
        seed = pl.DataFrame({"host": list(carry), "_p": [v[0] for v in carry.values()],
                             "_m": [v[1] for v in carry.values()]},
                            schema={"host": pl.String, "_p": pl.String, "_m": pl.String})
        filled = filled.join(seed, on="host", how="left", maintain_order="left")
        filled = filled.with_columns(_src=pl.coalesce("_src", pl.struct(prog=pl.col("_p"), msg=pl.col("_m"))))
        filled = filled.drop("_p", "_m")
    filled = filled.with_columns(
        [pl.when(from_prev).then(pl.col("_src").struct.field(c)).otherwise(pl.col(c)).alias(c)
         for c in ("prog", "msg")]).drop("_src", "_inline")
    _update_carry(filled, carry, ~is_rep | pl.col("msg").is_not_null())
    # A repeat with nothing before it (its line was in an older file) stays one unexpanded line.
    ok = is_rep & pl.col("msg").is_not_null()
    out = filled.with_columns(
        _n=pl.when(ok).then(pl.col("repeat_n")).otherwise(1), repeat=ok,
    ).with_columns(copy=pl.int_ranges(0, pl.col("_n"))).explode("copy").drop("_n")
    return out.with_columns(pl.col("copy").cast(pl.Int32))


def _expand_after_previous_line(df: pl.DataFrame, carry: dict) -> pl.DataFrame | None:
    """expand_repeats for the usual batch: every repeat line says "last message repeated N
    times" (N >= 1) right after a line of the same host that is not a repeat, so its text is
    that line's. Works on the repeat lines' row numbers (few) and one gather for the copies,
    where the general path forward-fills per host and explodes every row. None otherwise."""
    n = df.height
    reps = df.select(pl.arg_where(pl.col("repeat_n").is_not_null())).to_series().cast(pl.Int64)
    if reps[0] == 0:
        return None
    prev = reps - 1
    check = pl.DataFrame({"host": df["host"].gather(reps), "prev_host": df["host"].gather(prev),
                          "prev_rep": df["repeat_n"].gather(prev), "n": df["repeat_n"].gather(reps),
                          "msg": df["msg"].gather(reps)})
    if not check.select(pl.col("host").eq_missing(pl.col("prev_host")).all() & pl.col("prev_rep").is_null().all()
                        & (pl.col("n") >= 1).all()
                        & ~pl.col("msg").str.contains(r"times: \[", literal=False).any()).item():
        return None
    # each repeat line takes its previous line's program and text (set in place: few rows)
    df = df.with_columns(df["prog"].scatter(reps, df["prog"].gather(prev)),
                         df["msg"].scatter(reps, df["msg"].gather(prev)))
    ok = pl.col("repeat_n").is_not_null() & pl.col("msg").is_not_null()
    df = df.with_columns(repeat=ok)
    _update_carry(df, carry, pl.col("repeat_n").is_null() | pl.col("msg").is_not_null())
    counts = df.select(pl.when(pl.col("repeat")).then(pl.col("repeat_n")).otherwise(1))
    counts = counts.to_series().to_numpy().astype(np.int64)
    take = np.repeat(np.arange(n, dtype=np.int64), counts)
    copy = np.arange(len(take), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return df[pl.Series(take)].with_columns(copy=pl.Series(copy, dtype=pl.Int32))


def _update_carry(df: pl.DataFrame, carry: dict, keep: pl.Expr | None = None) -> None:
    """Note each host's last (prog, msg) among the rows `keep` marks (all rows by default)."""
    usable = pl.col("host").is_not_null() if keep is None else pl.col("host").is_not_null() & keep
    h = pl.col("host")
    if df.select((h.is_null() | (h == h.drop_nulls().first())).all()).item():  # one host: its last row
        last = df.select(pl.arg_where(usable).last()).item()
        if last is not None:
            host, prog, msg = df.select("host", "prog", "msg").row(last)
            carry[host] = (prog, msg)
        return
    last = df.filter(usable).group_by("host").agg(pl.col("prog").last(), pl.col("msg").last())
    for host, prog, msg in last.iter_rows():
        carry[host] = (prog, msg)


def local_day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    """UTC start and end of the site's local calendar day (23 or 25 hours around DST)."""
    from zoneinfo import ZoneInfo

    z = ZoneInfo(tz)
    start = datetime(day.year, day.month, day.day, tzinfo=z)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=z)
    utc = ZoneInfo("UTC")
    return start.astimezone(utc), end.astimezone(utc)
