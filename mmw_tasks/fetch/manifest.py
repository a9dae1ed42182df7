"""What each log file holds, scanned once and remembered: `<lake>/raw/<server>/manifest.json`.

An entry describes one file: where it is (a local source file, or the raw copy of a pulled one),
its size, mtime and sha256, its compression (by content), the sha256 and length of its
decompressed content, its first and last site-local time, and the year of every year-less stamp
(`years`, see years.StampScan). Entries are keyed by local path and trusted while the file's size
and mtime are unchanged, so a backfill opens only the files that cover each day.

Snapshots: a file whose content starts with the whole content of another (yesterday's pull of the
live file, which has grown since) supersedes it; so does a file with the same content under
another name or compression (`messages.1` that became `messages.2.gz`). Superseded entries are
never read, so no line is read twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from mmw_tasks import lake
from mmw_tasks.parse.logfiles import LogFileError, UnreadableFile, compression_of, iter_line_batches
from mmw_tasks.parse.stamps import FileYears
from mmw_tasks.parse.years import StampScan, year_anchor

HEAD_BYTES = 4096  # a file's "head": its first line, at most this long
SCAN_BATCH = 16 << 20


@dataclass
class Entry:
    path: str  # absolute local path: the source file itself, or the raw copy of a pulled file
    size: int
    mtime: float
    sha256: str
    compression: str | None
    content_bytes: int
    content_sha256: str
    head_sha256: str
    lines: int
    first: str | None  # site-local ISO time of the earliest stamp
    last: str | None  # ... and of the latest
    years: list[list[int]] = field(default_factory=list)  # [[first line number, year], ...]
    anchor: str = ""  # what fixed the years: "mtime", "dateext" or "gzip header", and its time
    anchor_at: str | None = None  # that time (site-local ISO): the earlier of two anchors is the better
    tz: str = ""
    server: str = ""
    remote: str | None = None  # sftp://user@host:port/path the raw copy came from
    remote_size: int | None = None
    remote_mtime: float | None = None
    pulled_at: str | None = None
    superseded_by: str | None = None  # path of the entry whose content includes all of this one's
    superseded_at: str | None = None
    # a file that cannot be read whole: a corrupt or truncated archive (what was wrong and where;
    # read up to there), or a file none of whose lines has a time stamp (not a log)
    error: str | None = None

    @property
    def damaged(self) -> bool:
        return self.error is not None

    @property
    def first_dt(self) -> datetime | None:
        return datetime.fromisoformat(self.first) if self.first else None

    @property
    def last_dt(self) -> datetime | None:
        return datetime.fromisoformat(self.last) if self.last else None

    def file_years(self) -> FileYears | None:
        return FileYears(tuple((int(a), int(b)) for a, b in self.years)) if self.years else None

    def fresh(self, st: os.stat_result) -> bool:
        return st.st_size == self.size and abs(st.st_mtime - self.mtime) < 1e-3

    def label(self) -> str:
        return f"{Path(self.path).name} [{self.first or '?'} .. {self.last or '?'}]"


class _ContentHasher:
    """Hashes decompressed content as it streams by; also the head and prefixes at given lengths."""

    def __init__(self, prefix_at: set[int]):
        self.sha = hashlib.sha256()
        self.n = 0
        self.head = b""
        self._cuts = sorted(x for x in prefix_at if x > 0)
        self.prefix: dict[int, str] = {}

    def __call__(self, chunk: bytes) -> None:
        if len(self.head) < HEAD_BYTES and b"\n" not in self.head:
            self.head = (self.head + chunk[:HEAD_BYTES])[:HEAD_BYTES]
        pos = 0
        while self._cuts and self._cuts[0] <= self.n + len(chunk):
            cut = self._cuts.pop(0) - self.n
            self.sha.update(chunk[pos:cut])
            self.n, chunk, pos = self.n + cut, chunk[cut:], 0
            self.prefix[self.n] = self.sha.copy().hexdigest()
        self.sha.update(chunk[pos:])
        self.n += len(chunk) - pos

    def head_sha256(self) -> str:
        return hashlib.sha256(self.head.split(b"\n", 1)[0]).hexdigest()


def file_sha256(path: Path, limit: int | None = None) -> str:
    h = hashlib.sha256()
    left = limit
    with open(path, "rb") as fh:
        while True:
            block = fh.read(1 << 20 if left is None else min(1 << 20, left))
            if not block:
                break
            h.update(block)
            if left is not None:
                left -= len(block)
    return h.hexdigest()


def content_prefix_sha256(path: Path, n: int) -> str:
    """sha256 of the first `n` decompressed bytes of a file."""
    h = _ContentHasher({n})
    try:
        for _ in iter_line_batches(path, SCAN_BATCH, on_chunk=h):
            if n in h.prefix:
                break
    except LogFileError:
        pass
    return h.prefix.get(n, "")


def scan_file(
    path: Path, tz: str, server: str = "", prefix_at: AbstractSet[int] = frozenset()
) -> tuple[Entry, dict[int, str]]:
    """Read a whole file once: its hashes, line count, span and years. Returns the entry and the
    content sha256 at each length in `prefix_at` (to recognise older snapshots of the same file)."""
    path = Path(path).resolve()
    st = path.stat()
    hasher = _ContentHasher(set(prefix_at))
    stamps = StampScan()
    error = None
    try:
        for first_no, lines in iter_line_batches(path, SCAN_BATCH, on_chunk=hasher):
            stamps.feed(first_no, lines)
    except UnreadableFile:
        raise
    except LogFileError as e:
        error = str(e)
    anchor, how = year_anchor(path, st.st_mtime, tz)
    years, first, last = stamps.resolve(anchor, tz)
    if error is None and first is None and hasher.n > stamps.lines:  # (not just empty lines)
        error = f"{path}: not a log: none of its {stamps.lines} lines has a time stamp mmw reads"
    kind = compression_of(path)
    plain_whole = kind is None and error is None and hasher.n == st.st_size  # the content is the file
    if error and last is None:
        last = anchor  # nothing readable: it ended where it was last written (choose() finds its start)
    return Entry(
        path=str(path),
        size=st.st_size,
        mtime=st.st_mtime,
        sha256=hasher.sha.hexdigest() if plain_whole else file_sha256(path),
        compression=kind,
        content_bytes=hasher.n,
        content_sha256=hasher.sha.hexdigest(),
        head_sha256=hasher.head_sha256(),
        lines=stamps.lines,
        first=first.isoformat() if first else None,
        last=last.isoformat() if last else None,
        years=[[a, b] for a, b in years.breaks] if years else [],
        anchor=how if years else "",
        anchor_at=anchor.isoformat() if years else None,
        tz=tz,
        server=server,
        error=error,
    ), hasher.prefix


def unreadable_entry(path: Path, st: os.stat_result, tz: str, server: str, why: str) -> Entry:
    """The entry of a file that cannot be read at all (never saved): nothing is known of its
    lines, so it may hold any time up to its mtime (sources.choose places it from there)."""
    mtime = datetime.fromtimestamp(st.st_mtime, ZoneInfo(tz)).replace(tzinfo=None)
    return Entry(
        path=str(path),
        size=st.st_size,
        mtime=st.st_mtime,
        sha256="",
        compression=None,
        content_bytes=0,
        content_sha256="",
        head_sha256="",
        lines=0,
        first=None,
        last=mtime.isoformat(),
        tz=tz,
        server=server,
        error=why,
    )


class Manifest:
    """The entries of one server, loaded from and saved to its manifest.json (atomically)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.entries: dict[str, Entry] = {}
        if self.path.is_file():
            for row in json.loads(self.path.read_text()):
                e = Entry(**row)
                self.entries[e.path] = e

    def save(self) -> None:
        rows = [asdict(e) for e in sorted(self.entries.values(), key=lambda e: (e.first or "", e.path))]
        with lake.atomic_file(self.path) as tmp:
            tmp.write_text(json.dumps(rows, indent=1))

    def scan(self, path: Path, tz: str, server: str) -> Entry:
        """The entry for a file, scanning it unless it is known with the same size and mtime
        (under this path, or under the path it had before a rotation renamed it)."""
        path = Path(path).resolve()
        st = path.stat()
        known = self.entries.get(str(path))
        if known is not None and known.fresh(st) and known.tz == tz:
            return known
        candidates = self._same_head_candidates(path)
        for c in candidates:
            if c.fresh(st) and c.tz == tz and not Path(c.path).exists():
                return self._renamed(c, path)
        try:
            entry, prefixes = scan_file(path, tz, server, {c.content_bytes for c in candidates})
        except UnreadableFile as e:  # not remembered: it is tried again once it can be read
            return unreadable_entry(path, st, tz, server, str(e))
        if known is not None:  # keep what the pull recorded about a raw copy
            entry.remote, entry.remote_size, entry.remote_mtime, entry.pulled_at = (
                known.remote,
                known.remote_size,
                known.remote_mtime,
                known.pulled_at,
            )
        self.entries[entry.path] = entry
        self._supersede(entry, prefixes)
        return entry

    def _renamed(self, old: Entry, path: Path) -> Entry:
        del self.entries[old.path]
        for e in self.entries.values():
            if e.superseded_by == old.path:
                e.superseded_by = str(path)
        old.path = str(path)
        self.entries[old.path] = old
        return old

    def forget_missing(self) -> None:
        """Drop entries of files that are gone (a local source's expired rotations)."""
        for p in [p for p in self.entries if not Path(p).exists()]:
            del self.entries[p]

    def _same_head_candidates(self, path: Path) -> list[Entry]:
        h = _ContentHasher(set())
        try:
            for _ in iter_line_batches(path, HEAD_BYTES * 4, on_chunk=h):
                break
        except LogFileError:
            pass
        head = h.head_sha256()
        return [e for e in self.entries.values() if e.head_sha256 == head and e.path != str(path)]

    def _supersede(self, new: Entry, prefixes: dict[int, str]) -> None:
        """Mark snapshots that another entry contains in full; never the entry still needed."""
        now = datetime.now().isoformat(timespec="seconds")
        for old in self.entries.values():
            if old.path == new.path or old.head_sha256 != new.head_sha256 or old.superseded_by:
                continue
            if old.content_bytes == new.content_bytes and old.content_sha256 == new.content_sha256:
                keep, drop = (new, old) if new.size <= old.size else (old, new)  # the smaller copy stays
                if drop.anchor_at and (keep.anchor_at is None or drop.anchor_at < keep.anchor_at):
                    # same lines, so same years: take them from the copy whose mtime was kept
                    keep.years, keep.first, keep.last = drop.years, drop.first, drop.last
                    keep.anchor = drop.anchor + f" (of {Path(drop.path).name})"
                    keep.anchor_at = drop.anchor_at
            elif old.content_bytes < new.content_bytes and prefixes.get(old.content_bytes) == old.content_sha256:
                keep, drop = new, old
            elif (
                new.content_bytes < old.content_bytes
                and Path(old.path).is_file()
                and content_prefix_sha256(Path(old.path), new.content_bytes) == new.content_sha256
            ):
                keep, drop = old, new
            else:
                continue
            drop.superseded_by, drop.superseded_at = keep.path, now
            if drop is new:
                return

    def covered(self, e: Entry, among: set[str] | None = None) -> bool:
        """True when a file on disk (of `among`, if given) holds all of this entry's content."""
        seen = set()
        nxt = e.superseded_by
        while nxt and nxt not in seen:
            seen.add(nxt)
            if Path(nxt).is_file() and (among is None or nxt in among):
                return True
            sup = self.entries.get(nxt)
            nxt = sup.superseded_by if sup else None
        return False

    def live(self) -> list[Entry]:
        """Entries that are read: file present, content not held in full by another present file."""
        return [e for e in self.entries.values() if Path(e.path).is_file() and not self.covered(e)]


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    """One fetch at a time per server (DAG runs of several days may overlap)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
