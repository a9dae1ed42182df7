"""A small site's logs with known day totals, and writers that rotate the same lines each way
real servers do (logrotate numbered + delaycompress, logrotate dateext + gz, BSD/Solaris
newsyslog, bzip2, xz), so tests can check that every scheme gives the same days.

Lines are (site-local naive time, text after the stamp). Each file's mtime is its last line's
time, as syslogd leaves it; a gzip header keeps that mtime too, as gzip does.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

MX_IPS = {"1mx": "10.1.0.25", "2mx": "10.1.0.26"}
SCHEMES = ("numbered", "dateext", "newsyslog", "bzip2", "xz")


@dataclass
class ServerLog:
    name: str
    role: str
    lines: list[tuple[datetime, str]] = field(default_factory=list)


@dataclass
class LogSite:
    tz: str
    servers: list[ServerLog]
    truth: dict[str, dict[str, Counter]]  # server -> day -> counter of dq / n_from / n_to / n_sent


def make_site(
    start: date, days: int, tz: str = "Asia/Tokyo", seed: int = 1, per_day: int = 120, jitter: bool = True
) -> LogSite:
    """Two mail servers behind one MX and a primary and secondary DNS server, each logging
    `per_day`-ish events a day from just before `start` to just after the last day."""
    rng = random.Random(seed)
    t0 = datetime(start.year, start.month, start.day) - timedelta(hours=6)
    t1 = datetime(start.year, start.month, start.day) + timedelta(days=days, hours=6)
    span = (t1 - t0).total_seconds()
    servers = {n: ServerLog(n, r) for n, r in (("1mx", "mail"), ("2mx", "mail"), ("1dns", "dns"), ("2dns", "dns"))}
    n_events = int(per_day * (span / 86400))
    qid = 0
    for _ in range(n_events):
        t = t0 + timedelta(seconds=rng.uniform(0, span))
        t = t.replace(microsecond=0)
        mx = rng.choice(["1mx", "2mx"])
        dns = "1dns" if rng.random() < 0.7 else "2dns"
        qid += 1
        q = f"g{qid:07d}a{rng.randrange(10**6):06d}"
        sender = f"user{rng.randrange(40)}@example.ac.jp"
        servers[mx].lines.append(
            (
                t,
                f"{mx} sendmail[{1000 + qid % 500}]: {q}: from=<{sender}>, size={rng.randrange(500, 9000)}, "
                f"class=0, nrcpts=1, msgid=<{q}@example.ac.jp>, proto=ESMTP, daemon=MTA, "
                f"relay=pc{qid % 90}.example.ac.jp [10.1.3.{qid % 90}]",
            )
        )
        t2 = t + timedelta(seconds=rng.randrange(1, 20))
        servers[mx].lines.append(
            (
                t2,
                f"{mx} sendmail[{2000 + qid % 500}]: {q}: to=<friend{qid % 70}@remote.example>, "
                f"delay=00:00:0{rng.randrange(1, 9)}, xdelay=00:00:01, mailer=esmtp, pri=30000, "
                f"relay=mx.remote.example. [192.0.2.7], dsn=2.0.0, stat=Sent (ok)",
            )
        )
        nq = rng.randrange(1, 6)
        tq = t + timedelta(seconds=rng.randrange(0, 3))
        servers[dns].lines.append(
            (
                tq,
                f"{dns} iplog[312]: UDP: dgram to domain from {MX_IPS[mx]}:{1024 + qid % 5000} (38 data bytes)",
            )
        )
        if nq > 1:
            servers[dns].lines.append((tq, f"{dns} last message repeated {nq - 1} times"))
    for s in servers.values():
        s.lines.sort(key=lambda x: x[0])
        if jitter:  # syslogd writes in arrival order: a few lines a few seconds out of order
            for i in range(5, len(s.lines) - 2, 37):
                (ta, a), (tb, b) = s.lines[i], s.lines[i + 1]
                if "last message" not in a + b + s.lines[i + 2][1]:
                    s.lines[i], s.lines[i + 1] = (tb, a), (ta, b)  # swap texts: stamps go back a little
    return LogSite(tz=tz, servers=list(servers.values()), truth=count_truth(servers.values()))


def count_truth(servers) -> dict[str, dict[str, Counter]]:
    """What the pipeline must find, counted from the final lines by their own stamps' local day."""
    truth: dict[str, dict[str, Counter]] = {}
    for s in servers:
        per = truth.setdefault(s.name, {})
        for t, text in s.lines:
            c = per.setdefault(str(t.date()), Counter())
            if ": from=<" in text:
                c["n_from"] += 1
            elif ": to=<" in text:
                c["n_to"] += 1
                c["n_sent"] += "stat=Sent" in text
            elif "iplog[" in text:
                c["dq"] += 1
            elif "last message repeated" in text:
                c["dq"] += int(text.split()[-2])
    return truth


