"""The benchmark's scenario features, beside scenarios.py's klez/frethem/dns_anomaly:

  holiday       the campus is closed: its own mail and lookups almost stop (traffic.HOLIDAY), no
                list posts, no newsletter; the digest and the outside world's mail still come.
  quiet         three PCs infected by a slow mass-mailer: 2-4 messages a minute each for 2-3 hours,
                starting 09:40-13:30. One forges its senders; two send as their owner (the
                address book worm), with the owner's usual size plus the recipient's header.
                About a quarter of their recipients are made-up local names (`User unknown`).
  smtp_engine   a PC whose worm carries its own SMTP engine, 10:00-12:30: it asks our DNS server
                for the MX (and the A of the exchanger) of every domain it mails, every few
                seconds; our mail server never sees its mail.
  outage        webnet.ne.jp times out 09:30-15:30: deferrals pile up for it, queue runs retry.
  bulk          a colleague mails a conference announcement, one message per address, to 600-800
                distinct addresses from her PC, 13:00-14:15: one sender, near-constant size, a
                few stale local addresses (`User unknown`).
  heavy_list    a busy list day: twenty more lab-ml posts, and three posts to the 420-member
                staff list (Mailman, re-injected through localhost; a few stale local members).
  everything    all of the above but the holiday, with klez, frethem and dns_anomaly.

The quiet cases of issue 19 (their generators in quiet.py):
  worm<G>_<V>   one PC infected by a worm with a sleep loop: one message every G seconds
                (G = 60, 90, 120, 200; +-15 % jitter) for 2-6 hours, starting 08:30-15:30, one
                recipient a message (two one time in seven), a near-constant size. V says how:
                  forged  forged senders (an address of its address book, mostly of other
                          domains, or a name made up at any domain), 25 % of the recipients
                          made-up local names (`User unknown`), the rest from the address book;
                  owner   its user's own sender address, 25 % made-up recipients;
                  book    its user's own sender, the address book only (harvested
                          correspondents, local and remote): the address book worm;
                  book5   the same with 5 % made-up recipients.
  four_quiet    four such PCs on one day, onsets 30-80 minutes apart from 09:00-10:00: 90 s
                forged, 120 s owner, 200 s forged, 200 s book5.
  crowd_forged  a colleague's bulk mailing (as `bulk`) and, 5-20 minutes into it, a post to the
  crowd_owner   420-member staff list; 10-40 minutes into it a worm at 90 s starts on another PC
                (crowd_forged: forged senders, 25 % guessed; crowd_owner: as book5).
  relay         a departmental mail hub, 10.1.4.25 (mailhub.eng.example.ac.jp), not listed in
                `relay_hosts`, relays ~520 messages a weekday (a third of that at weekends) for
                120 users of our domain and a few system accounts, to 1-4 recipients each,
                mostly outside, a stale local address now and then. Benign; truth labels it
                `benign_host` (variant "unlisted_relay").
  remote3x      the three busiest remote domains (bigisp.ne.jp, mobile.ne.jp, freemail.co.jp)
                send us three times their usual mail, through their usual servers. Benign;
                truth labels those servers `benign_host` (variant "remote_mta_3x").
Names can be combined with "+": "relay+worm90_book" is a day with both.

Choices of hosts and times come from a stream of their own (seeded by the seed), so adding
these features leaves the other scenarios' output unchanged.
"""

from __future__ import annotations

import random

from mmw_tasks.simulate.quiet import WORM_GAPS, WORM_VARIANTS, Quiet
from mmw_tasks.simulate.render import K_OTHER
from mmw_tasks.simulate.site import BULK_PC, GIVEN, LOCAL_DOMAIN, NS_IP, SURNAMES, pc_name

