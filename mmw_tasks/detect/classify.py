"""Verdicts on one burst of mail: `mmw_suspect`, `bulk_sender` or `mailing_list`, with the evidence.

The input is a plain dict of features of what one host (or one sender) did inside its bursts
(detect.py gathers them from the lake; tests build them by hand):

  client_ip, sender, client_kind ("localhost", "server", "local", "remote", "unknown"),
  messages, refused_without_message, distinct_senders, foreign_sender_messages,
  recipients_attempted, distinct_recipients, recipient_domains, user_unknown,
  near_constant_share, median_size, sample_senders, burst_minutes, burst_intervals,
  peak_messages (most messages in one interval), history_peak_messages (most in one interval on
  the trailing days; None without history), regular_days (earlier days with a burst at the same
  time), allow ("mailing_list", "bulk_sender" or None).

Order of the rules: an allow-list entry decides; a list's traffic (a list owner's address, or a
few senders re-injecting through localhost or a relay, or a few messages to many recipients
each) is `mailing_list`; otherwise a worm score adds the points below, and a local host at or
above `suspect_score` is `mmw_suspect`. Everything else that burst is `bulk_sender`.
Every piece of evidence says in words what it means, for an administrator who never read
the papers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mmw_tasks.config import Thresholds

LIST_MARKERS = ("-owner@", "owner-", "-request@", "-bounces@", "majordom", "mailman", "-admin@", "-errors@")

# points each piece of worm evidence adds to the score (docs/detection.md)
POINTS = {
    "unknown_high": 0.35,  # many refused recipients: addresses made up or harvested
    "unknown": 0.2,  # some refused recipients
    "forged": 0.3,  # many different sender addresses from one host
    "constant_size": 0.1,  # one attachment, again and again
    "pc_burst": 0.1,  # a desktop machine mailing faster than a person types
    "sustained": 0.1,  # hours at a steady rate
    "new_behaviour": 0.1,  # far above anything this host did in the trailing weeks
    "repeat": 0.1,  # the same addresses mailed again and again
    "regular": -0.3,  # the same burst at the same time on earlier days: a scheduled job
}


@dataclass
class Verdict:
    kind: str
    score: float
    why: str
    evidence: list[dict] = field(default_factory=list)  # {"feature", "value", "points", "says"}


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def is_list_sender(addr: str | None) -> bool:
    a = (addr or "").lower()
    return any(m in a for m in LIST_MARKERS)


def classify(f: dict, th: Thresholds) -> Verdict:
    ev: list[dict] = []

    def add(feature: str, value, points: float, says: str) -> None:
        ev.append({"feature": feature, "value": value, "points": points, "says": says})

    senders = [s for s in (f.get("sample_senders") or []) if s is not None]
    kind_of_client = f.get("client_kind", "unknown")
    msgs = f.get("messages", 0)
    sessions = msgs + f.get("refused_without_message", 0)
    attempted = f.get("recipients_attempted", 0)
    unknown = f.get("user_unknown", 0)

    if f.get("allow"):
        add(
            "allow_list",
            f["allow"],
            -1.0,
            f"listed in the site's allow-list as {f['allow'].replace('_', ' ')}",
        )
        return Verdict(f["allow"], 0.0, f"on the site's allow-list ({f['allow'].replace('_', ' ')})", ev)

    # -- a mailing list ------------------------------------------------------------------------
    fanout = _ratio(attempted, max(sessions, 1))
    list_sender = is_list_sender(f.get("sender")) or any(is_list_sender(s) for s in senders)
    reinjector = kind_of_client in ("localhost", "server") and f.get("distinct_senders", 0) <= 3
    few_to_many = sessions <= 3 * max(f.get("bursts", 1), 1) and fanout >= th.list_fanout
    if list_sender or reinjector or few_to_many:
        if list_sender:
            add(
                "list_sender",
                senders[:1] or f.get("sender"),
                0.0,
                "the sender is a list's owner/bounce address",
            )
        if reinjector:
            add(
                "client_kind",
                kind_of_client,
                0.0,
                "mail re-injected by the server itself (localhost or a relay), as list software does",
            )
        if few_to_many:
            add(
                "fanout",
                round(fanout, 1),
                0.0,
                f"{sessions} message(s) to {attempted} recipients: one message fanned out, as a list or alias does",
            )
        return Verdict("mailing_list", 0.05, "; ".join(e["says"] for e in ev), ev)

    # -- worm evidence -------------------------------------------------------------------------
    ratio = _ratio(unknown, attempted)
    if unknown >= th.min_user_unknown and ratio >= th.unknown_ratio_high:
        add(
            "user_unknown",
            unknown,
            POINTS["unknown_high"],
            f"{unknown} of {attempted} recipients ({ratio:.0%}) refused as 'User unknown': "
            "addresses made up or harvested, as worms do",
        )
    elif unknown >= th.min_user_unknown and ratio >= th.unknown_ratio:
        add(
            "user_unknown",
            unknown,
            POINTS["unknown"],
            f"{unknown} of {attempted} recipients ({ratio:.0%}) refused as 'User unknown'",
        )
    elif unknown:
        add(
            "user_unknown",
            unknown,
            0.0,
            f"only {unknown} of {attempted} recipients refused (stale addresses)",
        )
    n_senders = f.get("distinct_senders", 0)
    if n_senders >= th.forged_min_senders and n_senders >= th.forged_sender_ratio * max(msgs, 1):
        foreign = f.get("foreign_sender_messages", 0)
        add(
            "distinct_senders",
            n_senders,
            POINTS["forged"],
            f"{n_senders} different sender addresses from one machine ({foreign} of {msgs} messages "
            "claim to come from other domains): forged senders",
        )
    if msgs >= 10 and f.get("near_constant_share", 0) >= th.constant_size_share:
        add(
            "constant_size",
            f.get("median_size"),
            POINTS["constant_size"],
            f"{f['near_constant_share']:.0%} of its messages are the same size "
            f"({f.get('median_size') or 0:.0f} bytes): one attachment sent again and again",
        )
    if kind_of_client == "local" and f.get("peak_messages", 0) >= th.host_min_messages:
        add(
            "rate",
            f["peak_messages"],
            POINTS["pc_burst"],
            f"a desktop machine sent {f['peak_messages']} messages in one "
            f"{f.get('interval_minutes', 10)}-minute "
            "interval, faster than a person writes",
        )
    hist_peak = f.get("history_peak_messages")
    if (
        kind_of_client == "local"
        and hist_peak is not None
        and f.get("peak_messages", 0) >= th.host_min_messages
        and f["peak_messages"] >= th.new_rate_factor * max(hist_peak, 1)
    ):
        add(
            "new_behaviour",
            hist_peak,
            POINTS["new_behaviour"],
            f"in the trailing weeks this machine never sent more than {hist_peak} messages in an interval",
        )
    if f.get("burst_minutes", 0) >= th.sustained_minutes and f.get("burst_intervals", 0) >= 5:
        add(
            "duration",
            f["burst_minutes"],
            POINTS["sustained"],
            f"it went on for {f['burst_minutes']} minutes at a steady rate",
        )
    repeat = _ratio(attempted, f.get("distinct_recipients", 0))
    if attempted >= 20 and repeat >= th.repeat_ratio:
        add(
            "repeat_ratio",
            round(repeat, 2),
            POINTS["repeat"],
            f"{attempted} recipient attempts to only {f.get('distinct_recipients', 0)} addresses: "
            "the same addresses mailed again and again",
        )
    if f.get("regular_days", 0) >= th.regular_min_days:
        add(
            "regular",
            f["regular_days"],
            POINTS["regular"],
            f"the same burst at this time of day on {f['regular_days']} earlier days: a scheduled job",
        )
    score = round(min(1.0, max(0.0, sum(e["points"] for e in ev))), 3)
    reasons = [e["says"] for e in ev if e["points"] > 0]
    if kind_of_client == "local" and score >= th.suspect_score:
        return Verdict("mmw_suspect", score, "; ".join(reasons), ev)
    if kind_of_client != "local" and score >= th.suspect_score:
        add(
            "client_kind",
            kind_of_client,
            0.0,
            "looks like a worm, but the client is not one of our machines, so there is nothing to unplug here",
        )
    benign = [e["says"] for e in ev if e["points"] <= 0]
    why = (
        "a burst from one sender to distinct addresses, few refused"
        if not reasons
        else "some signs (" + "; ".join(reasons) + ") but not enough for a worm"
    )
    if benign:
        why += "; " + "; ".join(benign)
    return Verdict("bulk_sender", score, why, ev)
