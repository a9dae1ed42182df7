"""Where a server's logs are, and which of its rotated files hold a given local day.

Two kinds of source (docs/sources.md):
- a local glob, read in place;
- `sftp://user@host:port/dir/glob`, pulled into `<lake>/raw/<server>/` first: new and changed
  files only, each moved into place whole after its transfer (never a partial file), kept there as
  an archive after the server has rotated them away.

Either way every file is scanned once into the server's manifest (manifest.py): its first and
last site-local time and the years of its year-less stamps. A file covers a day when its
earliest stamp is before the day's end and its latest at or after the day's start; the day is
read from those files only, whatever the rotation scheme named them.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from mmw_tasks.config import Server, SftpSource, Site, parse_sftp_url
from mmw_tasks.fetch.manifest import HEAD_BYTES, Entry, Manifest, file_sha256, locked
from mmw_tasks.fetch.sftp import (
    Credentials,
    CredentialsDict,
    RemoteFile,
    Session,
    SftpError,
    default_known_hosts,
)
from mmw_tasks.parse.logfiles import MAGIC, BadFile, LogFileError, bad_file_message, compression_of
from mmw_tasks.parse.stamps import FileYears, YearAnchor
from mmw_tasks.parse.years import breaks_of, years_or_day

SUPERSEDED_GRACE = timedelta(days=1)  # a superseded raw copy stays this long for runs still reading it
LIVE_SLACK = timedelta(minutes=10)  # lines a live file may still get that are older than its last one
GAP_WARN = timedelta(hours=3)

log = logging.getLogger(__name__)


class SourceError(RuntimeError):
    """No usable file for a server and day; the message names the server, day and files seen."""


@dataclass
class Fetched:
    """What fetch hands to parse for one server and day (pipeline.fetch makes it JSON for XCom)."""

    files: list[Path]  # the files that hold lines of the day, oldest first (local or in the raw area)
    # what the sftp sync did, by action: pulled, appended, renamed, unchanged, live_not_needed,
    # and reconnects; empty for a local source
    pulled: dict[str, int] = field(default_factory=dict)
    gaps: list[str] = field(default_factory=list)  # stretches of the day longer than GAP_WARN no file covers
    # each file's years by its path (str(file)), as the manifest scanned them: years.breaks_of, so
    # [] frames its year-less stamps next to the day and [[line_no, year], ...] says where each
    # year begins; a file missing here has its years found while it is parsed
    years: dict[str, list[list[int]]] = field(default_factory=dict)
    # files that may hold lines of the day but cannot be read (damaged, unreadable, not a log),
    # left out under [site].on_bad_file = "skip" (with "fail" the fetch fails instead)
    bad_files: list[BadFile] = field(default_factory=list)


def raw_dir(site: Site, server: Server) -> Path:
    return Path(site.lake) / "raw" / server.name


def is_sftp(server: Server) -> bool:
    return server.source.startswith("sftp://")


def source_glob(site: Site, server: Server) -> str:
    src = server.source
    if is_sftp(server):
        return src
    p = Path(src).expanduser()
    return str(p if p.is_absolute() else site.base_dir / p)


def list_files(site: Site, server: Server) -> list[Path]:
    return sorted(Path(p) for p in glob.glob(source_glob(site, server)) if Path(p).is_file())


# ---------------------------------------------------------------- local sources


def local_entries(site: Site, server: Server) -> list[Entry]:
    """The server's files, scanned (or known from the manifest), minus those whose content
    another of them holds in full (a copy, or an older snapshot)."""
    d = raw_dir(site, server)
    with locked(d):
        man = Manifest(d / "manifest.json")
        entries = [man.scan(p, site.timezone, server.name) for p in list_files(site, server)]
        man.forget_missing()
        man.save()
    among = {e.path for e in entries}
    return [e for e in entries if not man.covered(e, among)]


# ---------------------------------------------------------------- sftp sources


def sftp_entries(
    site: Site, server: Server, day: date, credentials: Credentials | CredentialsDict | None = None
) -> tuple[list[Entry], dict[str, int]]:
    """Bring the raw area up to date with the server, then return its entries that are read."""
    src = parse_sftp_url(server.source)
    creds = credentials if isinstance(credentials, Credentials) else Credentials.from_dict(credentials)
    if server.identity_file and not creds.key_file and not creds.private_key:
        creds = Credentials(**{**creds.__dict__, "key_file": server.identity_file})
    known = Path(server.known_hosts or creds.known_hosts or default_known_hosts())
    d = raw_dir(site, server)
    day_end = datetime(day.year, day.month, day.day) + timedelta(days=1)
    counts: dict[str, int] = {}
    with locked(d):
        man = Manifest(d / "manifest.json")
        _clean_partials(d, man)
        session = Session(src, creds, known)
        try:
            for rf in session.list():
                action = _pull_one(session, src, rf, man, site, server, d, day_end)
                counts[action] = counts.get(action, 0) + 1
        except SftpError as e:
            raise SourceError(f"server {server.name}: {e}") from None
        finally:
            session.close()
            counts["reconnects"] = session.reconnects
            _expire_superseded(d, man)
            man.save()
        return man.live(), counts


def _pull_one(
    session: Session,
    src: SftpSource,
    rf: RemoteFile,
    man: Manifest,
    site: Site,
    server: Server,
    d: Path,
    day_end: datetime,
) -> str:
    url = src.url(rf.name)
    same = [e for e in man.entries.values() if e.remote_size == rf.size and e.remote_mtime == rf.mtime]
    for e in same:
        if e.remote == url and (Path(e.path).is_file() or man.covered(e)):
            return "unchanged"
    for e in same:  # renamed by a rotation (messages -> messages.1): same bytes, nothing to pull
        if not Path(e.path).is_file():
            if man.covered(e):
                e.remote = url
                return "renamed"
            continue
        n = min(HEAD_BYTES, rf.size)
        if session.read_range(rf.path, 0, n) == _read(Path(e.path), 0, n):
            e.remote = url
            return "renamed"
    prior = _grown_from(session, rf, man)
    if prior is not None and prior.last_dt is not None and prior.last_dt >= day_end + LIVE_SLACK:
        return "live_not_needed"  # it only grew after the day asked for; pulled when a later day needs it
    tmp_dir = d / ".tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"{rf.name}.{uuid.uuid4().hex[:8]}"
    try:
        if prior is not None:
            shutil.copyfile(prior.path, tmp)
        session.download(rf, tmp)
        after = session.stat(rf.path)
        if after.size < rf.size:
            raise SourceError(
                f"server {server.name}: {url} shrank from {rf.size} to {after.size} bytes "
                f"during the pull (rotated meanwhile?); run the fetch again"
            )
        if after.size > rf.size and _is_plain(tmp):
            _trim_to_last_newline(tmp)  # the live file grew while we read it: keep whole lines only
        os.utime(tmp, (rf.mtime, rf.mtime))
        sha = file_sha256(tmp)
        dest = d / sha[:16] / rf.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    entry = man.scan(dest, site.timezone, server.name)
    entry.remote, entry.remote_size, entry.remote_mtime = url, rf.size, rf.mtime
    entry.pulled_at = datetime.now().isoformat(timespec="seconds")
    man.save()  # each pulled file is recorded at once: a later failure loses nothing already pulled
    return "appended" if prior is not None else "pulled"


def _grown_from(session: Session, rf: RemoteFile, man: Manifest) -> Entry | None:
    """A raw copy that the remote file extends: yesterday's pull of the live file, whether the
    remote file still has that name or a rotation renamed it. Then only the new bytes are pulled.
    Logs are append-only; the whole result is checked again by the manifest's prefix hash."""
    head = session.read_range(rf.path, 0, HEAD_BYTES)
    if any(head.startswith(m) for m, _ in MAGIC):
        return None
    first_line = hashlib.sha256(head.split(b"\n", 1)[0]).hexdigest()
    cands = [
        e
        for e in man.entries.values()
        if e.head_sha256 == first_line and e.compression is None and e.size < rf.size and Path(e.path).is_file()
    ]
    for e in sorted(cands, key=lambda x: -x.size):
        n = min(HEAD_BYTES, e.size)
        p = Path(e.path)
        same_tail = session.read_range(rf.path, e.size - n, n) == _read(p, e.size - n, n)
        if _read(p, 0, n) == head[:n] and same_tail:
            return e
    return None


