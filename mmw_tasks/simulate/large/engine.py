"""The clock of the large simulator: walks the days in chunks of 10-minute bins, has the traffic
drawn and the stack render it as columns, and hands the lines, sorted, to the two host logs.

Times are float seconds since the origin, (start - 1 day) 00:00 local, as in simulate/engine.py.
Traffic runs from 23:00 the evening before the first requested day to (start + days) 07:00, so
every requested day is whole in the files (the small simulator starts a day earlier; its first
day is only there to be rotated away).
"""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from mmw_tasks.simulate.large.text import S, cat, lit
from mmw_tasks.simulate.large.traffic import Traffic
from mmw_tasks.simulate.large.world import build_world, sample
from mmw_tasks.simulate.large.writer import HostWriter, lines
from mmw_tasks.simulate.mail import QIC
from mmw_tasks.simulate.render import Style
from mmw_tasks.simulate.scenarios import DNS_ANOMALY_WINDOW, KLEZ_WINDOW, OUTAGE_WINDOW, calendar, features
from mmw_tasks.simulate.site import MX_IP, OUTAGE_DOMAIN, TIMEZONE
from mmw_tasks.simulate.truth import BINS_PER_DAY, Incidents, write_outputs

SCENARIOS = ("clean", "klez", "frethem", "dns_anomaly", "full")
MARGIN = 5.0  # seconds: a line may precede its cause by up to 2.5 s (DNS lookups, smtpd's connect)
LINES_PER_CHUNK = 1_000_000


class Scen:
    """What truth.build_truth reads of a scenario: the name of each requested day."""

    def __init__(self, day_names: dict[int, str]):
        self.day_names = day_names


