"""Scenarios (what goes wrong on the requested days) and the benign look-alikes every site has.

Look-alikes, every day: the lab mailing list (a post arrives for the fml alias, then fml
re-injects it through localhost to its 90 members), a digest list sent at 05:00 to 150
readers, and the public-relations office's newsletter: ~250 messages from one staff PC at 22:00.

Scenario features, on the requested days only:
  klez         one infected PC mails every few seconds from 14:30 to 17:30 local: forged senders,
               one constant size, harvested remote recipients and guessed local ones that do not
               exist (`User unknown`; nrcpts=0 when every recipient was refused).
  frethem      from 17:00 to 23:20 local bigisp.ne.jp times out: its deliveries are deferred and
               retried by every 30-minute queue run until it comes back.
  dns_anomaly  from 01:10 to 02:00 local the mail server makes DNS queries no mail explains.
The benchmark's features (holiday, quiet, smtp_engine, outage, bulk, heavy_list, and the quiet
worms, relay and remote3x of quiet.py) are listed in outbreaks.py. `scenario` may name one
scenario per requested day, comma-separated ("clean,clean,klez"); the last one repeats. A day's
scenario may join several with "+" ("relay+worm90_book"): the union of their features.
"""

from __future__ import annotations

from mmw_tasks.simulate.outbreaks import EXTRA_FEATURES, EXTRA_SCENARIOS, Outbreaks
from mmw_tasks.simulate.site import (
    BULK_PC,
    BULK_SENDER,
    GIVEN,
    INFO_ML,
    INFO_ML_OWNER,
    LAB_ML,
    LAB_ML_OWNER,
    LOCAL_DOMAIN,
    MX_IP,
    OUTAGE_DOMAIN,
    SURNAMES,
    pc_name,
)
from mmw_tasks.simulate.traffic import OFFICE, bin_weights

SCENARIOS = {
    "clean": "ordinary days: mail, POP, DNS noise, a mailing list, a digest and a bulk newsletter",
    "klez": "clean + one PC infected by W32.Klez mass-mails 14:30-17:30 local every day",
    "frethem": "clean + bigisp.ne.jp defers our mail 17:00-23:20 local every day; queue runs retry",
    "dns_anomaly": "clean + the mail server makes unexplained DNS queries 01:10-02:00 local every day",
    "full": "klez + frethem + dns_anomaly",
    **EXTRA_SCENARIOS,
}
FEATURES = {
    "clean": frozenset(),
    "klez": frozenset({"klez"}),
    "frethem": frozenset({"frethem"}),
    "dns_anomaly": frozenset({"dns_anomaly"}),
    "full": frozenset({"klez", "frethem", "dns_anomaly"}),
    **EXTRA_FEATURES,
}


def calendar(scenario: str, days: int) -> list[str]:
    """One scenario name per requested day from "name" or "name1,name2,..." (the last repeats);
    a day's name may join several with "+"."""
    names = [n.strip() for n in scenario.split(",")]
    for name in names:
        for n in name.split("+"):
            if n not in SCENARIOS:
                raise ValueError(
                    f"unknown scenario {n!r}; expected one of {', '.join(SCENARIOS)} "
                    "(or several, comma-separated, one per day; joined with '+' on one day)"
                )
    return [names[min(i, len(names) - 1)] for i in range(days)]


def features(name: str) -> frozenset:
    """The features of a day's scenario name ("a+b": both's)."""
    return frozenset().union(*(FEATURES[n] for n in name.split("+")))


KLEZ_WINDOW = (14 * 3600 + 1800, 17 * 3600 + 1800)
OUTAGE_WINDOW = (17 * 3600, 23 * 3600 + 1200)
DNS_ANOMALY_WINDOW = (3600 + 600, 7200)
KLEZ_SIZE = 134651
FML = "|/usr/local/fml/fml.pl /var/spool/ml/lab-ml"


