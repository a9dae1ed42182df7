"""The simulation clock: walks 10-minute bins from (start - 1 day) 00:00 to (start + days) 07:00
local, lets every generator add its lines, and hands them hour by hour to the two host logs.

Times are float seconds since the origin, (start - 1 day) 00:00 local. Asia/Tokyo has no DST,
so a local day is always 86400 s long.
"""

from __future__ import annotations

import random
import shutil
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from mmw_tasks.simulate.mail import Mailer
from mmw_tasks.simulate.postfix import PostfixMailer
from mmw_tasks.simulate.render import K_DQ, K_OTHER, Style
from mmw_tasks.simulate.rotate import FIRST, HostLog
from mmw_tasks.simulate.scenarios import Scenario
from mmw_tasks.simulate.site import LOCAL_DOMAIN, MX_FQDN, MX_IP, NS_IP, TIMEZONE, build_site
from mmw_tasks.simulate.traffic import IPLOG, Background
from mmw_tasks.simulate.truth import BINS_PER_DAY, Incidents, write_outputs

P_RETRANSMIT = 0.015  # a query of the mail server retransmitted identically (same port, same bytes)
MX_RESOLVED = f"{MX_FQDN} ({MX_IP})"
NAMED = "named[704]"
FLUSH_BINS = 6  # hand lines to the writers every hour of simulated time (every 10 min at large scale)


@lru_cache(maxsize=1)
def _site():
    return build_site()


