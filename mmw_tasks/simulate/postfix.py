"""Postfix 3.x on the mail server (the modern stack). One SMTP session becomes smtpd's connect,
client=, rejects and disconnect, cleanup's message-id, qmgr's from= and removed, and one to= line
per recipient from smtp, local or error, plus the DNS queries the server makes for it (one BIND
query line each on the DNS server).

What counts (contract section 5, Postfix semantics): n_from is the qmgr `from=` line of a message
accepted into the queue, once (qmgr logs it again on every retry from the deferred queue: those
copies count nothing); n_to every `to=` line; n_user_unknown every `Recipient address rejected:
User unknown in local recipient table`. With smtpd_delay_open_until_valid_rcpt (the default) the
queue file is opened at the first accepted recipient: rejects before it are `NOQUEUE`, rejects
after it carry the queue id, and a session whose every recipient is refused has no from= at all.

DNS cost as in the sendmail stack: 2 queries for the SMTP access, 4 per MX host of every remote
domain on a message's first delivery attempt; retries hit the resolver's cache. Deferred mail is
retried by qmgr's deferred-queue scans (every queue_run_delay, 300 s) once its backoff (the
message's age, kept between 300 and 4000 s) has passed. A destination whose hosts time out is
suspended for minimal_backoff_time (300 s): meanwhile its deliveries are deferred at once by
error(8), without a connection or a lookup. Mail to a user with a .forward is rewritten by
virtual_alias_maps (`orig_to=`); a bounce makes a non-delivery notification (a message of its own).
"""

from __future__ import annotations

from mmw_tasks.simulate.mail import P_BOUNCE, P_DEFER
from mmw_tasks.simulate.render import K_DEFERRED, K_FROM, K_OTHER, K_SENT, K_TO_OTHER, K_USER_UNKNOWN
from mmw_tasks.simulate.site import LOCAL_DOMAIN, MX_FQDN, Domain, in_addr

QUEUE_RUN_DELAY = 300
MIN_BACKOFF, MAX_BACKOFF = 300, 4000
CONNECT_TIMEOUT = 30
QMGR_PID = 1187
_DEFER = (  # (reason, dsn); {h} is "host[ip]"
    ("connect to {h}:25: Connection refused", "4.4.1"),
    (
        "host {h} said: 451 4.3.0 Temporary system failure. Please try again later. (in reply to RCPT TO command)",
        "4.3.0",
    ),
    ("connect to {h}:25: Connection timed out", "4.4.1"),
    ("host {h} said: 452 4.3.1 Insufficient system storage (in reply to MAIL FROM command)", "4.3.1"),
)
_BOUNCE = "host {h} said: 554 5.0.0 Service unavailable (in reply to RCPT TO command)"


def pf_delay(d: float) -> str:
    """A delay as Postfix logs it: 2 decimals under 10 s, 1 under 100 s, none above; no trailing 0."""
    if d >= 100:
        return str(int(d))
    s = f"{d:.1f}" if d >= 10 else f"{max(d, 0.0):.2f}"
    return s.rstrip("0").rstrip(".") or "0"


def remote_reply(di: int, r: float) -> str:
    """The remote MTA's 250 reply, in the style of the software the domain runs."""
    k = di % 4
    n = int(r * 0xFFFFFFF)
    if k == 0:
        return f"250 2.0.0 Ok: queued as {n:09X}"
    if k == 1:
        return f"250 ok {1013800000 + n % 99999} qp {n % 29989}"
    if k == 2:
        return f"250 2.0.0 g1G{n % 999983:06d} Message accepted for delivery"
    return f"250 OK id=18{n % 99991:05d}-000{n % 7}Kd-00"


class Msg:
    """A message in the queue: what is left to deliver and when qmgr tries again."""

    __slots__ = ("qid", "arrival", "active", "sender", "size", "pending", "bounced", "next_try", "track")

    def __init__(self, qid, arrival, active, sender, size, track):
        self.qid, self.arrival, self.active, self.sender, self.size = qid, arrival, active, sender, size
        self.pending: list[tuple] = []  # (address, domain index, orig_to, fails left, reason, dsn)
        self.bounced: list[str] = []
        self.next_try = 0.0
        self.track = track


