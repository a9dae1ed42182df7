"""Reading log files: rotated, possibly compressed (gzip, bzip2, xz), in batches of whole lines.

A batch is one Arrow string-view array over one read buffer (no copy per line), and bounded in
bytes, so memory stays flat whatever the file's size; a damaged archive names itself.
`prefetched` reads ahead in a thread; `bslice` slices such lines by byte offsets.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import queue
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, TypedDict, cast

import numpy as np
import polars as pl
import pyarrow as pa

from mmw_tasks.parse import kernels

try:  # ISA-L inflates gzip about twice as fast as zlib; optional
    from isal import igzip as _igzip
except ImportError:  # pragma: no cover - isal is in requirements.lock
    _igzip = None  # type: ignore[assignment]

BATCH_BYTES = 20 << 20  # decompressed bytes per batch: bounded memory whatever the file size (polars
# costs ~0.1 ms per operation whatever the rows: 16 MB beat 12 by 6%, 20 beat 16 by 1-5% for 60-100
# MB more at the peak; 24 gained nothing more)
READ_PIECE = 4 << 20  # read size inside a batch: at most this is lost before a damaged archive's break

MAGIC = (  # a compressed file by its first bytes
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)


class LogFileError(RuntimeError):
    """A log file that cannot be read; the message names the file (and offset where known)."""


class UnreadableFile(LogFileError):
    """A file that cannot be opened or read at all (permissions, a directory, an I/O error)."""


class BadFile(TypedDict):
    """A file left out of a day under `[site].on_bad_file = "skip"` (fetch's and parse's
    `bad_files`): the file, and what is wrong with it."""

    file: str
    why: str


def bad_file_message(where: str, why: str, config: str | Path | None = None) -> str:
    """The one line that fails a day for a file that cannot be read (`on_bad_file = "fail"`):
    where (server and day), what is wrong with which file, and what to do."""
    cfg = f" in {config}" if config else ""
    return (
        f"{where}: {why}; repair that file or move it out of the server's source glob, or set "
        f'on_bad_file = "skip" under [site]{cfg} to leave such files out'
    )


def compression_of(path: Path) -> str | None:
    """Compression detected from the file's first bytes, not its name."""
    with open(path, "rb") as fh:
        head = fh.read(6)
    for magic, name in MAGIC:
        if head.startswith(magic):
            return name
    return None


class _CountingReader:
    """A binary file that counts the bytes consumed, so an error can name the offset on disk."""

    def __init__(self, raw: io.BufferedReader):
        self.raw, self.consumed = raw, 0

    def read(self, n: int = -1) -> bytes:
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
    """(decompressing reader, counting reader of the bytes on disk, compression name or None).
    A file that cannot be opened raises UnreadableFile."""
    try:
        kind = compression_of(path)
        raw = _CountingReader(open(path, "rb"))
    except OSError as e:
        raise UnreadableFile(f"{path}: cannot be read: {e.strerror or e}") from e
    if kind == "gzip":
        if _igzip is not None:
            return _igzip.IGzipFile(fileobj=raw, mode="rb"), raw, kind
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw, kind
    if kind == "bzip2":
        return bz2.BZ2File(cast(BinaryIO, raw), "rb"), raw, kind  # it reads, and seeks never
    if kind == "xz":
        return lzma.LZMAFile(cast(BinaryIO, raw), "rb"), raw, kind
    return raw, raw, None


def iter_line_batches(
    path: Path, batch_bytes: int | None = None, on_chunk: Callable[[bytes], None] | None = None
) -> Iterator[tuple[int, pl.Series]]:
    """Yield (number of the batch's first line, Series of lines); line numbers start at 1.

    `on_chunk` sees every decompressed chunk in order (the manifest hashes content with it).
    A truncated or corrupt compressed file raises LogFileError naming the file, the byte offset
    on disk where reading stopped, and how many lines came out whole before it; a file that
    cannot be opened raises UnreadableFile. Lines that are not valid UTF-8 are read with
    replacement characters (iter_raw_batches also gives their bytes as read).
    """
    for first_no, lines, _ in iter_raw_batches(path, batch_bytes, on_chunk):
        yield first_no, lines