EXTRA_SCENARIOS = {
    "holiday": "a holiday: the campus is closed, almost no mail of its own; the digest still goes out",
    "quiet": "clean + three PCs with a slow mass-mailer (2-4 messages a minute, hours); one forges senders",
    "smtp_engine": "clean + a PC whose worm has its own SMTP engine: MX lookups at our DNS server 10:00-12:30",
    "outage": "clean + webnet.ne.jp defers our mail 09:30-15:30 local",
    "bulk": "clean + a colleague's one-by-one mailing to ~700 addresses from her PC, 13:00-14:15",
    "heavy_list": "clean + a busy list day: 20 more lab-ml posts and 3 posts to the 420-member staff list",
    "everything": "klez + quiet + smtp_engine + frethem + outage + dns_anomaly + bulk + heavy_list",
    **{
        f"worm{gap}_{v}": f"clean + one PC whose worm mails every {gap} s for 2-6 hours: {what}"
        for gap in WORM_GAPS
        for v, (_, _, what) in WORM_VARIANTS.items()
    },
    "four_quiet": "clean + four PCs with sleep-loop worms (90-200 s a message), onsets 30-80 minutes apart",
    "crowd_forged": "bulk + a staff-list post + a 90 s worm with forged senders, all starting 13:00-14:00",
    "crowd_owner": "bulk + a staff-list post + a 90 s address book worm (own sender, 5 % guessed), 13:00-14:00",
    "relay": "clean + a busy departmental mail hub on 10.1.4.25 that is not in relay_hosts (benign)",
    "remote3x": "clean + the three busiest remote domains send us three times their usual mail (benign)",
}
EXTRA_FEATURES = {
    "holiday": frozenset({"holiday"}),
    "quiet": frozenset({"quiet"}),
    "smtp_engine": frozenset({"smtp_engine"}),
    "outage": frozenset({"outage"}),
    "bulk": frozenset({"colleague_bulk"}),
    "heavy_list": frozenset({"heavy_list"}),
    "everything": frozenset(
        {"klez", "quiet", "smtp_engine", "frethem", "outage", "dns_anomaly", "colleague_bulk", "heavy_list"}
    ),
    **{f"worm{gap}_{v}": frozenset({f"worm:{gap}:{v}"}) for gap in WORM_GAPS for v in WORM_VARIANTS},
    "four_quiet": frozenset({"four_quiet"}),
    "crowd_forged": frozenset({"colleague_bulk", "crowd:forged"}),
    "crowd_owner": frozenset({"colleague_bulk", "crowd:owner"}),
    "relay": frozenset({"relay"}),
    "remote3x": frozenset({"remote3x"}),
}
OUTAGE2_DOMAIN = "webnet.ne.jp"
OUTAGE2_WINDOW = (9 * 3600 + 1800, 15 * 3600 + 1800)
STAFF_ML, STAFF_ML_BOUNCES = "staff@example.ac.jp", "staff-bounces@example.ac.jp"
MAILMAN = "|/usr/lib/mailman/mail/mailman post staff"
NAMED = "named[704]"
IPLOG = "iplog[312]"


class Stream:
    """Events every `gap()` seconds from `t` until `end`, each handled by `fire(t)`."""

    __slots__ = ("t", "end", "gap", "fire")

    def __init__(self, t: float, end: float, gap, fire):
        self.t, self.end, self.gap, self.fire = t, end, gap, fire


class SlowWorm:
    __slots__ = ("ip", "name", "owner", "forged", "size", "rate", "remote", "local")


