"""Writing one host's log the way its syslogd and rotation job leave it on disk, and counting
what is written (truth.json is built from these tallies, never from the generator's intentions).

DNS server (Red Hat, sysklogd + logrotate with compress/delaycompress, cron.daily at 04:02):
    messages (live), messages.1 (plain), messages.2.gz, messages.3.gz, ...
    each new file starts with `syslogd 1.4.1: restart.`
Mail server (Solaris newsyslog, daily at 03:10): syslog (live), syslog.0, syslog.1, ... uncompressed.
Modern stack (Debian, logrotate from cron.daily at 06:25 with dateext, compress, delaycompress):
    mail.log / syslog (live), mail.log-20020217 (plain, the last rotation's date),
    mail.log-20020216.gz, ...
Every file's mtime is the time of its last line; .gz headers carry it too and no file name.
"""

from __future__ import annotations

import gzip
import os
import struct
from operator import itemgetter
from pathlib import Path

FIRST = itemgetter(0)


def segment_name(sim, scheme: str, base: str, rotations: list[float], seg: int) -> str:
    """The name segment `seg` of a host's log has once the run is over (0 = the oldest)."""
    r = len(rotations) - seg  # 0 = live file
    if scheme == "dateext":  # named by the day of the rotation that closed the segment
        if r == 0:
            return base
        return f"{base}-{sim.ymd[int(rotations[seg]) // 86400]}" + (".gz" if r > 1 else "")
    if scheme == "logrotate":
        return "messages" if r == 0 else f"messages.{r}" if r == 1 else f"messages.{r}.gz"
    return "syslog" if r == 0 else f"syslog.{r - 1}"


def finish_file(sim, fh, raw, path: Path, lines: int, first: int | None, last: int) -> dict:
    """Close a segment's file (`raw` under a gzip `fh`, else None), date it by its last line (the
    gzip header's MTIME too) and return its entry of truth.json's file list."""
    fh.close()
    if raw is not None:
        raw.close()
    epoch = sim.origin_epoch + last
    if raw is not None:  # the gzip header's MTIME (bytes 4-7, not covered by any CRC)
        with open(path, "r+b") as f:
            f.seek(4)
            f.write(struct.pack("<I", epoch))
    os.utime(path, (epoch, epoch))
    return {"file": str(path.relative_to(sim.out_dir)), "lines": lines, "first": first, "last": last}


class HostLog:
    """One host's syslog output: segments between rotations, written in time order."""

    def __init__(self, sim, directory: Path, host: str, scheme: str, rotations: list[float], base: str = ""):
        self.sim = sim
        self.base = base  # the live file's name (dateext scheme)
        self.host = host
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.rotations = rotations  # sorted rotation times (seconds since the origin)
        self.n_segments = len(rotations) + 1
        self.scheme = scheme
        self.restart = sim.style.restart_body(host)
        self.counts = sim.counts
        self.seg = -1
        self.fh = None
        self._raw = None
        self.path: Path | None = None
        self.gz = False
        self.last_sec = 0
        self.lines = 0
        self.files: list[dict] = []
        self._open_next(None)

    # -- segments ------------------------------------------------------------------------------
    def name_of(self, seg: int) -> str:
        return segment_name(self.sim, self.scheme, self.base, self.rotations, seg)

    def _open_next(self, rot_t: float | None) -> list[str]:
        self._close()
        self.seg += 1
        name = self.name_of(self.seg)
        self.path = self.dir / name
        self.gz = name.endswith(".gz")
        raw = self._raw = open(self.path, "wb")  # noqa: SIM115 - closed in _close
        # no file name in the header (logrotate pipes through gzip); MTIME is patched in at close
        self.fh = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=1) if self.gz else raw
        self.lines = 0
        self.first_sec = None
        self.next_rot = self.rotations[self.seg] if self.seg < len(self.rotations) else float("inf")
        if rot_t is not None and self.restart:
            sec = int(rot_t)
            self.first_sec = self.last_sec = sec
            self.lines = 1
            return [f"{self.sim.style.stamp(rot_t)} {self.host} {self.restart}\n"]
        return []

    def _close(self) -> None:
        if self.fh is None:
            return
        self.files.append(
            finish_file(
                self.sim, self.fh, self._raw if self.gz else None, self.path, self.lines, self.first_sec, self.last_sec
            )
        )
        self.fh = None

    def close(self) -> None:
        self._close()

    # -- lines ---------------------------------------------------------------------------------
    def write(self, evs: list, cutoff: float) -> int:
        """Write the events (sorted by time) before `cutoff`; return how many were written."""
        style = self.sim.style
        bsd = style.bsd
        dp, hms = style.day_prefix, style.hms
        stamp = style.stamp
        host = self.host
        cnt = self.counts
        out: list[str] = []
        app = out.append
        rot = self.next_rot
        n = len(evs)
        i = 0
        last = self.last_sec
        lines = self.lines
        first = self.first_sec
        while i < n:
            ev = evs[i]
            t = ev[0]
            if t >= cutoff:
                break
            if t >= rot:
                self.last_sec, self.lines, self.first_sec = last, lines, first
                self._flush(out)
                out = self._open_next(rot)
                app = out.append
                last, lines, first = self.last_sec, self.lines, self.first_sec
                rot = self.next_rot
                continue
            sec = int(t)
            if bsd:
                app(f"{dp[sec // 86400]}{hms[sec % 86400]} {host} {ev[2]}\n")
            else:
                app(f"{stamp(t)} {host} {ev[2]}\n")
            k = ev[1]
            if k:
                cnt[k][sec // 600] += 1
            last = sec
            lines += 1
            if first is None:
                first = sec
            if len(ev) > 3:  # `last message repeated N times`, stamped at the last copy
                rn = ev[3]
                nxt = evs[i + 1][0] if i + 1 < n else cutoff
                rt = max(t, min(t + ev[4], nxt, rot - 0.001, cutoff - 0.001))
                rsec = int(rt)
                if bsd:  # sysklogd 1.x / Solaris: a single duplicate is written out again
                    rep = ev[2] if rn == 1 else f"last message repeated {rn} times"
                    app(f"{dp[rsec // 86400]}{hms[rsec % 86400]} {host} {rep}\n")
                    if k:
                        cnt[k][rsec // 600] += rn
                    lines += 1
                else:  # no repeat reduction: every copy is a line of its own
                    for j in range(rn):
                        ct = t + (rt - t) * (j + 1) / rn
                        app(f"{stamp(ct)} {host} {ev[2]}\n")
                        if k:
                            cnt[k][int(ct) // 600] += 1
                    lines += rn
                last = rsec
            i += 1
        self.last_sec, self.lines, self.first_sec = last, lines, first
        self._flush(out)
        return i

    def _flush(self, out: list[str]) -> None:
        if out:
            self.fh.write("".join(out).encode())
