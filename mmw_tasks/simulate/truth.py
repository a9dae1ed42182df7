"""truth.json (what was written, per local day and 10-minute bin, and the incidents) and site.toml.

Counting follows the parser's semantics: the local calendar day whatever file the line is in;
repeat copies (`last message repeated N times`) count N more at the repeat line's stamp.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from mmw_tasks.simulate.render import K_DEFERRED, K_DQ, K_FROM, K_POP, K_SENT, K_TO_OTHER, K_USER_UNKNOWN
from mmw_tasks.simulate.site import INTERVAL_MINUTES, LOCAL_DOMAIN, MX_IP, NAME, TIMEZONE

SITE_TOML = f'''[site]
name = "{NAME}"
timezone = "{TIMEZONE}"
lake = "data_lake"
local_domains = ["{LOCAL_DOMAIN}"]
interval = "{INTERVAL_MINUTES}m"

[[servers]]
name = "1dns"
role = "dns"
format = "{{dns_format}}"
source = "logs/1dns/{{dns_file}}*"
mail_server_ips = ["{MX_IP}"]

[[servers]]
name = "1mx"
role = "mail"
format = "{{mail_format}}"
source = "logs/1mx/{{mail_file}}*"
'''
# (dns format, its live file, mail format, its live file) per style
SOURCES = {"2002": ("iplog", "messages", "sendmail", "syslog"), "modern": ("bind", "syslog", "postfix", "mail.log")}
BINS_PER_DAY = 24 * 60 // INTERVAL_MINUTES


class Incidents:
    """What the scenario did, per local day: first and last line time, plus counters."""

    def __init__(self, requested: range):
        self.requested = requested
        self.items: dict[tuple, dict] = {}

    def track(self, kind: str, ident, t: float, fields: dict | None = None, **incr: int) -> None:
        d = int(t) // 86400
        if d not in self.requested:
            return
        key = (d, kind, ident)
        it = self.items.get(key)
        if it is None:
            it = self.items[key] = {"kind": kind, **(fields or {}), "_start": int(t), "_end": int(t)}
        else:
            it["_start"] = min(it["_start"], int(t))
            it["_end"] = max(it["_end"], int(t))
        for k, v in incr.items():
            it[k] = it.get(k, 0) + v

    def of_day(self, d: int, iso) -> list[dict]:
        out = []
        for (day, _, _), it in self.items.items():
            if day == d:
                rec = {k: v for k, v in it.items() if not k.startswith("_")}
                rec["start"], rec["end"] = iso(it["_start"]), iso(it["_end"])
                out.append(rec)
        out.sort(key=lambda r: (r["start"], r["kind"]))
        return out


def iso_maker(origin_date):
    z = ZoneInfo(TIMEZONE)
    base = datetime(origin_date.year, origin_date.month, origin_date.day, tzinfo=z)

    def iso(sec: int) -> str:
        return (base + timedelta(seconds=sec)).isoformat()

    return iso


def build_truth(sim, files: list[dict]) -> dict:
    iso = iso_maker(sim.origin)
    c = sim.counts
    days = {}
    for d in sim.requested:
        intervals = []
        for b in range(d * BINS_PER_DAY, (d + 1) * BINS_PER_DAY):
            sent, deferred, other = c[K_SENT][b], c[K_DEFERRED][b], c[K_TO_OTHER][b]
            intervals.append(
                {
                    "interval_start": iso(b * INTERVAL_MINUTES * 60),
                    "dq": c[K_DQ][b],
                    "n_from": c[K_FROM][b],
                    "n_to": sent + deferred + other,
                    "n_sent": sent,
                    "n_deferred": deferred,
                    "n_pop": c[K_POP][b],
                    "n_user_unknown": c[K_USER_UNKNOWN][b],
                }
            )
        totals = {
            k: sum(iv[k] for iv in intervals)
            for k in ("dq", "n_from", "n_to", "n_sent", "n_deferred", "n_pop", "n_user_unknown")
        }
        day = (sim.origin + timedelta(days=d)).isoformat()
        days[day] = {
            "scenario": sim.scen.day_names[d],
            "totals": totals,
            "intervals": intervals,
            "incidents": sim.incidents.of_day(d, iso),
        }
    return {
        "site": NAME,
        "timezone": TIMEZONE,
        "interval_minutes": INTERVAL_MINUTES,
        "scenario": sim.scenario,
        "seed": sim.seed,
        "style": sim.style.name,
        "scale": sim.scale,
        "days": days,
        "files": [
            {
                "file": f["file"],
                "lines": f["lines"],
                "first": iso(f["first"]) if f["first"] is not None else None,
                "last": iso(f["last"]),
            }
            for f in files
        ],
    }


def write_outputs(sim, files: list[dict]) -> Path:
    out: Path = sim.out_dir
    (out / "truth.json").write_text(json.dumps(build_truth(sim, files), indent=1) + "\n")
    toml = out / "site.toml"
    dns_format, dns_file, mail_format, mail_file = SOURCES[sim.style.name]
    toml.write_text(
        SITE_TOML.replace("{dns_format}", dns_format)
        .replace("{dns_file}", dns_file)
        .replace("{mail_format}", mail_format)
        .replace("{mail_file}", mail_file)
    )
    return toml
