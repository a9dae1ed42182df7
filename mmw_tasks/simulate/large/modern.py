"""The modern stack as columns: Postfix 3 + Dovecot 2 on the mail server, BIND 9.16 logging its
queries through syslog on the DNS server, rsyslog's RFC 3339 stamps without repeat reduction, as
simulate/postfix.py and traffic.py write them line by line.

An SMTP session is smtpd's connect, its rejects (NOQUEUE before the first accepted recipient),
client=, cleanup's message-id, qmgr's from= (n_from), disconnect, one to= line per recipient
(local, or smtp sessions per remote domain, run side by side), a non-delivery notification for a
bounce, and `removed` or the deferred queue. qmgr scans the deferred queue every 300 s and logs
from= again for each retry (not a new message). A destination that times out is suspended for
300 s: error(8) defers its mail meanwhile, without a connection or a lookup.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from mmw_tasks.simulate.large.stack2002 import P_RETRANSMIT, Stack2002, mx_lookups
from mmw_tasks.simulate.large.text import S, b64_session, fmt, group_cumsum, hexs, pf_delay, pick, rank_in_group
from mmw_tasks.simulate.large.traffic import LOCAL, PROG, REMOTE, UNKNOWN
from mmw_tasks.simulate.large.writer import lines
from mmw_tasks.simulate.mail import P_BOUNCE, P_DEFER
from mmw_tasks.simulate.postfix import CONNECT_TIMEOUT, MAX_BACKOFF, MIN_BACKOFF, QMGR_PID, QUEUE_RUN_DELAY
from mmw_tasks.simulate.render import K_DEFERRED, K_DQ, K_FROM, K_OTHER, K_POP, K_SENT, K_TO_OTHER, K_USER_UNKNOWN
from mmw_tasks.simulate.site import LOCAL_DOMAIN, MX_FQDN, MX_IP, NS_IP, WWW_IP

NAMED = "named[704]"
QMGR = f"postfix/qmgr[{QMGR_PID}]"
DEFER = (  # postfix._DEFER: text before "host[ip]", after it, dsn; a failed connection names no relay
    ("connect to ", ":25: Connection refused", "4.4.1"),
    (
        "host ",
        " said: 451 4.3.0 Temporary system failure. Please try again later. (in reply to RCPT TO command)",
        "4.3.0",
    ),
    ("connect to ", ":25: Connection timed out", "4.4.1"),
    ("host ", " said: 452 4.3.1 Insufficient system storage (in reply to MAIL FROM command)", "4.3.1"),
)
TIMED_OUT = 2
NONE, OUTAGE, SUSPENDED = -2, -1, -3  # reasons: none; the destination times out; qmgr knows it is dead
PEND_SCHEMA = {  # a recipient waiting in the deferred queue, with its message's fields
    "qid": S,
    "key": pl.Int64,  # the queue id as an integer (usec << 20 | inode)
    "arrival": pl.Float64,
    "sender": S,
    "size": pl.Int64,
    "next_try": pl.Float64,
    "addr": S,
    "dom": pl.Int64,
    "orig": S,
    "fails": pl.Int64,
    "reason": pl.Int64,
}


def none_str(n: int) -> pl.Series:
    return pl.Series([None] * n, dtype=S)


def remote_reply(dom: np.ndarray, r: np.ndarray) -> pl.Series:
    """postfix.remote_reply for columns."""
    n = (r * 0xFFFFFFF).astype(np.int64)
    k = dom % 4
    out = pick(
        k == 0,
        fmt("250 2.0.0 Ok: queued as {x}", x=hexs(n, 9, True)),
        fmt("250 ok {a} qp {b}", a=1013800000 + n % 99999, b=n % 29989),
    )
    out = pick(
        k == 2, fmt("250 2.0.0 g1G{c} Message accepted for delivery", c=fmt("{x}", x=n % 999983).str.zfill(6)), out
    )
    return pick(k == 3, fmt("250 OK id=18{d}-000{e}Kd-00", d=fmt("{x}", x=n % 99991).str.zfill(5), e=n % 7), out)


class ModernStack(Stack2002):
    def __init__(self, sim):
        super().__init__(sim)
        rng = self.rng
        w = self.w
        self.port = 32768 + int(rng.integers(0, 28000))
        self.inode = int(rng.integers(0, 1 << 19))
        self.recent = self.recent_old = np.zeros(0, dtype=np.int64)  # queue ids given out lately
        self.cleanup_pids = rng.integers(2000, 30000, 3)
        self.smtp_pids = rng.integers(2000, 30000, 12)
        self.local_pids = rng.integers(2000, 30000, 4)
        self.bounce_pid = int(rng.integers(2000, 30000))
        self.error_pid = int(rng.integers(2000, 30000))
        self.scan_offset = QUEUE_RUN_DELAY * rng.random()
        self.pend = pl.DataFrame(schema=PEND_SCHEMA)
        self.suspended: set[int] = set()  # (300 s slot, domain) of the outages qmgr knows of
        self.dom_index = pl.DataFrame({"d": w.dom_name, "i": np.arange(len(w.dom_name))})
        n_www = min(len(w.dom_name), max(150, round(150 * sim.scale)))
        n_bare = min(len(w.dom_name), max(60, round(60 * sim.scale)))
        local = [f"{h}.{LOCAL_DOMAIN}" for h in ("www", "ns", "mx", "proxy", "lib", "portal")]
        self.qnames = pl.concat(
            ["www." + w.dom_name.slice(0, n_www), w.dom_name.slice(0, n_bare), pl.Series(local)]
        ).rechunk()

    def chunk(self, d: int, b0: int, b1: int) -> None:
        self.recent_old, self.recent = self.recent, np.zeros(0, dtype=np.int64)
        super().chunk(d, b0, b1)

    # -- DNS queries of the mail server, as BIND logs them ----------------------------------------------
    def query(self, t, q: pl.Series, qt=None) -> None:
        q = q.cast(S)
        if qt is None:
            qt = pick(q.str.ends_with(".arpa"), "PTR", "A")
        elif isinstance(qt, str):
            qt = pl.Series([qt] * len(q), dtype=S)
        self.qs.append(pl.DataFrame({"t": np.asarray(t, dtype=np.float64), "q": q, "qt": qt.cast(S)}))

    def flush_queries(self) -> None:
        if not self.qs:
            return
        q = pl.concat(self.qs)
        self.qs = []
        n = q.height
        rng = self.rng
        port = (
            32768 + (self.port - 32768 + np.cumsum(1 + (rng.random(n) * 40).astype(np.int64))) % 28232
        )  # glibc: random
        if n:
            self.port = int(port[-1])
        r = rng.random(n)
        t = q["t"].to_numpy()
        body = fmt(
            "{named}: client @0x7f3c{x} {mx}#{p} ({q}): query: {q} IN {qt} + ({ns})",
            named=NAMED, x=hexs((r * 0xFFFFFF).astype(np.int64) * 16, 8), mx=MX_IP, p=port, q=q["q"], qt=q["qt"],
            ns=NS_IP,
        )  # fmt: skip
        self.sim.ns.append(lines(t, K_DQ, body))
        again = np.flatnonzero(r > 1 - P_RETRANSMIT)  # retransmitted: a query line of its own each time
        if len(again):
            k = 1 + (rng.random(len(again)) < 0.3)
            dt = 1 + 3 * rng.random(len(again))
            i = np.repeat(again, k)
            j = 1 + rank_in_group(i)
            self.sim.ns.append(lines(t[i] + np.repeat(dt / k, k) * j, K_DQ, body.gather(i)))

    # -- identifiers -------------------------------------------------------------------------------------
    def qids(self, t: np.ndarray) -> tuple[pl.Series, np.ndarray]:
        """Short Postfix queue ids (microseconds and inode number, in hex) and their integer keys.
        None is the id of a message still in the queue or one given out in this or the last chunk
        (ids further apart are a wrapped inode counter away: Postfix reuses them too)."""
        n = len(t)
        usec = ((t - np.floor(t)) * 1e6).astype(np.int64) % 1_000_000
        inode = (self.inode + np.cumsum(1 + (self.rng.random(n) * 4).astype(np.int64))) & 0xFFFFF
        if n:
            self.inode = int(inode[-1])
        key = (usec << 20) | inode
        taken = np.concatenate([self.recent, self.recent_old, self.pend["key"].to_numpy()])
        while True:
            mine = np.zeros(n, dtype=bool)
            mine[np.unique(key, return_index=True)[1]] = True
            dup = ~mine | np.isin(key, taken)
            if not dup.any():
                break
            key[dup] = ((key[dup] >> 20) << 20) | (((key[dup] & 0xFFFFF) + 1) & 0xFFFFF)
        self.recent = np.concatenate([self.recent, key])
        return fmt("{u}{i}", u=hexs(key >> 20, 5, True), i=hexs(key & 0xFFFFF, 5, True)), key

    def _pick(self, pids: np.ndarray, n: int) -> np.ndarray:
        return pids[self.rng.integers(0, len(pids), n)]

    # -- mail ----------------------------------------------------------------------------------------
    def messages(self, M: pl.DataFrame, R: pl.DataFrame) -> None:
        n = M.height
        if n == 0:
            return
        sim, rng = self.sim, self.rng
        t = M["t"].to_numpy()
        has_name = M["name"].is_not_null().to_numpy()
        known = has_name & ~M["forged"].to_numpy()
        client = pick(known, fmt("{n}[{ip}]", n=M["name"].fill_null(""), ip=M["ip"]), fmt("unknown[{ip}]", ip=M["ip"]))
        tc = t - 1.0 - 1.5 * rng.random(n)  # connect; the session's lines stay within 3 s of `t`
        smtpd = fmt("postfix/smtpd[{p}]: ", p=sim.pids(n))
        sim.mx.append(lines(tc, K_OTHER, fmt("{s}connect from {c}", s=smtpd, c=client)))
        self.query(tc + 0.05 * rng.random(n), M["arpa"], "PTR")
        self.query(tc + 0.05 + 0.05 * rng.random(n), pick(has_name, M["name"], M["arpa"]), pick(has_name, "A", "PTR"))

        # the recipients in the order the client gave them, the refused ones anywhere among the others
        m, kind = R["m"].to_numpy(), R["kind"].to_numpy()
        ok = kind != UNKNOWN
        n_all, n_ok = np.bincount(m, minlength=n), np.bincount(m[ok], minlength=n)
        key = np.floor((n_ok[m] + 1) * rng.random(len(m))) - 0.5  # a refused one: in one of the gaps
        key[ok] = rank_in_group(m[ok])
        order = np.lexsort((key, m))
        pos = np.empty(len(m), dtype=np.int64)
        pos[order] = rank_in_group(m[order])
        first_ok = np.full(n, np.iinfo(np.int64).max)
        np.minimum.at(first_ok, m[ok], pos[ok])
        span = t - tc - 0.5
        tr = tc[m] + 0.2 + span[m] * (pos + rng.random(len(m))) / np.maximum(n_all[m], 1)
        acc = np.flatnonzero(n_ok > 0)  # with smtpd_delay_open_until_valid_rcpt: a queue file at the first good one
        t_first = np.full(n, np.nan)
        first = ok & (pos == first_ok[m])
        t_first[m[first]] = tr[first]
        qid, keys = self.qids(t_first[acc])
        qid_all = pl.Series([None] * n, dtype=S).scatter(acc, qid) if len(acc) else pl.Series([None] * n, dtype=S)

        unk = np.flatnonzero(~ok)
        if len(unk):
            mu = m[unk]
            body = fmt(
                "{s}{q}: reject: RCPT from {c}: 550 5.1.1 <{a}>: Recipient address rejected: User unknown in local "
                "recipient table; from=<{f}> to=<{a}> proto={p} helo=<{h}>",
                s=smtpd.gather(mu), q=pick(pos[unk] < first_ok[mu], "NOQUEUE", qid_all.gather(mu).fill_null("")),
                c=client.gather(mu), a=R["addr"].gather(unk), f=M["sender"].gather(mu), p=M["proto"].gather(mu),
                h=pick(has_name[mu], M["name"].gather(mu), fmt("[{ip}]", ip=M["ip"].gather(mu))),
            )  # fmt: skip
            sim.mx.append(lines(tr[unk], K_USER_UNKNOWN, body))
        greet = pick((M["proto"] == "ESMTP").to_numpy(), "ehlo", "helo")
        none = np.flatnonzero(n_ok == 0)  # every recipient refused: no queue file, no from=
        if len(none):
            body = fmt(
                "{s}disconnect from {c} {g}=1 mail=1 rcpt=0/{n} data=0/1 rset=1 quit=1 commands=4/{n5}",
                s=smtpd.gather(none), c=client.gather(none), g=greet.gather(none), n=n_all[none], n5=5 + n_all[none],
            )  # fmt: skip
            sim.mx.append(lines(t[none] + 0.1 * rng.random(len(none)), K_OTHER, body))
        if not len(acc):
            return
        na = len(acc)
        ta = t[acc]
        s_a, c_a = smtpd.gather(acc), client.gather(acc)
        sim.mx.append(lines(t_first[acc], K_OTHER, fmt("{s}{q}: client={c}", s=s_a, q=qid, c=c_a)))
        mid = M["msgid"].gather(acc)
        msgid = pick(mid.is_null() | (mid == "*"), fmt("<{ts}.{q}@{mx}>", ts=sim.ymdhms(ta), q=qid, mx=MX_FQDN), mid)
        body = fmt("postfix/cleanup[{p}]: {q}: message-id={i}", p=self._pick(self.cleanup_pids, na), q=qid, i=msgid)
        sim.mx.append(lines(ta - 0.1 - 0.1 * rng.random(na), K_OTHER, body))
        size, sender = M["size"].to_numpy()[acc], M["sender"].gather(acc)
        body = fmt(
            "{qm}: {q}: from=<{f}>, size={z}, nrcpt={n} (queue active)", qm=QMGR, q=qid, f=sender, z=size, n=n_ok[acc]
        )
        sim.mx.append(lines(ta, K_FROM, body))
        full = n_ok[acc] == n_all[acc]
        rc = pick(full, fmt("{n}", n=n_all[acc]), fmt("{a}/{n}", a=n_ok[acc], n=n_all[acc]))
        cmds = pick(full, fmt("{n}", n=4 + n_all[acc]), fmt("{a}/{n}", a=4 + n_ok[acc], n=4 + n_all[acc]))
        body = fmt(
            "{s}disconnect from {c} {g}=1 mail=1 rcpt={rc} data=1 quit=1 commands={cm}",
            s=s_a, c=c_a, g=greet.gather(acc), rc=rc, cm=cmds,
        )  # fmt: skip
        sim.mx.append(lines(ta + 0.05 + 0.1 * rng.random(na), K_OTHER, body))
        row = np.full(n, -1)
        row[acc] = np.arange(na)
        msg = pl.DataFrame({"qid": qid, "key": keys, "arrival": tc[acc], "sender": sender, "size": size})
        self._deliver(M, R, acc, row, msg, ta)

    def _to(self, t, agent, pid, qid, rcpt, orig, relay, arrival, active, x0, dsn, status, none_relay) -> pl.Series:
        """to= lines: delay from arrival, delays split before qmgr, in qmgr, connection, transmission."""
        a = active - arrival
        b = np.maximum(0.0, x0 - active)
        c = np.where(none_relay, np.maximum(0.0, t - x0), np.minimum(np.maximum(0.0, t - x0), 0.05))
        d = np.maximum(0.0, t - arrival - a - b - c)
        o = "" if orig is None else pick(orig.is_null(), "", fmt(" orig_to=<{o}>,", o=orig.fill_null("")))
        return fmt(
            "postfix/{ag}[{p}]: {q}: to=<{r}>,{o} relay={rl}, delay={dl}, delays={a}/{b}/{c}/{d}, dsn={dsn}, "
            "status={st}",
            ag=agent, p=pid, q=qid, r=rcpt, o=o, rl=relay, dl=pf_delay(t - arrival), a=pf_delay(a), b=pf_delay(b),
            c=pf_delay(c), d=pf_delay(d), dsn=dsn, st=status,
        )  # fmt: skip

    def _deliver(self, M, R, acc, row, msg: pl.DataFrame, ta: np.ndarray) -> None:
        """First delivery attempt of accepted messages (msg: their qid, key, arrival, sender, size)."""
        sim, rng, w = self.sim, self.rng, self.w
        na = len(acc)
        qid, arrival, size, sender = msg["qid"], msg["arrival"].to_numpy(), msg["size"].to_numpy(), msg["sender"]
        m, kind, u = R["m"].to_numpy(), R["kind"].to_numpy(), R["u"].to_numpy()
        trk, ent = M["trk"].to_numpy(), M["ent"].to_numpy()
        fwd = w.user_fwd.gather(np.maximum(u, 0))
        is_fwd = (kind == LOCAL) & (u >= 0) & fwd.is_not_null().to_numpy()
        td0 = ta + 0.05 + 0.2 * rng.random(na)
        # local deliveries (the list server's command first), one after another
        loc = np.flatnonzero(((kind == LOCAL) & ~is_fwd) | (kind == PROG))
        loc = loc[np.lexsort((kind[loc] != PROG, m[loc]))]
        r_ = row[m[loc]]
        inc = 0.02 + 0.2 * rng.random(len(loc))
        tl = td0[r_] + group_cumsum(inc, r_)
        end = td0 + np.bincount(r_, weights=inc, minlength=na)
        if len(loc):
            prog = kind[loc] == PROG
            addr = R["addr"].gather(loc)
            nl = len(loc)
            body = self._to(
                tl, "local", self._pick(self.local_pids, nl), qid.gather(r_),
                pick(prog, addr, fmt("{a}@{d}", a=addr, d=LOCAL_DOMAIN)), None, "local", arrival[r_], ta[r_], tl - 0.01,
                "2.0.0",
                pick(
                    prog,
                    fmt("sent (delivered to command: {c})", c=M["prog"].gather(m[loc]).fill_null("").str.slice(1)),
                    "sent (delivered to mailbox)",
                ),
                np.zeros(nl, bool),
            )  # fmt: skip
            sim.mx.append(lines(tl, K_SENT, body))
            tk = trk[m[loc]]
            if tk.any():
                sim.counters(ent[m[loc]][tk], tl[tk])
        # remote deliveries: one smtp session per domain, side by side (.forward users: orig_to=)
        rem = np.flatnonzero((kind == REMOTE) | is_fwd)
        pending = pl.DataFrame(schema={"row": pl.Int64})
        bounced = np.zeros(na, dtype=bool)
        if len(rem):
            fw = is_fwd[rem]
            recips = pl.DataFrame(
                {
                    "row": row[m[rem]],
                    "addr": pick(fw, fwd.gather(rem).fill_null(""), R["addr"].gather(rem)),
                    "dom": np.where(fw, w.mobile, R["dom"].to_numpy()[rem]),
                    "orig": pick(fw, fmt("{a}@{d}", a=R["addr"].gather(rem), d=LOCAL_DOMAIN), none_str(len(rem))),
                    "fails": np.zeros(len(rem), np.int64),
                    "reason": np.full(len(rem), NONE),
                }
            )  # fmt: skip
            ends, bounced, pending = self._sessions(recips, qid, arrival, ta, end, size, True, trk[acc], ent[acc])
            end = np.maximum(end, ends)
        t_rm = end.copy()
        ndn = np.flatnonzero(bounced & (sender != "").to_numpy())
        if len(ndn):  # a bounce: a non-delivery notification to the sender, a message of its own
            t_rm[ndn] = self._notify(qid.gather(ndn), end[ndn], size[ndn], sender.gather(ndn))
        self._requeue_or_remove(msg, pending, end, t_rm)

    def _requeue_or_remove(self, msg: pl.DataFrame, pending: pl.DataFrame, end: np.ndarray, t_rm: np.ndarray) -> None:
        """After an attempt: back to the deferred queue with its backoff (the message's age, kept
        between 300 and 4000 s), or `removed`."""
        rng = self.rng
        has = np.zeros(msg.height, dtype=bool)
        if pending.height:
            pr = pending["row"].to_numpy()
            has[pr] = True
            arrival = msg["arrival"].to_numpy()
            next_try = end + np.clip(end - arrival, MIN_BACKOFF, MAX_BACKOFF)
            add = msg[pr].with_columns(next_try=pl.Series(next_try[pr])).hstack(pending.drop("row"))
            self.pend = pl.concat([self.pend, add.select(list(PEND_SCHEMA))])
        done = np.flatnonzero(~has)
        if len(done):
            body = fmt("{qm}: {q}: removed", qm=QMGR, q=msg["qid"].gather(done))
            self.sim.mx.append(lines(t_rm[done] + 0.01 + 0.2 * rng.random(len(done)), K_OTHER, body))

    def _sessions(self, recips, qid, arrival, active, start, size, first, trk=None, ent=None):
        """smtp sessions for recipient rows (row: the message, addr, dom, orig, fails, reason).
        Returns each message's last line time, which messages had a recipient bounced, and the
        recipients left for later (row, addr, dom, orig, fails, reason)."""
        sim, rng, w = self.sim, self.rng, self.w
        nmsg = len(start)
        recips = recips.sort("row", "dom", maintain_order=True)
        g = recips.group_by("row", "dom", maintain_order=True).agg(
            pl.len().alias("n"), pl.col("fails", "reason").first()
        )
        ng = g.height
        gr, gd = g["row"].to_numpy(), g["dom"].to_numpy()
        nh = w.dom_nh[gd]
        x0 = start[gr] + 0.01 * rank_in_group(gr)
        ts = x0 + (0.3 + 1.5 * rng.random(ng) + size[gr] / 400000 if first else 0.2 + rng.random(ng))
        down = sim.domain_down(gd, ts)
        # the first attempt in each 300 s of an outage times out; meanwhile qmgr defers the others itself
        suspended = np.zeros(ng, dtype=bool)
        for j in np.flatnonzero(down)[np.argsort(ts[down], kind="stable")]:
            slot = (int(ts[j] // MIN_BACKOFF), int(gd[j]))
            suspended[j] = slot in self.suspended
            self.suspended.add(slot)
        if first:
            ask = np.flatnonzero(~suspended)
            gi, q, j = mx_lookups(w, gd[ask])  # MX, A, AAAA and A of each MX host, before the connection
            self.query(
                ts[ask][gi] - 0.25 * rng.random(len(gi)) - 0.05, q, pl.Series(np.array(["MX", "A", "AAAA", "A"])[j])
            )
        fails, reason0 = g["fails"].to_numpy(), g["reason"].to_numpy()
        r1, r2, r3 = rng.random(ng), rng.random(ng), rng.random(ng)
        again = ~down & (fails > 0) & (reason0 >= 0) & (not first)  # an ordinary deferral keeps failing a while
        new = ~down & (r1 < P_DEFER) & first
        bounce = ~down & ~new & (r2 < P_BOUNCE) & first
        deferred = down | again | new
        reason = np.where(
            suspended,
            SUSPENDED,
            np.where(down, OUTAGE, np.where(again, reason0, np.where(new, (r3 * 4).astype(np.int64), NONE))),
        )
        fails_left = np.where(new, (rng.random(ng) * 4).astype(np.int64), np.where(again, fails - 1, 0))
        timed = (down & ~suspended) | ((again | new) & (reason == TIMED_OUT))
        ts = np.where(
            suspended, x0, ts + np.where(timed, CONNECT_TIMEOUT * nh + rng.random(ng) * (down & ~suspended), 0.0)
        )
        # one line per recipient
        gi = np.repeat(np.arange(ng), g["n"].to_numpy())
        inc = np.where(suspended[gi], 0.002 + 0.01 * rng.random(len(gi)), 0.01 + 0.05 * rng.random(len(gi)))
        tl = ts[gi] + group_cumsum(inc, gi)
        h0 = w.dom_h0[gd]
        hg = fmt("{h}[{ip}]", h=w.host_name.gather(h0), ip=w.host_ip.gather(h0)).gather(gi)
        rs, kg = reason[gi], np.where(bounce, 2, np.where(deferred, 1, 0))[gi]
        none_relay = (kg == 1) & np.isin(rs, (OUTAGE, SUSPENDED, 0, 2))
        why = pick(
            rs == SUSPENDED, fmt("delivery temporarily suspended: connect to {h}:25: Connection timed out", h=hg), ""
        )
        why = pick(rs == OUTAGE, fmt("connect to {h}:25: Connection timed out", h=hg), why)
        for i, (head, tail, _) in enumerate(DEFER):
            why = pick(rs == i, fmt("{a}{h}{b}", a=head, h=hg, b=tail), why)
        status = pick(
            kg == 0, fmt("sent ({r})", r=remote_reply(gd, rng.random(ng)).gather(gi)), fmt("deferred ({w})", w=why)
        )
        status = pick(
            kg == 2,
            fmt("bounced (host {h} said: 554 5.0.0 Service unavailable (in reply to RCPT TO command))", h=hg),
            status,
        )
        dsn = np.where(
            kg == 0, "2.0.0", np.where(kg == 2, "5.0.0", np.array([d for _, _, d in DEFER])[np.clip(rs, 0, 3)])
        )
        dsn = np.where((kg == 1) & (rs < 0), "4.4.1", dsn)
        err = suspended[gi]
        row_of = gr[gi]
        body = self._to(
            tl, pick(err, "error", "smtp"),
            pick(err, str(self.error_pid), fmt("{p}", p=self._pick(self.smtp_pids, len(gi)))),
            qid.gather(row_of), recips["addr"], recips["orig"], pick(none_relay, "none", fmt("{h}:25", h=hg)),
            arrival[row_of], active[row_of], x0[gi], pl.Series(dsn), status, none_relay,
        )  # fmt: skip
        sim.mx.append(lines(tl, np.where(kg == 0, K_SENT, np.where(kg == 2, K_TO_OTHER, K_DEFERRED)), body))
        if down.any():
            sim.counters(sim.outage_entity(), tl[down[gi]], deferred=1)
        if trk is not None and trk[row_of].any():
            tk = trk[row_of]
            sim.counters(ent[row_of][tk], tl[tk])
        ends = np.full(nmsg, -np.inf)
        np.maximum.at(ends, row_of, tl)
        bounced = np.zeros(nmsg, dtype=bool)
        bounced[row_of[kg == 2]] = True
        dg = deferred[gi]
        left = recips.filter(pl.Series(dg)).with_columns(
            fails=pl.Series(fails_left[gi][dg]), reason=pl.Series(reason[gi][dg])
        )
        return ends, bounced, left

    def _notify(self, qid: pl.Series, end: np.ndarray, size: np.ndarray, sender: pl.Series) -> np.ndarray:
        """bounce(8): a non-delivery notification from <> to each sender, delivered at once;
        returns when the bounced message can be removed."""
        sim, rng, w = self.sim, self.rng, self.w
        k = len(end)
        t = end + 0.05 + 0.1 * rng.random(k)
        nq, _ = self.qids(t)
        body = fmt(
            "postfix/cleanup[{p}]: {q}: message-id=<{ts}.{q}@{mx}>",
            p=self._pick(self.cleanup_pids, k),
            q=nq,
            ts=sim.ymdhms(t),
            mx=MX_FQDN,
        )
        sim.mx.append(lines(t, K_OTHER, body))
        nsize = 2400 + np.minimum(size, 20000)
        sim.mx.append(
            lines(t + 0.01, K_FROM, fmt("{qm}: {q}: from=<>, size={z}, nrcpt=1 (queue active)", qm=QMGR, q=nq, z=nsize))
        )
        body = fmt("postfix/bounce[{p}]: {q}: sender non-delivery notification: {n}", p=self.bounce_pid, q=qid, n=nq)
        sim.mx.append(lines(t + 0.02, K_OTHER, body))
        dom_name = sender.str.split("@").list.last()
        di = pl.DataFrame({"d": dom_name}).join(self.dom_index, on="d", how="left", maintain_order="left")["i"]
        di = di.fill_null(-1).to_numpy()
        local = (dom_name == LOCAL_DOMAIN).to_numpy()
        remote = ~local & (di >= 0)
        x0 = t + 0.03 + 0.1 * rng.random(k)
        td = np.where(remote, x0 + 0.3 + 1.5 * rng.random(k) + nsize / 400000, x0 + 0.02 + 0.2 * rng.random(k))
        if remote.any():
            gi, q, j = mx_lookups(w, di[remote])
            self.query(
                td[remote][gi] - 0.25 * rng.random(len(gi)) - 0.05, q, pl.Series(np.array(["MX", "A", "AAAA", "A"])[j])
            )
        td = np.where(remote, td + 0.01 + 0.05 * rng.random(k), td)
        h0 = w.dom_h0[np.maximum(di, 0)]
        h = fmt("{h}[{ip}]", h=w.host_name.gather(h0), ip=w.host_ip.gather(h0))
        reply = remote_reply(np.maximum(di, 0), rng.random(k))
        body = self._to(
            td, pick(local, "local", "smtp"),
            np.where(local, self._pick(self.local_pids, k), self._pick(self.smtp_pids, k)),
            nq, sender, None, pick(local, "local", fmt("{h}:25", h=h)), t, t + 0.01, np.where(local, td - 0.01, x0),
            "2.0.0",
            pick(local, "sent (delivered to mailbox)", fmt("sent ({r})", r=reply)),
            np.zeros(k, bool),
        )  # fmt: skip
        sent = np.flatnonzero(local | remote)
        sim.mx.append(lines(td[sent], K_SENT, body.gather(sent)))
        sim.mx.append(lines(td + 0.01 + 0.2 * rng.random(k), K_OTHER, fmt("{qm}: {q}: removed", qm=QMGR, q=nq)))
        return t + 0.03

    # -- the deferred queue ----------------------------------------------------------------------------
    def run_queue(self, T: float) -> None:
        """qmgr's scan of the deferred queue: each message due logs from= again (not a new message),
        then its pending recipients are tried (no lookups: the cache)."""
        pend = self.pend
        if pend.height == 0:
            return
        due = (pend["next_try"] <= T).to_numpy()
        if not due.any():
            return
        sim, rng = self.sim, self.rng
        d = pend.filter(pl.Series(due))
        self.pend = pend.filter(~pl.Series(due))
        msg = d.group_by("qid", maintain_order=True).agg(
            pl.len().alias("n"), pl.col("key", "arrival", "sender", "size").first()
        )
        nm = msg.height
        ta = T + np.cumsum(0.01 + 0.05 * rng.random(nm))
        body = fmt(
            "{qm}: {q}: from=<{f}>, size={z}, nrcpt={n} (queue active)",
            qm=QMGR,
            q=msg["qid"],
            f=msg["sender"],
            z=msg["size"],
            n=msg["n"],
        )
        sim.mx.append(lines(ta, K_OTHER, body))
        row = d.join(msg.with_row_index("row").select("qid", "row"), on="qid", how="left", maintain_order="left")["row"]
        recips = d.select(row=row.cast(pl.Int64), addr="addr", dom="dom", orig="orig", fails="fails", reason="reason")
        arrival = msg["arrival"].to_numpy()
        ends, _, pending = self._sessions(recips, msg["qid"], arrival, ta, ta + 0.01, msg["size"].to_numpy(), False)
        ends = np.maximum(ends, ta)
        self._requeue_or_remove(msg.drop("n"), pending, ends, ends)

    # -- POP3 (Dovecot) ----------------------------------------------------------------------------------
    def pops(self, P: pl.DataFrame) -> None:
        n = P.height
        if n == 0:
            return
        sim, rng = self.sim, self.rng
        t = P["t"].to_numpy()
        self.query(t - 2 * rng.random(n), P["arpa"], "PTR")  # Dovecot's tcpwrap lookup of the client
        mpid = sim.pids(n)
        session = b64_session(rng, n)
        fail = rng.random(n) < 0.015
        bad, ok = np.flatnonzero(fail), np.flatnonzero(~fail)
        user, ip = P["user"], P["ip"]
        if len(bad):
            u, i, s = user.gather(bad), ip.gather(bad), session.gather(bad)
            body = fmt(
                "dovecot: auth-worker({p}): pam({u},{i},<{s}>): pam_authenticate() failed: Authentication failure "
                "(password mismatch?)",
                p=mpid[bad] + 1, u=u, i=i, s=s,
            )  # fmt: skip
            sim.mx.append(lines(t[bad], K_OTHER, body))
            body = fmt(
                "dovecot: pop3-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<{u}>, method=PLAIN, "
                "rip={i}, lip={mx}, session=<{s}>",
                u=u, i=i, mx=MX_IP, s=s,
            )  # fmt: skip
            sim.mx.append(lines(t[bad] + 2.1, K_OTHER, body))
        k = len(ok)
        u, s = user.gather(ok), session.gather(ok)
        body = fmt(
            "dovecot: pop3-login: Login: user=<{u}>, method=PLAIN, rip={i}, lip={mx}, mpid={p}, session=<{s}>",
            u=u, i=ip.gather(ok), mx=MX_IP, p=mpid[ok], s=s,
        )  # fmt: skip
        sim.mx.append(lines(t[ok], K_POP, body))
        left = (rng.random(k) * 40).astype(np.int64)
        dele = np.where(rng.random(k) < 0.4, (rng.random(k) * 4).astype(np.int64), 0)
        kept = left * 5127 + (rng.random(k) * 999).astype(np.int64)
        body = fmt(
            "dovecot: pop3({u})<{p}><{s}>: Disconnected: Logged out top=0/0, retr={d}/{db}, del={d}/{all}, size={z}",
            u=u, p=mpid[ok], s=s, d=dele, db=dele * 4321, all=left + dele, z=kept + dele * 4321,
        )  # fmt: skip
        sim.mx.append(lines(t[ok] + 0.3 + 25 * rng.random(k), K_OTHER, body))

    # -- the DNS server's other clients, as BIND logs them -----------------------------------------------
    def other_dns(self, d: int, b0: int, b1: int) -> None:
        sim, rng, w, tr = self.sim, self.rng, self.w, self.sim.traffic
        npc, nn = len(w.pc_ip), len(self.qnames)
        template = "{named}: client @0x7f3c{x} {ip}#{p} ({q}): query: {q} IN {qt} +E(0)K ({ns})"
        for name in ("pc_dns", "www_dns"):
            t = tr.times(name, d, b0, b1)
            n = len(t)
            v = rng.integers(0, 0xFFFFFF, n)
            ip = w.pc_ip.gather(v % npc) if name == "pc_dns" else WWW_IP
            q = self.qnames.gather((v >> 9) % nn)
            qt = pick(v & 3 == 0, "AAAA", "A")
            body = fmt(
                template, named=NAMED, x=hexs(v * 16, 8), ip=ip, p=32768 + (v >> 4) % 28000, q=q, qt=qt, ns=NS_IP
            )
            sim.ns.append(lines(t, K_OTHER, body))
        t0, span = d * 86400 + b0 * 600, (b1 - b0) * 600
        s = max(1.0, sim.scale)
        k = int(rng.poisson(0.05 * s * (b1 - b0)))  # a scanner asks for the version: refused, not a query of ours
        if k:
            body = fmt(
                "{named}: client @0x7f3c{x} 203.0.113.{a}#{p} (version.bind): query (cache) "
                "'version.bind/TXT/CH' denied",
                named=NAMED, x=hexs(rng.integers(0, 1 << 24, k) * 16, 8), a=rng.integers(1, 255, k),
                p=rng.integers(1024, 65535, k),
            )  # fmt: skip
            sim.ns.append(lines(t0 + span * rng.random(k), K_OTHER, body))
        k = int(rng.poisson(0.05 * s * (b1 - b0)))  # a truncated answer retried over TCP: a query of the mail server
        if k:
            q = self.qnames.gather(rng.integers(0, nn, k))
            body = fmt(
                "{named}: client @0x7f3c{x} {mx}#{p} ({q}): query: {q} IN TXT +T ({ns})",
                named=NAMED, x=hexs(rng.integers(0, 1 << 24, k) * 16, 8), mx=MX_IP, p=rng.integers(32768, 60999, k),
                q=q, ns=NS_IP,
            )  # fmt: skip
            sim.ns.append(lines(t0 + span * rng.random(k), K_DQ, body))

    def mx_noise(self, t: np.ndarray) -> None:
        """mail.log's other lines: sessions that send nothing (their 2 lookups still count in Dq),
        anvil statistics, POP connections that never log in."""
        sim, rng, w = self.sim, self.rng, self.w
        r = rng.random(len(t))
        a = t[r < 0.35]
        na = len(a)
        if na:
            pcs, c = self.idle_clients(na)
            client = pick(
                pcs, fmt("{n}[{ip}]", n=c["name"].fill_null(""), ip=c["ip"]), fmt("unknown[{ip}]", ip=c["ip"])
            )
            self.query(a + 0.05 * rng.random(na), c["arpa"], "PTR")
            self.query(a + 0.1 * rng.random(na), pick(pcs, c["name"], c["arpa"]), pick(pcs, "A", "PTR"))
            head = fmt("postfix/smtpd[{p}]: ", p=sim.pids(na))
            sim.mx.append(lines(a, K_OTHER, fmt("{h}connect from {c}", h=head, c=client)))
            lost = rng.random(na) < 0.7
            lo, hi = np.flatnonzero(lost), np.flatnonzero(~lost)
            h, c_ = head.gather(lo), client.gather(lo)
            sim.mx.append(lines(a[lo] + 0.5, K_OTHER, fmt("{h}lost connection after CONNECT from {c}", h=h, c=c_)))
            sim.mx.append(lines(a[lo] + 0.51, K_OTHER, fmt("{h}disconnect from {c} commands=0/0", h=h, c=c_)))
            body = fmt("{h}disconnect from {c} ehlo=1 quit=1 commands=2", h=head.gather(hi), c=client.gather(hi))
            sim.mx.append(lines(a[hi] + 2.0, K_OTHER, body))
        b = t[(r >= 0.35) & (r < 0.6)]
        nb = len(b)
        body = fmt(
            "postfix/anvil[{p}]: statistics: max connection rate {x}/60s for (smtp:{ip}) at {ts}",
            p=rng.integers(1000, 30000, nb), x=rng.integers(2, 9, nb),
            ip=w.pc_ip.gather(rng.integers(0, len(w.pc_ip), nb)),
            ts=sim.stamps(b).str.slice(0, 19),
        )  # fmt: skip
        sim.mx.append(lines(b, K_OTHER, body))
        c = t[r >= 0.6]
        nc = len(c)
        body = fmt(
            "dovecot: pop3-login: Disconnected (no auth attempts in 0 secs): user=<>, rip={ip}, lip={mx}, "
            "session=<{s}>",
            ip=w.pc_ip.gather(rng.integers(0, len(w.pc_ip), nc)), mx=MX_IP, s=hexs(rng.integers(0, 1 << 60, nc), 15),
        )  # fmt: skip
        sim.mx.append(lines(c, K_OTHER, body))

    def periodic(self, b: int, t0: float) -> None:
        """Debian's cron and qmgr's deferred-queue scans."""
        sim, rng = self.sim, self.rng
        minute = (b * 10) % 1440
        rows = []
        if minute % 60 == 10:
            rows.append((t0 + 420 + 0.2 * rng.random(), "   cd / && run-parts --report /etc/cron.hourly"))
        if minute == 380:  # 06:20 bin: cron.daily (logrotate) at 06:25
            rows.append(
                (
                    t0 + 300 + 0.3 * rng.random(),
                    "test -x /usr/sbin/anacron || ( cd / && run-parts --report /etc/cron.daily )",
                )
            )
        if rows:
            body = pl.Series(
                [f"CRON[{int(rng.integers(1000, 32000))}]: (root) CMD ({cmd})" for _, cmd in rows], dtype=S
            )
            sim.ns.append(lines([x for x, _ in rows], K_OTHER, body))
        self.run_queue(t0 + self.scan_offset)
        self.run_queue(t0 + self.scan_offset + QUEUE_RUN_DELAY)
