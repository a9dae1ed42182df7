"""The simulated site: a Japanese university's mail and DNS servers in 2002, its users and PCs,
and the outside world it mails (remote domains with their MX hosts, correspondents, dial-up ISPs).

The site itself is the same for every seed (built from a fixed random stream), so different seeds
give different days of traffic on one and the same site.
"""

from __future__ import annotations

import random
from bisect import bisect
from dataclasses import dataclass
from itertools import accumulate

NAME = "example-u"
TIMEZONE = "Asia/Tokyo"
LOCAL_DOMAIN = "example.ac.jp"
MX_HOST, MX_IP = "mx", "10.1.0.25"
NS_HOST, NS_IP = "ns", "10.1.0.53"
WWW_NAME, WWW_IP = "www.example.ac.jp", "10.1.0.250"  # a look-alike IP: 10.1.0.25 is its prefix
MX_FQDN = f"{MX_HOST}.{LOCAL_DOMAIN}"
INTERVAL_MINUTES = 10

SURNAMES = (
    "tanaka suzuki sato takahashi watanabe ito yamamoto nakamura kobayashi kato yoshida yamada "
    "sasaki yamaguchi matsumoto inoue kimura hayashi shimizu yamazaki mori abe ikeda hashimoto "
    "yamashita ishikawa nakajima maeda fujita ogawa goto okada hasegawa murakami kondo ishii saito "
    "sakamoto endo aoki fujii nishimura fukuda ota miura fujiwara okamoto matsuda nakagawa nakano "
    "harada ono tamura takeuchi kaneko wada nakayama ishida ueda morita hara shibata sakai kudo "
    "yokoyama miyazaki miyamoto uchida takagi ando taniguchi ohno maruyama imai takada fujimoto "
    "takeda murata ueno sugiyama masuda sugawara hirano kojima otsuka chiba kubo matsui iwasaki "
    "sakurai kinoshita noguchi matsuo nomura kikuchi sano onishi sugimoto arai"
).split()
GIVEN = (
    "taro hanako ichiro jiro yuki kenji akiko hiroshi naoko takashi yumi makoto keiko satoshi "
    "tomoko daisuke mayumi kazuo emi shinji yoko masaru kumiko tetsuya junko osamu sachiko koji "
    "mika yusuke rie shota ai kaori noriko hideki atsushi miho"
).split()
_WORDS = (
    "sakura midori nippon tokai kansai hokuto asahi fuji yamato minato kita minami tohoku chubu "
    "shinsei kyoei daiichi heisei aozora hikari kirin tsubasa seiryu kouyou meiji taisei sanwa "
    "shiki kaiun fuyo hinode"
).split()
_TRADES = "denki shoji kogyo soft net tech sangyo kikaku seiko system design trading".split()
_PLACES = (
    "hokkai sendai tsukuba chiba kanto nagoya kyoto osaka kobe hiroshima kyushu okinawa niigata "
    "kanazawa shizuoka okayama kumamoto nagasaki akita yamagata gifu mie nara wakayama tottori "
    "shimane tokushima kagawa ehime kochi saga oita miyazaki kagoshima gunma tochigi ibaraki "
    "saitama nagano yamanashi"
).split()

# (domain, weight, number of MX hosts): the large ISPs and free-mail services.
BIG_DOMAINS = (
    ("bigisp.ne.jp", 22.0, 3),
    ("mobile.ne.jp", 8.0, 3),
    ("freemail.co.jp", 6.0, 2),
    ("webnet.ne.jp", 5.0, 3),
    ("globalmail.com", 5.0, 2),
    ("dialnet.ne.jp", 4.0, 2),
)
OUTAGE_DOMAIN = "bigisp.ne.jp"  # refuses our mail in the frethem scenario

LAB_ML, LAB_ML_OWNER = "lab-ml@example.ac.jp", "lab-ml-owner@example.ac.jp"
INFO_ML, INFO_ML_OWNER = "info-ml@example.ac.jp", "info-ml-owner@example.ac.jp"
BULK_SENDER = "kouhou@example.ac.jp"  # the public-relations office's newsletter
BULK_PC = "10.1.2.15"


def pc_name(ip: str) -> str:
    """10.1.3.77 -> pc77.example.ac.jp; 10.1.2.15 -> pc2015.example.ac.jp."""
    _, _, third, last = ip.split(".")
    return f"pc{last}.{LOCAL_DOMAIN}" if third == "3" else f"pc{third}{int(last):03d}.{LOCAL_DOMAIN}"


def in_addr(ip: str) -> str:
    a, b, c, d = ip.split(".")
    return f"{d}.{c}.{b}.{a}.in-addr.arpa"


@dataclass(frozen=True)
class Domain:
    name: str
    weight: float
    hosts: tuple[str, ...]  # MX host names, preference order
    ips: tuple[str, ...]
    ptr: bool  # its outgoing relay has a PTR record

    @property
    def n(self) -> int:
        return len(self.hosts)


@dataclass(frozen=True)
class User:
    name: str
    pc: str  # IP of the user's campus PC
    dialup: int  # index of the user's dial-up ISP, or -1
    forward: str | None  # .forward to a remote (mobile) address


