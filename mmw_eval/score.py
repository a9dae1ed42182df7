"""Matching mmw's incidents to the simulator's truth, and the benchmark's table.

An incident is a (day, kind, entity): the client host for mmw_suspect and dns_anomaly (the mail
server for its own unexplained lookups), the domain for deferred_surge, the sender for
mailing_list and bulk_sender (a list's posts of one day are one item). A reported incident
matches a planted one of the same day, kind and entity whose time span it overlaps (30 minutes
of slack). Precision counts reported incidents that match; recall, planted ones that were
found. "Infected hosts" pools mmw_suspect and the client dns_anomaly (a worm with its own SMTP
engine): every infected machine, found under either kind. Time to flag: from the planted
incident's first line to the end of the first interval mmw flagged; the kinds' rows time the
worms at 120 s a message or faster that forge or guess (the others have their own rows).

Worms by rate: every planted mmw_suspect has a rate class, from its nominal seconds per message
(`gap_s`, the sleep-loop worms) or else its span over its messages (klez about 4 s, quiet 15-30
s), and a sender class: forged (the truth names no sender), its user's own (with made-up
recipients), or the address book worm (its user's own sender and at most 5 % made-up recipients:
nothing a bulk mailing lacks but its pace, its attachment and recipients never mailed before,
which takes history and hours to see; its targets are its own). Benign hosts: the
truth's `benign_host` labels (the unlisted relay, the remote MTAs at 3x) are not incidents to
find; any mmw_suspect on one of them is a false alarm, counted on its own.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from statistics import median

from mmw_eval.suite import BENIGN_DAYS, CLEAN_DAYS

KINDS = ("mmw_suspect", "dns_anomaly", "deferred_surge", "bulk_sender", "mailing_list")
SLACK = timedelta(minutes=30)
# rate classes of worms (seconds per message): (label, lowest, highest, recall target or None)
RATE_CLASSES = (
    ("<= 120 s", 0.0, 120.0, 1.0),
    ("121-179 s", 120.0, 180.0, None),
    ("180-240 s", 180.0, 240.0, 0.9),
    ("> 240 s", 240.0, math.inf, None),
)
FAST = RATE_CLASSES[0][0]
FLAG_MINUTES, FLAG_MEDIAN_MINUTES = 30, 15  # every fast worm flagged within; the median within
SENDERS = ("forged", "own sender", "address book")
BOOK_GUESSES = 0.05  # an own-sender worm guessing at most this share is the address book worm
BENIGN_HOST = "benign_host"


def benign_day(scenario: str) -> bool:
    """Nothing malicious planted: every part of the day's scenario ("a+b") is benign."""
    return all(part in BENIGN_DAYS for part in scenario.split("+"))


def clean_day(scenario: str) -> bool:
    return scenario in CLEAN_DAYS


def rate_class(gap: float | None) -> str | None:
    if gap is None:
        return None
    for label, lo, hi, _ in RATE_CLASSES:
        if lo < gap <= hi:
            return label
    return None


def entity(kind: str, inc: dict) -> str | None:
    if kind == "deferred_surge":
        return inc.get("domain")
    if kind in ("mailing_list", "bulk_sender"):
        return inc.get("sender") or inc.get("client_ip")
    return inc.get("client_ip")


def _t(x) -> datetime:
    return x if isinstance(x, datetime) else datetime.fromisoformat(str(x))


def _gap(t: dict) -> float | None:
    """Seconds per message of a planted worm: nominal, else its span over its messages."""
    if t["kind"] != "mmw_suspect":
        return None
    if t.get("gap_s"):
        return float(t["gap_s"])
    n = t.get("messages") or 0
    return (_t(t["end"]) - _t(t["start"])).total_seconds() / (n - 1) if n > 1 else None