class LargeSim:
    def __init__(
        self,
        out_dir: Path,
        start: date,
        days: int,
        scenario: str,
        seed: int,
        style: str,
        scale: float,
        other_dns: float = 1.0,
    ):
        names = calendar(scenario, days)
        bad = sorted({part for n in names for part in n.split("+") if part not in SCENARIOS})
        if bad:
            raise ValueError(
                f"scenario {', '.join(bad)} is not simulated at large scales; the large simulator has "
                f"{', '.join(SCENARIOS)}"
            )
        self.out_dir = out_dir
        self.scenario, self.seed, self.scale, self.other_dns = scenario, seed, scale, other_dns
        self.origin = start - timedelta(days=1)
        self.n_days = days + 2
        self.requested = range(1, days + 1)
        self.begin_t = 86400 - 3600
        self.end_t = (days + 1) * 86400 + 7 * 3600
        self.style = Style(style, self.origin, self.n_days, TIMEZONE)
        o = self.origin
        self.origin_epoch = int(datetime(o.year, o.month, o.day, tzinfo=ZoneInfo(TIMEZONE)).timestamp())
        self.ymd = [(self.origin + timedelta(days=i)).strftime("%Y%m%d") for i in range(self.n_days)]
        self.scen = Scen({d: n for d, n in zip(self.requested, names, strict=True)})
        self.by_day = {d: features(n) for d, n in self.scen.day_names.items()}
        self.rng = np.random.default_rng([seed, 0x6D6D77, 7])
        self.world = build_world(scale)
        self.counts = np.zeros((8, self.n_days * BINS_PER_DAY), dtype=np.int64)
        self.incidents = Incidents(self.requested)
        self.entities: list[tuple[str, object, dict]] = []
        self._ent_index: dict = {}
        self.tracks: list[pl.DataFrame] = []
        self.ns: list[pl.DataFrame] = []
        self.mx: list[pl.DataFrame] = []
        self.carry = {"ns": lines([], 0, pl.Series([], dtype=S)), "mx": lines([], 0, pl.Series([], dtype=S))}
        self._pid = 0
        self._tables()
        self.worms = self._worms()
        self.outage_dom = int(np.flatnonzero((self.world.dom_name == OUTAGE_DOMAIN).to_numpy())[0])
        self.outage_days = np.array([d for d, f in self.by_day.items() if "frethem" in f], dtype=np.int64)
        self.traffic = Traffic(self)
        if self.style.mta == "postfix":
            from mmw_tasks.simulate.large.modern import ModernStack

            self.stack = ModernStack(self)
        else:
            from mmw_tasks.simulate.large.stack2002 import Stack2002

            self.stack = Stack2002(self)

    # -- tables of text by second ----------------------------------------------------------------------
    def _tables(self) -> None:
        n = self.n_days * 86400
        sec = np.arange(n)
        day, sod = sec // 86400, sec % 86400
        hms = pl.Series(self.style.hms, dtype=S)
        prefix = pl.Series(self.style.day_prefix, dtype=S).gather(day)
        self._stamp = pl.DataFrame({"p": prefix, "h": hms.gather(sod)}).select(pl.concat_str("p", "h"))[:, 0]
        self._offset = pl.Series(self.style.day_offset, dtype=S)
        hms6 = hms.str.replace_all(":", "", literal=True)
        ymd = pl.Series(self.ymd, dtype=S).gather(day)
        self._ymdhms = pl.DataFrame({"d": ymd, "h": hms6.gather(sod)}).select(pl.concat_str("d", "h"))[:, 0]
        # sendmail 8.12 queue ids begin with the GMT time: year, month, day, hour, minute, second
        utc = pl.from_epoch(pl.Series(self.origin_epoch + sec), time_unit="s")
        qic = pl.Series(list(QIC), dtype=S)
        parts = [
            (utc.dt.year() - 1900) % 60,
            utc.dt.month() - 1,
            utc.dt.day(),
            utc.dt.hour(),
            utc.dt.minute(),
            utc.dt.second(),
        ]
        self._qhead = pl.DataFrame({f"p{i}": qic.gather(p.cast(pl.Int64)) for i, p in enumerate(parts)}).select(
            pl.concat_str(pl.all())
        )[:, 0]
        self._gmt12 = utc.dt.strftime("%Y%m%d%H%M")

    def _sec(self, t) -> np.ndarray:
        return np.clip(np.asarray(t, dtype=np.float64), 0, self.n_days * 86400 - 1).astype(np.int64)

    def stamps(self, t: np.ndarray) -> pl.Series:
        sec = self._sec(t)
        s = self._stamp.gather(sec)
        if self.style.bsd:
            return s
        usec = ((t - np.floor(t)) * 1e6).astype(np.int64)
        return pl.DataFrame({"s": s, "u": usec, "o": self._offset.gather(sec // 86400)}).select(
            pl.concat_str("s", lit("."), pl.col("u").cast(S).str.zfill(6), "o")
        )[:, 0]

    def stamp_one(self, t: float) -> str:
        return self.stamps(np.array([t]))[0]

    def ymdhms(self, t) -> pl.Series:
        return self._ymdhms.gather(self._sec(t))

    def gmt12(self, t) -> pl.Series:
        return self._gmt12.gather(self._sec(t))

    def qhead(self, t) -> pl.Series:
        return self._qhead.gather(self._sec(t))

    def pids(self, n: int) -> np.ndarray:
        """New processes on the mail server: pids climb and wrap at 30000 (pid + 1 is the forked child)."""
        k = self._pid + np.arange(n)
        self._pid += n
        return 300 + (k * 2) % 29600

    # -- incidents -------------------------------------------------------------------------------------
    def entity(self, kind: str, ident, fields: dict) -> int:
        key = (kind, ident)
        i = self._ent_index.get(key)
        if i is None:
            i = self._ent_index[key] = len(self.entities)
            self.entities.append((kind, ident, fields))
        return i

    def counters(self, ent, t, **incr) -> None:
        """Tally lines of an incident at times `t` (its span), with counters (ints or arrays)."""
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        n = len(t)
        if n == 0:
            return
        cols = {"t": t, "e": np.broadcast_to(np.asarray(ent, dtype=np.int64), (n,))}
        for name in ("messages", "recipients", "user_unknown", "deferred", "queries"):
            v = incr.get(name)
            cols[name] = (
                pl.Series(name, [None] * n, dtype=pl.Int64)
                if v is None
                else pl.Series(name, np.broadcast_to(np.asarray(v, dtype=np.int64), (n,)))
            )
        self.tracks.append(pl.DataFrame(cols))

    def _worms(self) -> list[dict]:
        """The infected PCs (one per 100 of scale, at least one) and what each worm found."""
        w = self.world
        rng = np.random.default_rng([self.seed, 0x6D6D77, 11])
        if not any("klez" in f for f in self.by_day.values()):
            return []
        taken = {b["pc"] for b in w.bulks}
        n_pcs = len(w.pc_ip)
        out = []
        for k in range(max(1, round(self.scale / 100))):
            while True:  # the first in 10.1.3.0/24, like the small site's
                pc = int(241 + rng.integers(0, 241)) if k == 0 and n_pcs >= 482 else int(rng.integers(0, n_pcs))
                if pc not in taken:
                    break
            taken.add(pc)
            ip, host = w.pc_ip[pc], w.pc_name[pc]
            onset = KLEZ_WINDOW[0] if k == 0 else float(rng.uniform(9 * 3600, 16 * 3600))
            ent = self.entity("mmw_suspect", ip, {"client_ip": ip, "sender": None, "host": host})
            out.append(
                {
                    "pc": pc,
                    "onset": onset,
                    "ent": ent,
                    "harvest": sample(rng, len(w.corr_addr), 400),
                    "harvest_local": sample(rng, w.n_users, 60),
                }
            )
        return out

    def domain_down(self, dom: np.ndarray, t: np.ndarray) -> np.ndarray:
        """frethem: bigisp.ne.jp times out 17:00-23:20 on the scenario's days."""
        if len(self.outage_days) == 0:
            return np.zeros(len(t), dtype=bool)
        d = (t // 86400).astype(np.int64)
        s = t - d * 86400
        return (
            (dom == self.outage_dom) & np.isin(d, self.outage_days) & (s >= OUTAGE_WINDOW[0]) & (s < OUTAGE_WINDOW[1])
        )

    def outage_entity(self) -> int:
        return self.entity("deferred_surge", OUTAGE_DOMAIN, {"domain": OUTAGE_DOMAIN})

    # -- writing ---------------------------------------------------------------------------------------
    def tally(self, sec: np.ndarray, k: np.ndarray, rep: np.ndarray) -> None:
        """Truth counts of written lines: one per line, plus the copies a repeat line stands for."""
        sel = k > 0
        if not sel.any():
            return
        nb = self.counts.shape[1]
        idx = k[sel].astype(np.int64) * nb + sec[sel] // 600
        add = np.bincount(idx, weights=1 + rep[sel].astype(np.int64), minlength=8 * nb)
        self.counts += add.astype(np.int64).reshape(8, nb)

    def _flush(self, cutoff: float) -> None:
        self.stack.flush_queries()
        for host, parts, writer in (("ns", self.ns, self.w_ns), ("mx", self.mx, self.w_mx)):
            df = pl.concat([self.carry[host], *parts]).sort("t", maintain_order=True)
            parts.clear()
            n = int(np.searchsorted(df["t"].to_numpy(), cutoff, side="left"))
            writer.write(df.slice(0, n))
            self.carry[host] = df.slice(n)

    def _rotation_times(self, hour: int, minute: int, jitter: float) -> list[float]:
        out = []
        for d in range(self.n_days):
            t = d * 86400 + hour * 3600 + minute * 60 + 1 + jitter * self.rng.random()
            if self.begin_t < t < self.end_t:
                out.append(float(t))
        return out

    def _bins_per_chunk(self) -> int:
        per_day = self.scale * (60_000 + 100_000 * self.other_dns)
        return int(np.clip(LINES_PER_CHUNK * BINS_PER_DAY / max(per_day, 1), 1, 36))

    def run(self) -> Path:
        logs = self.out_dir / "logs"
        for sub in ("1dns", "1mx"):
            if (logs / sub).exists():
                shutil.rmtree(logs / sub)
        if self.style.bsd:
            self.w_ns = HostWriter(self, logs / "1dns", "ns", "logrotate", self._rotation_times(4, 2, 8))
            self.w_mx = HostWriter(self, logs / "1mx", "mx", "newsyslog", self._rotation_times(3, 10, 3))
        else:
            self.w_ns = HostWriter(self, logs / "1dns", "ns", "dateext", self._rotation_times(6, 25, 20), "syslog")
            self.w_mx = HostWriter(self, logs / "1mx", "mx", "dateext", self._rotation_times(6, 25, 20), "mail.log")
        bpc = self._bins_per_chunk()
        for d in range(self.n_days):
            day0 = d * 86400
            if day0 + 86400 <= self.begin_t or day0 >= self.end_t:
                continue
            weekday = (self.origin + timedelta(days=d)).weekday()
            today = self.by_day.get(d, frozenset())
            self.traffic.start_day(d, weekday, today)
            self.stack.start_day(d, today)
            first = max(0, int(self.begin_t - day0) // 600)
            last = min(BINS_PER_DAY, -(-int(self.end_t - day0) // 600))
            for b0 in range(first, last, bpc):
                b1 = min(last, b0 + bpc)
                self.stack.chunk(d, b0, b1)
                if "dns_anomaly" in today:
                    self._dns_anomaly(d, b0, b1)
                self._flush(min(day0 + b1 * 600 - MARGIN, self.end_t))
        self._flush(self.end_t)
        self.w_ns.close()
        self.w_mx.close()
        self._incidents()
        self.counts = self.counts.tolist()
        return write_outputs(self, self.w_ns.files + self.w_mx.files)

    def _dns_anomaly(self, d: int, b0: int, b1: int) -> None:
        """01:10-02:00: the mail server looks up names no mail explains (1.2 a second per unit of scale)."""
        lo = max(d * 86400 + DNS_ANOMALY_WINDOW[0], d * 86400 + b0 * 600)
        hi = min(d * 86400 + DNS_ANOMALY_WINDOW[1], d * 86400 + b1 * 600)
        if hi <= lo:
            return
        n = self.rng.poisson(1.2 * self.scale * (hi - lo))
        t = np.sort(lo + (hi - lo) * self.rng.random(n))
        o = self.rng.integers(0, 256, (4, n))
        q = (
            cat(
                [pl.Series(1 + o[0] % 254).cast(S), *(pl.Series(x).cast(S) for x in o[1:]), pl.Series([""] * n)],
                separator=".",
            )
            + "rbl.spamlist.example"
        )
        self.stack.query(t, q)
        self.counters(self.entity("dns_anomaly", MX_IP, {"client_ip": MX_IP}), t, queries=1)

    def _incidents(self) -> None:
        """The tracked lines of each incident, per local day of the requested days: span and counters."""
        if not self.tracks:
            return
        tr = pl.concat(self.tracks).with_columns(
            d=(pl.col("t") // 86400).cast(pl.Int64), s=pl.col("t").floor().cast(pl.Int64)
        )
        tr = tr.filter(pl.col("d").is_in(list(self.requested)))
        names = ("messages", "recipients", "user_unknown", "deferred", "queries")
        agg = (
            tr.group_by("d", "e")
            .agg(
                pl.col("s").min().alias("_start"),
                pl.col("s").max().alias("_end"),
                *[pl.col(c).sum().alias(c) for c in names],
                *[pl.col(c).is_not_null().any().alias(f"has_{c}") for c in names],
            )
            .sort("d", "e")
        )
        for row in agg.iter_rows(named=True):
            kind, ident, fields = self.entities[row["e"]]
            item = {"kind": kind, **fields, "_start": row["_start"], "_end": row["_end"]}
            for c in names:
                if row[f"has_{c}"]:
                    item[c] = row[c]
            self.incidents.items[(row["d"], kind, ident)] = item