@dataclass
class Site:
    users: list[User]
    user_names: frozenset[str]
    pcs: list[str]
    domains: list[Domain]
    domain_by_name: dict[str, Domain]
    domain_cum: list[float]
    correspondents: list[tuple[str, int]]  # (local part, domain index)
    lab_ml_members: list[str]
    info_ml_members: list[str]

    def pick_domain(self, r: float) -> int:
        """Index of a remote domain drawn by weight; r uniform in [0, 1)."""
        return bisect(self.domain_cum, r * self.domain_cum[-1])


def dialup_host(pool: int, k: int) -> tuple[str, str]:
    """(name, ip) of address k (0..65535) of dial-up pool `pool`."""
    hi, lo = k >> 8, k & 255 or 1
    if pool == 0:
        return f"p{k}-ipad{hi % 40:02d}.tokyo.bigisp.ne.jp", f"100.64.{hi}.{lo}"
    if pool == 1:
        return f"dial{lo}-{hi}.dialnet.ne.jp", f"100.65.{hi}.{lo}"
    return f"dialup{lo}.isp.example.net", f"198.51.100.{lo}"


def _domain_names(rng: random.Random) -> list[tuple[str, float, int]]:
    out: list[tuple[str, float, int]] = list(BIG_DOMAINS)
    seen = {d for d, _, _ in out} | {LOCAL_DOMAIN}
    for p in _PLACES:  # other universities
        name = f"{p}-u.ac.jp"
        if name not in seen:
            seen.add(name)
            out.append((name, rng.uniform(0.3, 1.2), rng.choice((1, 2, 2, 3))))
    while len(out) < 300:  # companies and small organisations
        w, t = rng.choice(_WORDS), rng.choice(_TRADES)
        tld = rng.choice(("co.jp", "co.jp", "co.jp", "com", "or.jp", "ne.jp", "jp"))
        name = f"{w}-{t}.{tld}" if rng.random() < 0.5 else f"{w}{t}.{tld}"
        if name not in seen:
            seen.add(name)
            out.append((name, rng.uniform(0.05, 0.5), rng.choice((1, 1, 2, 2, 2, 3))))
    return out


def build_site() -> Site:
    rng = random.Random(20020216)
    # remote domains and their MX hosts (IPs from the 198.18.0.0/15 benchmarking range)
    domains: list[Domain] = []
    k = 1
    for name, weight, n in _domain_names(rng):
        hosts = (f"mail.{name}",) if n == 1 else tuple(f"mx{i + 1}.{name}" for i in range(n))
        ips = tuple(f"198.{18 + ((k + i) >> 16)}.{((k + i) >> 8) & 255}.{(k + i) & 255 or 1}" for i in range(n))
        k += n
        domains.append(Domain(name, weight, hosts, ips, ptr=rng.random() > 0.08))
    by_name = {d.name: d for d in domains}
    cum = list(accumulate(d.weight for d in domains))

    pcs = [f"10.1.2.{i}" for i in range(10, 251)] + [f"10.1.3.{i}" for i in range(10, 251)]
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < 400:
        s = rng.choice(SURNAMES)
        name = s if s not in seen and rng.random() < 0.6 else f"{s}{rng.randint(1, 99)}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    names += ["kouhou", "root", "postmaster", "webmaster"]
    mobile = by_name["mobile.ne.jp"]
    users = []
    for i, name in enumerate(names):
        pc = BULK_PC if name == "kouhou" else pcs[(i * 7) % len(pcs)]
        dial = rng.randrange(3) if rng.random() < 0.45 else -1
        fwd = f"{name}-{rng.randint(1000, 9999)}@{mobile.name}" if rng.random() < 0.05 else None
        users.append(User(name, pc, dial, fwd))

    correspondents: list[tuple[str, int]] = []
    seen_c: set[tuple[str, int]] = set()
    while len(correspondents) < 3000:
        di = bisect(cum, rng.random() * cum[-1])
        g, s = rng.choice(GIVEN), rng.choice(SURNAMES)
        form = rng.random()
        local = (
            f"{g}.{s}"
            if form < 0.3
            else f"{s}{rng.randint(1, 999)}"
            if form < 0.55
            else f"{g[0]}-{s}"
            if form < 0.8
            else f"{g}_{rng.randint(10, 99)}"
        )
        if (local, di) not in seen_c:
            seen_c.add((local, di))
            correspondents.append((local, di))

    lab = [f"{u.name}@{LOCAL_DOMAIN}" for u in rng.sample(users[:400], 50)]
    lab += [f"{lp}@{domains[di].name}" for lp, di in rng.sample(correspondents, 40)]
    info = [f"{u.name}@{LOCAL_DOMAIN}" for u in rng.sample(users[:400], 40)]
    used: set[int] = set()
    for lp, di in correspondents:  # digest readers: one per remote domain
        if di not in used and len(info) < 150:
            used.add(di)
            info.append(f"{lp}@{domains[di].name}")
    return Site(
        users=users,
        user_names=frozenset(names),
        pcs=pcs,
        domains=domains,
        domain_by_name=by_name,
        domain_cum=cum,
        correspondents=correspondents,
        lab_ml_members=lab,
        info_ml_members=info,
    )
