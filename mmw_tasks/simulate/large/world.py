"""The large site: the papers' university N times over (users, their PCs, the remote domains and
correspondents it mails, mailing lists, newsletters), held as arrays and string columns.

At scale N: 400·N users on 482·N PCs (10.1.2.0/24 onwards, 241 PCs a /24), 6 large ISPs plus
39·N universities and 255·N companies as remote domains (1-3 MX hosts each), 3000·N
correspondents, N lab lists of 90 members, N digest lists of 150 readers, N/10 newsletter
senders (at least one of each). Like the small site, it is the same for every seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from mmw_tasks.simulate.large.text import S, ip4, lit
from mmw_tasks.simulate.site import _PLACES, _TRADES, _WORDS, BIG_DOMAINS, GIVEN, LOCAL_DOMAIN, SURNAMES

PCS_PER_NET = 241  # 10.x.y.10 .. 10.x.y.250
LAB_MEMBERS = (50, 40)  # local, remote
DIGEST_READERS = (40, 110)
HARVEST = (400, 60)  # what a worm finds on its PC: remote addresses, local names


@dataclass
class World:
    scale: float
    # users (the first n_users are ordinary users; bulk senders follow)
    users: pl.Series  # local parts
    user_pc: np.ndarray  # index into pcs
    user_dial: np.ndarray  # dial-up pool 0..2, or -1
    user_fwd: pl.Series  # .forward address (mobile), or null
    # PCs
    pc_ip: pl.Series
    pc_name: pl.Series
    pc_arpa: pl.Series
    pc_resolved: pl.Series  # "name (ip)", as iplog prints a source it resolved
    # remote domains and their MX hosts
    dom_name: pl.Series
    dom_cum: np.ndarray  # cumulative weights, for weighted draws
    dom_nh: np.ndarray  # number of MX hosts
    dom_h0: np.ndarray  # index of the first host in host_*
    dom_ptr: np.ndarray  # its relay has a PTR record
    host_name: pl.Series
    host_ip: pl.Series
    host_arpa: pl.Series
    mobile: int  # index of mobile.ne.jp (where .forward users forward to)
    # correspondents
    corr_addr: pl.Series
    corr_dom: np.ndarray
    # mailing lists, digests and newsletters
    labs: dict  # names; local (user indices) and remote (correspondent indices), one row per list
    digests: dict
    bulks: list[dict]

    @property
    def n_users(self) -> int:
        return len(self.user_pc)

    def pick_domain(self, r: np.ndarray) -> np.ndarray:
        return np.minimum(np.searchsorted(self.dom_cum, r * self.dom_cum[-1], side="right"), len(self.dom_cum) - 1)


def pc_net(i: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(second, third, fourth) octets of PC i: 10.1.2.10 onwards, 241 a /24."""
    net = 2 + i // PCS_PER_NET
    return 1 + net // 256, net % 256, 10 + i % PCS_PER_NET


def _pcs(n: int) -> tuple[pl.Series, pl.Series, pl.Series, pl.Series]:
    i = np.arange(n)
    b, c, d = pc_net(i)
    ip = ip4(10, b, c, d)
    df = pl.DataFrame({"b": b, "c": c, "d": d, "ip": ip})
    # the small site's names (pc77 in 10.1.3.x, pc2015 for 10.1.2.15), then pc<b>-<c><ddd>
    name = df.select(
        pl.when((pl.col("b") == 1) & (pl.col("c") == 3))
        .then(pl.concat_str(lit("pc"), pl.col("d").cast(S)))
        .when(pl.col("b") == 1)
        .then(pl.concat_str(lit("pc"), pl.col("c").cast(S), pl.col("d").cast(S).str.zfill(3)))
        .otherwise(
            pl.concat_str(
                lit("pc"), pl.col("b").cast(S), lit("-"), pl.col("c").cast(S), pl.col("d").cast(S).str.zfill(3)
            )
        )
        + lit(f".{LOCAL_DOMAIN}")
    ).to_series()
    arpa = df.select(
        pl.concat_str(
            [pl.col("d").cast(S), pl.col("c").cast(S), pl.col("b").cast(S), lit("10.in-addr.arpa")], separator="."
        )
    ).to_series()
    resolved = pl.DataFrame({"n": name, "ip": ip}).select(pl.concat_str("n", lit(" ("), "ip", lit(")"))).to_series()
    return ip, name, arpa, resolved


