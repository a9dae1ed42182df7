"""Syslog framing, vectorised: read rotated (possibly compressed) files, split each line into
timestamp, host, program and message, infer the missing year, expand repeat lines.

Everything works on polars frames of whole batches of lines; no per-line Python.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl

BATCH_BYTES = 64 << 20  # decompressed bytes per batch: bounded memory whatever the file size

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)

_MONTHS = {m: i + 1 for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}

# One capture pass for the BSD header: "Feb  6 14:30:01 [<mail.info>] host rest"
_BSD = (r"^([A-Za-z]{3}) +(\d{1,2}) (\d\d:\d\d:\d\d) (?:<[\w.]+> )?(\S+) (.*)$")
# RFC 3339 header: "2024-08-26T01:33:38.572449+00:00 host rest" (also "+0000" and "Z")
_ISO = (r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)(Z|[+-]\d\d:?\d\d) (\S+) (.*)$")
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


def _open(path: Path):
    kind = compression_of(path)
    if kind == "gzip":
        return gzip.open(path, "rb")
    if kind == "bzip2":
        return bz2.open(path, "rb")
    if kind == "xz":
        return lzma.open(path, "rb")
    return open(path, "rb")


def iter_line_batches(path: Path, batch_bytes: int | None = None) -> Iterator[tuple[int, pl.Series]]:
    """Yield (number of the batch's first line, Series of lines); line numbers start at 1."""
    batch_bytes = batch_bytes or BATCH_BYTES
    line_no = 1
    tail = b""
    fh = _open(path)
    try:
        while True:
            try:
                chunk = fh.read(batch_bytes)
            except (EOFError, OSError, zlib.error, lzma.LZMAError) as e:
                offset = getattr(fh, "tell", lambda: "?")()
                raise LogFileError(f"{path}: corrupt or truncated compressed file near "
                                   f"decompressed byte {offset}: {e}") from e
            if not chunk:
                break
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


def _split(data: bytes) -> pl.Series:
    text = data.decode("utf-8", errors="replace")
    return pl.Series("line", [text]).str.split("\n").explode().str.strip_suffix("\r")


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


def frame_lines(lines: pl.Series, first_line_no: int, anchor: YearAnchor) -> pl.DataFrame:
    """Split raw lines into header fields.

    Columns: line_no, line, ts_local (naive local datetime or null), ts_utc_given (for
    RFC 3339 lines that carry an offset), host, prog, pid, msg, repeat_n, framed (bool).
    """
    df = pl.DataFrame({"line": lines}).with_row_index("line_no", offset=first_line_no)
    df = df.with_columns(pl.col("line_no").cast(pl.Int64))
    bsd = pl.col("line").str.extract_groups(_BSD)
    iso = pl.col("line").str.extract_groups(_ISO)
    df = df.with_columns(bsd.alias("_b"), iso.alias("_i"))
    b, i = pl.col("_b").struct, pl.col("_i").struct
    month = b.field("1").str.to_lowercase().replace_strict(_MONTHS, default=None, return_dtype=pl.Int32)
    year = anchor.year_expr(month)
    bsd_ts = pl.concat_str([year.cast(pl.String), b.field("1"), b.field("2"), b.field("3")],
                           separator=" ").str.strptime(pl.Datetime("us"), "%Y %b %d %H:%M:%S", strict=False)
    iso_off = i.field("2").str.replace(r"^Z$", "+00:00").str.replace(r"^([+-]\d\d)(\d\d)$", "$1:$2")
    iso_ts = (pl.concat_str([i.field("1"), iso_off]).str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f%:z", strict=False, time_zone="UTC"))
    df = df.with_columns(
        ts_local=bsd_ts,
        ts_utc_given=iso_ts,
        host=pl.coalesce(b.field("4"), i.field("3")),
        rest=pl.coalesce(b.field("5"), i.field("4")),
    ).drop("_b", "_i")
    tag = pl.col("rest").str.extract_groups(_TAG)
    df = df.with_columns(
        repeat_n=pl.col("rest").str.extract(_REPEAT, 1).cast(pl.Int64),
        prog=tag.struct.field("1"),
        pid=tag.struct.field("2").cast(pl.Int64, strict=False),
        msg=tag.struct.field("3"),
    )
    return df.with_columns(framed=pl.col("ts_local").is_not_null() | pl.col("ts_utc_given").is_not_null())


def to_utc(df: pl.DataFrame, tz: str) -> pl.DataFrame:
    """Add `ts` (UTC) and `ts_site` (naive site-local) from whichever stamp the line had."""
    local_as_utc = (pl.col("ts_local").dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
                    .dt.convert_time_zone("UTC"))
    ts = pl.coalesce(pl.col("ts_utc_given"), local_as_utc)
    return df.with_columns(ts=ts).with_columns(
        ts_site=pl.col("ts").dt.convert_time_zone(tz).dt.replace_time_zone(None))


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
