"""Where a server's logs are, and which of its rotated files hold a given local day.

A file covers a day when its first line is before the day's end and its last line (its
mtime, which syslogd keeps at the last write) is after the day's start: rotation never
happens at midnight, so a day is usually spread over two files.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from mmw_tasks.config import Server, Site
from mmw_tasks.syslog import YearAnchor, frame_lines, iter_line_batches

HEAD_BYTES = 64 << 10


class SourceError(RuntimeError):
    """No usable file for a server and day; the message names the server, day and files seen."""


@dataclass(frozen=True)
class FileSpan:
    path: Path
    first: datetime | None  # site-local, naive
    last: datetime  # site-local, naive (from mtime)
    size: int


def source_glob(site: Site, server: Server) -> str:
    src = server.source
    if src.startswith("sftp://"):
        raise SourceError(f"server {server.name}: sftp sources are fetched into the raw area first")
    p = Path(src)
    return str(p if p.is_absolute() else site.base_dir / p)


def list_files(site: Site, server: Server) -> list[Path]:
    return sorted(Path(p) for p in glob.glob(source_glob(site, server)) if Path(p).is_file())


def span_of(path: Path, tz: str) -> FileSpan:
    st = path.stat()
    last = datetime.fromtimestamp(st.st_mtime, ZoneInfo(tz)).replace(tzinfo=None)
    first = None
    for first_no, lines in iter_line_batches(path, batch_bytes=HEAD_BYTES):
        framed = frame_lines(lines.head(200), first_no, YearAnchor(last.date()), tz)
        ts = framed["ts_site"].drop_nulls()
        if len(ts):
            first = ts[0]
            if first > last and framed["plain"][0] is False:  # a December line in a file last written in January
                first = first.replace(year=first.year - 1)
        break
    return FileSpan(path=path, first=first, last=last, size=st.st_size)


def files_for_day(site: Site, server: Server, day: date) -> list[Path]:
    """The server's files that hold lines of the local `day`, oldest first."""
    files = list_files(site, server)
    start = datetime(day.year, day.month, day.day)
    end = start + timedelta(days=1)
    spans = [span_of(p, site.timezone) for p in files]
    chosen = [s for s in spans if s.last >= start and (s.first is None or s.first < end)]
    if not chosen:
        seen = ", ".join(f"{s.path.name} [{s.first} .. {s.last}]" for s in spans) or "none"
        raise SourceError(f"server {server.name}: no file covers {day} "
                          f"(glob {source_glob(site, server)}; files seen: {seen})")
    return [s.path for s in sorted(chosen, key=lambda s: (s.last, s.path.name))]
