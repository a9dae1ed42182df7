"""The benchmark suite: simulated sites, each a run of consecutive days with one scenario per day,
so that later days have the earlier ones as history (the first days of each site, and the small
new sites, are judged with within-day statistics).

Kinds of day covered: clean weekdays and weekends, a national holiday (11 February) with almost
no mail, each worm scenario (klez; quiet: three slow mass-mailers, one forging senders; a worm
with its own SMTP engine), deferral surges on two domains (frethem, outage), the mail server's
unexplained lookups (dns_anomaly), a heavy mailing-list day, a colleague's bulk mailing, and
days with everything at once. Both log stacks (2002: sendmail + iplog; modern: Postfix + BIND),
scales from 0.3 to 1.5 of the papers' site, different seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class SiteSpec:
    name: str
    style: str
    seed: int
    scale: float
    start: date
    calendar: tuple[str, ...]  # one scenario per day

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(len(self.calendar))]

    def with_seed_offset(self, k: int) -> SiteSpec:
        return SiteSpec(self.name, self.style, self.seed + k, self.scale, self.start, self.calendar)


WEEK = ("clean",) * 7
SUITE = (
    # two weeks of the papers' kind of site, February 2002: a clean week, the holiday, then outbreaks
    SiteSpec(
        "uni-2002",
        "2002",
        101,
        0.6,
        date(2002, 2, 4),
        WEEK + ("holiday", "klez", "bulk", "heavy_list", "quiet", "frethem", "clean", "everything"),
    ),
    # the modern stack, a clean week and then one outbreak a day
    SiteSpec(
        "uni-modern",
        "modern",
        202,
        0.5,
        date(2002, 3, 4),
        WEEK + ("smtp_engine", "outage", "klez", "quiet", "everything"),
    ),
    # a new, small site: an outbreak on its very first day, no history at all
    SiteSpec("new-small", "2002", 303, 0.3, date(2002, 4, 10), ("klez", "dns_anomaly", "clean")),
    # a bigger site with three days of history
    SiteSpec("big-2002", "2002", 404, 1.5, date(2002, 5, 7), ("clean", "clean", "clean", "quiet", "full")),
    # a new modern site: look-alikes and deferrals first
    SiteSpec("new-modern", "modern", 505, 0.3, date(2002, 6, 3), ("heavy_list", "bulk", "frethem", "clean")),
)
# the kinds of day on which nothing malicious happens ("a+b": both must be)
BENIGN_DAYS = frozenset({"clean", "holiday", "heavy_list", "bulk", "relay", "remote3x"})
# the days that count as clean for "false alarms per clean day"
CLEAN_DAYS = frozenset({"clean", "holiday"})
