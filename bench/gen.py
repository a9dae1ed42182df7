"""Large benchmark logs, made fast: the site simulator's own lines, tiled.

The simulator (mmw simulate) writes Python-speed lines (~75,000 a second), too slow for files of
tens of millions of lines. So it runs once per stack, at scale 1 for one day of klez (a pool of
~150,000 mail and ~300,000 DNS lines with every kind of line the parsers meet), and the bench
files are that pool repeated in order, re-stamped evenly over one local day with vectorised
polars string building (~2M lines a second). The mix of lines, their lengths and their per-message
structure (Postfix's client=/from=/to=/removed, repeats, retries) are the simulator's; only
the stamps are new. dnsmasq and Unbound logs are the BIND pool's queries reworded, Exim's the
Postfix pool's messages reworded (the simulator has no such servers).
"""

from __future__ import annotations

import gzip
import re
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

try:
    from isal import igzip
except ImportError:  # pragma: no cover
    igzip = None

DAY = date(2002, 2, 16)
CHUNK = 1_000_000
_MON = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()

# format -> (simulator style, host log, stamp form)
SOURCES = {
    "sendmail": ("2002", "1mx", "bsd"),
    "iplog": ("2002", "1dns", "bsd"),
    "postfix": ("modern", "1mx", "iso"),
    "bind": ("modern", "1dns", "iso"),
    "dnsmasq": ("modern", "1dns", "iso"),
    "unbound": ("modern", "1dns", "iso"),
    "exim": ("modern", "1mx", "iso"),
}
ROLE = {
    "sendmail": "mail",
    "postfix": "mail",
    "exim": "mail",
    "iplog": "dns",
    "bind": "dns",
    "dnsmasq": "dns",
    "unbound": "dns",
}


def _read(path: Path) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt") as f:
        return f.read().splitlines()


def _simulated(root: Path, style: str) -> Path:
    from mmw_tasks.simulate import simulate_site

    site = root / f"sim-{style}"
    if not (site / "truth.json").is_file():
        simulate_site(site, DAY, 1, scenario="klez", seed=1, style=style)
    return site


def pool(root: Path, fmt: str) -> list[str]:
    """The bodies ("host prog[pid]: msg", stamps cut off) of one format's pool, in file order."""
    style, host, form = SOURCES[fmt]
    cache = root / "pool" / f"{fmt}.txt"
    if cache.is_file():
        return cache.read_text().splitlines()
    site = _simulated(root, style)
    lines: list[str] = []
    for p in sorted((site / "logs" / host).iterdir(), key=lambda p: p.stat().st_mtime):  # oldest first
        lines += _read(p)
    bodies = [x[16:] for x in lines] if form == "bsd" else [x.split(" ", 1)[1] for x in lines]
    if fmt == "dnsmasq":
        bodies = _dnsmasq(bodies)
    elif fmt == "unbound":
        bodies = _unbound(bodies)
    elif fmt == "exim":
        bodies = _exim(bodies)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("\n".join(bodies) + "\n")
    return bodies


_BIND = re.compile(r"^(\S+) named\[\d+\]: client @0x[0-9a-f]+ ([\d.]+)#(\d+) \(([^)]*)\): query: (\S+) IN (\S+) ")


def _dnsmasq(bodies: list[str]) -> list[str]:
    """Each BIND query as dnsmasq logs it (log-queries): the query, then the forward or the cache hit."""
    out = []
    for i, b in enumerate(bodies):
        m = _BIND.match(b)
        if not m:
            out.append(b)
            continue
        host, ip, _, _, name, qt = m.groups()
        out.append(f"{host} dnsmasq[611]: query[{qt}] {name} from {ip}")
        out.append(
            f"{host} dnsmasq[611]: forwarded {name} to 192.0.2.1"
            if i % 3
            else f"{host} dnsmasq[611]: cached {name} is 198.18.{i % 200}.{i % 250 + 1}"
        )
    return out


def _unbound(bodies: list[str]) -> list[str]:
    out = []
    for b in bodies:
        m = _BIND.match(b)
        if not m:
            out.append(b)
            continue
        host, ip, _, _, name, qt = m.groups()
        out.append(f"{host} unbound: [1066:0] info: {ip} {name}. {qt} IN")
    return out


_PF = re.compile(r"^(\S+) postfix/(\w+)\[(\d+)\]: ([0-9A-F]{10}|NOQUEUE): (.*)$")
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _b62(n: int, width: int) -> str:
    s = ""
    for _ in range(width):
        n, r = divmod(n, 62)
        s = _B62[r] + s
    return s


