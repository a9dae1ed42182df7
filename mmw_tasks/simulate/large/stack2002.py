"""The 2002 stack as columns: sendmail 8.12 + qpopper on the mail server, iplog on the DNS
server, Solaris syslogd and sysklogd (repeats collapsed), as simulate/mail.py and traffic.py
write them line by line.

A message costs the DNS server 2 queries for the SMTP access and 4 per MX host of every remote
domain it is transferred to (one to= line per domain); deferred deliveries wait in the queue for
the next `sendmail -q30m` run, whose retries make no queries (the resolver's cache). A queue run
of a big site works its queue with parallel runners: the retries of one run are spread over up
to 20 minutes.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from mmw_tasks.simulate.large.text import S, fmt, fmt_delay, group_cumsum, hexs, lit, pick, table
from mmw_tasks.simulate.large.traffic import LOCAL, PROG, REMOTE, UNKNOWN
from mmw_tasks.simulate.large.writer import lines
from mmw_tasks.simulate.mail import P_BOUNCE, P_DEFER
from mmw_tasks.simulate.render import K_DEFERRED, K_DQ, K_FROM, K_OTHER, K_POP, K_SENT, K_TO_OTHER, K_USER_UNKNOWN
from mmw_tasks.simulate.site import LOCAL_DOMAIN, MX_FQDN, MX_IP, WWW_IP, WWW_NAME
from mmw_tasks.simulate.traffic import IPLOG

P_RETRANSMIT = 0.015
MX_RESOLVED = f"{MX_FQDN} ({MX_IP})"
REASONS = (  # mail._DEFER_REASONS: text before the host, after it ("" = no host in it)
    ("Connection refused by ", "."),
    ("451 4.3.0 Temporary system failure. Please try again later.", ""),
    ("Connection timed out with ", "."),
    ("452 4.3.1 Insufficient system storage", ""),
)
TIMED_OUT = 2
OUTAGE = -1  # the reason of a deferral to a domain that is down (frethem)
QUEUE_SCHEMA = {
    "qid": S,
    "t0": pl.Float64,
    "rcpts": S,
    "dom": pl.Int64,
    "pri": pl.Int64,
    "tries": pl.Int64,
    "fails": pl.Int64,
    "reason": pl.Int64,  # REASONS index, or OUTAGE
    "last": pl.Float64,
}


def deferral(reason: np.ndarray, host: pl.Series) -> tuple[pl.Series, pl.Series]:
    """(stat=, relay=) of deferred to= lines: a connection that failed names no address."""
    r = pl.Series(reason)
    text = pl.when(r == OUTAGE).then(pl.concat_str(lit("Connection timed out with "), host, lit(".")))
    for i, (head, tail) in enumerate(REASONS):
        text = text.when(r == i).then(pl.concat_str(lit(head), host, lit(tail)) if tail else lit(head))
    no_ip = np.isin(reason, (OUTAGE, 0, 2))
    return pl.select(pl.concat_str(lit("Deferred: "), text)).to_series(), pick(no_ip, fmt("{h}.", h=host), "")


def sent_stat(dom: np.ndarray, r: np.ndarray) -> pl.Series:
    """mail.sent_stat for columns: the remote MTA's reply, in the style of the software it runs."""
    n = (r * 0xFFFFFFF).astype(np.int64)
    k = dom % 4
    a, b = table("qic", n % 60), table("qic", n // 60 % 60)
    out = pick(k == 1, fmt("Sent (Ok: queued as {x})", x=hexs(n, 7, True)), "Sent (ok)")
    out = pick(
        k == 2,
        fmt("Sent ({a}{b}{c} Message accepted for delivery)", a=a, b=b, c=fmt("{x}", x=n % 999983).str.zfill(6)),
        out,
    )
    return pick(
        k == 3, fmt("Sent (OK id=1{a}{d}-000{e}Kd-00)", a=a, d=fmt("{x}", x=n % 99991).str.zfill(5), e=n % 7), out
    )


def sendmail_qids(sim, rng, t: np.ndarray, pid: np.ndarray) -> pl.Series:
    """8.12 queue ids: the GMT time of the queue file (1-4 s before its from=), a 2-character
    sequence number and the 6-digit pid."""
    n = len(t)
    return fmt(
        "{h}{s}{p}", h=sim.qhead(t - 1 - 3 * rng.random(n)), s=table("qic2", rng.integers(0, 3600, n)),
        p=fmt("{p}", p=pid).str.zfill(6),
    )  # fmt: skip


class Stack2002:
    def __init__(self, sim):
        self.sim = sim
        self.rng = sim.rng
        self.w = sim.world
        self.tag = sim.style.sendmail_tag
        self.queue = pl.DataFrame(schema=QUEUE_SCHEMA)
        self.qs: list[pl.DataFrame] = []
        self.port = 1024 + int(self.rng.integers(0, 3976))
        self.next_ntp = 300 * self.rng.random()

    def start_day(self, d: int, today: frozenset) -> None:
        pass

    def chunk(self, d: int, b0: int, b1: int) -> None:
        """Everything that happens in bins b0..b1 of day d."""
        tr = self.sim.traffic
        self.messages(*tr.messages(d, b0, b1))
        self.pops(tr.pops(d, b0, b1))
        self.other_dns(d, b0, b1)
        self.ns_noise(tr.times("ns_noise", d, b0, b1))
        self.mx_noise(tr.times("mx_noise", d, b0, b1))
        t = tr.times("mx_extra_dns", d, b0, b1)  # the mail server's own lookups
        self.query(t, self.w.dom_name.gather(self.rng.integers(0, len(self.w.dom_name), len(t))))
        for b in range(b0, b1):
            self.periodic(b, d * 86400 + b * 600)

    # -- DNS queries of the mail server ----------------------------------------------------------------
    def query(self, t, q: pl.Series, qt=None) -> None:
        self.qs.append(pl.DataFrame({"t": np.asarray(t, dtype=np.float64), "q": q.cast(S)}))

    def flush_queries(self) -> None:
        """iplog's lines for the queries asked so far: no name, no type; the length shows."""
        if not self.qs:
            return
        q = pl.concat(self.qs)
        self.qs = []
        n = q.height
        rng = self.rng
        port = 1024 + (self.port + 1 + np.arange(n)) % 3976
        self.port = int(port[-1]) - 1024 if n else self.port
        r = rng.random(n)  # < 0.1: iplog printed the resolved name; > 1 - P_RETRANSMIT: retransmitted
        rep = np.where(r > 1 - P_RETRANSMIT, 1 + (rng.random(n) < 0.3), 0)
        body = fmt(
            "{iplog}: UDP: dgram to domain from {src}:{port} ({n} data bytes)",
            iplog=IPLOG, src=pick(r < 0.1, MX_RESOLVED, MX_IP), port=port, n=q["q"].str.len_bytes() + 18,
        )  # fmt: skip
        self.sim.ns.append(lines(q["t"].to_numpy(), K_DQ, body, rep))

    # -- mail ------------------------------------------------------------------------------------------
    def messages(self, M: pl.DataFrame, R: pl.DataFrame) -> None:
        """Each transaction: its 2 lookups, `User unknown` lines, from=, then its deliveries."""
        n = M.height
        if n == 0:
            return
        sim, rng, w, tag = self.sim, self.rng, self.w, self.tag
        t = M["t"].to_numpy()
        pid = sim.pids(n)
        qid = sendmail_qids(sim, rng, t, pid)
        m, kind = R["m"].to_numpy(), R["kind"].to_numpy()
        n_rc = np.bincount(m[kind != UNKNOWN], minlength=n)
        start = t - 1 - 2 * rng.random(n)  # when the client connected: delay= counts from here
        td0 = t + 0.1 + rng.random(n)
        pri = M["size"].to_numpy() + 30000 * n_rc
        has_name = M["name"].is_not_null().to_numpy()
        ip = M["ip"]
        relay = pick(has_name, fmt("{n} [{ip}]", n=M["name"].fill_null(""), ip=ip), fmt("[{ip}]", ip=ip))
        relay = pick(M["forged"].to_numpy(), fmt("{r} (may be forged)", r=relay), relay)
        # the SMTP access: PTR of the client, A of the name it returns
        self.query(t - 2 * rng.random(n), M["arpa"])
        self.query(t - 2 * rng.random(n), pick(has_name, M["name"], M["arpa"]))
        head = fmt("{tag}[{pid}]: {qid}: ", tag=tag, pid=pid, qid=qid)
        dhead = fmt("{tag}[{pid}]: {qid}: ", tag=tag, pid=pid + 1, qid=qid)  # the forked delivery process

        unk = np.flatnonzero(kind == UNKNOWN)  # refused recipients, before the from= line
        if len(unk):
            mu = m[unk]
            body = fmt("{h}<{a}>... User unknown", h=head.gather(mu), a=R["addr"].gather(unk))
            rep = rng.random(len(unk)) < 0.03  # the client retried the same RCPT
            sim.mx.append(lines(t[mu] - 0.2 - 1.3 * rng.random(len(unk)), K_USER_UNKNOWN, body, rep))

        msgid = M["msgid"]  # "*": no Message-Id header, sendmail adds <$t.$i@$j> ($t in GMT)
        msgid = pick((msgid == "*").fill_null(False), fmt("<{g}.{q}@{mx}>", g=sim.gmt12(t), q=qid, mx=MX_FQDN), msgid)
        mid = pick(msgid.is_null().to_numpy(), "", fmt(", msgid={i}", i=msgid.fill_null("")))
        common = dict(h=head, s=M["sender"], p=M["proto"], r=relay)
        body = pick(
            n_rc == 0,
            fmt("{h}from=<{s}>, size=0, class=0, nrcpts=0, proto={p}, daemon=MTA, relay={r}", **common),
            fmt(
                "{h}from=<{s}>, size={z}, class=0, nrcpts={n}{i}, proto={p}, daemon=MTA, relay={r}",
                z=M["size"], n=n_rc, i=mid, **common,
            ),
        )  # fmt: skip
        sim.mx.append(lines(t, K_FROM, body))

        pr = np.flatnonzero(kind == PROG)  # a program alias: the list server
        if len(pr):
            mp = m[pr]
            body = fmt(
                '{h}to="{c}", ctladdr=<{a}> (1001/1001), delay={d}, xdelay=00:00:00, mailer=prog, pri={p}, '
                "dsn=2.0.0, stat=Sent",
                h=dhead.gather(mp), c=M["prog"].gather(mp), a=R["addr"].gather(pr), d=fmt_delay(td0[mp] - start[mp]),
                p=pri[mp],
            )  # fmt: skip
            sim.mx.append(lines(td0[mp], K_SENT, body))

        # local deliveries, one after another; users with a .forward go out to their phone instead
        u = R["u"].to_numpy()
        fwd = w.user_fwd.gather(np.maximum(u, 0))
        is_fwd = (kind == LOCAL) & (u >= 0) & fwd.is_not_null().to_numpy()
        loc = np.flatnonzero((kind == LOCAL) & ~is_fwd)
        ml = m[loc]
        inc = 0.05 + 0.3 * rng.random(len(loc))
        td = td0[ml] + group_cumsum(inc, ml)
        if len(loc):
            body = fmt(
                "{h}to=<{a}@{dom}>, delay={d}, xdelay=00:00:00, mailer=local, pri={p}, dsn=2.0.0, stat=Sent",
                h=dhead.gather(ml), a=R["addr"].gather(loc), dom=LOCAL_DOMAIN, d=fmt_delay(td - start[ml]), p=pri[ml],
            )  # fmt: skip
            sim.mx.append(lines(td, K_SENT, body))
            self._track_to(M, ml, td)
        after_local = td0 + np.bincount(ml, weights=inc, minlength=n)

        # remote transfers: one to= line per domain (a .forward: one of its own, with its ctladdr)
        rem, fw = np.flatnonzero(kind == REMOTE), np.flatnonzero(is_fwd)
        ctl = fmt("{a}@{dom}> ({uid}/100)", a=R["addr"].gather(fw), dom=LOCAL_DOMAIN, uid=1000 + u[fw] % 60000)
        transfers = pl.concat(
            [
                pl.DataFrame({"m": m[rem], "dom": R["dom"].to_numpy()[rem], "a": R["addr"].gather(rem), "ctl": ""}),
                pl.DataFrame(
                    {"m": m[fw], "dom": np.full(len(fw), w.mobile), "a": fwd.gather(fw), "ctl": ", ctladdr=<" + ctl}
                ),
            ]
        )  # fmt: skip
        if transfers.height:
            self._transfers(M, transfers, start, after_local, pri, dhead, qid)

    def _track_to(self, M: pl.DataFrame, mi: np.ndarray, t: np.ndarray) -> None:
        """to= lines of messages whose deliveries belong to an incident (a list's re-injection)."""
        trk = M["trk"].to_numpy()[mi]
        if trk.any():
            self.sim.counters(M["ent"].to_numpy()[mi][trk], t[trk])

    def _transfers(self, M, transfers, start, after_local, pri, dhead, qid) -> None:
        sim, rng, w = self.sim, self.rng, self.w
        g = (
            transfers.with_columns(f=pl.col("ctl") != "")
            .group_by("m", "f", "dom", "ctl", maintain_order=True)
            .agg(pl.concat_str(lit("<"), "a", lit(">")).str.join(",").alias("rcpts"))
            .sort("m", "f", maintain_order=True)
        )
        ng = g.height
        gm, dom = g["m"].to_numpy(), g["dom"].to_numpy()
        base = 0.4 + 2.0 * rng.random(ng) + M["size"].to_numpy()[gm] / 400000
        down = sim.domain_down(dom, after_local[gm] + base)
        r1, r2, r3 = rng.random(ng), rng.random(ng), rng.random(ng)
        deferred = ~down & (r1 < P_DEFER)
        bounce = ~down & ~deferred & (r2 < P_BOUNCE)
        sent = ~down & ~deferred & ~bounce
        reason = np.where(down, OUTAGE, (r3 * 4).astype(np.int64))
        timed = down | (deferred & (reason == TIMED_OUT))
        total = base + np.where(timed, 75 + rng.random(ng), 0.0)  # a connection that times out: 75 s
        td = after_local[gm] + group_cumsum(total, gm)
        x0 = td - total
        self._mx_lookups(dom, x0 + base)  # MX, A and friends: 4 per MX host, before the connection
        h0 = w.dom_h0[dom]
        host = w.host_name.gather(h0)
        with_ip = fmt("{h}. [{ip}]", h=host, ip=w.host_ip.gather(h0))
        stat_def, relay_def = deferral(reason, host)
        relay = pick(sent | bounce, with_ip, pick(relay_def == "", with_ip, relay_def))
        tail = pick(
            sent, fmt("dsn=2.0.0, stat={s}", s=sent_stat(dom, rng.random(ng))), fmt("dsn=4.0.0, stat={s}", s=stat_def)
        )
        tail = pick(bounce, "dsn=5.0.0, stat=Service unavailable", tail)
        body = fmt(
            "{h}to={rc}{ctl}, delay={d}, xdelay={x}, mailer=esmtp, pri={p}, relay={r}, {tail}",
            h=dhead.gather(gm), rc=g["rcpts"], ctl=g["ctl"], d=fmt_delay(td - start[gm]), x=fmt_delay(td - x0),
            p=pri[gm], r=relay, tail=tail,
        )  # fmt: skip
        sim.mx.append(lines(td, np.where(sent, K_SENT, np.where(bounce, K_TO_OTHER, K_DEFERRED)), body))
        self._track_to(M, gm, td)
        if down.any():
            sim.counters(sim.outage_entity(), td[down], deferred=1)
        q = np.flatnonzero(down | deferred)
        if len(q):
            add = pl.DataFrame(
                {
                    "qid": qid.gather(gm[q]),
                    "t0": start[gm[q]],
                    "rcpts": fmt("{r}{c}", r=g["rcpts"], c=g["ctl"]).gather(q),
                    "dom": dom[q],
                    "pri": pri[gm[q]],
                    "tries": np.ones(len(q), dtype=np.int64),
                    "fails": np.where(down, 0, 1 + (rng.random(ng) * 4).astype(np.int64))[q],
                    "reason": reason[q],
                    "last": td[q],
                },
                schema=QUEUE_SCHEMA,
            )
            self.queue = pl.concat([self.queue, add])

    def _mx_lookups(self, dom: np.ndarray, t: np.ndarray) -> None:
        """(domain, host, host, domain) for each MX host of each domain, in the 2 s before `t`."""
        gi, q, _ = mx_lookups(self.w, dom)
        self.query(t[gi] - 2 * self.rng.random(len(gi)), q)

    def run_queue(self, T: float) -> None:
        """`sendmail -q30m`: retry every deferred delivery once, no DNS (the resolver's cache)."""
        qu = self.queue
        if qu.height == 0:
            return
        sim, rng, w = self.sim, self.rng, self.w
        due_mask = (qu["last"] < T).to_numpy()
        if not due_mask.any():
            return
        due, keep = qu.filter(pl.Series(due_mask)), qu.filter(~pl.Series(due_mask))
        n = due.height
        dom, reason, fails = due["dom"].to_numpy(), due["reason"].to_numpy(), due["fails"].to_numpy()
        x0 = T + rng.random(n) + rng.random(n) * min(1200.0, 2.0 * n)
        down = sim.domain_down(dom, x0)
        again = ~down & (fails > 0)
        defer = down | again
        timed = down | (again & (reason == TIMED_OUT))
        t = x0 + np.where(
            timed, 75 + rng.random(n), np.where(again, 0.1 + 2 * rng.random(n), 0.5 + 2.5 * rng.random(n))
        )
        tries = due["tries"].to_numpy() + 1
        h0 = w.dom_h0[dom]
        host = w.host_name.gather(h0)
        with_ip = fmt("{h}. [{ip}]", h=host, ip=w.host_ip.gather(h0))
        rs = np.where(down, OUTAGE, reason)
        stat_def, relay_def = deferral(rs, host)
        relay = pick(defer & (relay_def != "").to_numpy(), relay_def, with_ip)
        tail = pick(
            defer, fmt("dsn=4.0.0, stat={s}", s=stat_def), fmt("dsn=2.0.0, stat={s}", s=sent_stat(dom, rng.random(n)))
        )
        body = fmt(
            "{tag}[{pid}]: {q}: to={rc}, delay={d}, xdelay={x}, mailer=esmtp, pri={p}, relay={r}, {tail}",
            tag=self.tag, pid=str(sim.pids(1)[0]), q=due["qid"], rc=due["rcpts"], d=fmt_delay(t - due["t0"].to_numpy()),
            x=fmt_delay(t - x0), p=due["pri"].to_numpy() + 90000 * (tries - 1), r=relay, tail=tail,
        )  # fmt: skip
        sim.mx.append(lines(t, np.where(defer, K_DEFERRED, K_SENT), body))
        if down.any():
            sim.counters(sim.outage_entity(), t[down], deferred=1)
        stay = due.with_columns(
            tries=pl.Series(tries), fails=pl.Series(np.where(down, fails, fails - 1)), last=pl.Series(t)
        ).filter(pl.Series(defer))
        self.queue = pl.concat([keep, stay])

    # -- POP3 (qpopper) -------------------------------------------------------------------------------
    def pops(self, P: pl.DataFrame) -> None:
        n = P.height
        if n == 0:
            return
        sim, rng = self.sim, self.rng
        t = P["t"].to_numpy()
        self.query(t - 2 * rng.random(n), P["arpa"])  # qpopper's reverse lookup of the client
        pid = sim.pids(n)
        fail = np.flatnonzero(rng.random(n) < 0.015)
        ok = np.setdiff1d(np.arange(n), fail)
        f = P[fail]
        sim.mx.append(
            lines(
                t[fail], K_OTHER,
                fmt('popper[{p}]: -ERR [AUTH] Password supplied for "{u}" is incorrect.', p=pid[fail], u=f["user"]),
            )
        )  # fmt: skip
        sim.mx.append(
            lines(
                t[fail] + 0.5, K_OTHER,
                fmt(
                    "popper[{p}]: {u} at {h} ({ip}): -ERR POP EOF or I/O Error",
                    p=pid[fail], u=f["user"], h=f["host"], ip=f["ip"],
                ),
            )
        )  # fmt: skip
        o = P[ok]
        k = len(ok)
        body = fmt(
            'popper[{p}]: (v4.0.5) POP login by user "{u}" at ({h}) {ip}',
            p=pid[ok],
            u=o["user"],
            h=o["host"],
            ip=o["ip"],
        )
        sim.mx.append(lines(t[ok], K_POP, body))
        left = (rng.random(k) * 40).astype(np.int64)
        dele = np.where(rng.random(k) < 0.4, (rng.random(k) * 4).astype(np.int64), 0)
        kept = left * 5127 + (rng.random(k) * 999).astype(np.int64)
        body = fmt(
            "popper[{p}]: Stats: {u} {d} {db} {l} {k} {h} {ip}",
            p=pid[ok], u=o["user"], d=dele, db=dele * 4321, l=left, k=kept, h=o["host"], ip=o["ip"],
        )  # fmt: skip
        sim.mx.append(lines(t[ok] + 0.3 + 25 * rng.random(k), K_OTHER, body))

    # -- the DNS server's other clients ------------------------------------------------------------------
    def other_dns(self, d: int, b0: int, b1: int) -> None:
        """The PCs' lookups (each PC in iplog's resolved form one time in ten), the web server's,
        NetBIOS, and now and then a port scan, a truncated answer retried over TCP, an SMTP probe."""
        sim, rng, w, tr = self.sim, self.rng, self.w, self.sim.traffic
        t = tr.times("pc_dns", d, b0, b1)
        n = len(t)
        pc = rng.integers(0, len(w.pc_ip), n)
        src = pick(rng.random(n) < 0.1, w.pc_resolved.gather(pc), w.pc_ip.gather(pc))
        v = rng.integers(0, 119280, n)  # source port and query size from one draw
        body = fmt(
            "{iplog}: UDP: dgram to domain from {s}:{p} ({b} data bytes)",
            iplog=IPLOG,
            s=src,
            p=1025 + v // 30,
            b=28 + v % 30,
        )
        sim.ns.append(lines(t, K_OTHER, body, np.where(v < 1200, 1 + (v & 1), 0)))
        t = tr.times("www_dns", d, b0, b1)  # 10.1.0.250: 10.1.0.25 is a prefix of it
        n = len(t)
        v = rng.integers(0, 99400, n)
        src = pick(rng.random(n) < 0.1, f"{WWW_NAME} ({WWW_IP})", WWW_IP)
        body = fmt(
            "{iplog}: UDP: dgram to domain from {s}:{p} ({b} data bytes)",
            iplog=IPLOG,
            s=src,
            p=1024 + v // 25,
            b=30 + v % 25,
        )
        sim.ns.append(lines(t, K_OTHER, body))
        t = tr.times("netbios", d, b0, b1)
        n = len(t)
        body = fmt(
            "{iplog}: UDP: dgram to netbios-ns from {ip}:137 (50 data bytes)",
            iplog=IPLOG,
            ip=w.pc_ip.gather(rng.integers(0, len(w.pc_ip), n)),
        )
        sim.ns.append(lines(t, K_OTHER, body, np.where(rng.random(n) < 0.3, 2, 0)))
        t0, span = d * 86400 + b0 * 600, (b1 - b0) * 600
        s = max(1.0, sim.scale)
        for p, template, lo, hi in (
            (0.02, "{iplog}: TCP: port scan detected [ports 21,22,23,25,53,80,110,111,139,143] from 203.0.113.{a} "
                   "[port {b}]", 1024, 5000),
            (0.05, "{iplog}: TCP: domain connection attempt from " + MX_IP + ":{b}", 32768, 65535),
            (0.02, "{iplog}: TCP: smtp connection attempt from " + MX_RESOLVED + ":{b}", 32768, 65535),
        ):  # fmt: skip
            k = int(rng.poisson(p * s * (b1 - b0)))
            if k:
                body = fmt(template, iplog=IPLOG, a=rng.integers(1, 255, k), b=rng.integers(lo, hi, k))
                sim.ns.append(lines(t0 + span * rng.random(k), K_OTHER, body))

    # -- other programs ------------------------------------------------------------------------------------
    def ns_noise(self, t: np.ndarray) -> None:
        """The DNS server's other programs: root logins, scanners, a flaky network card."""
        sim, rng = self.sim, self.rng
        r = rng.random(len(t))
        a, b, c = t[r < 0.5], t[(r >= 0.5) & (r < 0.8)], t[r >= 0.8]
        pid = rng.integers(1000, 32000, len(a))
        port = rng.integers(600, 1023, len(a))
        sim.ns.append(
            lines(a, K_OTHER, fmt("sshd[{p}]: Accepted password for root from 10.1.2.20 port {x} ssh2", p=pid, x=port))
        )
        sim.ns.append(
            lines(a + 0.1, K_OTHER, fmt("sshd(pam_unix)[{p}]: session opened for user root by (uid=0)", p=pid))
        )
        sim.ns.append(
            lines(
                a + 60 + 900 * rng.random(len(a)),
                K_OTHER,
                fmt("sshd(pam_unix)[{p}]: session closed for user root", p=pid),
            )
        )
        body = fmt(
            "sshd[{p}]: Did not receive identification string from 203.0.113.{x}",
            p=rng.integers(1000, 32000, len(b)), x=rng.integers(1, 255, len(b)),
        )  # fmt: skip
        sim.ns.append(lines(b, K_OTHER, body))
        sim.ns.append(lines(c, K_OTHER, "kernel: NETDEV WATCHDOG: eth0: transmit timed out"))
        sim.ns.append(lines(c + 0.01, K_OTHER, "kernel: eth0: Tx timed out, lost interrupt?"))

    def idle_clients(self, n: int) -> tuple[np.ndarray, pl.DataFrame]:
        """Clients that connect and send nothing: half of them campus PCs, half from outside
        (no PTR): (is a PC, frame of ip, name (null outside), arpa)."""
        rng, w = self.rng, self.w
        pcs = rng.random(n) < 0.5
        pc = rng.integers(0, len(w.pc_ip), n)
        c3, c4 = rng.integers(0, 256, n), rng.integers(1, 255, n)
        df = pl.DataFrame(
            {
                "ip": pick(pcs, w.pc_ip.gather(pc), fmt("100.81.{c}.{d}", c=c3, d=c4)),
                "name": pick(pcs, w.pc_name.gather(pc), pl.Series([None] * n, dtype=S)),
                "arpa": pick(pcs, w.pc_arpa.gather(pc), fmt("{d}.{c}.81.100.in-addr.arpa", c=c3, d=c4)),
            }
        )
        return pcs, df

    def mx_noise(self, t: np.ndarray) -> None:
        """The mail server's other lines: clients that connect and leave (their 2 lookups still
        count in Dq), logins, the clock, a full disk."""
        sim, rng, tag = self.sim, self.rng, self.tag
        r = rng.random(len(t))
        a = t[r < 0.35]
        na = len(a)
        if na:
            pcs, c = self.idle_clients(na)
            self.query(a - 2 * rng.random(na), c["arpa"])
            self.query(a - 2 * rng.random(na), pick(pcs, c["name"], c["arpa"]))
            relay = pick(pcs, fmt("{n} [{ip}]", n=c["name"].fill_null(""), ip=c["ip"]), fmt("[{ip}]", ip=c["ip"]))
            pid = sim.pids(na)
            what = pick(
                rng.random(na) < 0.7,
                fmt("{r} did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA", r=relay),
                fmt("lost input channel from {r} to MTA after rcpt", r=relay),
            )
            body = fmt("{tag}[{p}]: {q}: {w}", tag=tag, p=pid, q=sendmail_qids(sim, rng, a, pid), w=what)
            sim.mx.append(lines(a, K_OTHER, body))
        b = t[(r >= 0.35) & (r < 0.6)]
        body = fmt(
            "sshd[{p}]: Accepted password for admin from 10.1.2.20 port {x} ssh2",
            p=rng.integers(1000, 30000, len(b)), x=rng.integers(600, 1023, len(b)),
        )  # fmt: skip
        sim.mx.append(lines(b, K_OTHER, body))
        c = t[(r >= 0.6) & (r < 0.8)]
        body = fmt(
            "xntpd[212]: time reset ({s}0.{x} s)",
            s=pick(rng.random(len(c)) < 0.5, "+", "-"), x=fmt("{x}", x=rng.integers(0, 300000, len(c))).str.zfill(6),
        )  # fmt: skip
        sim.mx.append(lines(c, K_OTHER, body))
        e = t[(r >= 0.8) & (r < 0.9)]
        sim.mx.append(lines(e, K_OTHER, "unix: NOTICE: alloc: /var/mail: file system full", rng.integers(2, 9, len(e))))
        f = t[r >= 0.9]
        sim.mx.append(lines(f, K_OTHER, "inetd[142]: pop3/tcp: connection from 198.51.100.7 refused"))

    # -- lines that come by the clock ---------------------------------------------------------------------
    def periodic(self, b: int, t0: float) -> None:
        """cron, named, MARK, NTP polls, sendmail queue runs."""
        sim, rng = self.sim, self.rng
        minute = (b * 10) % 1440
        ns, mx = [], []

        def cron(t, cmd):
            ns.append((t, f"CROND[{int(rng.integers(1000, 32000))}]: (root) CMD ({cmd})"))

        cron(t0 + 0.2 * rng.random(), "/usr/lib/sa/sa1 1 1")
        if minute % 60 == 0:
            cron(t0 + 60 + rng.random(), "run-parts /etc/cron.hourly")
            ns.append(
                (t0 + 1620 + 60 * rng.random(), f"named[233]: Cleaned cache of {int(rng.integers(40, 900))} RRsets")
            )
        if minute == 240:  # logrotate runs from here; its rotation (and syslogd's restart) follows
            cron(t0 + 120 + 0.3 * rng.random(), "run-parts /etc/cron.daily")
        if minute % 20 == 0:
            ns.append((t0 + rng.random(), "-- MARK --"))
            mx.append((t0 + rng.random(), "-- MARK --"))
        while self.next_ntp < t0 + 600:  # xntpd on the mail server polls the DNS server every 1024 s
            if self.next_ntp >= sim.begin_t:
                ns.append((self.next_ntp, f"{IPLOG}: UDP: dgram to port 123 from {MX_IP}:123 (48 data bytes)"))
            self.next_ntp += 1024
        for host, rows in ((sim.ns, ns), (sim.mx, mx)):
            if rows:
                host.append(lines([x for x, _ in rows], K_OTHER, pl.Series([y for _, y in rows], dtype=S)))
        if minute % 30 == 0:  # sendmail -q30m, daemon started at :07
            self.run_queue(t0 + 420 + 2 * rng.random())


def mx_lookups(w, dom: np.ndarray) -> tuple[np.ndarray, pl.Series, np.ndarray]:
    """The 4 lookups per MX host of each domain: (index into dom, name asked, 0..3 = MX, A, AAAA, A)."""
    nh = w.dom_nh[dom]
    reps = 4 * nh
    gi = np.repeat(np.arange(len(dom)), reps)
    j = np.arange(len(gi)) - np.repeat(np.cumsum(reps) - reps, reps)
    d = dom[gi]
    q = pick((j % 4 == 0) | (j % 4 == 3), w.dom_name.gather(d), w.host_name.gather(w.dom_h0[d] + j // 4))
    return gi, q, j % 4