def _read(path: Path, offset: int, n: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(n)


def _is_plain(path: Path) -> bool:
    return compression_of(path) is None


def _trim_to_last_newline(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "rb+") as fh:
        pos = size
        while pos > 0:
            start = max(0, pos - 65536)
            fh.seek(start)
            block = fh.read(pos - start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                fh.truncate(start + cut + 1)
                return
            pos = start


def _clean_partials(d: Path, man: Manifest) -> None:
    """Remove what an interrupted pull left: temp files, and copies the manifest never recorded."""
    shutil.rmtree(d / ".tmp", ignore_errors=True)
    recorded = {Path(e.path).parent.name for e in man.entries.values()}
    for sub in d.iterdir():
        if sub.is_dir() and not sub.name.startswith(".") and sub.name not in recorded:
            shutil.rmtree(sub, ignore_errors=True)


def _expire_superseded(d: Path, man: Manifest) -> None:
    """Delete raw copies whose whole content a later copy holds, a grace period after that."""
    now = datetime.now()
    for e in man.entries.values():
        p = Path(e.path)
        if (
            e.superseded_at
            and p.is_file()
            and d in p.parents
            and man.covered(e)
            and now - datetime.fromisoformat(e.superseded_at) > SUPERSEDED_GRACE
        ):
            p.unlink()
            try:
                p.parent.rmdir()
            except OSError:
                pass


# ---------------------------------------------------------------- choosing the day's files


def entries_for(
    site: Site, server: Server, day: date, credentials: Credentials | CredentialsDict | None = None
) -> tuple[list[Entry], dict[str, int]]:
    if is_sftp(server):
        return sftp_entries(site, server, day, credentials)
    return local_entries(site, server), {}


def fetch_for_day(
    site: Site, server: Server, day: date, credentials: Credentials | CredentialsDict | None = None
) -> Fetched:
    """The server's files that hold lines of the local `day`, oldest first (pulling sftp ones)."""
    entries, counts = entries_for(site, server, day, credentials)
    chosen, gaps, bad = choose(entries, server, day, source_glob(site, server), site.on_bad_file, site.config_path)
    years = {e.path: breaks_of(years_or_day(e.file_years(), e.first_dt, e.last_dt, day)) for e in chosen}
    return Fetched(files=[Path(e.path) for e in chosen], pulled=counts, gaps=gaps, years=years, bad_files=bad)


@dataclass(frozen=True)
class _Span:
    """A file whose stamps could be read: its entry, and its earliest and latest site-local time."""

    entry: Entry
    first: datetime
    last: datetime


def _spans(entries: list[Entry]) -> list[_Span]:
    """The entries with a first and last stamp, in the order of their first (then path)."""
    spans = []
    for e in entries:
        first, last = e.first_dt, e.last_dt
        if first is not None and last is not None:
            spans.append(_Span(e, first, last))
    return sorted(spans, key=lambda s: (s.first, s.entry.path))


def choose(
    entries: list[Entry],
    server: Server,
    day: date,
    where: str,
    on_bad_file: str = "fail",
    config: Path | None = None,
) -> tuple[list[Entry], list[str], list[BadFile]]:
    """(the files that hold lines of the day, oldest first; gaps; bad files left out).

    A file that cannot be read whole (a damaged archive, a file that cannot be opened, one with
    no time stamp at all) and may hold lines of the day fails the day with one line naming it
    and what to do (`on_bad_file = "fail"`), or is left out of it and listed (`"skip"`)."""
    start = datetime(day.year, day.month, day.day)
    end = start + timedelta(days=1)
    spans = _spans(entries)
    chosen = [s for s in spans if s.first < end and s.last >= start]
    bad: list[BadFile] = []
    for e in entries:
        if not e.error or not e.last:
            continue
        last = datetime.fromisoformat(e.last)
        # A damaged archive held lines from its first readable stamp up to where the next file
        # starts. A file with nothing readable (or no stamp at all) held lines from where the file
        # before it ends up to its mtime (`last`). Those are the days it may hold.
        if e.first_dt is not None:
            lo = e.first_dt
            hi = max(last, min((x.first for x in spans if x.first > lo and x.entry is not e), default=datetime.max))
        else:
            lo, hi = max((x.last for x in spans if x.last < last), default=datetime.min), last
        if lo < end and hi >= start:
            if on_bad_file != "skip":
                raise LogFileError(bad_file_message(f"server {server.name}, day {day}", e.error, config))
            log.warning("server %s, day %s: left out (on_bad_file = skip): %s", server.name, day, e.error)
            bad.append({"file": e.path, "why": e.error})
    if bad:
        left_out = {b["file"] for b in bad}
        chosen = [s for s in chosen if s.entry.path not in left_out]
    if not chosen:
        seen = ", ".join(e.label() for e in sorted(entries, key=lambda e: (e.first or "", e.path))) or "none"
        skipped = f"; left out as bad: {', '.join(b['file'] for b in bad)}" if bad else ""
        raise SourceError(f"server {server.name}: no file covers {day} (source {where}; files seen: {seen}{skipped})")
    chosen.sort(key=lambda s: (s.first, s.last, s.entry.path))
    return [s.entry for s in chosen], _gaps(spans, start, end), bad


def _gaps(spans: list[_Span], start: datetime, end: datetime) -> list[str]:
    """Stretches of the day longer than GAP_WARN between one file's last stamp and the next one's
    first (a missing rotated file, or a server that was down)."""
    out = []
    ordered = sorted(spans, key=lambda s: s.first)
    reach: datetime | None = None
    for s in ordered:
        if reach is not None and s.first - reach > GAP_WARN and s.first > start and reach < end:
            out.append(f"{max(reach, start)} .. {min(s.first, end)} (before {Path(s.entry.path).name})")
        reach = s.last if reach is None else max(reach, s.last)
    return out


def files_for_day(
    site: Site, server: Server, day: date, credentials: Credentials | CredentialsDict | None = None
) -> list[Path]:
    return fetch_for_day(site, server, day, credentials).files


def known_years(site: Site, server: Server, day: date, files: list[Path]) -> dict[str, list[list[int]]]:
    """The years (years.breaks_of) of those `files` the manifest knows as they are now (no scan)."""
    man = Manifest(raw_dir(site, server) / "manifest.json")
    out = {}
    for f in files:
        p = Path(f).resolve()
        e = man.entries.get(str(p))
        if e is not None and e.fresh(p.stat()) and e.tz == site.timezone:
            out[str(f)] = breaks_of(years_or_day(e.file_years(), e.first_dt, e.last_dt, day))
    return out


def years_for(site: Site, server: Server, path: Path, day: date) -> YearAnchor | FileYears:
    """The year anchor ingest frames a file with: the file's own years from the manifest (scanning
    it if it changed since). A file given for a day its span does not touch (a caller that chose
    files itself, with no trustworthy mtime) and a file without year-less stamps are framed next
    to the run's day instead, as loose lines are."""
    d = raw_dir(site, server)
    man = Manifest(d / "manifest.json")
    p = Path(path).resolve()
    e = man.entries.get(str(p))
    if e is None or not e.fresh(p.stat()) or e.tz != site.timezone:
        e = man.scan(p, site.timezone, server.name)
    return years_or_day(e.file_years(), e.first_dt, e.last_dt, day)
