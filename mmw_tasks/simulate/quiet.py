"""The benchmark's quiet cases (issue 19): worms with a sleep loop, one message every 60-200 s;
four of them on one day; one that starts inside a bulk mailing and a big list post; and two
benign hosts that look busy: a departmental mail hub that is not in `relay_hosts`, and the
busiest remote domains' inbound servers at three times their usual mail.

The scenarios that use them are listed in outbreaks.py (EXTRA_SCENARIOS). Their hosts, times and
address books come from a random stream of their own (seeded by the seed), so that the other
scenarios' output is unchanged; the mail itself is drawn from the simulation's stream, on the
days that have these features only.

Truth: every worm is an `mmw_suspect` incident on its host's IP from its first to its last SMTP
transaction (the from= lines), as klez and quiet record theirs, with `variant` "sleep_loop",
`gap_s` (the nominal seconds between messages), `guess_share` (the share of recipients made up)
and `forged`. The benign hosts carry `benign_host` records (variant "unlisted_relay" or
"remote_mta_3x"): not incidents to find, labels that say any `mmw_suspect` on them is false.
"""

from __future__ import annotations

import random

from mmw_tasks.simulate.site import BULK_PC, GIVEN, LOCAL_DOMAIN, pc_name
from mmw_tasks.simulate.traffic import OFFICE, OFFICE_WE, bin_weights, poisson

WORM_GAPS = (60, 90, 120, 200)
# variant: (forged senders, share of recipients guessed, what it is)
WORM_VARIANTS = {
    "forged": (True, 0.25, "forged senders (many addresses, most of other domains), 25 % guessed recipients"),
    "owner": (False, 0.25, "its user's own sender address, 25 % guessed recipients"),
    "book": (False, 0.0, "its user's own sender, the address book only (no guessed recipients)"),
    "book5": (False, 0.05, "its user's own sender, the address book and 5 % guessed recipients"),
}
# four quiet worms on one day: (gap s, variant), onsets staggered
FOUR_QUIET = ((90, "forged"), (120, "owner"), (200, "forged"), (200, "book5"))
CROWD_GAP = 90
CROWD = {"forged": "forged", "owner": "book5"}  # crowd_<x>: the worm's variant
RELAY_IP, RELAY_NAME = "10.1.4.25", "mailhub.eng.example.ac.jp"
RELAY_DAILY = 520  # messages a weekday at scale 1
RELAY_WEEKEND = 0.35
RELAY_SYSTEM = ("root", "webmaster", "noreply-lms", "labnews", "cron-report")
REMOTE_TOP = 3  # the busiest remote domains whose servers send 3x on remote3x days
REMOTE_FACTOR = 3.0


def worm_features(name: str) -> tuple[int, str] | None:
    """(gap, variant) of a feature "worm:<gap>:<variant>", else None."""
    if not name.startswith("worm:"):
        return None
    _, gap, variant = name.split(":")
    return int(gap), variant


class SleepWorm:
    """A mass-mailer with a sleep loop: one message every `gap` seconds (+-15 %)."""

    __slots__ = ("ip", "name", "owner", "forged", "guess", "gap", "size", "book", "pos", "remotes", "locals_")

    def sender_fields(self) -> dict:
        return {
            "client_ip": self.ip,
            "sender": None if self.forged else self.owner,
            "host": self.name,
            "variant": "sleep_loop",
            "gap_s": self.gap,
            "guess_share": self.guess,
            "forged": self.forged,
        }