class PostfixMailer:
    def __init__(self, sim):
        self.sim = sim
        rng = sim.rng
        self.dom_index = {d.name: i for i, d in enumerate(sim.site.domains)}
        self.deferred: list[Msg] = []
        self.suspended: dict[int, tuple[float, float]] = {}  # domain index -> (from, until)
        self.qids: set[str] = set()
        self.inode = rng.randrange(1 << 19)
        self.cleanup_pids = [rng.randrange(2000, 30000) for _ in range(3)]
        self.smtp_pids = [rng.randrange(2000, 30000) for _ in range(12)]
        self.local_pids = [rng.randrange(2000, 30000) for _ in range(4)]
        self.bounce_pid = rng.randrange(2000, 30000)
        self.error_pid = rng.randrange(2000, 30000)
        self.scan_offset = QUEUE_RUN_DELAY * rng.random()

    # -- identifiers ---------------------------------------------------------------------------
    def qid(self, t: float, pid: int = 0) -> str:
        """A short Postfix queue id: microseconds and inode number, in hex."""
        usec = int((t - int(t)) * 1e6) % 1000000
        rnd = self.sim.rng.random
        while True:
            self.inode = (self.inode + 1 + int(rnd() * 4)) & 0xFFFFF
            q = f"{usec:05X}{self.inode:05X}"
            if q not in self.qids:
                break
        if len(self.qids) > 2_000_000:
            self.qids.clear()
        self.qids.add(q)
        return q

    def _pick(self, pids: list[int]) -> int:
        return pids[int(self.sim.rng.random() * len(pids))]

    # -- one SMTP session ----------------------------------------------------------------------
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
    ) -> str | None:
        """Log one SMTP session whose message reaches qmgr at `t` (the from= line's time); returns
        its queue id, or None when every recipient was refused. Arguments as Mailer.message."""
        sim = self.sim
        rnd = sim.rng.random
        app = sim.mx.append
        client = f"unknown[{client_ip}]" if client_name is None or "forged" in relay else f"{client_name}[{client_ip}]"
        spid = sim.mx_pid(t)
        tc = t - 1.0 - 1.5 * rnd()  # connect; the session's lines stay within 3 s of `t`
        app((tc, K_OTHER, f"postfix/smtpd[{spid}]: connect from {client}"))
        sim.query(tc + 0.05 * rnd(), in_addr(client_ip), "PTR")
        sim.query(tc + 0.05 + 0.05 * rnd(), client_name or in_addr(client_ip), "A" if client_name else "PTR")
        rcpts: list[tuple] = []  # what the client asked for, in order: (kind, value)
        if prog is not None:
            rcpts.append(("prog", prog))
        rcpts += [("local", n) for n in local]
        rcpts += [("remote", r) for r in remote]
        for a in unknown:  # the guesses come anywhere among the good addresses
            rcpts.insert(int(rnd() * (len(rcpts) + 1)), ("unknown", a))
        qid = None
        helo = client_name or f"[{client_ip}]"
        span = t - tc - 0.5
        n = len(rcpts)
        for i, (kind, v) in enumerate(rcpts):
            tr = tc + 0.2 + span * (i + rnd()) / n
            if kind == "unknown":
                app(
                    (
                        tr,
                        K_USER_UNKNOWN,
                        f"postfix/smtpd[{spid}]: {qid or 'NOQUEUE'}: reject: RCPT from {client}: 550 5.1.1 <{v}>: "
                        f"Recipient address rejected: User unknown in local recipient table; from=<{sender}> "
                        f"to=<{v}> proto={proto} helo=<{helo}>",
                    )
                )
            elif qid is None:
                qid = self.qid(tr)
                app((tr, K_OTHER, f"postfix/smtpd[{spid}]: {qid}: client={client}"))
        greet = "ehlo" if proto == "ESMTP" else "helo"
        n_ok = n - len(unknown)
        if qid is None:  # nothing accepted: no queue file, no from=
            app(
                (
                    t + 0.1 * rnd(),
                    K_OTHER,
                    f"postfix/smtpd[{spid}]: disconnect from {client} {greet}=1 mail=1 "
                    f"rcpt=0/{n} data=0/1 rset=1 quit=1 commands=4/{5 + n}",
                )
            )
            if track:
                track(t)
            return None
        if msgid in ("*", None):  # no Message-Id header: cleanup adds one
            msgid = f"<{sim.ymdhms(t)}.{qid}@{MX_FQDN}>"
        app(
            (
                t - 0.1 - 0.1 * rnd(),
                K_OTHER,
                f"postfix/cleanup[{self._pick(self.cleanup_pids)}]: {qid}: message-id={msgid}",
            )
        )
        app((t, K_FROM, f"postfix/qmgr[{QMGR_PID}]: {qid}: from=<{sender}>, size={size}, nrcpt={n_ok} (queue active)"))
        if track:
            track(t)
        rc, cmds = (f"{n}", f"{4 + n}") if n_ok == n else (f"{n_ok}/{n}", f"{4 + n_ok}/{4 + n}")
        app(
            (
                t + 0.05 + 0.1 * rnd(),
                K_OTHER,
                f"postfix/smtpd[{spid}]: disconnect from {client} {greet}=1 mail=1 "
                f"rcpt={rc} data=1 quit=1 commands={cmds}",
            )
        )
        msg = Msg(qid, tc, t, sender, size, track)
        td = t + 0.05 + 0.2 * rnd()
        if prog is not None:
            td = self._local(msg, td, prog[1], f"delivered to command: {prog[0].lstrip('|')}")
        forwards = sim.forwards
        out: list[tuple] = []
        for name in local:
            fwd = forwards.get(name)
            if fwd:  # .forward to the user's mobile phone, as a virtual alias: a remote delivery
                out.append((fwd[0], fwd[1], f"{name}@{LOCAL_DOMAIN}"))
            else:
                td = self._local(msg, td, f"{name}@{LOCAL_DOMAIN}", "delivered to mailbox")
        out += [(a, di, None) for a, di in remote]
        td = self._deliver(msg, td, out, first=True)
        self._done(msg, td)
        return qid

    # -- delivery ------------------------------------------------------------------------------
    def _to(
        self,
        t: float,
        kind: int,
        agent: str,
        pid: int,
        msg: Msg,
        rcpt: str,
        orig: str | None,
        relay: str,
        x0: float,
        dsn: str,
        status: str,
    ) -> None:
        """One to= line: delay from the message's arrival, delays split in before-qmgr, in-qmgr,
        connection setup and transmission."""
        a = msg.active - msg.arrival
        b = max(0.0, x0 - msg.active)
        c = min(max(0.0, t - x0), 0.05 if relay != "none" else t - x0)
        d = max(0.0, t - msg.arrival - a - b - c)
        o = f" orig_to=<{orig}>," if orig else ""
        self.sim.mx.append(
            (
                t,
                kind,
                f"postfix/{agent}[{pid}]: {msg.qid}: to=<{rcpt}>,{o} relay={relay}, "
                f"delay={pf_delay(t - msg.arrival)}, delays={pf_delay(a)}/{pf_delay(b)}/"
                f"{pf_delay(c)}/{pf_delay(d)}, dsn={dsn}, status={status}",
            )
        )
        if msg.track:
            msg.track(t)

    def _local(self, msg: Msg, td: float, rcpt: str, what: str) -> float:
        td += 0.02 + 0.2 * self.sim.rng.random()
        self._to(
            td,
            K_SENT,
            "local",
            self._pick(self.local_pids),
            msg,
            rcpt,
            None,
            "local",
            td - 0.01,
            "2.0.0",
            f"sent ({what})",
        )
        return td

    def _deliver(self, msg: Msg, td: float, rcpts: list[tuple], first: bool) -> float:
        """Deliver (address, domain index, orig_to[, fails left, reason, dsn]) entries, one smtp
        session per domain; returns the time of the last line."""
        groups: dict[int, list[tuple]] = {}
        for r in rcpts:
            groups.setdefault(r[1], []).append(r)
        domains = self.sim.site.domains
        end = td
        for di, rs in groups.items():
            end = max(end, self._session(msg, td, domains[di], di, rs, first))
            td += 0.01
        return end

    def _session(self, msg: Msg, td: float, dom: Domain, di: int, rs: list[tuple], first: bool) -> float:
        sim = self.sim
        rnd = sim.rng.random
        h = f"{dom.hosts[0]}[{dom.ips[0]}]"
        x0 = td
        sus = self.suspended.get(di)
        if sus is not None and sus[0] <= td < sus[1]:  # qmgr knows the site is dead: error(8) defers
            reason = f"delivery temporarily suspended: connect to {h}:25: Connection timed out"
            for r in rs:
                td += 0.002 + 0.01 * rnd()
                self._to(
                    td,
                    K_DEFERRED,
                    "error",
                    self.error_pid,
                    msg,
                    r[0],
                    r[2],
                    "none",
                    x0,
                    "4.4.1",
                    f"deferred ({reason})",
                )
                sim.track_outage(dom.name, td)
                msg.pending.append((r[0], di, r[2], r[3] if len(r) > 3 else 0, *(r[4:] or ("", ""))))
            return td
        pid = self._pick(self.smtp_pids)
        if first:
            td += 0.3 + 1.5 * rnd() + msg.size / 400000
            for host in dom.hosts:  # MX, A and friends: 4 per MX host, before the connection
                for q, qt in ((dom.name, "MX"), (host, "A"), (host, "AAAA"), (dom.name, "A")):
                    sim.query(td - 0.25 * rnd() - 0.05, q, qt)
        else:
            td += 0.2 + 1.0 * rnd()
        if sim.domain_down(dom.name, td):
            td += CONNECT_TIMEOUT * dom.n + rnd()
            self.suspended[di] = (x0, td + MIN_BACKOFF)
            for r in rs:
                td += 0.002 + 0.01 * rnd()
                self._to(
                    td,
                    K_DEFERRED,
                    "smtp",
                    pid,
                    msg,
                    r[0],
                    r[2],
                    "none",
                    x0,
                    "4.4.1",
                    f"deferred (connect to {h}:25: Connection timed out)",
                )
                sim.track_outage(dom.name, td)
                msg.pending.append((r[0], di, r[2], r[3] if len(r) > 3 else 0, *(r[4:] or ("", ""))))
            return td
        if len(rs[0]) > 3:  # a retry: an ordinary deferral keeps failing a few times
            fails, reason, dsn = rs[0][3], rs[0][4], rs[0][5]
            if fails > 0 and reason:
                if "timed out" in reason:
                    td += CONNECT_TIMEOUT * dom.n
                relay = "none" if reason.startswith("connect") else f"{h}:25"
                for r in rs:
                    td += 0.01 + 0.05 * rnd()
                    self._to(td, K_DEFERRED, "smtp", pid, msg, r[0], r[2], relay, x0, dsn, f"deferred ({reason})")
                    msg.pending.append((r[0], di, r[2], fails - 1, reason, dsn))
                return td
        elif rnd() < P_DEFER:
            reason, dsn = _DEFER[int(rnd() * len(_DEFER))]
            reason = reason.format(h=h)
            if "timed out" in reason:
                td += CONNECT_TIMEOUT * dom.n
            relay = "none" if reason.startswith("connect") else f"{h}:25"
            fails = int(rnd() * 4)
            for r in rs:
                td += 0.01 + 0.05 * rnd()
                self._to(td, K_DEFERRED, "smtp", pid, msg, r[0], r[2], relay, x0, dsn, f"deferred ({reason})")
                msg.pending.append((r[0], di, r[2], fails, reason, dsn))
            return td
        elif rnd() < P_BOUNCE:
            for r in rs:
                td += 0.01 + 0.05 * rnd()
                self._to(
                    td,
                    K_TO_OTHER,
                    "smtp",
                    pid,
                    msg,
                    r[0],
                    r[2],
                    f"{h}:25",
                    x0,
                    "5.0.0",
                    f"bounced ({_BOUNCE.format(h=h)})",
                )
                msg.bounced.append(r[0])
            return td
        reply = remote_reply(di, rnd())
        for r in rs:
            td += 0.01 + 0.05 * rnd()
            self._to(td, K_SENT, "smtp", pid, msg, r[0], r[2], f"{h}:25", x0, "2.0.0", f"sent ({reply})")
        return td

    def _done(self, msg: Msg, t: float) -> None:
        """After an attempt: a non-delivery notification for bounced recipients, then `removed`,
        or back to the deferred queue with its backoff."""
        sim = self.sim
        rnd = sim.rng.random
        if msg.bounced and msg.sender:
            t = self._notify(msg, t + 0.05 + 0.1 * rnd())
        msg.bounced = []
        if msg.pending:
            msg.next_try = t + min(MAX_BACKOFF, max(MIN_BACKOFF, t - msg.arrival))
            self.deferred.append(msg)
        else:
            sim.mx.append((t + 0.01 + 0.2 * rnd(), K_OTHER, f"postfix/qmgr[{QMGR_PID}]: {msg.qid}: removed"))

    def _notify(self, msg: Msg, t: float) -> float:
        """bounce(8): a non-delivery notification to the sender, a new message from <>."""
        sim = self.sim
        rnd = sim.rng.random
        app = sim.mx.append
        local_part, _, dom = msg.sender.rpartition("@")
        di = self.dom_index.get(dom)
        if dom != LOCAL_DOMAIN and di is None:
            return t
        nq = self.qid(t)
        app(
            (
                t,
                K_OTHER,
                f"postfix/cleanup[{self._pick(self.cleanup_pids)}]: {nq}: message-id=<{sim.ymdhms(t)}.{nq}@{MX_FQDN}>",
            )
        )
        size = 2400 + min(msg.size, 20000)
        app((t + 0.01, K_FROM, f"postfix/qmgr[{QMGR_PID}]: {nq}: from=<>, size={size}, nrcpt=1 (queue active)"))
        app(
            (t + 0.02, K_OTHER, f"postfix/bounce[{self.bounce_pid}]: {msg.qid}: sender non-delivery notification: {nq}")
        )
        note = Msg(nq, t, t + 0.01, "", size, None)
        td = t + 0.03 + 0.1 * rnd()
        if dom == LOCAL_DOMAIN:
            td = self._local(note, td, msg.sender, "delivered to mailbox")
        else:
            td = self._deliver(note, td, [(msg.sender, di, None)], first=True)
        self._done(note, td)
        return t + 0.03

    # -- the deferred queue --------------------------------------------------------------------
    def tick(self, t0: float) -> None:
        """The 10-minute bin starting at `t0`: qmgr scans the deferred queue every 300 s."""
        self.run_queue(t0 + self.scan_offset)
        self.run_queue(t0 + self.scan_offset + QUEUE_RUN_DELAY)

    def run_queue(self, T: float) -> None:
        if not self.deferred:
            return
        sim = self.sim
        rnd = sim.rng.random
        due = [m for m in self.deferred if m.next_try <= T]
        if not due:
            return
        self.deferred = [m for m in self.deferred if m.next_try > T]
        t = T
        for m in due:
            t += 0.01 + 0.05 * rnd()
            sim.mx.append(
                (
                    t,
                    K_OTHER,
                    f"postfix/qmgr[{QMGR_PID}]: {m.qid}: from=<{m.sender}>, size={m.size}, "
                    f"nrcpt={len(m.pending)} (queue active)",
                )
            )
            m.active = t
            pending, m.pending = m.pending, []
            end = self._deliver(m, t + 0.01, pending, first=False)
            self._done(m, end)