class Outbreaks:
    def __init__(self, scen):
        self.scen = scen
        sim = self.sim = scen.sim
        site = sim.site
        x = self.x = random.Random(f"mmw-outbreaks-{sim.seed}")
        owner = {}
        for u in site.users[:400]:
            owner.setdefault(u.pc, u.name)
        taken = {scen.worm_ip, BULK_PC}
        pool = sorted(ip for ip in owner if ip.startswith("10.1.3.") and ip not in taken)
        picks = x.sample(pool, 4)
        self.slow: list[SlowWorm] = []
        for k, ip in enumerate(picks[:3]):
            w = SlowWorm()
            w.ip, w.name, w.owner, w.forged = ip, pc_name(ip), f"{owner[ip]}@{LOCAL_DOMAIN}", k == 0
            w.size = 24000 + x.randrange(60000)
            w.rate = x.uniform(2.0, 4.0) / 60  # messages per second
            w.remote = [(f"{lp}@{site.domains[di].name}", di) for lp, di in x.sample(site.correspondents, 150)]
            w.local = [u.name for u in x.sample(site.users[:400], 30)]
            self.slow.append(w)
        self.engine_ip = picks[3]
        self.engine_targets = [di for _, di in x.sample(site.correspondents, 300)]
        colleagues = sorted(ip for ip in owner if ip.startswith("10.1.2.") and ip not in taken)
        self.bulk_ip = x.choice(colleagues)
        self.bulk_sender = f"{owner[self.bulk_ip]}@{LOCAL_DOMAIN}"
        members = x.sample(site.users[:400], 300)
        self.staff_local = tuple(u.name for u in members)
        self.staff_stale = tuple(self._stale(x) for _ in range(12))
        self.staff_remote = tuple(
            (f"{lp}@{site.domains[di].name}", di) for lp, di in x.sample(site.correspondents, 108)
        )
        self.streams: list[Stream] = []
        self.outage_day: int | None = None
        self.staff_posts = 0
        self.port = 1024 + x.randrange(3000)
        self.bulk_start = 0.0
        self.quiet = Quiet(self)  # its own stream: the draws above are the same as before it

    def _stale(self, rng) -> str:
        """A local address that no longer exists (a student who left)."""
        names = self.sim.site.user_names
        while True:
            lp = f"{rng.choice(SURNAMES)}{rng.randrange(100, 1000)}"
            if lp not in names:
                return lp

    # -- planning ------------------------------------------------------------------------------
    def start_day(self, d: int, today: frozenset, weekday: int) -> None:
        x = self.x
        day0 = d * 86400
        self.streams = []
        self.outage_day = d if "outage" in today else None
        if "quiet" in today:
            for k, w in enumerate(self.slow):
                t = day0 + 9 * 3600 + 2400 + k * 5700 + x.uniform(0, 1200)
                self.streams.append(
                    Stream(t, t + x.uniform(7200, 10800), self._gap(w.rate), lambda t, w=w: self.slow_mail(w, t))
                )
        if "smtp_engine" in today:
            t = day0 + 10 * 3600 + x.uniform(0, 600)
            self.streams.append(Stream(t, t + 9000, self._gap(0.35), self.engine_mail))
        if "colleague_bulk" in today:
            n = x.randint(600, 800)
            site = self.sim.site
            n_local = n // 12
            rcpts: list = [
                (f"{lp}@{site.domains[di].name}", di) for lp, di in x.sample(site.correspondents, n - n_local)
            ]
            rcpts += [u.name for u in x.sample(site.users[:400], n_local - n // 25)]
            rcpts += [("stale", self._stale(x)) for _ in range(n // 25)]
            x.shuffle(rcpts)
            self.bulk_rcpts = rcpts
            t = self.bulk_start = day0 + 13 * 3600 + x.uniform(0, 600)
            self.streams.append(Stream(t, t + 1e9, self._gap(n / 4300), self.bulk_mail))
        if "heavy_list" in today:
            plan = self.scen.plan
            for _ in range(20):
                b = self.scen._draw_bin(x.random())
                plan.append((day0 + b * 600 + 600 * x.random(), "post"))
            for _ in range(3):
                b = self.scen._draw_bin(x.random())
                plan.append((day0 + b * 600 + 600 * x.random(), "staff"))
            plan.sort()
        self.streams += [Stream(*s) for s in self.quiet.start_day(d, today, weekday)]

    def _gap(self, rate: float):
        rng = self.sim.rng
        return lambda: rng.expovariate(rate) * 0.5 + 0.5 / rate  # steadier than Poisson

    def domain_down(self, name: str, t: float) -> bool:
        if self.outage_day is None or name != OUTAGE2_DOMAIN:
            return False
        s = t - self.outage_day * 86400
        return OUTAGE2_WINDOW[0] <= s < OUTAGE2_WINDOW[1]

    def run_bin(self, t0: float, t1: float) -> None:
        self.quiet.run_bin(t0)
        for s in self.streams:
            while s.t < min(t1, s.end):
                if s.fire(s.t) is False:
                    s.end = s.t
                    break
                s.t += s.gap()

    def planned(self, t: float, what: str) -> None:
        if what == "staff":
            self.staff_post(t)

    # -- the generators ------------------------------------------------------------------------
    def slow_mail(self, w: SlowWorm, t: float) -> None:
        sim = self.sim
        rng = sim.rng
        rnd = rng.random
        local, remote, unknown = [], [], []
        for _ in range(1 if rnd() < 0.9 else 2):
            r = rnd()
            if r < 0.6:
                remote.append(w.remote[int(rnd() * len(w.remote))])
            elif r < 0.75:
                local.append(w.local[int(rnd() * len(w.local))])
            else:
                unknown.append(self.scen._guess())
        first = remote[0][0] if remote else f"{local[0]}@{LOCAL_DOMAIN}" if local else unknown[0]
        if w.forged:
            r = rnd()
            site = sim.site
            sender = (
                w.remote[int(rnd() * len(w.remote))][0]
                if r < 0.5
                else f"{rng.choice(GIVEN)}{rng.randrange(100)}@{site.domains[site.pick_domain(rnd())].name}"
            )
            size, msgid = w.size, "*"
        else:  # the owner's address book, the owner's name: only the To: header differs
            sender, size = w.owner, w.size + 2 * len(first)
            msgid = f"<{sim.ymdhms(t)}.{rng.randrange(65536):04X}.{w.owner.split('@')[0]}@{LOCAL_DOMAIN}>"
        sim.mailer.message(
            t,
            f"{w.name} [{w.ip}]",
            w.ip,
            w.name,
            sender,
            size,
            msgid,
            "SMTP",
            local=tuple(dict.fromkeys(local)),
            remote=tuple(dict.fromkeys(remote)),
            unknown=tuple(dict.fromkeys(unknown)),
        )
        sim.incidents.track(
            "mmw_suspect",
            w.ip,
            t,
            {"client_ip": w.ip, "sender": None if w.forged else w.owner, "host": w.name, "variant": "slow"},
            messages=1,
            user_unknown=len(set(unknown)),
        )

    def engine_mail(self, t: float) -> None:
        """One message of the worm's own SMTP engine: the MX of the domain, then its exchanger's A."""
        sim = self.sim
        rnd = sim.rng.random
        dom = sim.site.domains[self.engine_targets[int(rnd() * len(self.engine_targets))]]
        ip = self.engine_ip
        queries = [(dom.name, "MX"), (dom.hosts[0], "A")]
        if dom.n > 1 and rnd() < 0.3:
            queries.append((dom.hosts[1], "A"))
        for i, (q, qt) in enumerate(queries):
            self.port = self.port + 1 if self.port < 4999 else 1024
            if sim.style.dns == "bind":
                body = (
                    f"{NAMED}: client @0x7f3c{int(rnd() * 0xFFFFFF) * 16:08x} {ip}#{self.port} ({q}): "
                    f"query: {q} IN {qt} + ({NS_IP})"
                )
            else:
                body = f"{IPLOG}: UDP: dgram to domain from {ip}:{self.port} ({len(q) + 17} data bytes)"
            sim.ns.append((t + 0.05 * i + 0.02 * rnd(), K_OTHER, body))
        sim.incidents.track(
            "dns_anomaly",
            ip,
            t,
            {"client_ip": ip, "host": pc_name(ip), "variant": "smtp_engine"},
            queries=len(queries),
        )

    def bulk_mail(self, t: float):
        if not self.bulk_rcpts:
            return False
        sim = self.sim
        rng = sim.rng
        r = self.bulk_rcpts.pop()
        local, remote, unknown = (), (), ()
        if isinstance(r, str):
            local, addr = (r,), f"{r}@{LOCAL_DOMAIN}"
        elif r[0] == "stale":
            unknown, addr = (f"{r[1]}@{LOCAL_DOMAIN}",), f"{r[1]}@{LOCAL_DOMAIN}"
        else:
            remote, addr = (r,), r[0]
        ip, name = self.bulk_ip, pc_name(self.bulk_ip)
        lp = self.bulk_sender.split("@")[0]
        sim.mailer.message(
            t,
            f"{name} [{ip}]",
            ip,
            name,
            self.bulk_sender,
            48213 + 2 * len(addr),
            f"<{sim.ymdhms(t)}.{rng.randrange(65536):04X}.{lp}@{LOCAL_DOMAIN}>",
            "ESMTP",
            local=local,
            remote=remote,
            unknown=unknown,
        )
        sim.incidents.track(
            "bulk_sender",
            self.bulk_sender,
            t,
            {"sender": self.bulk_sender, "client_ip": ip, "host": name},
            messages=1,
        )
        return True

    def staff_post(self, t: float) -> None:
        """A post to the staff list: from a member's PC to Mailman, then out through localhost."""
        sim = self.sim
        rng = sim.rng
        sc = self.scen
        self.staff_posts += 1
        poster = rng.choice(self.staff_local)
        ip = sc.user_pc[poster]
        name = pc_name(ip)
        sender = f"{poster}@{LOCAL_DOMAIN}"
        size = 2000 + int(rng.lognormvariate(8.0, 0.7))
        msgid = f"<{sim.ymdhms(t)}.{rng.randrange(65536):04X}.{poster}@{LOCAL_DOMAIN}>"
        sim.mailer.message(t, f"{name} [{ip}]", ip, name, sender, size, msgid, "ESMTP", prog=(MAILMAN, STAFF_ML))
        t2 = t + 3 + 5 * rng.random()
        key = (STAFF_ML_BOUNCES, self.staff_posts)
        fields = {"sender": STAFF_ML_BOUNCES, "client_ip": "127.0.0.1", "list": STAFF_ML}

        def track(x: float) -> None:
            sim.incidents.track("mailing_list", key, x, fields)

        sim.mailer.message(
            t2,
            "localhost [127.0.0.1]",
            "127.0.0.1",
            "localhost",
            STAFF_ML_BOUNCES,
            size + 1200,
            msgid,
            "ESMTP",
            local=self.staff_local,
            remote=self.staff_remote,
            unknown=tuple(f"{s}@{LOCAL_DOMAIN}" for s in self.staff_stale),
            track=track,
        )
        sim.incidents.track(
            "mailing_list",
            key,
            t2,
            fields,
            messages=1,
            recipients=len(self.staff_local) + len(self.staff_remote),
        )