def _host_ips(n: int) -> tuple[pl.Series, pl.Series]:
    """n distinct addresses: 198.18.0.0/15 (the benchmarking range), then 100.96.0.0/11."""
    k = np.arange(n)
    last = 1 + k % 254
    third = (k // 254) % 256
    block = k // (254 * 256)
    first = np.where(block < 2, 198, 100)
    second = np.where(block < 2, 18 + block, 96 + block - 2)
    ip = ip4(first, second, third, last)
    arpa = (
        pl.DataFrame({"a": first, "b": second, "c": third, "d": last})
        .select(pl.concat_str([pl.col(x).cast(S) for x in "dcba"] + [lit("in-addr.arpa")], separator="."))
        .to_series()
    )
    return ip, arpa


def words(vocabulary, idx: np.ndarray) -> pl.Series:
    return pl.Series(list(vocabulary), dtype=S).gather(np.asarray(idx, dtype=np.int64))


def sample(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """k distinct indices below n, in draw order (without shuffling all n)."""
    k = min(k, n)
    if 4 * k > n:
        return rng.permutation(n)[:k]
    while True:
        x = rng.integers(0, n, k + k // 4 + 8)
        _, first = np.unique(x, return_index=True)
        if len(first) >= k:
            return x[np.sort(first)][:k]


def build_world(scale: float) -> World:
    rng = np.random.default_rng(20020216)
    n_univ, n_comp = max(1, round(39 * scale)), max(1, round(255 * scale))
    # -- remote domains ---------------------------------------------------------------------------
    big_names = [d for d, _, _ in BIG_DOMAINS]
    big_w = np.array([w for _, w, _ in BIG_DOMAINS]) * scale
    big_n = np.array([n for _, _, n in BIG_DOMAINS])
    u = np.arange(n_univ)
    univ = pl.DataFrame({"p": words(_PLACES, u % len(_PLACES)), "k": u // len(_PLACES)}).select(
        pl.concat_str("p", pl.when(pl.col("k") > 0).then((pl.col("k") + 1).cast(S)).otherwise(lit("")), lit("-u.ac.jp"))
    )[:, 0]
    c = np.arange(n_comp)
    tlds = ["co.jp", "co.jp", "co.jp", "com", "or.jp", "ne.jp", "jp"]
    comp = pl.DataFrame(
        {
            "w": words(_WORDS, c % len(_WORDS)),
            "t": words(_TRADES, (c // len(_WORDS)) % len(_TRADES)),
            "k": c // (len(_WORDS) * len(_TRADES)),
            "h": rng.random(n_comp) < 0.5,
            "tld": words(tlds, rng.integers(0, len(tlds), n_comp)),
        }
    ).select(
        pl.concat_str(
            "w",
            pl.when("h").then(lit("-")).otherwise(lit("")),
            "t",
            pl.when(pl.col("k") > 0).then(pl.col("k").cast(S)).otherwise(lit("")),
            lit("."),
            "tld",
        )
    )[:, 0]
    dom_name = pl.concat([pl.Series(big_names, dtype=S), univ, comp])
    weight = np.concatenate([big_w, rng.uniform(0.3, 1.2, n_univ), rng.uniform(0.05, 0.5, n_comp)])
    nh = np.concatenate(
        [
            big_n,
            np.array([1, 2, 2, 3])[rng.integers(0, 4, n_univ)],
            np.array([1, 1, 2, 2, 2, 3])[rng.integers(0, 6, n_comp)],
        ]
    )
    n_dom = len(nh)
    h0 = np.r_[0, np.cumsum(nh)[:-1]]
    dom_of_host = np.repeat(np.arange(n_dom), nh)
    j = np.arange(nh.sum()) - h0[dom_of_host]  # host number within its domain
    hosts = pl.DataFrame({"d": dom_name.gather(dom_of_host), "j": j, "n": nh[dom_of_host]}).select(
        pl.when(pl.col("n") == 1)
        .then(pl.concat_str(lit("mail."), "d"))
        .otherwise(pl.concat_str(lit("mx"), (pl.col("j") + 1).cast(S), lit("."), "d"))
    )[:, 0]
    host_ip, host_arpa = _host_ips(len(hosts))

    # -- correspondents ----------------------------------------------------------------------------
    cum = np.cumsum(weight)
    n_corr = max(100, round(3000 * scale))
    di = np.minimum(np.searchsorted(cum, rng.random(n_corr) * cum[-1], side="right"), n_dom - 1)
    g = words(GIVEN, rng.integers(0, len(GIVEN), n_corr))
    s = words(SURNAMES, rng.integers(0, len(SURNAMES), n_corr))
    form = rng.random(n_corr)
    num = rng.integers(1, 1000, n_corr)
    lp = pl.DataFrame({"g": g, "s": s, "f": form, "n": num, "d": dom_name.gather(di)}).select(
        pl.concat_str(
            pl.when(pl.col("f") < 0.3)
            .then(pl.concat_str("g", lit("."), "s"))
            .when(pl.col("f") < 0.55)
            .then(pl.concat_str("s", pl.col("n").cast(S)))
            .when(pl.col("f") < 0.8)
            .then(pl.concat_str(pl.col("g").str.slice(0, 1), lit("-"), "s"))
            .otherwise(pl.concat_str("g", lit("_"), (10 + pl.col("n") % 90).cast(S))),
            lit("@"),
            "d",
        )
    )[:, 0]
    corr = pl.DataFrame({"a": lp, "d": di}).unique("a", keep="first", maintain_order=True)
    corr_addr, corr_dom = corr["a"], corr["d"].to_numpy()

    # -- users and their PCs -------------------------------------------------------------------------
    n_users = max(40, round(400 * scale))
    n_pcs = max(48, round(482 * scale))
    ug = words(GIVEN, rng.integers(0, len(GIVEN), n_users))
    us = words(SURNAMES, rng.integers(0, len(SURNAMES), n_users))
    users = pl.DataFrame({"g": ug, "s": us, "i": np.arange(n_users)}).select(
        pl.concat_str(pl.col("g").str.slice(0, 1), "s", (pl.col("i") + 1).cast(S))
    )[:, 0]
    user_pc = (np.arange(n_users) * 7) % n_pcs
    user_dial = np.where(rng.random(n_users) < 0.45, rng.integers(0, 3, n_users), -1)
    mobile = big_names.index("mobile.ne.jp")
    has_fwd = rng.random(n_users) < 0.05
    fwd = pl.DataFrame({"u": users, "k": rng.integers(1000, 10000, n_users), "f": has_fwd}).select(
        pl.when("f").then(pl.concat_str("u", lit("-"), pl.col("k").cast(S), lit("@mobile.ne.jp")))
    )[:, 0]
    pc_ip, pc_name, pc_arpa, pc_resolved = _pcs(n_pcs)

    # -- lists, digests, newsletters -------------------------------------------------------------------
    n_lists = max(1, round(scale))
    labs = {
        "names": ["lab-ml" if k == 0 else f"lab{k + 1}-ml" for k in range(n_lists)],
        "local": np.stack([sample(rng, n_users, LAB_MEMBERS[0]) for _ in range(n_lists)]),
        "remote": np.stack([sample(rng, len(corr_addr), LAB_MEMBERS[1]) for _ in range(n_lists)]),
    }
    digests = {
        "names": ["info-ml" if k == 0 else f"info{k + 1}-ml" for k in range(n_lists)],
        "local": np.stack([sample(rng, n_users, DIGEST_READERS[0]) for _ in range(n_lists)]),
        "remote": np.stack([sample(rng, len(corr_addr), DIGEST_READERS[1]) for _ in range(n_lists)]),
    }
    bulks = []
    taken: set[int] = set()
    for k in range(max(1, round(scale / 10))):
        pc = 5 if k == 0 else int(rng.integers(0, n_pcs))  # 10.1.2.15 first, as on the small site
        while pc in taken:
            pc = int(rng.integers(0, n_pcs))
        taken.add(pc)
        bulks.append({"sender": "kouhou" if k == 0 else f"kouhou{k + 1}", "pc": pc, "k": k})
    users, fwd, hosts, host_ip, host_arpa, dom_name, corr_addr = (
        x.rechunk() for x in (users, fwd, hosts, host_ip, host_arpa, dom_name, corr_addr)
    )
    return World(
        scale=scale,
        users=users,
        user_pc=user_pc,
        user_dial=user_dial,
        user_fwd=fwd,
        pc_ip=pc_ip,
        pc_name=pc_name,
        pc_arpa=pc_arpa,
        pc_resolved=pc_resolved,
        dom_name=dom_name,
        dom_cum=cum,
        dom_nh=nh,
        dom_h0=h0,
        dom_ptr=rng.random(n_dom) > 0.08,
        host_name=hosts,
        host_ip=host_ip,
        host_arpa=host_arpa,
        mobile=mobile,
        corr_addr=corr_addr,
        corr_dom=corr_dom,
        labs=labs,
        digests=digests,
        bulks=bulks,
    )
