"""A day's outputs are committed whole or not at all: written under a new generation, then
switched in with one atomic rename (docs/reliability.md, "A day is whole or absent").

Layout, for a local day D (data_lake/README.md shows it whole):

    <lake>/.days/D/<gen>/<dataset>/day=D/<part>.parquet      the files of one generation
    <lake>/.days/D/<gen>/reports/day=D/report.{json,md,html}
    <lake>/.days/D/<gen>/.generation.json                     written when the generation begins
    <lake>/.days/D/current -> <gen>                           the committed generation
    <lake>/<dataset>/day=D/<part>.parquet -> ../../.days/D/current/<dataset>/day=D/<part>.parquet

The public paths (the contract's, the views' globs, analysts' notebooks) are per-file symbolic
links through `current`, so replacing `current` (os.replace of a fresh link: one rename) changes
every file of the day at once. A link made before the switch for a part only the new generation
has points at nothing until then, and readers (DuckDB's glob, has_files) skip it; a part only the
old generation had is left pointing at nothing after it, and removed. Links are per file, not per
directory, so that `Path.rglob`, `os.walk` and `find` see the files (they do not follow linked
directories) and relative links in report.html still resolve from reports/day=D/.

A run begins a generation (begin), every stage writes inside it (writing: lake.partition_dir and
lake.part_path route the day's partitions there, lake.connect reads the day from there and every
other day from the lake), and commit switches it in. A kill at any instant leaves the previous
day or the new one; what it leaves behind (the uncommitted generation, temp files) is removed by
the next begin or commit of that day, and a day with a generation begun after its current one is
not done (pending), so backfill redoes it.

Temp files (lake.atomic_file's) are named after the host and process that write them, so that
the leftovers of a killed writer are told from a live writer's (sweep_temps).

`checkpoint` marks the instants at which tests/test_day_commit.py kills a run.
"""

from __future__ import annotations

import contextvars
import json
import os
import re
import secrets
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

DAYS = ".days"  # <lake>/.days/D/: the generations of day D
CURRENT = "current"  # <lake>/.days/D/current -> <gen>: the committed one
MARKER = ".generation.json"  # in a generation's root: which run began it, and when
LEGACY = "g0-legacy"  # the generation that adopts a day written before generations (sorts first)
STALE_AFTER = 3600.0  # seconds: a temp file of another host (or of no known writer) this old is a leftover

_HOST = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"
# .<name>~<host>~<pid>~<random>.tmp, and DuckDB's write-ahead log beside a temp database
_TEMP = re.compile(r"^\.(?P<name>.+)~(?P<host>[A-Za-z0-9._-]*)~(?P<pid>\d+)~[0-9a-f]+\.tmp(\.wal)?$")
_OLD_TEMP = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp(\.wal)?$")  # what mmw named its temp files before


class GenerationError(RuntimeError):
    """A generation that cannot be written or committed (gone, or committed already)."""


# ---------------------------------------------------------------- temp files and their leftovers


def temp_path(path: Path) -> Path:
    """Where to write `path` before renaming it into place: beside it, named after this writer."""
    return path.with_name(f".{path.name}~{_HOST}~{os.getpid()}~{secrets.token_hex(4)}.tmp")


def is_temp(path: Path) -> bool:
    return bool(_TEMP.match(path.name) or _OLD_TEMP.match(path.name))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def abandoned(path: Path, now: float | None = None) -> bool:
    """A temp file whose writer is gone: a process of this host that no longer runs, else (another
    host's, or a name without its writer) one untouched for STALE_AFTER seconds."""
    m = _TEMP.match(path.name)
    if m and m["host"] == _HOST:
        return not _alive(int(m["pid"]))
    if not (m or _OLD_TEMP.match(path.name)):
        return False
    try:
        age = (now or time.time()) - path.lstat().st_mtime
    except FileNotFoundError:
        return False
    return age > STALE_AFTER


def sweep_temps(dirs: Iterable[Path]) -> list[Path]:
    """Remove the abandoned temp files directly inside `dirs` (missing ones are skipped)."""
    gone = []
    for d in dirs:
        try:
            entries = list(os.scandir(d))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for e in entries:
            p = Path(e.path)
            if not e.is_dir(follow_symlinks=False) and is_temp(p) and abandoned(p):
                _unlink(p)
                gone.append(p)
    return gone


_READ_ROOT = re.compile(r"^mmw-read~(?P<host>[A-Za-z0-9._-]*)~(?P<pid>\d+)~")