class Scenario:
    def __init__(self, sim, name: str):
        self.sim = sim
        names = calendar(name, len(sim.requested))
        self.day_names = {d: n for d, n in zip(sim.requested, names, strict=True)}
        self.by_day = {d: features(n) for d, n in self.day_names.items()}
        self.features = frozenset().union(*self.by_day.values())
        self.today: frozenset = frozenset()
        rng = sim.rng
        site = sim.site
        self.office = bin_weights(OFFICE)
        self.lab_local, self.lab_remote = self._split(site.lab_ml_members)
        self.info_local, self.info_remote = self._split(site.info_ml_members)
        self.user_pc = {u.name: u.pc for u in site.users}
        # the infected PC and what the worm found on it
        candidates = [ip for ip in site.pcs if ip.startswith("10.1.3.")]
        self.worm_ip = candidates[int(rng.random() * len(candidates))]
        self.worm_host = pc_name(self.worm_ip)
        harvested = rng.sample(site.correspondents, 400)
        self.harvest = [(f"{lp}@{site.domains[di].name}", di) for lp, di in harvested]
        self.harvest_local = [u.name for u in rng.sample(site.users[:400], 60)]
        self.outage_days = frozenset(d for d, f in self.by_day.items() if "frethem" in f)
        self.plan: list[tuple[float, str]] = []
        self.worm_next: float | None = None
        self.dns_next: float | None = None
        self.day0 = 0.0
        self.bulk_next = 0.0
        self.bulk_gap = 0.0
        self.bulk_left = 0
        self.bulk_rcpts: list = []
        self.posts = 0
        self.extra = Outbreaks(self)

    def _split(self, members: list[str]) -> tuple[tuple, tuple]:
        """(local user names, remote (address, domain index) pairs) of a list's members."""
        index = self.sim.mailer.dom_index
        local = tuple(a.split("@")[0] for a in members if a.endswith("@" + LOCAL_DOMAIN))
        remote = tuple((a, index[a.split("@", 1)[1]]) for a in members if not a.endswith("@" + LOCAL_DOMAIN))
        return local, remote

    # -- planning ------------------------------------------------------------------------------
    def start_day(self, d: int, weekday: int) -> None:
        sim = self.sim
        rng = sim.rng
        day0 = d * 86400
        self.today = today = self.by_day.get(d, frozenset())
        n_posts = rng.randint(4, 8) if weekday < 5 else rng.randint(1, 3)
        if "holiday" in today:
            n_posts = 0
        plan = []
        for _ in range(n_posts):
            b = self._draw_bin(rng.random())
            plan.append((day0 + b * 600 + 600 * rng.random(), "post"))
        plan.append((day0 + 5 * 3600 + 30 * rng.random(), "digest"))
        plan.sort()
        self.plan = plan
        self.bulk_next = day0 + 22 * 3600 + 300 * rng.random()
        self.bulk_left = max(1, round(rng.randint(240, 260) * sim.scale)) if "holiday" not in today else 0
        self.bulk_gap = 2300 / max(1, self.bulk_left)
        pool = sim.site.correspondents
        n_local = self.bulk_left // 10  # the newsletter's readers: distinct, a tenth of them local
        rcpts: list = [
            (f"{lp}@{sim.site.domains[di].name}", di)
            for lp, di in rng.sample(pool, min(max(self.bulk_left - n_local, 0), len(pool)))
        ]
        rcpts += [u.name for u in rng.sample(sim.site.users[:400], min(n_local, 400))]
        rng.shuffle(rcpts)
        self.bulk_rcpts = rcpts
        requested = d in sim.requested
        self.worm_next = day0 + KLEZ_WINDOW[0] + 5 * rng.random() if requested and "klez" in today else None
        self.dns_next = day0 + DNS_ANOMALY_WINDOW[0] + rng.random() if requested and "dns_anomaly" in today else None
        self.day0 = day0
        self.extra.start_day(d, today if requested else frozenset(), weekday)

    def _draw_bin(self, r: float) -> int:
        acc = 0.0
        for b, w in enumerate(self.office):
            acc += w
            if r < acc:
                return b
        return 143

    def domain_down(self, name: str, t: float) -> bool:
        if self.extra.domain_down(name, t):
            return True
        if name != OUTAGE_DOMAIN or not self.outage_days:
            return False
        d = int(t) // 86400
        return d in self.outage_days and OUTAGE_WINDOW[0] <= t - d * 86400 < OUTAGE_WINDOW[1]

    # -- one bin -------------------------------------------------------------------------------
    def run_bin(self, t0: float, t1: float) -> None:
        self.extra.run_bin(t0, t1)
        while self.plan and self.plan[0][0] < t1:
            t, what = self.plan.pop(0)
            if what == "post":
                self.post(t)
            elif what == "digest":
                self.digest(t)
            else:
                self.extra.planned(t, what)
        while self.bulk_left > 0 and self.bulk_next < t1:
            self.bulk(self.bulk_next)
            self.bulk_left -= 1
            self.bulk_next += self.bulk_gap * (0.5 + self.sim.rng.random())
        if self.worm_next is not None:
            end = self.day0 + KLEZ_WINDOW[1]
            gap = 1 / self.sim.scale
            while self.worm_next < min(t1, end):
                self.worm(self.worm_next)
                self.worm_next += max(0.3, self.sim.rng.gauss(4.0, 1.5)) * gap
        if self.dns_next is not None:
            end = self.day0 + DNS_ANOMALY_WINDOW[1]
            rng = self.sim.rng
            while self.dns_next < min(t1, end):
                ip = f"{rng.randrange(1, 255)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
                self.sim.query(self.dns_next, f"{ip}.rbl.spamlist.example")
                self.sim.incidents.track("dns_anomaly", MX_IP, self.dns_next, {"client_ip": MX_IP}, queries=1)
                self.dns_next += rng.expovariate(1.2 * self.sim.scale)

    # -- look-alikes ---------------------------------------------------------------------------
    def post(self, t: float) -> None:
        sim = self.sim
        rng = sim.rng
        self.posts += 1
        poster = rng.choice(self.lab_local + tuple(a for a, _ in self.lab_remote[:10]))
        size = 1500 + int(rng.lognormvariate(7.5, 0.8))
        if "@" in poster:  # a remote member
            dom = sim.site.domains[sim.mailer.dom_index[poster.split("@", 1)[1]]]
            relay, ip, name, sender = f"{dom.hosts[0]} [{dom.ips[0]}]", dom.ips[0], dom.hosts[0], poster
        else:
            ip = self.user_pc[poster]
            name = pc_name(ip)
            relay, sender = f"{name} [{ip}]", f"{poster}@{LOCAL_DOMAIN}"
        msgid = f"<{sim.ymdhms(t)}.{rng.randrange(65536):04X}.{sender.split('@')[0]}@{sender.split('@')[1]}>"
        sim.mailer.message(t, relay, ip, name, sender, size, msgid, "ESMTP", prog=(FML, LAB_ML))
        t2 = t + 2 + 3 * rng.random()
        n = self.posts
        fields = {"sender": LAB_ML_OWNER, "client_ip": "127.0.0.1", "list": LAB_ML}

        def track(x: float) -> None:
            sim.incidents.track("mailing_list", (LAB_ML_OWNER, n), x, fields)

        sim.mailer.message(
            t2,
            "localhost [127.0.0.1]",
            "127.0.0.1",
            "localhost",
            LAB_ML_OWNER,
            size + 640,
            msgid,
            "ESMTP",
            local=self.lab_local,
            remote=self.lab_remote,
            track=track,
        )
        sim.incidents.track(
            "mailing_list",
            (LAB_ML_OWNER, n),
            t2,
            fields,
            messages=1,
            recipients=len(self.lab_local) + len(self.lab_remote),
        )

    def digest(self, t: float) -> None:
        sim = self.sim
        fields = {"sender": INFO_ML_OWNER, "client_ip": "127.0.0.1", "list": INFO_ML}

        def track(x: float) -> None:
            sim.incidents.track("mailing_list", (INFO_ML_OWNER, 0), x, fields)

        msgid = f"<{sim.ymdhms(t)}.digest.info-ml@{LOCAL_DOMAIN}>"
        sim.mailer.message(
            t,
            "localhost [127.0.0.1]",
            "127.0.0.1",
            "localhost",
            INFO_ML_OWNER,
            20000 + sim.rng.randrange(30000),
            msgid,
            "ESMTP",
            local=self.info_local,
            remote=self.info_remote,
            track=track,
        )
        sim.incidents.track(
            "mailing_list",
            (INFO_ML_OWNER, 0),
            t,
            fields,
            messages=1,
            recipients=len(self.info_local) + len(self.info_remote),
        )

    def bulk(self, t: float) -> None:
        sim = self.sim
        rng = sim.rng
        r = self.bulk_rcpts[self.bulk_left % len(self.bulk_rcpts)]
        local, remote = ((r,), ()) if isinstance(r, str) else ((), (r,))
        name = pc_name(BULK_PC)
        fields = {"sender": BULK_SENDER, "client_ip": BULK_PC, "host": name}
        sim.mailer.message(
            t,
            f"{name} [{BULK_PC}]",
            BULK_PC,
            name,
            BULK_SENDER,
            3000 + int(rng.lognormvariate(8.5, 0.6)),
            f"<{sim.ymdhms(t)}.{rng.randrange(65536):04X}.kouhou@{LOCAL_DOMAIN}>",
            "ESMTP",
            local=local,
            remote=remote,
        )
        sim.incidents.track("bulk_sender", BULK_SENDER, t, fields, messages=1)

    # -- the worm ------------------------------------------------------------------------------
    def worm(self, t: float) -> None:
        sim = self.sim
        rng = sim.rng
        rnd = rng.random
        r = rnd()
        if r < 0.5:
            sender = self.harvest[int(rnd() * len(self.harvest))][0]
        elif r < 0.75:
            sender = f"{sim.site.users[int(rnd() * 400)].name}@{LOCAL_DOMAIN}"
        else:
            sender = f"{rng.choice(GIVEN)}{rng.randrange(100)}@{sim.site.domains[sim.site.pick_domain(rnd())].name}"
        local, remote, unknown = [], [], []
        for _ in range(1 if rnd() < 0.85 else 2):
            r = rnd()
            if r < 0.55:
                remote.append(self.harvest[int(rnd() * len(self.harvest))])
            elif r < 0.63:
                local.append(self.harvest_local[int(rnd() * len(self.harvest_local))])
            else:
                unknown.append(self._guess())
        fields = {"client_ip": self.worm_ip, "sender": None, "host": self.worm_host}
        sim.mailer.message(
            t,
            f"{self.worm_host} [{self.worm_ip}]",
            self.worm_ip,
            self.worm_host,
            sender,
            KLEZ_SIZE,
            "*",
            "SMTP",
            local=tuple(dict.fromkeys(local)),
            remote=tuple(dict.fromkeys(remote)),
            unknown=tuple(dict.fromkeys(unknown)),
        )
        # the incident spans the client's SMTP sessions (its from= lines), 14:30-17:30
        sim.incidents.track("mmw_suspect", self.worm_ip, t, fields, messages=1, user_unknown=len(set(unknown)))

    def _guess(self) -> str:
        """A local address the worm made up from strings on the PC: it does not exist."""
        rng = self.sim.rng
        names = self.sim.site.user_names
        while True:
            r = rng.random()
            lp = (
                f"{rng.choice(SURNAMES)}{rng.randrange(100, 1000)}"
                if r < 0.4
                else f"{rng.choice(GIVEN)}"
                if r < 0.7
                else f"{rng.choice(GIVEN)}.{rng.choice(SURNAMES)}"
            )
            if lp not in names:
                return f"{lp}@{LOCAL_DOMAIN}"