class Sim:
    def __init__(self, out_dir: Path, start: date, days: int, scenario: str, seed: int, style: str, scale: float):
        self.out_dir = out_dir
        self.scenario, self.seed, self.scale = scenario, seed, scale
        self.rng = random.Random(seed)
        self.site = _site()
        self.origin = start - timedelta(days=1)
        self.n_days = days + 2
        self.requested = range(1, days + 1)
        self.end_t = (days + 1) * 86400 + 7 * 3600
        self.style = Style(style, self.origin, self.n_days, TIMEZONE)
        o = self.origin
        self.origin_epoch = int(datetime(o.year, o.month, o.day, tzinfo=ZoneInfo(TIMEZONE)).timestamp())
        self.ymd = [(self.origin + timedelta(days=i)).strftime("%Y%m%d") for i in range(self.n_days)]
        self.ns: list = []
        self.mx: list = []
        self.counts = [[0] * (self.n_days * BINS_PER_DAY) for _ in range(8)]
        self.incidents = Incidents(self.requested)
        self.pid_rate = 0.4 * scale
        self.pid_seen: dict[int, float] = {}
        self.pid_window = 300 / max(1.0, scale / 8)  # seconds during which a pid stays taken
        self.query = self._make_query() if self.style.dns == "iplog" else self._make_bind_query()
        self.mailer = PostfixMailer(self) if self.style.mta == "postfix" else Mailer(self)
        mobile = self.mailer.dom_index["mobile.ne.jp"]
        self.forwards = {  # user -> the remote (address, domain, ctladdr) its .forward sends to
            u.name: (u.forward, mobile, f", ctladdr=<{u.name}@{LOCAL_DOMAIN}> ({1000 + i}/100)")
            for i, u in enumerate(self.site.users)
            if u.forward
        }
        self.bg = Background(self)
        self.scen = Scenario(self, scenario)

    # -- services for the generators -----------------------------------------------------------
    def mx_pid(self, t: float) -> int:
        """A new process on the mail server at `t` (its pid + 1 is free for a forked child).

        Solaris pids climb with the process rate and wrap at 30000; two processes alive within
        the same few minutes never share a pid, whatever order the generators ask in.
        """
        pid = 300 + int(t * self.pid_rate) % 29600
        seen = self.pid_seen
        near = self.pid_window
        for _ in range(1000):  # bounded: at huge scales pids are simply reused sooner
            if abs(seen.get(pid, -1e9) - t) >= near and abs(seen.get(pid + 1, -1e9) - t) >= near:
                break
            pid = pid + 2 if pid < 29898 else 300
        seen[pid] = seen[pid + 1] = t
        return pid

    def ymdhms(self, t: float) -> str:
        sec = int(t)
        h = self.style.hms[sec % 86400]
        return f"{self.ymd[sec // 86400]}{h[:2]}{h[3:5]}{h[6:]}"

    def _make_query(self):
        """query(t, qname[, qtype]): one DNS query of the mail server, as iplog on the DNS server
        logs it (no name, no type)."""
        rnd = self.rng.random
        app = self.ns.append
        port = [1024 + self.rng.randrange(3976)]

        def query(t: float, qname: str, qtype: str | None = None) -> None:
            p = port[0] + 1
            if p > 4999:
                p = 1024
            port[0] = p
            r = rnd()  # < 0.1: iplog printed the resolved name; > 1 - P_RETRANSMIT: retransmitted
            body = (
                f"{IPLOG}: UDP: dgram to domain from {MX_RESOLVED if r < 0.1 else MX_IP}:{p} "
                f"({len(qname) + 18} data bytes)"
            )
            if r > 1 - P_RETRANSMIT:
                app((t, K_DQ, body, 1 + (rnd() < 0.3), 1 + 3 * rnd()))
            else:
                app((t, K_DQ, body))

        return query

    def _make_bind_query(self):
        """query(t, qname[, qtype]): one DNS query of the mail server, as BIND 9.16 logs it
        (category queries, through syslog). A retransmission is a query line of its own."""
        rnd = self.rng.random
        app = self.ns.append
        port = [32768 + self.rng.randrange(28000)]

        def query(t: float, qname: str, qtype: str | None = None) -> None:
            p = port[0] + 1 + int(rnd() * 40)  # glibc picks a random port per query
            if p > 60999:
                p = 32768 + p % 1000
            port[0] = p
            qt = qtype or ("PTR" if qname.endswith(".arpa") else "A")
            r = rnd()
            body = (
                f"{NAMED}: client @0x7f3c{int(r * 0xFFFFFF) * 16:08x} {MX_IP}#{p} ({qname}): "
                f"query: {qname} IN {qt} + ({NS_IP})"
            )
            if r > 1 - P_RETRANSMIT:
                app((t, K_DQ, body, 1 + (rnd() < 0.3), 1 + 3 * rnd()))
            else:
                app((t, K_DQ, body))

        return query

    def domain_down(self, name: str, t: float) -> bool:
        return self.scen.domain_down(name, t)

    def track_outage(self, domain: str, t: float) -> None:
        self.incidents.track("deferred_surge", domain, t, {"domain": domain}, deferred=1)

    # -- the clock -----------------------------------------------------------------------------
    def periodic(self, b: int, t0: float) -> None:
        """Lines that come by the clock: cron, named, MARK, NTP polls, sendmail queue runs."""
        rng = self.rng
        rnd = rng.random
        ns, mx = self.ns, self.mx
        minute = b * 10
        if not self.style.bsd:
            self._periodic_modern(minute, t0)
            return

        def cron(t: float, cmd: str) -> None:
            ns.append((t, K_OTHER, f"CROND[{rng.randrange(1000, 32000)}]: (root) CMD ({cmd})"))

        cron(t0 + 0.2 * rnd(), "/usr/lib/sa/sa1 1 1")
        if minute % 60 == 0:
            cron(t0 + 60 + rnd(), "run-parts /etc/cron.hourly")
            ns.append(
                (t0 + 1620 + 60 * rnd(), K_OTHER, f"named[233]: Cleaned cache of {rng.randrange(40, 900)} RRsets")
            )
        if minute == 240:  # logrotate runs from here; its rotation (and syslogd's restart) follows
            cron(t0 + 120 + 0.3 * rnd(), "run-parts /etc/cron.daily")
        if self.style.marks and minute % 20 == 0:
            ns.append((t0 + rnd(), K_OTHER, "-- MARK --"))
            mx.append((t0 + rnd(), K_OTHER, "-- MARK --"))
        while self.next_ntp < t0 + 600:  # xntpd on the mail server polls the DNS server every 1024 s
            ns.append((self.next_ntp, K_OTHER, f"{IPLOG}: UDP: dgram to port 123 from {MX_IP}:123 (48 data bytes)"))
            self.next_ntp += 1024
        if minute % 30 == 0:  # sendmail -q30m, daemon started at :07
            self.mailer.run_queue(t0 + 420 + 2 * rnd())

    def _periodic_modern(self, minute: int, t0: float) -> None:
        """Debian's cron and qmgr's deferred-queue scans."""
        rng = self.rng
        ns = self.ns

        def cron(t: float, cmd: str) -> None:
            ns.append((t, K_OTHER, f"CRON[{rng.randrange(1000, 32000)}]: (root) CMD ({cmd})"))

        if minute % 60 == 10:
            cron(t0 + 420 + 0.2 * rng.random(), "   cd / && run-parts --report /etc/cron.hourly")
        if minute == 380:  # 06:20 bin: cron.daily (logrotate) at 06:25
            cron(
                t0 + 300 + 0.3 * rng.random(),
                "test -x /usr/sbin/anacron || ( cd / && run-parts --report /etc/cron.daily )",
            )
        self.mailer.tick(t0)

    def rotation_times(self, hour: int, minute: int, jitter: float) -> list[float]:
        out = []
        for d in range(self.n_days):
            t = d * 86400 + hour * 3600 + minute * 60 + 1 + jitter * self.rng.random()
            if 0 < t < self.end_t:
                out.append(t)
        return out

    def run(self) -> Path:
        logs = self.out_dir / "logs"
        for sub in ("1dns", "1mx"):  # files of an earlier run would look like older rotations
            if (logs / sub).exists():
                shutil.rmtree(logs / sub)
        if self.style.bsd:
            writers = [
                (HostLog(self, logs / "1dns", "ns", "logrotate", self.rotation_times(4, 2, 8)), "ns"),
                (HostLog(self, logs / "1mx", "mx", "newsyslog", self.rotation_times(3, 10, 3)), "mx"),
            ]
        else:  # cron.daily at 06:25 runs logrotate on both hosts
            writers = [
                (HostLog(self, logs / "1dns", "ns", "dateext", self.rotation_times(6, 25, 20), "syslog"), "ns"),
                (HostLog(self, logs / "1mx", "mx", "dateext", self.rotation_times(6, 25, 20), "mail.log"), "mx"),
            ]
        self.next_ntp = 300 * self.rng.random()
        flush_every = FLUSH_BINS if self.scale <= 8 else 1
        for d in range(self.n_days):
            if d * 86400 >= self.end_t:
                break
            weekday = (self.origin + timedelta(days=d)).weekday()
            self.bg.start_day(weekday, holiday="holiday" in self.scen.by_day.get(d, ()))
            self.scen.start_day(d, weekday)
            for b in range(BINS_PER_DAY):
                t0 = d * 86400 + b * 600
                if t0 >= self.end_t:
                    break
                self.bg.run_bin(b, t0)
                self.scen.run_bin(t0, t0 + 600)
                self.periodic(b, t0)
                if b % flush_every == flush_every - 1:
                    self._flush(writers, t0 + 600 - 3)  # lines may precede their cause by 2 s
        self._flush(writers, self.end_t)
        files = []
        for w, _ in writers:
            w.close()
            files.extend(w.files)
        return write_outputs(self, files)

    def _flush(self, writers, cutoff: float) -> None:
        for w, attr in writers:
            evs = getattr(self, attr)  # the same list object throughout: generators hold its append
            evs.sort(key=FIRST)
            del evs[: w.write(evs, cutoff)]