def _read_root_prefix() -> str:
    return f"mmw-read~{_HOST}~{os.getpid()}~"


def sweep_read_roots() -> list[Path]:
    """Remove the read roots (`writing`'s directories of two links in the system temp directory)
    that killed processes of this host left."""
    gone: list[Path] = []
    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        return gone
    for e in entries:
        m = _READ_ROOT.match(e.name)
        if m and m["host"] == _HOST and int(m["pid"]) != os.getpid() and not _alive(int(m["pid"])):
            _remove(Path(e.path))
            gone.append(Path(e.path))
    return gone


def shared_dirs(lake: Path) -> list[Path]:
    """The directories whose files are rewritten in place, outside any day's generation: the lake's
    root (the catalog), reports/ (the trends page), the roll-ups' partitions, fetch's raw/<server>/."""
    lake = Path(lake)
    out = [lake, lake / "reports"]
    for pattern in ("weekly_trends/*", "monthly_trends/*", "raw/*"):
        out += sorted(p for p in lake.glob(pattern) if p.is_dir() and not p.is_symlink())
    return out


# ---------------------------------------------------------------- crash-test checkpoints

_counter_lock = threading.Lock()
_counter = 0


def checkpoint(label: str) -> None:
    """An instant at which a crash must leave the lake whole. tests/test_day_commit.py kills a run
    at chosen ones: MMW_CRASH_TRACE=<file> appends each checkpoint's label to the file, and
    MMW_CRASH_AT=<n> makes the process's n-th checkpoint kill it with SIGKILL (what `kill -9` does:
    no finally, no atexit). Unset, this is one dictionary look-up."""
    at, trace = os.environ.get("MMW_CRASH_AT"), os.environ.get("MMW_CRASH_TRACE")
    if not (at or trace):
        return
    global _counter
    with _counter_lock:
        _counter += 1
        n = _counter
        if trace:
            with open(trace, "a") as fh:
                fh.write(f"{n}\t{label}\n")
        if at and n == int(at):
            os.kill(os.getpid(), signal.SIGKILL)


# ---------------------------------------------------------------- generations


@dataclass(frozen=True)
class Generation:
    """One generation of one day's outputs, being written (see `writing`)."""

    lake: Path  # the lake, resolved
    day: str  # YYYY-MM-DD
    name: str
    read_root: Path  # what lake.connect globs while the day is written: src=lake and src=new

    @property
    def root(self) -> Path:
        return self.lake / DAYS / self.day / self.name

    def partition_dir(self, dataset: str) -> Path:
        """The generation's partition of `dataset`; refuses once the generation is gone (another
        run of the day began and removed it), rather than write half a day."""
        if not (self.root / MARKER).is_file():
            raise GenerationError(
                f"generation {self.name} of {self.day} is gone from {self.lake / DAYS / self.day} "
                "(did another run of the day begin?); run the day again"
            )
        return self.root / dataset / f"day={self.day}"


_active: contextvars.ContextVar[Generation | None] = contextvars.ContextVar("mmw_generation", default=None)


def active(lake: Path, day: date | str | None = None) -> Generation | None:
    """The generation being written for `lake` (and `day`, if given), if any."""
    g = _active.get()
    if g is None or Path(lake).resolve() != g.lake or (day is not None and str(day) != g.day):
        return None
    return g


def _day_dir(lake: Path, day: date | str) -> Path:
    return Path(lake).resolve() / DAYS / str(day)


def current(lake: Path, day: date | str) -> str | None:
    """The name of the day's committed generation; None when it has none."""
    link = _day_dir(lake, day) / CURRENT
    return os.readlink(link) if link.is_symlink() else None


def _generations(day_dir: Path) -> list[str]:
    try:
        names = [e.name for e in os.scandir(day_dir) if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n != CURRENT and not is_temp(Path(n)))


def pending(lake: Path, day: date | str) -> list[str]:
    """Generations begun after the day's current one and not switched in: a run of the day that
    did not finish (killed, failed, or running now)."""
    day_dir = _day_dir(lake, day)
    if _copied(day_dir):
        return []  # its public files are plain copies (the old layout); the generations came along
    cur = current(lake, day)
    return [n for n in _generations(day_dir) if cur is None or n > cur]


def _copied(day_dir: Path) -> bool:
    """A lake copied by a tool that follows links (`cp -rL`, shutil.copytree): `current` is a
    directory of its own, and the day's public files are plain files."""
    link = day_dir / CURRENT
    return link.is_dir() and not link.is_symlink()


