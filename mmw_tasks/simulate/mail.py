"""sendmail 8.12 on the mail server: one accepted message becomes its rejection, from= and to=
lines, plus the DNS queries the server makes for it (one iplog line each on the DNS server).

DNS cost of a message (Musashi et al.): 2 queries for the SMTP access (PTR of the client, A of
the name it returns), then 4 per MX host of every remote domain the message is transferred to,
each 0-2 s before the line that causes it (a connection that times out adds its 75 s between the
lookups and the to= line). Deferred deliveries sit in the queue and are retried by queue runs every
30 minutes; retries use the resolver's cache and make no DNS queries.
"""

from __future__ import annotations

import time

from mmw_tasks.simulate.render import K_DEFERRED, K_FROM, K_SENT, K_TO_OTHER, K_USER_UNKNOWN, fmt_delay
from mmw_tasks.simulate.site import LOCAL_DOMAIN, MX_FQDN, Domain, in_addr

QIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx"  # sendmail 8.12 QueueIdChars
P_DEFER = 0.012  # a first delivery attempt deferred for an ordinary reason
P_BOUNCE = 0.003
_DEFER_REASONS = (
    "Connection refused by {host}.",
    "451 4.3.0 Temporary system failure. Please try again later.",
    "Connection timed out with {host}.",
    "452 4.3.1 Insufficient system storage",
)
_OUTAGE_REASON = "Connection timed out with {host}."


class Pending:
    """One deferred delivery (a to= group of one message) waiting in the queue."""

    __slots__ = ("qid", "t0", "rcpts", "dom", "pri", "tries", "fails_left", "reason", "last")

    def __init__(self, qid, t0, rcpts, dom, pri, fails_left, reason, last):
        self.qid, self.t0, self.rcpts, self.dom, self.pri = qid, t0, rcpts, dom, pri
        self.tries, self.fails_left, self.reason, self.last = 1, fails_left, reason, last


def sent_stat(dom_index: int, r: float) -> str:
    """The remote MTA's reply, in the style of the software the domain runs."""
    k = dom_index % 4
    n = int(r * 0xFFFFFFF)
    if k == 0:
        return "Sent (ok)"
    if k == 1:
        return f"Sent (Ok: queued as {n:07X})"
    if k == 2:
        return f"Sent ({QIC[n % 60]}{QIC[n // 60 % 60]}{n % 999983:06d} Message accepted for delivery)"
    return f"Sent (OK id=1{QIC[n % 60]}{n % 99991:05d}-000{n % 7}Kd-00)"