class Quiet:
    def __init__(self, ob):
        self.ob = ob
        sim = self.sim = ob.sim
        site = sim.site
        self.q = q = random.Random(f"mmw-quiet-{sim.seed}")
        owner: dict[str, str] = {}
        for u in site.users[:400]:
            owner.setdefault(u.pc, u.name)
        self.owner = owner
        taken = {ob.scen.worm_ip, BULK_PC, ob.engine_ip, ob.bulk_ip} | {w.ip for w in ob.slow}
        # infected PCs come from both subnets (staff and students), a new one every time
        self.pool = sorted(ip for ip in owner if ip not in taken)
        q.shuffle(self.pool)
        # the department whose mail goes through the hub
        self.dept = [u.name for u in q.sample(site.users[:400], 120)]
        self.relay_lambda: list[float] = []
        self.remote_lambda: list[float] = []
        self.day0 = 0.0
        by_weight = sorted(range(len(site.domains)), key=lambda i: -site.domains[i].weight)[:REMOTE_TOP]
        self.top = frozenset(by_weight)
        self.top_rcpts = [c for c in site.correspondents if c[1] in self.top]
        self.top_share = len(self.top_rcpts) / len(site.correspondents)

    # -- planning ------------------------------------------------------------------------------
    def start_day(self, d: int, today: frozenset, weekday: int) -> list:
        """The day's worm streams, as (start, end, gap function, fire) for Outbreaks."""
        q = self.q
        day0 = self.day0 = d * 86400
        streams = []
        for f in sorted(today):
            wf = worm_features(f)
            if wf:
                t = day0 + q.uniform(8.5 * 3600, 15.5 * 3600)
                streams.append(self._worm_stream(self._worm(*wf), t))
        if "four_quiet" in today:
            t = day0 + q.uniform(9 * 3600, 10 * 3600)
            for gap, variant in FOUR_QUIET:
                streams.append(self._worm_stream(self._worm(gap, variant), t))
                t += q.uniform(30 * 60, 80 * 60)
        crowd = [f for f in today if f.startswith("crowd:")]
        if crowd:
            t0 = self.ob.bulk_start  # the colleague's mailing begins 13:00-13:10
            self.ob.scen.plan.append((t0 + q.uniform(300, 1200), "staff"))
            self.ob.scen.plan.sort()
            w = self._worm(CROWD_GAP, CROWD[crowd[0].split(":")[1]])
            streams.append(self._worm_stream(w, t0 + q.uniform(600, 2400)))
        scale = self.sim.scale
        self.relay_lambda = []
        if "relay" in today:
            f = RELAY_DAILY * scale * (RELAY_WEEKEND if weekday >= 5 else 1.0) * q.uniform(0.9, 1.1)
            self.relay_lambda = [f * x for x in bin_weights(OFFICE_WE if weekday >= 5 else OFFICE)]
        self.remote_lambda = []
        if "remote3x" in today:  # the extra mail: (factor - 1) times these domains' usual share
            lam = self.sim.bg.day_lambda["inbound"]
            self.remote_lambda = [(REMOTE_FACTOR - 1) * self.top_share * x for x in lam]
        return streams

    def _worm(self, gap: int, variant: str) -> SleepWorm:
        q = self.q
        site = self.sim.site
        w = SleepWorm()
        w.ip = self.pool.pop()
        w.name = pc_name(w.ip)
        user = self.owner[w.ip]
        w.owner = f"{user}@{LOCAL_DOMAIN}"
        w.forged, w.guess, _ = WORM_VARIANTS[variant]
        w.gap = gap
        w.size = 18000 + q.randrange(90000)
        remote = [
            (f"{lp}@{site.domains[di].name}", di) for lp, di in q.sample(site.correspondents, q.randint(150, 320))
        ]
        w.remotes = remote
        w.locals_ = [u.name for u in q.sample(site.users[:400], q.randint(15, 40)) if u.name != user]
        w.book = remote + w.locals_
        q.shuffle(w.book)
        w.pos = 0
        return w

    def _worm_stream(self, w: SleepWorm, t: float) -> tuple:
        end = t + self.q.uniform(2 * 3600, 6 * 3600)
        end = min(end, self.day0 + 23.5 * 3600)
        rnd = self.sim.rng.random
        gap = w.gap
        return t, end, lambda: gap * (0.85 + 0.3 * rnd()), lambda t, w=w: self.worm_mail(w, t)

    # -- the generators ------------------------------------------------------------------------
    def worm_mail(self, w: SleepWorm, t: float) -> None:
        """One message: one recipient (two, one time in seven), each from the address book in
        turn or, with probability `guess`, a local name made up (`User unknown`)."""
        sim = self.sim
        rng = sim.rng
        rnd = rng.random
        local, remote, unknown = [], [], []
        for _ in range(1 if rnd() < 6 / 7 else 2):
            if w.guess and rnd() < w.guess:
                unknown.append(self.ob.scen._guess())
                continue
            r = w.book[w.pos % len(w.book)]
            w.pos += 1
            (local if isinstance(r, str) else remote).append(r)
        first = remote[0][0] if remote else f"{local[0]}@{LOCAL_DOMAIN}" if local else unknown[0]
        if w.forged:  # an address of the book (mostly other domains') or a name made up anywhere
            r = rnd()
            site = sim.site
            if r < 0.45:
                sender = w.remotes[int(rnd() * len(w.remotes))][0]
            elif r < 0.6:
                sender = f"{w.locals_[int(rnd() * len(w.locals_))]}@{LOCAL_DOMAIN}"
            else:
                sender = f"{rng.choice(GIVEN)}{rng.randrange(100)}@{site.domains[site.pick_domain(rnd())].name}"
            size, msgid = w.size, "*"
        else:  # the user's name and address book: only the To: header differs
            sender, size = w.owner, w.size + 2 * len(first)
            msgid = f"<{sim.ymdhms(t)}.{rng.randrange(65536):04X}.{w.owner.split('@')[0]}@{LOCAL_DOMAIN}>"
        local_t, remote_t, unknown_t = (
            tuple(dict.fromkeys(local)),
            tuple(dict.fromkeys(remote)),
            tuple(dict.fromkeys(unknown)),
        )
        sim.mailer.message(
            t,
            f"{w.name} [{w.ip}]",
            w.ip,
            w.name,
            sender,
            size,
            msgid,
            "SMTP",
            local=local_t,
            remote=remote_t,
            unknown=unknown_t,
        )
        sim.incidents.track(
            "mmw_suspect",
            w.ip,
            t,
            w.sender_fields(),
            messages=1,
            recipients=len(local_t) + len(remote_t) + len(unknown_t),
            user_unknown=len(unknown_t),
        )

    def run_bin(self, t0: float) -> None:
        b = int(t0 - self.day0) // 600
        if self.relay_lambda:
            rng = self.sim.rng
            for _ in range(poisson(rng, self.relay_lambda[b])):
                self.relay_mail(t0 + 600 * rng.random())
        if self.remote_lambda:
            rng = self.sim.rng
            for _ in range(poisson(rng, self.remote_lambda[b])):
                self.remote_mail(t0 + 600 * rng.random())

    def relay_mail(self, t: float) -> None:
        """The departmental hub relays one message of one of its users (or of a system account)
        to one to four recipients, mostly outside; a stale local address now and then."""
        sim = self.sim
        rng = sim.rng
        rnd = rng.random
        site = sim.site
        r = rnd()
        user = RELAY_SYSTEM[int(rnd() * len(RELAY_SYSTEM))] if r < 0.08 else self.dept[int(rnd() * len(self.dept))]
        sender = f"{user}@{LOCAL_DOMAIN}"
        k = 1 if rnd() < 0.75 else 2 + int(rnd() * 3)
        local: list[str] = []
        remote: dict[str, int] = {}
        unknown: list[str] = []
        for _ in range(k):
            x = rnd()
            if x < 0.008:
                unknown.append(f"{site.users[int(rnd() * 400)].name}x@{LOCAL_DOMAIN}")
            elif x < 0.16:
                n = site.users[int(rnd() * 400)].name
                if n not in local:
                    local.append(n)
            else:
                lp, di = site.correspondents[int(rnd() * len(site.correspondents))]
                remote[f"{lp}@{site.domains[di].name}"] = di
        size = 600 + int(rng.lognormvariate(8.2, 1.0))
        sim.mailer.message(
            t,
            f"{RELAY_NAME} [{RELAY_IP}]",
            RELAY_IP,
            RELAY_NAME,
            sender,
            min(size, 9_000_000),
            f"<{sim.ymdhms(t)}.{int(rnd() * 0xFFFFF):05X}.{user}@{RELAY_NAME}>",
            "ESMTP",
            local=tuple(local),
            remote=tuple(remote.items()),
            unknown=tuple(unknown),
        )
        sim.incidents.track(
            "benign_host",
            RELAY_IP,
            t,
            {"client_ip": RELAY_IP, "host": RELAY_NAME, "variant": "unlisted_relay"},
            messages=1,
        )

    def remote_mail(self, t: float) -> None:
        """One more inbound message from a correspondent at one of the busiest remote domains."""
        sim = self.sim
        pick = self.top_rcpts[int(sim.rng.random() * len(self.top_rcpts))]
        dom = sim.site.domains[pick[1]]
        ip = sim.bg.inbound(t, (f"{pick[0]}@{dom.name}", pick[1]))
        host = dom.hosts[dom.ips.index(ip)]
        sim.incidents.track(
            "benign_host",
            ip,
            t,
            {"client_ip": ip, "host": host, "remote_domain": dom.name, "variant": "remote_mta_3x"},
            extra_messages=1,
        )
