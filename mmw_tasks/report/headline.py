"""The verdict first: the one-line headline of a day's report, and the order of its incidents.

Everything here is a function of report.json's dict alone (or of one of its incidents), so the
page, report.md, the mail, the notification and `mmw run` print the same words:

    headline(json.loads(path.read_text()))   # the lines; [] on a quiet day
    verdict(report)                          # the same, or [QUIET]: never empty

`headline` has one line per incident that needs attention (model.ATTENTION), most severe first:

    WORM SUSPECT 10.1.3.102 (pc102.example.ac.jp) 14:30-17:29: 1,199 "User unknown",
        1,080 forged senders, first flagged 14:40
    DEFERRED SURGE bigisp.ne.jp 16:30-23:10: 2,085 of 3,266 deliveries deferred (usually about
        22 a day), first flagged 13:50
    DNS ANOMALY 10.1.3.203 (pc203.example.ac.jp) 10:10-12:40: 7,075 DNS queries, up to 511 in an
        interval (usually about 1), 3 messages through our mail server, first flagged 10:20

(each on one line). Times are the site's local time, as the incident's own ISO stamps carry it;
an end on a later day shows its date. `benign_line` is the one line a benign incident gets.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mmw_tasks.report.model import ATTENTION

QUIET = "no incident needs attention"
LABELS = {"mmw_suspect": "WORM SUSPECT", "deferred_surge": "DEFERRED SURGE", "dns_anomaly": "DNS ANOMALY"}
BENIGN_LABELS = {"mailing_list": "mailing list", "bulk_sender": "bulk mailing"}
# the order of the kinds in a report: what someone must look at first, benign traffic last
KIND_ORDER = (*ATTENTION, "bulk_sender", "mailing_list")


def _n(v: Any) -> str:
    """1195 -> '1,195'; 3.0 -> '3'; 2.5 -> '2.5'."""
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
    return f"{int(v):,}"


def _hm(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def span(i: Mapping[str, Any]) -> str:
    """'14:30-17:29' in the incident's own offset; '22:10-02-17 01:05' when it ends on a later day."""
    start, end = i.get("start"), i.get("end")
    if not start:
        return "all day"
    a = _hm(start)
    b = _hm(end) if end else a
    tail = f"{b:%H:%M}" if b.date() == a.date() else f"{b:%m-%d %H:%M}"
    return f"{a:%H:%M}-{tail}"


def host(i: Mapping[str, Any]) -> str:
    """'10.1.3.102 (pc102.example.ac.jp)', or the sender when no host explains it."""
    ip, name = i.get("client_ip"), i.get("reverse_name")
    if ip:
        return f"{ip} ({name})" if name and name != ip else str(ip)
    return str(i.get("sender") or "no single host")


def subject(i: Mapping[str, Any]) -> str:
    """Whom an incident is about: the domain that defers our mail, or the host (with its reverse
    name) and the sender it used."""
    if i.get("kind") == "deferred_surge" and i.get("domain"):
        return str(i["domain"])
    sender = i.get("sender")
    if i.get("client_ip"):
        return host(i) + (f", sender {sender}" if sender else "")
    return str(sender or "no single sender")


def magnitude(i: Mapping[str, Any]) -> float:
    """How big an incident is, in its own kind's unit: messages, deferrals, DNS queries."""
    ev = i.get("evidence") or {}
    for key in ("messages", "deferred", "queries", "excess_queries"):
        v = ev.get(key)
        if isinstance(v, int | float):
            return float(v)
    return 0.0


def severity_key(i: Mapping[str, Any]) -> tuple[int, float, float, str]:
    """Sort key, most severe first: attention kinds before benign ones (in KIND_ORDER), then the
    higher score, then the bigger incident, then the earlier."""
    kind = i.get("kind", "")
    rank = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
    return (rank, -float(i.get("score") or 0.0), -magnitude(i), i.get("start") or "")


def ordered(incidents: list[Any]) -> list[Any]:
    """The incidents most severe first (a stable sort: ties keep their order)."""
    return sorted(incidents, key=severity_key)


def _signals(ev: Mapping[str, Any]) -> set[str]:
    return {s.get("feature", "") for s in ev.get("signals") or [] if isinstance(s, Mapping)}


def _flagged(ev: Mapping[str, Any]) -> list[str]:
    ff = ev.get("first_flagged")
    return [f"first flagged {_hm(ff):%H:%M}"] if ff else []