def _new_name(after: str | None) -> str:
    name = f"g{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{secrets.token_hex(3)}"
    return name if after is None or name > after else f"{after}-{secrets.token_hex(3)}"  # clock went back


def begin(lake: Path, day: date | str, seed: bool = False) -> str:
    """Start a new generation of the day and return its name. What earlier runs of the day left
    (uncommitted generations, superseded ones, temp files) is removed first. `seed`: the new
    generation starts as a copy of the current one (hard links), for a stage run on its own."""
    lake, d = Path(lake).resolve(), str(day)
    day_dir = _day_dir(lake, d)
    day_dir.mkdir(parents=True, exist_ok=True)
    cur = current(lake, d)
    for e in list(os.scandir(day_dir)):
        if e.name not in (CURRENT, cur):
            _remove(Path(e.path))
    for p in _public_files(lake, d):
        # a commit killed while making the links leaves links to files of the generation just
        # removed: DuckDB's glob and pyarrow skip them, polars' scan_parquet fails on them
        if is_temp(p) or (p.is_symlink() and not p.exists()):
            _unlink(p)
    sweep_temps(shared_dirs(lake))
    sweep_read_roots()
    name = _new_name(cur)
    root = day_dir / name
    root.mkdir()
    if seed and cur is not None:
        for rel in _files(day_dir / cur, d):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(day_dir / cur / rel, root / rel)
    marker = {"day": d, "generation": name, "host": _HOST, "pid": os.getpid(), "began": f"{datetime.now(UTC):%FT%TZ}"}
    (root / MARKER).write_text(json.dumps(marker) + "\n")
    checkpoint(f"begin {d} {name}")
    return name


@contextmanager
def writing(lake: Path, day: date | str, name: str) -> Iterator[Generation]:
    """Within: the day's partitions are written into generation `name` (lake.partition_dir), and
    lake.connect reads the day from it and every other day from the lake. A committed generation
    is not written again: a day is redone in a new one."""
    lake, d = Path(lake).resolve(), str(day)
    root = lake / DAYS / d / name
    if current(lake, d) == name:
        raise GenerationError(f"generation {name} of {d} is committed already; run the day again to redo it")
    if not (root / MARKER).is_file():
        raise GenerationError(f"no generation {name} of {d} under {lake / DAYS}; run the day again")
    read_root = Path(tempfile.mkdtemp(prefix=_read_root_prefix()))  # a kill leaves it: sweep_read_roots
    try:
        # one glob (<read_root>/*/<dataset>/*/*.parquet) sees the lake and the new generation, the
        # directory it came through a Hive key (src) that the views filter on
        (read_root / "src=lake").symlink_to(lake, target_is_directory=True)
        (read_root / "src=new").symlink_to(root, target_is_directory=True)
        g = Generation(lake, d, name, read_root)
        token = _active.set(g)
        try:
            yield g
        finally:
            _active.reset(token)
    finally:
        shutil.rmtree(read_root, ignore_errors=True)


def commit(lake: Path, day: date | str, name: str) -> dict:
    """Switch generation `name` in as the day's, in one rename, then remove what is left over.
    Committing the current generation again only removes leftovers (a retried commit)."""
    lake, d = Path(lake).resolve(), str(day)
    day_dir = _day_dir(lake, d)
    root = day_dir / name
    cur = current(lake, d)
    if cur != name:
        if not (root / MARKER).is_file():
            raise GenerationError(f"no generation {name} of {d} under {lake / DAYS} to commit; run the day again")
        if cur is not None and name < cur:
            raise GenerationError(f"generation {name} of {d} began before the committed {cur}; run the day again")
        for p in root.rglob("*"):  # what failed attempts of a stage left in it
            if is_temp(p):
                _unlink(p)
        files = _files(root, d)
        _sync(root, files)
        checkpoint(f"commit {d}: written")
        _adopt_real_files(lake, d, cur)
        for rel in files:  # each shows the old generation's file, or nothing, until the switch
            _link_public(lake, d, rel)
            checkpoint(f"commit {d}: link {rel}")
        _point_current(day_dir, name)
        checkpoint(f"commit {d}: switched")
    removed = _leftovers(lake, d, name)
    return {"day": d, "generation": name, "files": len(_files(root, d)), "removed": len(removed)}


