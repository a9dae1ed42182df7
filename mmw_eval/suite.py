"""The benchmark suite: simulated sites, each a run of consecutive days with one scenario per day,
so that later days have the earlier ones as history (the first days of each site, and the small
new sites, are judged with within-day statistics).

Kinds of day covered: clean weekdays and weekends, a national holiday (11 February) with almost
no mail, each worm scenario (klez; quiet: three slow mass-mailers, one forging senders; a worm
with its own SMTP engine), deferral surges on two domains (frethem, outage), the mail server's
unexplained lookups (dns_anomaly), a heavy mailing-list day, a colleague's bulk mailing, and
days with everything at once. Both log stacks (2002: sendmail + iplog; modern: Postfix + BIND),
scales from 0.3 to 1.5 of the papers' site, different seeds.

The quiet cases of issue 19 (the sites after the first five; the old sites and days are kept as
they were): worms with a sleep loop at 60, 90, 120 and 200 s a message, each with forged
senders, with its user's own sender and 25 % guessed recipients, and as the address book worm
(own sender, none or 5 % guessed), each of the sixteen on some site, both stacks; four quiet
worms on one day (both stacks); a worm starting while a staff-list post and a colleague's bulk
mailing go out (both stacks); a busy departmental mail hub absent from `relay_hosts`, every day of
two sites (one new); the busiest remote domains' servers at three times their mail (three sites);
a quarter-size and a three-times site. Most worm days follow at least three clean weekdays (judged
against history); the relay-modern and quarter sites start with no history.
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
    # -- the quiet worms (issue 19) --
    # sleep-loop worms after three clean weekdays, a weekend between the two weeks
    SiteSpec(
        "quiet-2002",
        "2002",
        606,
        0.6,
        date(2002, 7, 1),
        ("clean",) * 3
        + ("worm60_forged", "worm120_owner", "clean", "clean")
        + ("worm200_forged", "worm90_book", "worm200_book5", "four_quiet", "crowd_owner"),
    ),
    SiteSpec(
        "quiet-modern",
        "modern",
        707,
        0.5,
        date(2002, 9, 2),
        ("clean",) * 3
        + ("worm60_owner", "worm90_forged", "clean", "clean")
        + ("worm120_book5", "worm200_owner", "worm60_book", "four_quiet", "crowd_forged"),
    ),
    # a departmental mail hub that relays every day and is not in relay_hosts
    SiteSpec(
        "relay-2002",
        "2002",
        808,
        0.5,
        date(2002, 10, 7),
        ("relay",) * 3 + ("relay+worm120_forged", "relay+worm200_book"),
    ),
    # the same on a new site: judged with within-day statistics; then the remote MTAs at 3x too
    SiteSpec("relay-modern", "modern", 909, 0.4, date(2002, 11, 5), ("relay", "relay+worm90_book5", "relay+remote3x")),
    # a quarter-size new site: address book worms first, the remote MTAs at 3x judged against history
    SiteSpec(
        "quarter-2002", "2002", 1010, 0.25, date(2002, 12, 3), ("worm60_book5", "worm120_book", "clean", "remote3x")
    ),
    # a site three times the papers': a quiet worm and the remote MTAs at 3x in its noise
    SiteSpec("triple-modern", "modern", 1111, 3.0, date(2003, 1, 13), ("clean",) * 3 + ("worm90_owner", "remote3x")),
)
# the kinds of day on which nothing malicious happens ("a+b": both must be)
BENIGN_DAYS = frozenset({"clean", "holiday", "heavy_list", "bulk", "relay", "remote3x"})
# the days that count as clean for "false alarms per clean day"
CLEAN_DAYS = frozenset({"clean", "holiday"})
