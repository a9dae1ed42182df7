"""Verdicts on an entity that stands out: `mmw_suspect`, `bulk_sender` or `mailing_list`, with why.

Inputs: what the entity did over its span (`Candidate`, from sql/detect/entity_evidence.sql)
and its best-scoring window (a row of signals.score's frame: the signals that fired and the
score). Order of the rules: an allow-list entry decides; a list's traffic (a list owner's
address, a few senders re-injecting through localhost or a relay, or a few messages to many
recipients each) is `mailing_list`; otherwise a local host whose window is a suspect one
(signals.score: the score reached `suspect_score` with evidence a bulk mailing never shows) is
`mmw_suspect`, and anything else is `bulk_sender`. Every piece of evidence says in words
what it means, for an administrator who never read the papers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

from mmw_tasks.config import Site, Thresholds
from mmw_tasks.detect import signals
from mmw_tasks.detect.signals import Evidence

LIST_MARKERS = ("-owner@", "owner-", "-request@", "-bounces@", "majordom", "mailman", "-admin@", "-errors@")


class Candidate(TypedDict):
    """What one entity did over its span (sql/detect/entity_evidence.sql), and who it is."""

    client_ip: str | None  # None: mail that named no client
    sender: str | None  # set for entities judged per sender (localhost, servers, relays)
    client_kind: str  # localhost, server, local, unknown (remote clients are not judged)
    messages: int
    refused_sessions: int  # transactions refused before any message (nrcpts=0, NOQUEUE)
    distinct_senders: int
    sample_senders: list[str]
    recipients_attempted: int
    distinct_recipients: int
    user_unknown: int
    bursts: int  # runs of busy intervals (at least 1)
    allow: str | None  # "mailing_list" or "bulk_sender" from the site's allow-lists


@dataclass
class Verdict:
    kind: str
    score: float
    why: str
    evidence: list[Evidence] = field(default_factory=list)


def is_list_sender(addr: str | None) -> bool:
    a = (addr or "").lower()
    return any(m in a for m in LIST_MARKERS)


def allowed(site: Site, ip: str | None, senders: list[str]) -> str | None:
    """The allow-list kind of an entity: its host in bulk_hosts, any of its senders in
    mailing_lists, or all of them in bulk_senders."""
    if ip and ip in site.bulk_hosts:
        return "bulk_sender"
    low = [s.lower() for s in senders if s]
    if any(s in site.mailing_lists for s in low):
        return "mailing_list"
    if low and all(s in site.bulk_senders for s in low):
        return "bulk_sender"
    return None


def _list_evidence(c: Candidate, th: Thresholds) -> list[Evidence]:
    ev: list[Evidence] = []
    senders = [s for s in c["sample_senders"] if s]
    sessions = c["messages"] + c["refused_sessions"]
    fanout = c["recipients_attempted"] / max(sessions, 1)
    if is_list_sender(c["sender"]) or any(is_list_sender(s) for s in senders):
        who = c["sender"] or senders[0]
        ev.append(
            {
                "feature": "list_sender",
                "value": who,
                "points": 0.0,
                "says": "the sender is a list's owner/bounce address",
            }
        )
    if c["client_kind"] in ("localhost", "server") and c["distinct_senders"] <= 3:
        ev.append(
            {
                "feature": "client_kind",
                "value": c["client_kind"],
                "points": 0.0,
                "says": "mail re-injected by the server itself (localhost or a relay), as list software does",
            }
        )
    if sessions <= 3 * max(c["bursts"], 1) and fanout >= th.list_fanout:
        ev.append(
            {
                "feature": "fanout",
                "value": round(fanout, 1),
                "points": 0.0,
                "says": f"{sessions} message(s) to {c['recipients_attempted']} recipients: "
                "one message fanned out, as a list or alias does",
            }
        )
    return ev


def classify(c: Candidate, window: dict[str, Any], th: Thresholds) -> Verdict:
    """The verdict on one candidate, `window` its best-scoring window (signals.score)."""
    if c["allow"]:
        words = c["allow"].replace("_", " ")
        ev: list[Evidence] = [
            {
                "feature": "allow_list",
                "value": c["allow"],
                "points": -1.0,
                "says": f"listed in the site's allow-list as {words}",
            }
        ]
        return Verdict(c["allow"], 0.0, f"on the site's allow-list ({words})", ev)
    listed = _list_evidence(c, th)
    if listed:
        return Verdict("mailing_list", 0.05, "; ".join(e["says"] for e in listed), listed)
    ev = signals.evidence(window, th)
    score = float(window.get("score") or 0.0)
    reasons = [e["says"] for e in ev if e["points"] > 0]
    if c["client_kind"] == "local" and window.get("suspect"):
        return Verdict("mmw_suspect", score, "; ".join(reasons), ev)
    unknown, attempted = c["user_unknown"], c["recipients_attempted"]
    if unknown and not any(e["feature"].endswith("user_unknown") for e in ev):
        ev.append(
            {
                "feature": "user_unknown",
                "value": unknown,
                "points": 0.0,
                "says": f"only {unknown} of {attempted} recipients refused (stale addresses)",
            }
        )
    if c["client_kind"] == "local" and c["distinct_senders"] >= th.relay_min_senders:
        ev.append(
            {
                "feature": "many_senders",
                "value": c["distinct_senders"],
                "points": 0.0,
                "says": f"it sent for {c['distinct_senders']} different senders: a relay? Name it in [allow] "
                f"relay_hosts, or mmw learns it after {th.relay_min_days} such days",
            }
        )
    if c["client_kind"] == "local" and score >= th.suspect_score:
        ev.append(
            {
                "feature": "no_telling_sign",
                "value": None,
                "points": 0.0,
                "says": "but no recipient was refused, no sender forged and no mail exchanger looked up: "
                "what a bulk mailing looks like",
            }
        )
    if c["client_kind"] != "local" and window.get("suspect"):
        ev.append(
            {
                "feature": "client_kind",
                "value": c["client_kind"],
                "points": 0.0,
                "says": "looks like a worm, but the client is not one machine of ours, so there is nothing "
                "to unplug here",
            }
        )
    why = (
        "a burst from one sender to distinct addresses, few refused"
        if not reasons
        else "some signs (" + "; ".join(reasons) + ") but not enough for a worm"
    )
    benign = [e["says"] for e in ev if e["points"] <= 0]
    if benign:
        why += "; " + "; ".join(benign)
    return Verdict("bulk_sender", score, why, ev)