def truth_items(day: dict) -> list[dict]:
    """The day's planted incidents, one per (kind, entity), spans merged (labels left out)."""
    items: dict[tuple, dict] = {}
    for t in day["truth"]:
        if t["kind"] not in KINDS:
            continue
        key = (t["kind"], entity(t["kind"], t))
        it = items.setdefault(
            key,
            {
                "kind": t["kind"],
                "entity": key[1],
                "start": _t(t["start"]),
                "end": _t(t["end"]),
                "variant": t.get("variant"),
                "gap": _gap(t),
                "forged": t.get("forged", t.get("sender") is None),
                "guess": t.get("guess_share"),
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


def sender_class(p: dict) -> str:
    if p["forged"]:
        return "forged"
    return "address book" if p.get("guess") is not None and p["guess"] <= BOOK_GUESSES else "own sender"


def benign_hosts(day: dict) -> dict[str, str]:
    """client IP -> variant of the day's benign-host labels."""
    return {t["client_ip"]: t.get("variant") or "" for t in day["truth"] if t["kind"] == BENIGN_HOST}


def is_infected(item: dict) -> bool:
    return item["kind"] == "mmw_suspect" or (
        item["kind"] == "dns_anomaly" and (item.get("variant") == "smtp_engine" or item.get("source") == "client")
    )


def table(days: list[dict]) -> tuple[list[dict], dict]:
    rows = {
        k: {"kind": k, "planted": 0, "found": 0, "reported": 0, "correct": 0, "clean_alarms": 0, "delays": []}
        for k in (*KINDS, "infected hosts")
    }
    clean_days = sum(1 for d in days if clean_day(d["scenario"]))
    benign_days = sum(1 for d in days if benign_day(d["scenario"]))
    misses, false_alarms, infected_missed = [], [], []
    suspects_on_benign_days = 0
    classes: dict[tuple, dict] = {}
    hosts: dict[str, dict] = {}
    for d in days:
        planted, reported = match_day(d)
        for ip, variant in benign_hosts(d).items():
            h = hosts.setdefault(variant, {"host_days": 0, "mmw_suspect": 0, "other": 0})
            h["host_days"] += 1
            for r in reported:
                if r.get("client_ip") == ip:
                    h["mmw_suspect" if r["kind"] == "mmw_suspect" else "other"] += 1
        for p in planted:
            label = rate_class(p["gap"])
            if label is not None:
                c = classes.setdefault(
                    (label, sender_class(p)), {"planted": 0, "found": 0, "delays": [], "history": 0, "found_history": 0}
                )
                c["planted"] += 1
                c["found"] += p["found"]
                if d.get("baseline") == "history":
                    c["history"] += 1
                    c["found_history"] += p["found"]
                c["delays"].append(p["delay"] if p["found"] and p["delay"] is not None else math.inf)
            for key in (p["kind"], "infected hosts") if is_infected(p) else (p["kind"],):
                row = rows[key]
                row["planted"] += 1
                row["found"] += p["found"]
                timed = label is None or (label == FAST and sender_class(p) != "address book")
                if p["delay"] is not None and p["found"] and timed:
                    row["delays"].append(p["delay"])  # slower worms' times are in their own rows
            if not p["found"]:
                misses.append((d["site"], d["day"], d["scenario"], p["kind"], p["entity"]))
                book_without_history = (
                    label is not None and sender_class(p) == "address book" and d.get("baseline") != "history"
                )
                if is_infected(p) and not book_without_history:
                    infected_missed.append((d["site"], d["day"], p["entity"]))
        for r in reported:
            for key in (r["kind"], "infected hosts") if is_infected(r) else (r["kind"],):
                row = rows[key]
                row["reported"] += 1
                row["correct"] += r["matched"]
                if not r["matched"] and clean_day(d["scenario"]):
                    row["clean_alarms"] += 1
            if not r["matched"]:
                false_alarms.append((d["site"], d["day"], d["scenario"], r["kind"], r["entity"]))
            if r["kind"] == "mmw_suspect" and benign_day(d["scenario"]):
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
    worm_classes = []
    for label, *_ in RATE_CLASSES:
        for sender in SENDERS:
            c = classes.get((label, sender))
            if c is None:
                continue
            dl = sorted(c["delays"])
            found = [x for x in dl if x != math.inf]
            worm_classes.append(
                {
                    "rate": label,
                    "sender": sender,
                    "planted": c["planted"],
                    "found": c["found"],
                    "recall": c["found"] / c["planted"],
                    "history": c["history"],
                    "found_history": c["found_history"],
                    "within_30_min": sum(1 for x in dl if x <= FLAG_MINUTES),
                    "median_minutes_to_flag": median(found) if found else None,
                    "max_minutes_to_flag": max(found) if found else None,
                    "delays": [None if x == math.inf else x for x in dl],  # missed or never flagged: None
                }
            )
    summary = {
        "site_days": len(days),
        "clean_days": clean_days,
        "benign_days": benign_days,
        "misses": misses,
        "infected_missed": infected_missed,
        "false_alarms": false_alarms,
        "suspects_on_benign_days": suspects_on_benign_days,
        "worm_classes": worm_classes,
        "benign_hosts": hosts,
    }
    return out, summary


def targets(rows: list[dict], summary: dict) -> list[tuple[str, bool]]:
    by = {r["kind"]: r for r in rows}
    inf, sus, dfs = by["infected hosts"], by["mmw_suspect"], by["deferred_surge"]
    out = [
        (
            "every infected host found (recall 1.0; address book worms on days judged against history)"
            f" ({len(summary['infected_missed'])} missed)",
            not summary["infected_missed"],
        ),
        ("mmw_suspect precision >= 0.98", (sus["precision"] or 0) >= 0.98),
        (
            f"no mmw_suspect on any benign day ({', '.join(sorted(BENIGN_DAYS))})",
            summary["suspects_on_benign_days"] == 0,
        ),
        ("every deferral surge found with the right domain", dfs["recall"] == 1.0),
        (
            "first flag within 30 minutes of onset (every infected host)",
            inf["max_minutes_to_flag"] is not None and inf["max_minutes_to_flag"] <= 30,
        ),
    ]
    targets_of = {label: target for label, _, _, target in RATE_CLASSES}
    for c in summary["worm_classes"]:
        target = targets_of[c["rate"]]
        if c["sender"] == "address book":
            if c["history"]:
                out.append(
                    (
                        f"every address book worm at {c['rate']}/message found on days judged against history "
                        f"({c['found_history']}/{c['history']})",
                        c["found_history"] == c["history"],
                    )
                )
            continue
        if target is not None:
            what = "1.0" if target == 1.0 else f">= {target}"
            out.append(
                (
                    f"recall {what} for worms at {c['rate']}/message, {c['sender']} ({c['found']}/{c['planted']})",
                    c["recall"] >= target,
                )
            )
    hosts = summary["benign_hosts"]
    if hosts:
        n = sum(h["mmw_suspect"] for h in hosts.values())
        out.append((f"no mmw_suspect on the benign hosts ({', '.join(sorted(hosts))}; {n} reported)", n == 0))
    fast = [
        x for c in summary["worm_classes"] if c["rate"] == FAST and c["sender"] != "address book" for x in c["delays"]
    ]
    if fast:
        slow = sum(1 for x in fast if x is None or x > FLAG_MINUTES)
        out.append(
            (
                f"first flag within {FLAG_MINUTES} minutes of onset for every forging or guessing worm at "
                f"<= 120 s/message ({len(fast) - slow}/{len(fast)})",
                slow == 0,
            )
        )
        med = median(math.inf if x is None else x for x in fast)
        out.append(
            (
                f"median first flag within {FLAG_MEDIAN_MINUTES} minutes for those worms "
                f"({'never' if med == math.inf else f'{med:.1f} min'}; a miss counts as never)",
                med <= FLAG_MEDIAN_MINUTES,
            )
        )
    return out


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
    if summary.get("worm_classes"):
        head = (
            f"{'worms by rate':16s} {'sender':>12s} {'planted':>7s} {'found':>5s} {'recall':>6s} "
            f"{'flagged within 30 min':>21s} {'median min to flag':>18s} {'max':>5s}"
        )
        lines += ["", head, "-" * len(head)]
        for c in summary["worm_classes"]:
            lines.append(
                f"{c['rate'] + '/message':16s} {c['sender']:>12s} {c['planted']:7d} {c['found']:5d} "
                f"{_f(c['recall'], 3):>6s} {c['within_30_min']:21d} {_f(c['median_minutes_to_flag'], 1):>18s} "
                f"{_f(c['max_minutes_to_flag'], 0):>5s}"
            )
    if summary.get("benign_hosts"):
        head = f"{'benign hosts':16s} {'host-days':>10s} {'mmw_suspect':>11s} {'other incidents':>15s}"
        lines += ["", head, "-" * len(head)]
        for variant, h in sorted(summary["benign_hosts"].items()):
            lines.append(f"{variant:16s} {h['host_days']:10d} {h['mmw_suspect']:11d} {h['other']:15d}")
    return "\n".join(lines)