# ---------------------------------------------------------------- the parts of a commit


def _files(root: Path, d: str) -> list[str]:
    """A generation's files, relative to it: <dataset>/day=D/<name>, temp files left out."""
    out = []
    for p in root.glob(f"*/day={d}/*"):
        if p.is_file() and not p.is_symlink() and not is_temp(p):
            out.append(str(p.relative_to(root)))
    return sorted(out)


def _link_target(d: str, rel: str) -> str:
    """What the public path <lake>/<rel> links to, relative to its directory (the lake can move)."""
    return os.path.join("..", "..", DAYS, d, CURRENT, rel)


def _public_files(lake: Path, d: str) -> list[Path]:
    """What the day's public directories hold: links, temp files, and real files of old lakes."""
    return sorted(lake.glob(f"*/day={d}/*"))


def _link_public(lake: Path, d: str, rel: str) -> None:
    pub = lake / rel
    target = _link_target(d, rel)
    if pub.is_symlink() and os.readlink(pub) == target:
        return
    pub.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(pub)
    os.symlink(target, tmp)
    os.replace(tmp, pub)


def _adopt_real_files(lake: Path, d: str, cur: str | None) -> None:
    """Real files in the day's public directories (a lake written before generations, or files
    put there by hand) join the current generation (a new one, LEGACY, if the day has none) and
    are replaced by links to it: every step leaves what readers see unchanged."""
    real = [p for p in _public_files(lake, d) if p.is_file() and not p.is_symlink() and not is_temp(p)]
    if not real:
        return
    day_dir = _day_dir(lake, d)
    if cur is None:
        cur = LEGACY
        (day_dir / cur).mkdir(parents=True, exist_ok=True)
        (day_dir / cur / MARKER).write_text(json.dumps({"day": d, "generation": cur, "adopted": True}) + "\n")
    for p in real:
        into = day_dir / cur / p.relative_to(lake)
        into.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(into)
        _link_or_copy(p, tmp)
        os.replace(tmp, into)
    if current(lake, d) != cur:
        _point_current(day_dir, cur)  # the public files are still the real ones: nothing changes yet
    for p in real:
        _link_public(lake, d, str(p.relative_to(lake)))
        checkpoint(f"commit {d}: adopted {p.relative_to(lake)}")


def _point_current(day_dir: Path, name: str) -> None:
    """The switch: a new link to `name`, renamed over `current` (rename(2) is atomic)."""
    if _copied(day_dir):  # nothing reads this copy: the public files are plain files until now
        shutil.rmtree(day_dir / CURRENT)
    tmp = temp_path(day_dir / CURRENT)
    os.symlink(name, tmp)
    os.replace(tmp, day_dir / CURRENT)
    _fsync_dir(day_dir)


def _leftovers(lake: Path, d: str, keep: str) -> list[Path]:
    """After a switch to `keep`: public links that now point at nothing, the day's temp files,
    generations older than `keep` (those newer belong to a run of the day begun since), empty
    public directories, and abandoned temp files outside the generations."""
    gone = []
    for p in _public_files(lake, d):
        if is_temp(p) or (p.is_symlink() and not p.exists()):
            _unlink(p)
            gone.append(p)
    for part_dir in {p.parent for p in gone}:
        if part_dir.is_dir() and not any(part_dir.iterdir()):
            part_dir.rmdir()
    day_dir = _day_dir(lake, d)
    for e in list(os.scandir(day_dir)):
        p = Path(e.path)
        if e.name == CURRENT or e.name == keep:
            continue
        if is_temp(p) or (e.is_dir(follow_symlinks=False) and e.name < keep):
            _remove(p)
            gone.append(p)
    checkpoint(f"commit {d}: cleaned")
    return gone + sweep_temps(shared_dirs(lake))


# ---------------------------------------------------------------- file system helpers


def _unlink(p: Path) -> None:
    try:
        p.unlink()
    except FileNotFoundError:
        pass


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        _unlink(p)


def _link_or_copy(src: Path, dst: Path) -> None:
    """A hard link (no copy of the bytes); a copy where the file system has none."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _sync(root: Path, files: list[str]) -> None:
    """The generation's files and directories on disk before the switch, so that a power cut after
    it does not leave the current generation with empty files."""
    for rel in files:
        fd = os.open(root / rel, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    for d in sorted({(root / rel).parent for rel in files} | {(root / rel).parent.parent for rel in files} | {root}):
        _fsync_dir(d)