def _exim(bodies: list[str]) -> list[str]:
    """The Postfix pool's messages as Exim 4 logs them through syslog (arrival, deliveries,
    deferrals, bounces, Completed, RCPT rejects); Dovecot's lines as they are."""
    out: list[str] = []
    ids: dict[str, str] = {}
    clients: dict[str, str] = {}
    msgids: dict[str, str] = {}
    for b in bodies:
        if " dovecot: " in b:
            out.append(b)
            continue
        m = _PF.match(b)
        if not m:
            continue
        host, daemon, pid, qid, rest = m.groups()
        tag = f"{host} exim[{pid}]:"
        if rest.startswith("client="):
            name, _, ip = rest[7:].partition("[")
            clients[qid] = f"{name} [{ip.split(']')[0]}]"
        elif rest.startswith("message-id="):
            msgids[qid] = rest[11:].strip("<>")
        elif daemon == "qmgr" and rest.startswith("from="):
            if qid in ids:  # a retry: Exim logs nothing for it
                continue
            eid = ids[qid] = f"{_b62(len(ids) * 7919 + 1013800000, 6)}-{_b62(int(pid), 6)}-{_b62(len(ids), 2)}"
            sender = rest[6 : rest.index(">")] or "<>"
            size = rest.split("size=")[1].split(",")[0]
            h = f" H={clients[qid]}" if qid in clients else " U=Debian-exim"
            out.append(f"{tag} {eid} <= {sender}{h} P=esmtp S={size} id={msgids.get(qid, qid)}")
        elif rest.startswith("to=<"):
            eid = ids.get(qid)
            if eid is None:
                continue
            rcpt = rest[4 : rest.index(">")]
            status = rest.split("status=")[1].split(" ")[0]
            relay = rest.split("relay=")[1].split(",")[0]
            if status == "sent":
                how = (
                    "R=local_user T=local_delivery"
                    if relay == "local"
                    else f"R=dnslookup T=remote_smtp H={relay.split('[')[0]} [{relay.split('[')[1].split(']')[0]}]"
                )
                out.append(f'{tag} {eid} => {rcpt} {how} C="250 OK"')
            elif status == "deferred":
                out.append(f"{tag} {eid} == {rcpt} R=dnslookup T=remote_smtp defer (110): Connection timed out")
            else:
                out.append(
                    f"{tag} {eid} ** {rcpt} R=dnslookup T=remote_smtp: SMTP error from remote mail server "
                    f"after RCPT TO:<{rcpt}>: 554 5.0.0 Service unavailable"
                )
        elif rest == "removed":
            if qid in ids:
                out.append(f"{tag} {ids[qid]} Completed")
        elif rest.startswith("reject: RCPT from "):
            client = rest[18:].split(":")[0].replace("[", " [")
            rcpt = rest.split(" to=<")[1].split(">")[0]
            sender = rest.split(" from=<")[1].split(">")[0]
            out.append(f"{tag} H={client} F=<{sender}> rejected RCPT <{rcpt}>: Unknown user")
    return out


def _stamps(form: str, day: date) -> pl.Series:
    """The stamp text of every second of `day` (BSD `Feb 16 14:30:01`, ISO `2002-02-16T14:30:01`)."""
    base = datetime(day.year, day.month, day.day)
    secs = [base + timedelta(seconds=s) for s in range(86400)]
    if form == "bsd":
        head = f"{_MON[day.month - 1]} {day.day:2d} "
        return pl.Series([head + t.strftime("%H:%M:%S") for t in secs])
    return pl.Series([t.strftime("%Y-%m-%dT%H:%M:%S") for t in secs])


def _closed_at(bodies: list[str]) -> list[bool]:
    """Per Postfix pool line: True when every message whose smtpd client= came so far also has
    its qmgr from=, so that a file cut there counts the same messages for pflogsumm (client=
    lines) and for the contract (from= of messages accepted into the queue)."""
    open_: set[str] = set()
    out = []
    for b in bodies:
        m = _PF.match(b)
        if m:
            _, daemon, _, qid, rest = m.groups()
            if daemon == "smtpd" and rest.startswith("client="):
                open_.add(qid)
            elif daemon == "qmgr" and rest.startswith("from="):
                open_.discard(qid)
        out.append(not open_)
    return out


def write_log(root: Path, fmt: str, n_lines: int, gz: bool = False) -> Path:
    """bench_out/<fmt>-<n>.log[.gz]: n_lines lines of the format's pool, spread over DAY (cached).
    A Postfix file runs on past n_lines to the next line where no message is half-logged."""
    name = f"{fmt}-{n_lines // 1_000_000}M.log" + (".gz" if gz else "")
    path = root / "logs" / name
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = pool(root, fmt)
    if fmt == "postfix":
        closed = _closed_at(lines)
        while not closed[(n_lines - 1) % len(lines)]:
            n_lines += 1
    bodies = pl.Series(lines)
    form = SOURCES[fmt][2]
    stamps = _stamps(form, DAY)
    tmp = path.with_name(path.name + ".tmp")
    raw = open(tmp, "wb")  # noqa: SIM115
    fh = (igzip.open(raw, "wb", compresslevel=1) if igzip else gzip.open(raw, "wb", compresslevel=1)) if gz else raw
    try:
        for start in range(0, n_lines, CHUNK):
            i = np.arange(start, min(n_lines, start + CHUNK), dtype=np.int64)
            usec = i * 86_400_000_000 // n_lines  # even spacing over the day
            body = bodies.gather(i % len(bodies))
            stamp = stamps.gather(usec // 1_000_000)
            df = pl.DataFrame({"s": stamp, "b": body, "u": usec % 1_000_000})
            if form == "iso":
                line = pl.concat_str(
                    [
                        pl.col("s"),
                        pl.lit("."),
                        pl.col("u").cast(pl.String).str.zfill(6),
                        pl.lit("+09:00 "),
                        pl.col("b"),
                        pl.lit("\n"),
                    ]
                )
            else:
                line = pl.concat_str([pl.col("s"), pl.lit(" "), pl.col("b"), pl.lit("\n")])
            fh.write(df.select(line.str.join("")).item().encode())
    finally:
        fh.close()
        if gz:
            raw.close()
    tmp.rename(path)
    return path


def main() -> None:
    """python -m bench.gen ROOT FORMAT LINES [gz]: write one file (the bench runs this in a
    process of its own, so that its memory never counts in the measured processes' peak)."""
    import sys

    root, fmt, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    print(write_log(root, fmt, n, gz=len(sys.argv) > 4 and sys.argv[4] == "gz"))


if __name__ == "__main__":
    main()