class Mailer:
    def __init__(self, sim):
        self.sim = sim
        self.tag = sim.style.sendmail_tag
        self.queue: list[Pending] = []
        self.qids: set[str] = set()
        self.dom_index = {d.name: i for i, d in enumerate(sim.site.domains)}

    # -- identifiers ---------------------------------------------------------------------------
    def qid(self, t: float, pid: int) -> str:
        """An 8.12 queue id: GMT y/m/d/h/m/s, a 2-char sequence and the 6-digit pid."""
        g = time.gmtime(self.sim.origin_epoch + int(t))
        head = (
            QIC[(g.tm_year - 1900) % 60]
            + QIC[g.tm_mon - 1]
            + QIC[g.tm_mday]
            + QIC[g.tm_hour]
            + QIC[g.tm_min]
            + QIC[g.tm_sec]
        )
        seq = int(self.sim.rng.random() * 3600)
        q = f"{head}{QIC[seq // 60]}{QIC[seq % 60]}{pid:06d}"
        while q in self.qids:
            seq = (seq + 1) % 3600
            q = f"{head}{QIC[seq // 60]}{QIC[seq % 60]}{pid:06d}"
        if len(self.qids) > 2_000_000:
            self.qids.clear()
        self.qids.add(q)
        return q

    # -- one message ---------------------------------------------------------------------------
    def message(
        self,
        t: float,
        relay: str,
        client_ip: str,
        client_name: str | None,
        sender: str,
        size: int,
        msgid: str | None,
        proto: str = "ESMTP",
        local: tuple = (),
        remote: tuple = (),
        unknown: tuple = (),
        prog: tuple | None = None,
        track=None,
    ) -> str:
        """Log one SMTP transaction accepted at `t` (the from= line's time); returns its queue id.

        local: local user names; remote: (address, domain index) pairs; unknown: refused local
        addresses (one `User unknown` line each); prog: (command, alias) of a program alias
        delivery (the mailing-list server).
        `track(t)` is called with the time of every from=/to= line (incident bookkeeping).
        """
        sim = self.sim
        rng = sim.rng
        rnd = rng.random
        tag = self.tag
        pid = sim.mx_pid(t)
        qid = self.qid(t - 1 - 3 * rnd(), pid)
        mx = sim.mx
        if msgid == "*":  # no Message-Id header: sendmail adds <$t.$i@$j>, $t in GMT
            g = time.gmtime(sim.origin_epoch + int(t))
            msgid = f"<{g.tm_year}{g.tm_mon:02d}{g.tm_mday:02d}{g.tm_hour:02d}{g.tm_min:02d}.{qid}@{MX_FQDN}>"
        # the SMTP access: PTR of the client, A of the name it returns
        sim.query(t - 2 * rnd(), in_addr(client_ip))
        sim.query(t - 2 * rnd(), client_name or in_addr(client_ip))
        for addr in unknown:
            mx.append((t - 0.2 - 1.3 * rnd(), K_USER_UNKNOWN, f"{tag}[{pid}]: {qid}: <{addr}>... User unknown"))
            if sim.style.repeats and rnd() < 0.03:  # the client retried the same RCPT
                mx[-1] = mx[-1] + (1, 1 + 2 * rnd())
        nrcpts = len(local) + len(remote) + (prog is not None)
        if nrcpts == 0:
            mx.append(
                (
                    t,
                    K_FROM,
                    f"{tag}[{pid}]: {qid}: from=<{sender}>, size=0, class=0, nrcpts=0, "
                    f"proto={proto}, daemon=MTA, relay={relay}",
                )
            )
            if track:
                track(t)
            return qid
        mid = f", msgid={msgid}" if msgid else ""
        mx.append(
            (
                t,
                K_FROM,
                f"{tag}[{pid}]: {qid}: from=<{sender}>, size={size}, class=0, "
                f"nrcpts={nrcpts}{mid}, proto={proto}, daemon=MTA, relay={relay}",
            )
        )
        if track:
            track(t)
        dpid = pid + 1  # the forked delivery process
        pri = size + 30000 * nrcpts
        td = t + 0.1 + rnd()
        start = t - 1 - 2 * rnd()  # when the client connected: delay= counts from here
        if prog is not None:  # a program alias (the list server): prog = (command, alias address)
            mx.append(
                (
                    td,
                    K_SENT,
                    f'{tag}[{dpid}]: {qid}: to="{prog[0]}", ctladdr=<{prog[1]}> (1001/1001), '
                    f"delay={fmt_delay(td - start)}, xdelay=00:00:00, mailer=prog, "
                    f"pri={pri}, dsn=2.0.0, stat=Sent",
                )
            )
        forwards = sim.forwards
        for name in local:
            fwd = forwards.get(name)
            if fwd:  # .forward to the user's mobile phone: a remote transfer
                remote = remote + (fwd,)
                continue
            td += 0.05 + 0.3 * rnd()
            mx.append(
                (
                    td,
                    K_SENT,
                    f"{tag}[{dpid}]: {qid}: to=<{name}@{LOCAL_DOMAIN}>, "
                    f"delay={fmt_delay(td - start)}, xdelay=00:00:00, mailer=local, "
                    f"pri={pri}, dsn=2.0.0, stat=Sent",
                )
            )
            if track:
                track(td)
        if remote:
            groups: dict = {}
            for r in remote:  # one SMTP delivery (one to= line) per domain; forwards on their own
                groups.setdefault(r[1] if len(r) == 2 else r[1:], []).append(r)
            domains = sim.site.domains
            for rs in groups.values():
                di = rs[0][1]
                td = self._transfer(td, start, qid, dpid, pri, domains[di], di, rs, size, track)
        return qid

    def _transfer(self, td, start, qid, dpid, pri, dom: Domain, di, rs, size, track) -> float:
        sim = self.sim
        rnd = sim.rng.random
        x0 = td
        td += 0.4 + 2.0 * rnd() + size / 400000
        for h in dom.hosts:  # MX, A and friends: 4 per MX host, before the connection
            for q in (dom.name, h, h, dom.name):
                sim.query(td - 2 * rnd(), q)
        ctl = rs[0][2] if len(rs[0]) > 2 else ""  # ", ctladdr=<user@...> (uid/gid)" of a .forward
        rcpts = ",".join(f"<{r[0]}>" for r in rs)
        host, ip = dom.hosts[0], dom.ips[0]
        if sim.domain_down(dom.name, td):
            td += 75 + rnd()
            reason = _OUTAGE_REASON.format(host=host)
            self._to(td, K_DEFERRED, dpid, qid, rcpts + ctl, start, x0, pri, f"{host}.", "4.0.0", f"Deferred: {reason}")
            sim.track_outage(dom.name, td)
            self.queue.append(Pending(qid, start, rcpts + ctl, di, pri, 0, reason, td))
        elif rnd() < P_DEFER:
            reason = _DEFER_REASONS[int(rnd() * len(_DEFER_REASONS))].format(host=host)
            if "timed out" in reason:
                td += 75 + rnd()
            relay = f"{host}." if reason.startswith("Conn") else f"{host}. [{ip}]"
            self._to(td, K_DEFERRED, dpid, qid, rcpts + ctl, start, x0, pri, relay, "4.0.0", f"Deferred: {reason}")
            self.queue.append(Pending(qid, start, rcpts + ctl, di, pri, 1 + int(rnd() * 4), reason, td))
        elif rnd() < P_BOUNCE:
            self._to(
                td,
                K_TO_OTHER,
                dpid,
                qid,
                rcpts + ctl,
                start,
                x0,
                pri,
                f"{host}. [{ip}]",
                "5.0.0",
                "Service unavailable",
            )
        else:
            self._to(
                td, K_SENT, dpid, qid, rcpts + ctl, start, x0, pri, f"{host}. [{ip}]", "2.0.0", sent_stat(di, rnd())
            )
        if track:
            track(td)
        return td

    def _to(self, t, kind, pid, qid, rcpts, start, x0, pri, relay, dsn, stat) -> None:
        """One esmtp to= line (a delivery attempt for the recipients of one domain)."""
        self.sim.mx.append(
            (
                t,
                kind,
                f"{self.tag}[{pid}]: {qid}: to={rcpts}, delay={fmt_delay(t - start)}, "
                f"xdelay={fmt_delay(t - x0)}, mailer=esmtp, pri={pri}, relay={relay}, "
                f"dsn={dsn}, stat={stat}",
            )
        )

    # -- queue runs ----------------------------------------------------------------------------
    def run_queue(self, T: float) -> None:
        """`sendmail -q30m`: retry every deferred delivery once. No DNS (resolver cache)."""
        if not self.queue:
            return
        sim = self.sim
        rnd = sim.rng.random
        pid = sim.mx_pid(T)
        domains = sim.site.domains
        t = T + rnd()
        timed_out: set[int] = set()  # host status cache: one connection timeout per run and host
        keep: list[Pending] = []
        for p in self.queue:
            if p.last >= T:
                keep.append(p)
                continue
            dom = domains[p.dom]
            p.tries += 1
            pri = p.pri + 90000 * (p.tries - 1)
            x0 = t
            host = dom.hosts[0]
            if sim.domain_down(dom.name, t):
                t += 0.05 + 0.2 * rnd() if p.dom in timed_out else 75 + rnd()
                timed_out.add(p.dom)
                self._to(
                    t,
                    K_DEFERRED,
                    pid,
                    p.qid,
                    p.rcpts,
                    p.t0,
                    x0,
                    pri,
                    f"{host}.",
                    "4.0.0",
                    f"Deferred: {_OUTAGE_REASON.format(host=host)}",
                )
                sim.track_outage(dom.name, t)
                p.last = t
                keep.append(p)
            elif p.fails_left > 0:
                p.fails_left -= 1
                t += 75 + rnd() if "timed out" in p.reason else 0.1 + 2 * rnd()
                relay = f"{host}." if p.reason.startswith("Conn") else f"{host}. [{dom.ips[0]}]"
                self._to(t, K_DEFERRED, pid, p.qid, p.rcpts, p.t0, x0, pri, relay, "4.0.0", f"Deferred: {p.reason}")
                p.last = t
                keep.append(p)
            else:
                t += 0.5 + 2.5 * rnd()
                self._to(
                    t,
                    K_SENT,
                    pid,
                    p.qid,
                    p.rcpts,
                    p.t0,
                    x0,
                    pri,
                    f"{host}. [{dom.ips[0]}]",
                    "2.0.0",
                    sent_stat(p.dom, rnd()),
                )
        self.queue = keep