def day_totals(site: LogSite, day: date) -> dict[str, int]:
    c: Counter = Counter()
    for per_day in site.truth.values():
        c.update(per_day.get(str(day), Counter()))
    return {k: c.get(k, 0) for k in ("dq", "n_from", "n_to", "n_sent")}


def bsd_line(t: datetime, text: str, zero_pad: bool = False) -> str:
    day = f"{t.day:02d}" if zero_pad else f"{t.day:2d}"
    return f"{t.strftime('%b')} {day} {t.strftime('%H:%M:%S')} {text}"


def iso_line(t: datetime, text: str, tz: str, colon: bool = True) -> str:
    aware = t.replace(tzinfo=ZoneInfo(tz))
    off = aware.strftime("%z")
    if colon:
        off = off[:3] + ":" + off[3:]
    return f"{t.strftime('%Y-%m-%dT%H:%M:%S')}.{t.microsecond:06d}{off} {text}"


def _mtime(t: datetime, tz: str) -> float:
    return t.replace(tzinfo=ZoneInfo(tz)).timestamp()


def _write(path: Path, lines: list[tuple[datetime, str]], tz: str, compress: str | None, render) -> None:
    data = "".join(render(t, x) + "\n" for t, x in lines).encode()
    last = max(t for t, _ in lines) if lines else None
    mtime = _mtime(last, tz) if last else None
    if compress == "gzip":
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=int(mtime or 0)) as gz:
            gz.write(data)
    elif compress == "bzip2":
        path.write_bytes(bz2.compress(data))
    elif compress == "xz":
        path.write_bytes(lzma.compress(data))
    else:
        path.write_bytes(data)
    if mtime:
        os.utime(path, (mtime, mtime))


def _cuts(lines: list[tuple[datetime, str]], first_cut: datetime, every: timedelta) -> list[list]:
    """Split lines (in file order) at rotation times first_cut, first_cut + every, ..."""
    parts, cur, cut = [], [], first_cut
    for t, x in lines:
        while t >= cut and cur:
            parts.append(cur)
            cur, cut = [], cut + every
        while t >= cut:
            cut += every
        cur.append((t, x))
    parts.append(cur)
    return parts