def _suspect_facts(ev: Mapping[str, Any]) -> list[str]:
    """The worm's telltale counts over its span, the strongest first; its messages when none."""
    fired = _signals(ev)
    facts = []
    if ev.get("user_unknown"):
        facts.append(f'{_n(ev["user_unknown"])} "User unknown"')
    if "forged_senders" in fired and ev.get("distinct_senders"):
        facts.append(f"{_n(ev['distinct_senders'])} forged senders")
    if "own_mx_lookups" in fired and ev.get("mx_lookups"):
        facts.append(f"{_n(ev['mx_lookups'])} MX look-ups of its own")
    if len(facts) < 2 and "novel_recipients" in fired and ev.get("novel_recipients"):
        facts.append(f"{_n(ev['novel_recipients'])} recipients never mailed before")
    if len(facts) < 2 and ev.get("messages"):
        facts.insert(0, f"{_n(ev['messages'])} messages")
    return facts


def _surge_facts(ev: Mapping[str, Any]) -> list[str]:
    facts = []
    if ev.get("deferred") is not None and ev.get("deliveries"):
        facts.append(f"{_n(ev['deferred'])} of {_n(ev['deliveries'])} deliveries deferred")
    elif ev.get("deferred") is not None:
        facts.append(f"{_n(ev['deferred'])} deliveries deferred")
    if ev.get("usual_daily_deferrals") is not None:
        facts[-1:] = [f"{facts[-1]} (usually about {_n(ev['usual_daily_deferrals'])} a day)"] if facts else []
    return facts


def _dns_facts(ev: Mapping[str, Any]) -> list[str]:
    if ev.get("source") == "mail_server":
        excess, predicted = ev.get("excess_queries"), ev.get("predicted_queries")
        if excess is not None and predicted is not None:
            return [f"{_n(excess + predicted)} DNS queries where its mail explains about {_n(predicted)}"]
        return [f"{_n(excess)} DNS queries more than its mail explains"] if excess is not None else []
    facts = []
    if ev.get("queries") is not None:
        facts.append(f"{_n(ev['queries'])} DNS queries")
    if ev.get("peak_queries_per_interval") is not None:
        usual = ev.get("usual_queries_per_interval")
        facts.append(
            f"up to {_n(ev['peak_queries_per_interval'])} in an interval"
            + (f" (usually about {_n(usual)})" if usual is not None else "")
        )
    if ev.get("messages_through_our_server") is not None:
        facts.append(f"{_n(ev['messages_through_our_server'])} messages through our mail server")
    return facts


def line(i: Mapping[str, Any]) -> str:
    """The headline of one incident that needs attention."""
    kind, ev = i.get("kind", ""), i.get("evidence") or {}
    if kind == "mmw_suspect":
        who, facts = host(i), _suspect_facts(ev)
    elif kind == "deferred_surge":
        who, facts = str(i.get("domain") or "a destination"), _surge_facts(ev)
    elif kind == "dns_anomaly":
        who = ("mail server " if ev.get("source") == "mail_server" else "") + host(i)
        facts = _dns_facts(ev)
    else:
        who, facts = host(i), []
    label = LABELS.get(kind, kind.replace("_", " ").upper())
    tail = ", ".join(facts + _flagged(ev))
    return f"{label} {who} {span(i)}" + (f": {tail}" if tail else "")


def headline(report: Mapping[str, Any]) -> list[str]:
    """One line per incident that needs attention, most severe first; [] on a quiet day."""
    return [line(i) for i in ordered([i for i in report.get("incidents") or [] if i.get("kind") in ATTENTION])]


def verdict(report: Mapping[str, Any]) -> list[str]:
    """The headline, or [QUIET] on a quiet day: what to print where a reader expects a verdict."""
    return headline(report) or [QUIET]


def benign_line(i: Mapping[str, Any]) -> str:
    """'mailing list lab-ml-owner@example.ac.jp via localhost 10:32-15:29: 2 messages to 174
    recipients'. A benign incident in one line."""
    ev = i.get("evidence") or {}
    label = BENIGN_LABELS.get(i.get("kind", ""), str(i.get("kind", "")).replace("_", " "))
    sender, ip = i.get("sender"), i.get("client_ip")
    who = " ".join(
        x
        for x in (
            str(sender) if sender else "",
            (("via " if i.get("kind") == "mailing_list" else "from ") + host(i)) if ip else "",
        )
        if x
    )
    facts = []
    if ev.get("messages") is not None:
        facts.append(f"{_n(ev['messages'])} message{'s' if ev['messages'] != 1 else ''}")
    rcpt = ev.get("recipients_attempted", ev.get("recipients"))
    if rcpt is not None:
        facts[-1:] = [f"{facts[-1]} to {_n(rcpt)} recipients"] if facts else [f"{_n(rcpt)} recipients"]
    if ev.get("user_unknown"):
        facts.append(f'{_n(ev["user_unknown"])} "User unknown"')
    return f"{label} {who or 'no single sender'} {span(i)}" + (f": {', '.join(facts)}" if facts else "")
