"""What the large site does, as columns: the SMTP transactions of a stretch of bins (everyday
mail in, out and on campus, spam runs, list posts and their re-injection, digests, newsletters,
the worms), POP3 logins, and the counts of the other DNS clients' queries.

A batch of mail is two frames: `M`, one row per SMTP transaction (t = the from= line's time,
client ip/name, sender, size, msgid, proto, and the incident it belongs to), and `R`, one row
per recipient the client asked for (m = its row in M; kind LOCAL, REMOTE, UNKNOWN or PROG).
The stacks (stack2002, modern) turn them into the lines of their software.

Volumes follow simulate/traffic.py's classes and daily profiles, times the scale; per-host
behaviour (a user's messages a day, a worm's rate, a newsletter's size) stays the small site's.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from mmw_tasks.simulate.large.text import S, cat, col_str, fmt, hexs, lit, pick
from mmw_tasks.simulate.large.world import pc_net
from mmw_tasks.simulate.scenarios import (
    FML,
    KLEZ_SIZE,
    KLEZ_WINDOW,
)
from mmw_tasks.simulate.site import GIVEN, LOCAL_DOMAIN, SURNAMES
from mmw_tasks.simulate.traffic import CLASSES, OFFICE, bin_weights

LOCAL, REMOTE, UNKNOWN, PROG = 0, 1, 2, 3
M_SCHEMA = {
    "t": pl.Float64,
    "ip": S,
    "arpa": S,
    "name": S,  # the client's PTR name, null when it has none
    "forged": pl.Boolean,
    "sender": S,
    "size": pl.Int64,
    "msgid": S,  # null: none; "*": the MTA adds one
    "proto": S,
    "prog": S,  # a program alias delivery (the list server): its command
    "ent": pl.Int32,  # the incident it belongs to, or -1
    "trk": pl.Boolean,  # its to= lines are part of the incident too (list re-injection)
}
R_SCHEMA = {"m": pl.Int64, "kind": pl.UInt8, "addr": S, "dom": pl.Int64, "u": pl.Int64}
BINS = 144


M_DEFAULTS = {"forged": False, "ent": -1, "trk": False}


def frame_m(n: int, **cols) -> pl.DataFrame:
    """An M frame of n rows: the given columns (Series, arrays, or one value for every row), the
    others at their defaults (null where there is none)."""
    out = {}
    for k, dt in M_SCHEMA.items():
        v = cols.get(k, M_DEFAULTS.get(k))
        s = v if isinstance(v, pl.Series) else pl.Series([v] * n) if v is None or np.ndim(v) == 0 else pl.Series(v)
        out[k] = s.cast(dt).alias(k)
    return pl.DataFrame(out)


def frame_r(m: np.ndarray, kind, addr: pl.Series, dom=None, u=None) -> pl.DataFrame:
    n = len(m)
    return pl.DataFrame(
        {
            "m": np.asarray(m, dtype=np.int64),
            "kind": np.broadcast_to(np.asarray(kind, dtype=np.uint8), (n,)).copy(),
            "addr": addr.cast(S),
            "dom": np.broadcast_to(np.asarray(-1 if dom is None else dom, dtype=np.int64), (n,)).copy(),
            "u": np.broadcast_to(np.asarray(-1 if u is None else u, dtype=np.int64), (n,)).copy(),
        }
    )


def concat_mr(parts: list[tuple[pl.DataFrame, pl.DataFrame]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    ms, rs, off = [], [], 0
    for m, r in parts:
        if m.height == 0:
            continue
        ms.append(m)
        rs.append(r.with_columns(pl.col("m") + off))
        off += m.height
    if not ms:
        return frame_m(0), pl.DataFrame(schema=R_SCHEMA)
    M = pl.concat(ms)
    R = pl.concat(rs).unique(["m", "kind", "addr"], keep="first", maintain_order=True)
    return M, R


def words(vocabulary, idx) -> pl.Series:
    return pl.Series(list(vocabulary), dtype=S).gather(np.asarray(idx, dtype=np.int64))


class Traffic:
    def __init__(self, sim):
        self.sim = sim
        self.w = sim.world
        self.rng = sim.rng
        self.weights = {
            name: (np.array(bin_weights(wd)), np.array(bin_weights(we))) for name, (_, wd, we, _, _) in CLASSES.items()
        }
        self.office_cum = np.cumsum(bin_weights(OFFICE))
        self.lam: dict[str, np.ndarray] = {}
        self.planned = (frame_m(0), pl.DataFrame(schema=R_SCHEMA))
        self.dial_users = np.flatnonzero(self.w.user_dial >= 0)
        self.posts = [0] * len(self.w.labs["names"])
        self.worms = sim.worms

    # -- the day's volumes and plans ---------------------------------------------------------------
    def start_day(self, d: int, weekday: int, today: frozenset) -> None:
        rng = self.rng
        scale = self.sim.scale
        self.lam = {}
        for name, (total, _, _, sat, sun) in CLASSES.items():
            f = sat if weekday == 5 else sun if weekday == 6 else 1.0
            f *= max(0.5, rng.normal(1.0, 0.04)) * scale
            if name in ("pc_dns", "www_dns", "netbios"):
                f *= self.sim.other_dns
            self.lam[name] = total * f * self.weights[name][1 if weekday >= 5 else 0]
        self.planned = concat_mr(self._plan(d, weekday, today))

    def _office_times(self, day0: float, n: int) -> np.ndarray:
        b = np.minimum(
            np.searchsorted(self.office_cum, self.rng.random(n) * self.office_cum[-1], side="right"), BINS - 1
        )
        return day0 + b * 600 + 600 * self.rng.random(n)

    def _plan(self, d: int, weekday: int, today: frozenset) -> list:
        """The day's list posts, digests, newsletters and worm mail, as M/R frames."""
        rng = self.rng
        w = self.w
        day0 = d * 86400
        parts = []
        # lab lists: a post arrives for the fml alias, fml re-injects it through localhost to the members
        labs = w.labs
        n_posts = rng.integers(4, 9, len(labs["names"])) if weekday < 5 else rng.integers(1, 4, len(labs["names"]))
        parts.extend(self._posts(np.repeat(np.arange(len(n_posts)), n_posts), day0))
        parts.append(self._digests(d, day0))
        # newsletters: ~250 messages of one sender, one recipient each
        for bk in w.bulks:
            start = day0 + (22 * 3600 + 300 * rng.random() if bk["k"] == 0 else rng.uniform(8 * 3600, 22.5 * 3600))
            n = int(rng.integers(240, 261))
            times = start + np.r_[0, np.cumsum(2300 / n * (0.5 + rng.random(n - 1)))]
            parts.append(self._bulk(bk, times))
        for wm in self.worms:
            if "klez" in today:
                parts.append(self._worm(wm, day0))
        return parts

    def _posts(self, k: np.ndarray, day0: float) -> list:
        """Posts to lab lists k (one per entry), at office hours: a member's message to the fml
        alias, then fml's copy from the list owner through localhost to every member."""
        rng, w, sim = self.rng, self.w, self.sim
        labs = w.labs
        n = len(k)
        t = self._office_times(day0, n)
        order = np.argsort(t, kind="stable")
        k, t = k[order], t[order]
        n_loc, n_rem = labs["local"].shape[1], labs["remote"].shape[1]
        j = rng.integers(0, n_loc + min(10, n_rem), n)  # the poster: a local member or one of 10 remote ones
        remote = j >= n_loc
        u = labs["local"][k, np.minimum(j, n_loc - 1)]
        c = labs["remote"][k, np.clip(j - n_loc, 0, n_rem - 1)]
        pc, h = w.user_pc[u], w.dom_h0[w.corr_dom[c]]
        sender = pick(remote, w.corr_addr.gather(c), fmt("{u}@{d}", u=w.users.gather(u), d=LOCAL_DOMAIN))
        name = pl.Series(labs["names"]).gather(k)
        size = 1500 + rng.lognormal(7.5, 0.8, n).astype(np.int64)
        msgid = fmt("<{ts}.{r}.{s}>", ts=sim.ymdhms(t), r=hexs(rng.integers(0, 65536, n), 4, True), s=sender)
        post = frame_m(
            n, t=t, ip=pick(remote, w.host_ip.gather(h), w.pc_ip.gather(pc)),
            arpa=pick(remote, w.host_arpa.gather(h), w.pc_arpa.gather(pc)),
            name=pick(remote, w.host_name.gather(h), w.pc_name.gather(pc)), sender=sender, size=size, msgid=msgid,
            proto="ESMTP", prog=fmt("{fml}/{n}", fml=FML.rsplit("/", 1)[0], n=name),
        )  # fmt: skip
        alias = fmt("{n}@{d}", n=name, d=LOCAL_DOMAIN)
        owner = fmt("{n}-owner@{d}", n=name, d=LOCAL_DOMAIN)
        ents = np.empty(n, dtype=np.int64)
        for i, (kk, o, a) in enumerate(zip(k, owner, alias, strict=True)):
            self.posts[kk] += 1
            ents[i] = sim.entity(
                "mailing_list", (o, self.posts[kk]), {"sender": o, "client_ip": "127.0.0.1", "list": a}
            )
        t2 = t + 2 + 3 * rng.random(n)
        again = frame_m(
            n, t=t2, ip="127.0.0.1", arpa="1.0.0.127.in-addr.arpa", name="localhost", sender=owner, size=size + 640,
            msgid=msgid, proto="ESMTP", ent=ents, trk=True,
        )  # fmt: skip
        sim.counters(ents, t2, messages=1, recipients=n_loc + n_rem)
        return [(post, frame_r(np.arange(n), PROG, alias)), (again, self._members(labs, k))]

    def _members(self, lists: dict, k: np.ndarray) -> pl.DataFrame:
        """R rows of messages to every member of lists k (one message each, in order)."""
        w = self.w
        loc, rem = lists["local"][k].ravel(), lists["remote"][k].ravel()
        m_loc = np.repeat(np.arange(len(k)), lists["local"].shape[1])
        m_rem = np.repeat(np.arange(len(k)), lists["remote"].shape[1])
        return pl.concat(
            [
                frame_r(m_loc, LOCAL, w.users.gather(loc), u=loc),
                frame_r(m_rem, REMOTE, w.corr_addr.gather(rem), dom=w.corr_dom[rem]),
            ]
        ).sort("m", maintain_order=True)

    def _digests(self, d: int, day0: float) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Each digest list's daily digest, from 05:00, through localhost to its readers."""
        rng, w, sim = self.rng, self.w, self.sim
        dg = w.digests
        n = len(dg["names"])
        k = np.arange(n)
        t = day0 + 5 * 3600 + k * 3600 / n + 30 * rng.random(n)
        name = pl.Series(dg["names"])
        owner = fmt("{n}-owner@{d}", n=name, d=LOCAL_DOMAIN)
        ents = np.array(
            [
                sim.entity(
                    "mailing_list", (o, 0), {"sender": o, "client_ip": "127.0.0.1", "list": f"{x}@{LOCAL_DOMAIN}"}
                )
                for o, x in zip(owner, dg["names"], strict=True)
            ]
        )
        m = frame_m(
            n, t=t, ip="127.0.0.1", arpa="1.0.0.127.in-addr.arpa", name="localhost", sender=owner,
            size=20000 + rng.integers(0, 30000, n), proto="ESMTP", ent=ents, trk=True,
            msgid=fmt("<{ts}.digest.{n}@{d}>", ts=sim.ymdhms(t), n=name, d=LOCAL_DOMAIN),
        )  # fmt: skip
        sim.counters(ents, t, messages=1, recipients=dg["local"].shape[1] + dg["remote"].shape[1])
        return m, self._members(dg, k)

    def _bulk(self, bk: dict, times: np.ndarray) -> tuple[pl.DataFrame, pl.DataFrame]:
        rng = self.rng
        w = self.w
        sim = self.sim
        n = len(times)
        pc = bk["pc"]
        sender = f"{bk['sender']}@{LOCAL_DOMAIN}"
        ent = sim.entity("bulk_sender", sender, {"sender": sender, "client_ip": w.pc_ip[pc], "host": w.pc_name[pc]})
        local = rng.random(n) < 0.1
        ci = rng.integers(0, len(w.corr_addr), n)
        ui = rng.integers(0, w.n_users, n)
        m = frame_m(
            n,
            t=times,
            ip=w.pc_ip[pc],
            arpa=w.pc_arpa[pc],
            name=w.pc_name[pc],
            sender=sender,
            size=3000 + rng.lognormal(8.5, 0.6, n).astype(np.int64),
            msgid=cat(
                lit("<"),
                sim.ymdhms(times),
                lit("."),
                hexs(rng.integers(0, 65536, n), 4, True),
                lit(f".{bk['sender']}@{LOCAL_DOMAIN}>"),
            ),
            proto="ESMTP",
            ent=ent,
        )
        idx = np.arange(n)
        r = pl.concat(
            [
                frame_r(idx[local], LOCAL, w.users.gather(ui[local]), u=ui[local]),
                frame_r(idx[~local], REMOTE, w.corr_addr.gather(ci[~local]), dom=w.corr_dom[ci[~local]]),
            ]
        ).sort("m", maintain_order=True)
        sim.counters(ent, times, messages=1)
        return m, r

    def _worm(self, wm: dict, day0: float) -> tuple[pl.DataFrame, pl.DataFrame]:
        """W32.Klez: a message every ~4 s for three hours from one PC, forged senders, harvested
        recipients and made-up local ones (`User unknown`)."""
        rng = self.rng
        w = self.w
        sim = self.sim
        onset = day0 + wm["onset"] + 5 * rng.random()
        end = onset + (KLEZ_WINDOW[1] - KLEZ_WINDOW[0])
        gaps = np.maximum(0.3, rng.normal(4.0, 1.5, int((end - onset) / 2) + 10))
        times = onset + np.r_[0, np.cumsum(gaps)]
        times = times[times < end]
        n = len(times)
        r = rng.random(n)
        harvest = wm["harvest"]
        hi = harvest[rng.integers(0, len(harvest), n)]
        gi = words(GIVEN, rng.integers(0, len(GIVEN), n))
        gdom = w.dom_name.gather(w.pick_domain(rng.random(n)))
        sender = pl.DataFrame(
            {
                "r": r,
                "h": w.corr_addr.gather(hi),
                "u": w.users.gather(rng.integers(0, w.n_users, n)),
                "g": gi,
                "n": rng.integers(0, 100, n),
                "d": gdom,
            }
        ).select(
            pl.when(pl.col("r") < 0.5)
            .then("h")
            .when(pl.col("r") < 0.75)
            .then(pl.concat_str("u", lit(f"@{LOCAL_DOMAIN}")))
            .otherwise(pl.concat_str("g", pl.col("n").cast(S), lit("@"), "d"))
        )[:, 0]
        pc = wm["pc"]
        k = np.where(rng.random(n) < 0.85, 1, 2)
        mi = np.repeat(np.arange(n), k)
        nr = len(mi)
        rr = rng.random(nr)
        remote, local = rr < 0.55, (rr >= 0.55) & (rr < 0.63)
        unknown = rr >= 0.63
        rh = harvest[rng.integers(0, len(harvest), nr)]
        lh = wm["harvest_local"][rng.integers(0, len(wm["harvest_local"]), nr)]
        R = (
            pl.concat(
                [
                    frame_r(mi[remote], REMOTE, w.corr_addr.gather(rh[remote]), dom=w.corr_dom[rh[remote]]),
                    frame_r(mi[local], LOCAL, w.users.gather(lh[local]), u=lh[local]),
                    frame_r(mi[unknown], UNKNOWN, guesses(rng, int(unknown.sum()))),
                ]
            )
            .sort("m", maintain_order=True)
            .unique(["m", "kind", "addr"], keep="first", maintain_order=True)
        )
        ent = wm["ent"]
        m = frame_m(
            n,
            t=times,
            ip=w.pc_ip[pc],
            arpa=w.pc_arpa[pc],
            name=w.pc_name[pc],
            sender=sender,
            size=np.full(n, KLEZ_SIZE),
            msgid="*",
            proto="SMTP",
            ent=ent,
        )
        n_unknown = np.bincount(R.filter(pl.col("kind") == UNKNOWN)["m"].to_numpy(), minlength=n)
        sim.counters(ent, times, messages=1, user_unknown=n_unknown)
        return m, R

    # -- everyday mail -------------------------------------------------------------------------------
    def _times(self, name: str, b0: int, b1: int, t0: float) -> np.ndarray:
        counts = self.rng.poisson(self.lam[name][b0:b1])
        start = t0 + 600 * np.repeat(np.arange(b1 - b0), counts)
        return start + 600 * self.rng.random(len(start))

    def messages(self, d: int, b0: int, b1: int) -> tuple[pl.DataFrame, pl.DataFrame]:
        t0 = d * 86400 + b0 * 600
        parts = [
            self._inbound(self._times("inbound", b0, b1, t0)),
            self._outbound(self._times("outbound", b0, b1, t0)),
            self._local(self._times("local", b0, b1, t0)),
            self._spam(self._times("spam_runs", b0, b1, t0)),
        ]
        pm, pr = self.planned
        t1 = t0 + (b1 - b0) * 600
        sel = ((pm["t"] >= t0) & (pm["t"] < t1)).to_numpy()
        if sel.any():
            rows = np.flatnonzero(sel)
            new = np.full(pm.height, -1)
            new[rows] = np.arange(len(rows))
            r = pr.filter(pl.Series(sel[pr["m"].to_numpy()]))
            r = r.with_columns(m=pl.Series(new[r["m"].to_numpy()], dtype=pl.Int64))
            parts.append((pm.filter(pl.Series(sel)), r))
        return concat_mr(parts)

    def _users_clients(self, u: np.ndarray) -> tuple[pl.DataFrame, np.ndarray]:
        """The client (ip, name, arpa) of each user's message and its address as one integer
        (octets a.b.c.d as a<<24|b<<16|c<<8|d): the user's PC, or for 7% of dial-up users, home."""
        w = self.w
        pool = w.user_dial[u]
        home = np.flatnonzero((pool >= 0) & (self.rng.random(len(u)) < 0.07))
        pc = w.user_pc[u]
        b, c, d = pc_net(pc)
        quad = (10 << 24) | (b << 16) | (c << 8) | d
        out = pl.DataFrame({"ip": w.pc_ip.gather(pc), "name": w.pc_name.gather(pc), "arpa": w.pc_arpa.gather(pc)})
        if len(home):
            dial, dquad = self._dialup(u[home])
            out = out.with_columns([out[c].scatter(home, dial[c]) for c in ("ip", "name", "arpa")])
            quad[home] = dquad
        return out, quad

    def _dialup(self, u: np.ndarray) -> tuple[pl.DataFrame, np.ndarray]:
        """A dial-up address of each (dial-up) user's pool, as site.dialup_host names them."""
        n = len(u)
        pool = self.w.user_dial[u]
        k = self.rng.integers(0, 65536, n)
        hi, lo = k >> 8, np.where(k & 255 == 0, 1, k & 255)
        df = pl.DataFrame({"pool": pool, "k": k, "hi": hi, "lo": lo})
        hi_, lo_, k_ = pl.col("hi").cast(S), pl.col("lo").cast(S), pl.col("k").cast(S)
        p = pl.col("pool")
        out = df.select(
            ip=pl.when(p == 0)
            .then(pl.concat_str(lit("100.64."), hi_, lit("."), lo_))
            .when(p == 1)
            .then(pl.concat_str(lit("100.65."), hi_, lit("."), lo_))
            .otherwise(pl.concat_str(lit("198.51.100."), lo_)),
            name=pl.when(p == 0)
            .then(
                pl.concat_str(
                    lit("p"), k_, lit("-ipad"), (pl.col("hi") % 40).cast(S).str.zfill(2), lit(".tokyo.bigisp.ne.jp")
                )
            )
            .when(p == 1)
            .then(pl.concat_str(lit("dial"), lo_, lit("-"), hi_, lit(".dialnet.ne.jp")))
            .otherwise(pl.concat_str(lit("dialup"), lo_, lit(".isp.example.net"))),
            arpa=pl.when(p == 0)
            .then(pl.concat_str(lo_, lit("."), hi_, lit(".64.100.in-addr.arpa")))
            .when(p == 1)
            .then(pl.concat_str(lo_, lit("."), hi_, lit(".65.100.in-addr.arpa")))
            .otherwise(pl.concat_str(lo_, lit(".100.51.198.in-addr.arpa"))),
        )
        quad = np.where(
            pool == 0,
            (100 << 24) | (64 << 16) | (hi << 8) | lo,
            np.where(pool == 1, (100 << 24) | (65 << 16) | (hi << 8) | lo, (198 << 24) | (51 << 16) | (100 << 8) | lo),
        )
        return out, quad

    def _msgids(self, t: np.ndarray, users: pl.Series, clients: pl.DataFrame, quad: np.ndarray) -> pl.Series:
        """Outlook Express ids (<000a01c1b6c4$5d1f3e40$4d03010a@pc77>) from PCs whose address ends
        in 1, 3, 5 or 7; the other MUAs' <time.rand.user@domain>."""
        rng = self.rng
        n = len(t)
        last = quad & 255
        # the address's octets in reverse order, as hex
        rev = ((quad & 255) << 24) | (((quad >> 8) & 255) << 16) | (((quad >> 16) & 255) << 8) | ((quad >> 24) & 255)
        return pl.DataFrame(
            {
                "o": np.isin(last % 10, (1, 3, 5, 7)),
                "a": hexs(rng.integers(0, 0xFF, n), 2),
                "b": hexs(rng.integers(0, 0xFFFF, n), 4),
                "c": hexs(rng.integers(0, 0xFFFFFFFF, n), 8),
                "x": hexs(rev, 8),
                "s": clients["name"].str.split_exact(".", 1).struct.field("field_0"),
                "ts": self.sim.ymdhms(t),
                "r": hexs(rng.integers(0, 0xFFFF, n), 4, True),
                "u": users,
            }
        ).select(
            pl.when("o")
            .then(
                pl.concat_str(lit("<00"), "a", lit("01c1"), "b", lit("$"), "c", lit("$"), "x", lit("@"), "s", lit(">"))
            )
            .otherwise(pl.concat_str(lit("<"), "ts", lit("."), "r", lit("."), "u", lit(f"@{LOCAL_DOMAIN}>")))
        )[:, 0]

    def _inbound(self, t: np.ndarray):
        rng = self.rng
        w = self.w
        n = len(t)
        ci = rng.integers(0, len(w.corr_addr), n)
        di = w.corr_dom[ci]
        h = w.dom_h0[di] + (rng.random(n) * w.dom_nh[di]).astype(np.int64)
        ptr = w.dom_ptr[di]
        host = w.host_name.gather(h)
        addr = w.corr_addr.gather(ci)
        k = np.where(rng.random(n) < 0.85, 1, 2 + (rng.random(n) * 3).astype(np.int64))
        mi = np.repeat(np.arange(n), k)
        nr = len(mi)
        unk = rng.random(nr) < 0.012
        ui = rng.integers(0, w.n_users, nr)
        names = w.users.gather(ui)
        R = pl.DataFrame(
            {
                "m": mi,
                "kind": np.where(unk, UNKNOWN, LOCAL).astype(np.uint8),
                "addr": pl.DataFrame({"n": names, "x": unk}).select(
                    pl.when("x").then(pl.concat_str("n", lit(f"x@{LOCAL_DOMAIN}"))).otherwise("n")
                )[:, 0],
                "dom": np.full(nr, -1),
                "u": np.where(unk, -1, ui),
            }
        )
        M = frame_m(
            n,
            t=t,
            ip=w.host_ip.gather(h),
            arpa=w.host_arpa.gather(h),
            name=pl.DataFrame({"h": host, "p": ptr}).select(pl.when("p").then("h"))[:, 0],
            forged=ptr & (rng.random(n) < 0.02),
            sender=pl.DataFrame({"a": addr, "e": rng.random(n) < 0.03}).select(
                pl.when("e").then(lit("")).otherwise("a")
            )[:, 0],
            size=600 + rng.lognormal(8.0, 1.0, n).astype(np.int64),
            msgid=cat(
                [
                    lit("<"),
                    self.sim.ymdhms(t),
                    lit("."),
                    hexs(rng.integers(0, 0xFFFFF, n), 5, True),
                    lit("@"),
                    host,
                    lit(">"),
                ]
            ),
            proto=pl.Series(np.where(rng.random(n) < 0.85, "ESMTP", "SMTP")),
        )
        return M, R

    def _outbound(self, t: np.ndarray):
        rng = self.rng
        w = self.w
        n = len(t)
        u = rng.integers(0, w.n_users, n)
        clients, quad = self._users_clients(u)
        r = rng.random(n)
        k = np.where(
            r < 0.72, 1, np.where(r < 0.88, 2, np.where(r < 0.94, 3, 4 + (rng.random(n) * 5).astype(np.int64)))
        )
        mi = np.repeat(np.arange(n), k)
        nr = len(mi)
        remote = rng.random(nr) < 0.88
        ci = rng.integers(0, len(w.corr_addr), nr)
        ui = rng.integers(0, w.n_users, nr)
        R = pl.concat(
            [
                frame_r(mi[remote], REMOTE, w.corr_addr.gather(ci[remote]), dom=w.corr_dom[ci[remote]]),
                frame_r(mi[~remote], LOCAL, w.users.gather(ui[~remote]), u=ui[~remote]),
            ]
        ).sort("m", maintain_order=True)
        users = w.users.gather(u)
        M = frame_m(
            n,
            t=t,
            ip=clients["ip"],
            arpa=clients["arpa"],
            name=clients["name"],
            sender=users + f"@{LOCAL_DOMAIN}",
            size=np.minimum(500 + rng.lognormal(8.3, 1.1, n).astype(np.int64), 9_000_000),
            msgid=self._msgids(t, users, clients, quad),
            proto=pl.Series(np.where((quad & 255) % 10 == 0, "SMTP", "ESMTP")),
        )
        return M, R

    def _local(self, t: np.ndarray):
        rng = self.rng
        w = self.w
        n = len(t)
        u = rng.integers(0, w.n_users, n)
        clients, quad = self._users_clients(u)
        k = 1 + (rng.random(n) * rng.random(n) * 4).astype(np.int64)
        mi = np.repeat(np.arange(n), k)
        ui = rng.integers(0, w.n_users, len(mi))
        R = frame_r(mi, LOCAL, w.users.gather(ui), u=ui)
        users = w.users.gather(u)
        M = frame_m(
            n,
            t=t,
            ip=clients["ip"],
            arpa=clients["arpa"],
            name=clients["name"],
            sender=users + f"@{LOCAL_DOMAIN}",
            size=500 + rng.lognormal(8.0, 1.0, n).astype(np.int64),
            msgid=self._msgids(t, users, clients, quad),
            proto="ESMTP",
        )
        return M, R

    def _spam(self, t: np.ndarray):
        """Spammers guessing local addresses: mostly `User unknown`, sometimes nrcpts=0."""
        rng = self.rng
        w = self.w
        n = len(t)
        c, d = rng.integers(0, 256, n), rng.integers(1, 255, n)
        ip = cat([lit("100.80."), col_str(c), lit("."), col_str(d)])
        arpa = cat([col_str(d), lit("."), col_str(c), lit(".80.100.in-addr.arpa")])
        k = rng.integers(3, 15, n)
        mi = np.repeat(np.arange(n), k)
        nr = len(mi)
        word = words(("info", "sales", "admin", "office", "support", "contact"), rng.integers(0, 6, nr))
        num = pl.Series(np.where(rng.random(nr) < 0.5, rng.integers(0, 100, nr), -1))
        guess = pl.DataFrame({"w": word, "n": num}).select(
            pl.concat_str(
                "w", pl.when(pl.col("n") >= 0).then(pl.col("n").cast(S)).otherwise(lit("")), lit(f"@{LOCAL_DOMAIN}")
            )
        )[:, 0]
        nl = rng.integers(0, 3, n)
        ml = np.repeat(np.arange(n), nl)
        ul = rng.integers(0, w.n_users, len(ml))
        R = pl.concat([frame_r(mi, UNKNOWN, guess), frame_r(ml, LOCAL, w.users.gather(ul), u=ul)]).sort(
            "m", maintain_order=True
        )
        dom = w.dom_name.gather(rng.integers(0, len(w.dom_name), n))
        sender = cat(
            [
                words(("deals", "offer", "news"), rng.integers(0, 3, n)),
                col_str(rng.integers(0, 10000, n)),
                lit("@"),
                dom,
            ]
        )
        M = frame_m(n, t=t, ip=ip, arpa=arpa, sender=sender, size=2000 + rng.integers(0, 3000, n), proto="SMTP")
        return M, R

    # -- POP3 and the DNS server's other clients ----------------------------------------------------------
    def pops(self, d: int, b0: int, b1: int) -> pl.DataFrame:
        """POP3 logins: t, user, host (as the server prints it), ip, arpa."""
        rng = self.rng
        w = self.w
        t0 = d * 86400 + b0 * 600
        tc = self._times("pop_campus", b0, b1, t0)
        u = rng.integers(0, w.n_users, len(tc))
        pc = w.user_pc[u]
        campus = pl.DataFrame(
            {
                "t": tc,
                "user": w.users.gather(u),
                "host": w.pc_name.gather(pc),
                "ip": w.pc_ip.gather(pc),
                "arpa": w.pc_arpa.gather(pc),
            }
        )
        td = self._times("pop_dialup", b0, b1, t0)
        if len(self.dial_users) == 0:
            return campus
        u = self.dial_users[rng.integers(0, len(self.dial_users), len(td))]
        clients, _ = self._dialup(u)
        shown = pl.DataFrame({"n": clients["name"], "i": clients["ip"], "x": rng.random(len(td)) > 0.1}).select(
            pl.when("x").then("n").otherwise("i")
        )[:, 0]
        dial = pl.DataFrame(
            {"t": td, "user": w.users.gather(u), "host": shown, "ip": clients["ip"], "arpa": clients["arpa"]}
        )
        return pl.concat([campus, dial])

    def times(self, name: str, d: int, b0: int, b1: int) -> np.ndarray:
        """Times of a class's events in bins b0..b1 of day d (Poisson counts, uniform in each bin)."""
        return self._times(name, b0, b1, d * 86400 + b0 * 600)


def guesses(rng: np.random.Generator, n: int) -> pl.Series:
    """Local addresses a worm made up from strings on its PC; none exists (users have digits)."""
    r = rng.random(n)
    s = words(SURNAMES, rng.integers(0, len(SURNAMES), n))
    g = words(GIVEN, rng.integers(0, len(GIVEN), n))
    num = col_str(rng.integers(100, 1000, n))
    return pl.DataFrame({"r": r, "s": s, "g": g, "n": num}).select(
        pl.concat_str(
            pl.when(pl.col("r") < 0.4)
            .then(pl.concat_str("s", "n"))
            .when(pl.col("r") < 0.7)
            .then("g")
            .otherwise(pl.concat_str("g", lit("."), "s")),
            lit(f"@{LOCAL_DOMAIN}"),
        )
    )[:, 0]
