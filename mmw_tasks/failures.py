"""Every failure is one line (contract section 2; issue #17, item 5).

What a user sees when a run fails is the stage, the server and the file it was at, and why, in
one line: `mmw: run 2002-02-16: parse 1mx: /var/log/syslog.2.gz: corrupt gzip stream (...)`. The
traceback is for `mmw --debug` and for Airflow's task log, where it belongs. Exit 2 for a bad
config or unusable input (the lake cannot be written, a log file cannot be read), 1 for a stage
that failed (a full disk, a server that cannot be fetched).
"""

from __future__ import annotations

import errno
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mmw_tasks.config import ConfigError, Site
from mmw_tasks.config.checks import key_error

# how an OS error number shows in other libraries' messages: pyarrow, polars (Rust), or by its text (DuckDB)
_ERRNO = re.compile(r"\[errno (\d+)\]|\(os error (\d+)\)", re.I)
# what to do about the errors a run meets in the lake's file system
ADVICE = {
    errno.ENOSPC: "free space on the lake's file system, then run the day again",
    errno.EDQUOT: "free space (the quota is full), then run the day again",
    errno.EROFS: "the lake's file system is mounted read-only; make it writable or point [site] lake elsewhere",
    errno.EACCES: "give mmw's user write access there, or point [site] lake elsewhere",
}


class StageError(RuntimeError):
    """A stage of a day's run that failed, said in one line: the day, the stage, the server and
    file where known, and why. `code` is the exit status it deserves (1, or 2 for unusable input)."""

    def __init__(
        self, day: str, stage: str, why: str, server: str | None = None, file: str | None = None, code: int = 1
    ) -> None:
        self.day, self.stage, self.why, self.server, self.file, self.code = day, stage, why, server, file, code
        where = f"{stage} {server}" if server else stage
        super().__init__(f"run {day}: {where}: " + (f"{file}: " if file and file not in why else "") + why)


def errno_of(e: BaseException) -> int | None:
    """The OS error number of `e`, or of the OS error its message quotes (pyarrow, polars and
    DuckDB word theirs each their own way)."""
    if isinstance(e, OSError) and e.errno:
        return e.errno
    text = str(e)
    m = _ERRNO.search(text)
    if m:
        return int(m.group(1) or m.group(2))
    return next((n for n in ADVICE if os.strerror(n) in text), None)


def why(e: BaseException, advice: bool = False) -> str:
    """`e` in one line: an OS error by its file, name and (`advice`: in a run's lake) what to do;
    anything else its first line, with its type unless it is mmw's own or a ValueError."""
    lines = [ln for ln in str(e).splitlines() if ln.strip()]
    first = lines[0].strip() if lines else ""
    if type(e).__module__.startswith("mmw_tasks") and first:
        return first  # mmw's own errors say what they mean
    number = errno_of(e)
    if number is not None and (isinstance(e, OSError) or number in ADVICE):
        text = f"{os.strerror(number)} ({errno.errorcode.get(number, number)})"
        if file_of(e):
            text = f"{file_of(e)}: {text}"
        return f"{text}; {ADVICE[number]}" if advice and number in ADVICE else text
    return first if type(e) is ValueError and first else f"{type(e).__name__}: {first}" if first else type(e).__name__


def file_of(e: BaseException) -> str | None:
    return str(e.filename) if isinstance(e, OSError) and e.filename else None


@contextmanager
def stage(
    day: object,
    name: str,
    server: str | None = None,
    input_errors: tuple[type[BaseException], ...] = (),
    lake: Path | None = None,
) -> Iterator[None]:
    """Run a stage; anything it raises comes out as a StageError naming the day, the stage, the
    server and the file (the original chained, for --debug and the task log). `input_errors`: the
    kinds that mean unusable input (exit 2); a config error stays what it is. `lake`: named for an
    OS error that names no file of its own (a full disk met inside pyarrow or DuckDB)."""
    try:
        yield
    except (StageError, ConfigError, KeyboardInterrupt):
        raise
    except Exception as e:
        code = 2 if isinstance(e, input_errors) else 1
        said = why(e, advice=True)
        said = said.removeprefix(f"server {server}: ") if server else said
        where = file_of(e) or (str(lake) if lake is not None and errno_of(e) in ADVICE else None)
        raise StageError(str(day), name, said, server, where, code) from e


def usable_lake(site: Site) -> Path:
    """The lake is a directory mmw can write, made if missing; else a config error naming the key
    (exit 2, before any stage runs). A full disk is not seen here: a stage meets it."""
    root = Path(site.lake)
    if root.exists() and not root.is_dir():
        raise key_error(site.config_path, "site", "lake", f"is {root}, which is a file, not a directory")
    probe = root / f".mmw-probe-{uuid.uuid4().hex[:8]}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe.touch()
        probe.unlink()
    except OSError as e:
        said = f"{os.strerror(e.errno)} ({errno.errorcode.get(e.errno, e.errno)})" if e.errno else why(e)
        raise key_error(site.config_path, "site", "lake", f"is {root}, which mmw cannot write: {said}") from None
    return root
