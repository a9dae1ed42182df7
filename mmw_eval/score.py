"""Matching mmw's incidents to the simulator's truth, and the benchmark's table.

An incident is a (day, kind, entity): the client host for mmw_suspect and dns_anomaly (the mail
server for its own unexplained lookups), the domain for deferred_surge, the sender for
mailing_list and bulk_sender (a list's posts of one day are one item). A reported incident
matches a planted one of the same day, kind and entity whose time span it overlaps (30 minutes
of slack). Precision counts reported incidents that match; recall, planted ones that were
found. "Infected hosts" pools mmw_suspect and the client dns_anomaly (a worm with its own SMTP
engine): every infected machine, found under either kind. Time to flag: from the planted
incident's first line to the end of the first interval mmw flagged.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from statistics import median

from mmw_eval.suite import BENIGN_DAYS

KINDS = ("mmw_suspect", "dns_anomaly", "deferred_surge", "bulk_sender", "mailing_list")
SLACK = timedelta(minutes=30)


def entity(kind: str, inc: dict) -> str | None:
    if kind == "deferred_surge":
        return inc.get("domain")
    if kind in ("mailing_list", "bulk_sender"):
        return inc.get("sender") or inc.get("client_ip")
    return inc.get("client_ip")


def _t(x) -> datetime:
    return x if isinstance(x, datetime) else datetime.fromisoformat(str(x))


def truth_items(day: dict) -> list[dict]:
    """The day's planted incidents, one per (kind, entity), spans merged."""
    items: dict[tuple, dict] = {}
    for t in day["truth"]:
        key = (t["kind"], entity(t["kind"], t))
        it = items.setdefault(
            key,
            {
                "kind": t["kind"],
                "entity": key[1],
                "start": _t(t["start"]),
                "end": _t(t["end"]),
                "variant": t.get("variant"),
            },
        )
        it["start"], it["end"] = min(it["start"], _t(t["start"])), max(it["end"], _t(t["end"]))
    return list(items.values())


def match_day(day: dict) -> tuple[list[dict], list[dict]]:
    """(planted items with `found` and `delay`, reported items with `matched`)."""
    planted = truth_items(day)
    reported = [{**f, "entity": entity(f["kind"], f), "matched": False} for f in day["found"]]
    for p in planted:
        p["found"], p["delay"] = False, None
        for r in reported:
            if r["kind"] != p["kind"] or r["entity"] != p["entity"]:
                continue
            if _t(r["start"]) > p["end"] + SLACK or _t(r["end"]) < p["start"] - SLACK:
                continue
            p["found"] = r["matched"] = True
            if r.get("first_flagged"):
                p["delay"] = (_t(r["first_flagged"]) - p["start"]).total_seconds() / 60
    return planted, reported


def is_infected(item: dict) -> bool:
    return item["kind"] == "mmw_suspect" or (
        item["kind"] == "dns_anomaly" and (item.get("variant") == "smtp_engine" or item.get("source") == "client")
    )


def table(days: list[dict]) -> tuple[list[dict], dict]:
    rows = {
        k: {"kind": k, "planted": 0, "found": 0, "reported": 0, "correct": 0, "clean_alarms": 0, "delays": []}
        for k in (*KINDS, "infected hosts")
    }
    clean_days = sum(1 for d in days if d["scenario"] in ("clean", "holiday"))
    misses, false_alarms = [], []
    suspects_on_benign_days = 0
    for d in days:
        planted, reported = match_day(d)
        for p in planted:
            for key in (p["kind"], "infected hosts") if is_infected(p) else (p["kind"],):
                row = rows[key]
                row["planted"] += 1
                row["found"] += p["found"]
                if p["delay"] is not None and p["found"]:
                    row["delays"].append(p["delay"])
            if not p["found"]:
                misses.append((d["site"], d["day"], d["scenario"], p["kind"], p["entity"]))
        for r in reported:
            for key in (r["kind"], "infected hosts") if is_infected(r) else (r["kind"],):
                row = rows[key]
                row["reported"] += 1
                row["correct"] += r["matched"]
                if not r["matched"] and d["scenario"] in ("clean", "holiday"):
                    row["clean_alarms"] += 1
            if not r["matched"]:
                false_alarms.append((d["site"], d["day"], d["scenario"], r["kind"], r["entity"]))
            if r["kind"] == "mmw_suspect" and d["scenario"] in BENIGN_DAYS:
                suspects_on_benign_days += 1
    out = []
    for row in rows.values():
        dl = row.pop("delays")
        out.append(
            {
                **row,
                "precision": row["correct"] / row["reported"] if row["reported"] else None,
                "recall": row["found"] / row["planted"] if row["planted"] else None,
                "alarms_per_clean_day": row["clean_alarms"] / clean_days if clean_days else None,
                "median_minutes_to_flag": median(dl) if dl else None,
                "max_minutes_to_flag": max(dl) if dl else None,
            }
        )
    summary = {
        "site_days": len(days),
        "clean_days": clean_days,
        "misses": misses,
        "false_alarms": false_alarms,
        "suspects_on_benign_days": suspects_on_benign_days,
    }
    return out, summary


def targets(rows: list[dict], summary: dict) -> list[tuple[str, bool]]:
    by = {r["kind"]: r for r in rows}
    inf, sus, dfs = by["infected hosts"], by["mmw_suspect"], by["deferred_surge"]
    return [
        ("every infected host found (recall 1.0)", inf["recall"] == 1.0),
        ("mmw_suspect precision >= 0.98", (sus["precision"] or 0) >= 0.98),
        ("no mmw_suspect on any clean, holiday, list or bulk day", summary["suspects_on_benign_days"] == 0),
        ("every deferral surge found with the right domain", dfs["recall"] == 1.0),
        (
            "first flag within 30 minutes of onset (every infected host)",
            inf["max_minutes_to_flag"] is not None and inf["max_minutes_to_flag"] <= 30,
        ),
    ]


def _f(v, digits=2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def render(rows: list[dict], summary: dict) -> str:
    head = (
        f"{'incident kind':16s} {'planted':>7s} {'found':>5s} {'reported':>8s} {'precision':>9s} "
        f"{'recall':>6s} {'false alarms/clean day':>22s} {'median min to flag':>18s} {'max':>5s}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['kind']:16s} {r['planted']:7d} {r['found']:5d} {r['reported']:8d} "
            f"{_f(r['precision'], 3):>9s} {_f(r['recall'], 3):>6s} {_f(r['alarms_per_clean_day']):>22s} "
            f"{_f(r['median_minutes_to_flag'], 1):>18s} {_f(r['max_minutes_to_flag'], 0):>5s}"
        )
    return "\n".join(lines)