def iter_raw_batches(
    path: Path, batch_bytes: int | None = None, on_chunk: Callable[[bytes], None] | None = None
) -> Iterator[tuple[int, pl.Series, pl.Series | None]]:
    """iter_line_batches with, for each batch, the bytes as read of its lines that were not
    valid UTF-8 (a Binary Series beside the lines, null for the valid ones; None when every
    line of the batch was valid, as nearly always)."""
    batch_bytes = batch_bytes or BATCH_BYTES
    line_no = 1
    tail: list[bytes] = []  # the unfinished line: pieces of batches without a newline, joined once it ends
    tail_bytes = 0
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
                lines_done = line_no - 1 + sum(p.count(b"\n") for p in parts)
                raise LogFileError(
                    f"{path}: corrupt or truncated {kind or 'file'} data at byte {raw.consumed} of "
                    f"{path.stat().st_size} on disk, after {out + got} decompressed bytes "
                    f"({lines_done} complete lines): {e}"
                ) from e
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
                tail.append(chunk)
                tail_bytes += len(chunk)
                if tail_bytes > _VIEW_BYTES:
                    raise LogFileError(f"{path}: line {line_no} is longer than {_VIEW_BYTES} bytes: not a log")
                continue
            if tail:  # the last batch's unfinished line ends here: only that line is copied
                nl = chunk.find(b"\n")
                if tail_bytes + nl + 1 > _VIEW_BYTES:
                    raise LogFileError(f"{path}: line {line_no} is longer than {_VIEW_BYTES} bytes: not a log")
                lines, bad = split_lines_raw(b"".join([*tail, chunk[: nl + 1]]))
                if nl < cut:
                    more, more_bad = split_lines_raw(chunk, cut + 1, start=nl + 1)
                    bad = _concat_raw(lines, bad, more, more_bad)
                    lines = pl.concat([lines, more], rechunk=True)
            else:
                lines, bad = split_lines_raw(chunk, cut + 1)
            tail = [chunk[cut + 1 :]] if cut + 1 < len(chunk) else []
            tail_bytes = len(chunk) - cut - 1
            yield line_no, lines, bad
            line_no += len(lines)
        if tail:
            yield line_no, *split_lines_raw(b"".join([*tail, b"\n"]))
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
    UTF-8 (8-bit mail of 1996, Shift_JIS, binary junk) is replaced, never dropped
    (split_lines_raw keeps the bytes too); the CR of CRLF lines is left out.
    """
    return split_lines_raw(data, end, start)[0]


def split_lines_raw(
    data: bytes | bytearray | memoryview, end: int | None = None, start: int = 0
) -> tuple[pl.Series, pl.Series | None]:
    """split_lines, and the bytes as read of the lines that were not valid UTF-8: a Binary
    Series beside the lines (null for the valid ones), or None when every line was valid.

    The cast to String checks the whole batch in one pass, as before; only a batch it refuses
    is looked at line by line (kernels.invalid_utf8), and only its invalid lines are decoded
    again, with U+FFFD for each byte that is not part of a character."""
    if start:
        data, end = memoryview(data)[start:end], None
    end = len(data) if end is None else end
    raw = np.frombuffer(data, dtype=np.uint8, count=end)
    if end > _VIEW_BYTES:  # views hold 32-bit offsets: split at the last line end that fits
        cut = _last_line_end(raw, _VIEW_BYTES)
        if cut == 0:
            raise ValueError(f"a line of more than {_VIEW_BYTES} bytes: not a log line")
        first, first_bad = split_lines_raw(data, cut)
        rest, rest_bad = split_lines_raw(memoryview(data)[cut:end])
        return pl.concat([first, rest]), _concat_raw(first, first_bad, rest, rest_bad)
    views = np.empty((kernels.count_lines(raw), 4), dtype=np.int32)
    n = kernels.line_views(raw, views)
    arr = pa.Array.from_buffers(pa.binary_view(), n, [None, pa.py_buffer(views), pa.py_buffer(raw)])
    lines = pl.Series("line", arr, dtype=pl.Binary)
    try:
        return lines.cast(pl.String), None
    except pl.exceptions.PolarsError:  # not UTF-8: replace what is not, keep every line
        return _repaired(lines, views[:n], raw)


def _repaired(lines: pl.Series, views: np.ndarray, raw: np.ndarray) -> tuple[pl.Series, pl.Series]:
    """(lines as text, their bytes where they were not UTF-8) of a batch the cast refused."""
    bad = kernels.invalid_utf8(views, np.array([raw.ctypes.data], dtype=np.uint64))
    if bad is None:  # (the check and the cast disagree: decode the whole batch, keep every line's bytes)
        text = raw.tobytes().decode("utf-8", errors="replace").encode("utf-8")
        return split_lines(text), lines.alias("raw")
    idx = np.flatnonzero(bad)
    kept = pl.select(pl.when(pl.Series(bad)).then(lines)).to_series().alias("raw")
    fixed = pl.Series([b.decode("utf-8", errors="replace").encode("utf-8") for b in lines.gather(idx)], dtype=pl.Binary)
    return lines.clone().scatter(idx, fixed).cast(pl.String), kept


def _concat_raw(a: pl.Series, a_raw: pl.Series | None, b: pl.Series, b_raw: pl.Series | None) -> pl.Series | None:
    """The raw bytes of two runs of lines put end to end (None when neither has any)."""
    if a_raw is None and b_raw is None:
        return None
    nulls = [pl.Series("raw", [None] * len(x), dtype=pl.Binary) for x in (a, b)]
    return pl.concat([a_raw if a_raw is not None else nulls[0], b_raw if b_raw is not None else nulls[1]])


def split_lines_reference(data: bytes) -> list[str]:
    """split_lines' specification, which its compiled passes (kernels.count_lines, line_views)
    are held to (tests/test_kernels.py): each newline-ended line, without the newline or a
    CRLF's CR, invalid UTF-8 replaced; bytes after the last newline are not a line yet."""
    lines = bytes(data).split(b"\n")[:-1]
    return [(ln[:-1] if ln.endswith(b"\r") else ln).decode("utf-8", errors="replace") for ln in lines]


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