def write_scheme(site: LogSite, root: Path, scheme: str, style: str = "bsd") -> dict[str, str]:
    """Write every server's lines under root/<server>/ rotated the `scheme` way; returns the
    source glob (relative to root) of each server."""
    render = {
        "raw": lambda t, x: x,  # lines that already carry their stamps
        "bsd": lambda t, x: bsd_line(t, x),
        "bsd0": lambda t, x: bsd_line(t, x, zero_pad=True),
        "rfc3339": lambda t, x: iso_line(t, x, site.tz),
        "short-iso": lambda t, x: iso_line(t, x, site.tz, colon=False),
    }[style]
    globs = {}
    for s in site.servers:
        d = root / s.name
        d.mkdir(parents=True, exist_ok=True)
        first = s.lines[0][0]
        base = "maillog" if s.role == "mail" else "messages"
        if scheme == "newsyslog":  # Solaris: weekly on Sunday 03:10, syslog.0 .. syslog.7, no compression
            sunday = datetime(first.year, first.month, first.day, 3, 10) - timedelta(days=first.weekday() + 1)
            # daily cuts keep these short tests multi-file; the names are newsyslog's
            parts = _cuts(s.lines, sunday, timedelta(days=1))
            names = ["syslog"] + [f"syslog.{i}" for i in range(len(parts) - 1)]
            comp = [None] * len(parts)
            base = "syslog"
        else:
            parts = _cuts(s.lines, datetime(first.year, first.month, first.day, 4, 2), timedelta(days=1))
            n = len(parts)
            if scheme == "numbered":  # messages, messages.1, messages.2.gz ... (delaycompress)
                names = [base] + [f"{base}.{i}" + (".gz" if i >= 2 else "") for i in range(1, n)]
                comp = [None, None] + ["gzip"] * (n - 2)
            elif scheme == "dateext":  # mail.log, mail.log-20020216, mail.log-20020215.gz ...
                names, comp = [base], [None]
                for k in range(n - 2, -1, -1):  # newest archive first; named after its rotation day
                    names.append(f"{base}-{parts[k + 1][0][0]:%Y%m%d}" + (".gz" if k < n - 2 else ""))
                    comp.append("gzip" if k < n - 2 else None)
            elif scheme in ("bzip2", "xz"):  # numbered, compressed at once, suffix by kind
                ext = {"bzip2": ".bz2", "xz": ".xz"}[scheme]
                names = [base] + [f"{base}.{i}{ext}" for i in range(1, n)]
                comp = [None] + [scheme] * (n - 1)
            else:
                raise ValueError(scheme)
        for part, name, c in zip(reversed(parts), names, comp, strict=True):
            _write(d / name, part, site.tz, c, render)
        globs[s.name] = f"{s.name}/{base}*"
    return globs


def simulated_servers(toml: Path) -> list[ServerLog]:
    """Every line of a simulated (or any) site's servers, in file order, with its site-local time
    as mmw reads it (the file's own years; an unstamped line takes the time before it)."""
    import polars as pl

    from mmw_tasks.config import load_site
    from mmw_tasks.fetch.sources import local_entries, years_for
    from mmw_tasks.parse.logfiles import iter_line_batches
    from mmw_tasks.parse.syslog import frame_lines

    site = load_site(toml)
    out = []
    for srv in site.servers:
        log = ServerLog(srv.name, srv.role)
        for e in sorted(local_entries(site, srv), key=lambda e: e.first_dt):
            path = Path(e.path)
            anchor = years_for(site, srv, path, e.first_dt.date())
            for first_no, lines in iter_line_batches(path):
                f = frame_lines(lines, first_no, anchor, site.timezone).select(
                    pl.col("ts_site").forward_fill().backward_fill(), "line"
                )
                log.lines.extend(f.iter_rows())
        out.append(log)
    return out


def site_toml(
    root: Path,
    globs: dict[str, str],
    tz: str,
    lake: str = "lake",
    sources: dict[str, str] | None = None,
    extra: dict[str, str] | None = None,
) -> Path:
    """A site config for the four servers; `sources` overrides a server's source (e.g. sftp://)."""
    sources = sources or {}
    extra = extra or {}
    parts = [f'[site]\nname = "test"\ntimezone = "{tz}"\nlake = "{lake}"\nlocal_domains = ["example.ac.jp"]\n']
    for name, role in (("1mx", "mail"), ("2mx", "mail"), ("1dns", "dns"), ("2dns", "dns")):
        src = sources.get(name, globs[name])
        fmt = "sendmail" if role == "mail" else "iplog"
        parts.append(f'[[servers]]\nname = "{name}"\nrole = "{role}"\nformat = "{fmt}"\nsource = "{src}"\n')
        if role == "dns":
            parts.append('mail_server_ips = ["10.1.0.25", "10.1.0.26"]\n')
        parts.append(extra.get(name, ""))
    path = root / "site.toml"
    path.write_text("".join(parts))
    return path
