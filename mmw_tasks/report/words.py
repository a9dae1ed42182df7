"""An incident's evidence in words, for report.html and report.md: each field of
docs/detection.md section 4 under a name an administrator reads without the docs, each value as
a number, a share, a time or a sentence; a missing value (null) is left out, never shown as
"None".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

# Field names in words, in the order a card lists them; a field not named here is shown under
# its own name, underscores as spaces. `{m}` is the report's interval in minutes.
LABELS = {
    # hosts and senders (mmw_suspect, bulk_sender, mailing_list)
    "first_flagged": "first flagged",
    "messages": "messages",
    "user_unknown": 'recipients refused as "User unknown"',
    "recipients_attempted": "recipient attempts",
    "recipients": "distinct recipients",
    "recipient_domains": "recipient domains",
    "distinct_senders": "distinct sender addresses",
    "sample_senders": "some of its sender addresses",
    "novel_recipients": "recipients it never mailed in the trailing weeks",
    "all_rejected": "sessions refused before any message",
    "median_size": "median message size",
    "near_constant_share": "messages the size of an earlier one",
    "peak_messages_per_interval": "most messages in one {m}-minute interval",
    "mx_lookups": "mail exchangers it looked up itself",
    "client_kind": "kind of client",
    "relay": "relay",
    "window": "best window",
    "bursts": "bursts",
    "peak_share": "its largest share of an abnormal interval's N_SMTP",
    "abnormal_intervals": "abnormal intervals it dominated",
    "dq_alignment": "Dq against its own N_SMTP(i)",
    "regular_days": "earlier days as busy at this time of day",
    "history_days": "earlier days the lake has of it",
    "history_usual_hourly": "its usual highest messages an hour at this time of day",
    "earlier_suspect_days": "earlier days it was a suspect",
    "baseline": "compared with",
    # deferred_surge
    "deferred": "deliveries deferred",
    "deliveries": "delivery attempts",
    "intervals_with_deferrals": "intervals with deferrals",
    "usual_daily_deferrals": "usual deferrals a day",
    "n_to_per_n_from": "to= lines per from= line while it lasted",
    "n_to_per_n_from_elsewhere": "to= lines per from= line the rest of the day",
    "retry_cadence": "queue retries",
    "residual_vs_deferred": "model residual against deferrals",
    # dns_anomaly
    "source": "whose queries",
    "mail_server_ips": "mail server addresses",
    "intervals": "intervals",
    "excess_queries": "DNS queries beyond what the mail explains",
    "predicted_queries": "DNS queries the mail explains",
    "max_residual_z": "largest z of the model's residual",
    "n_from": "from= lines meanwhile",
    "queries": "DNS queries",
    "mx_queries": "of them MX queries",
    "peak_queries_per_interval": "most DNS queries in one {m}-minute interval",
    "usual_queries_per_interval": "its usual DNS queries per interval",
    "hot_intervals": "intervals far above its usual",
    "distinct_names": "distinct names asked",
    "messages_through_our_server": "messages it handed our mail server meanwhile",
}
SHARES = {"near_constant_share", "peak_share"}  # 0..1, shown as a percentage
BYTES = {"median_size"}
VALUE_WORDS = {
    "client_kind": {
        "local": "one of our machines",
        "localhost": "the mail server itself (localhost)",
        "server": "one of our mail servers",
        "remote": "a server elsewhere",
        "unknown": "unknown",
    },
    "baseline": {"history": "earlier days", "within-day": "the rest of the same day"},
    "source": {"mail_server": "the mail server's own", "client": "another machine's"},
    "relay": {"learnt": "a relay, learnt from its traffic", "configured": "a relay, configured"},
}
# shown elsewhere on the card (the reason, the signals, the table of peaks, when), not as rows
NOT_ROWS = {"why", "signals", "peaks", "first_flagged"}


def number(v: float | int) -> str:
    """1195 -> '1,195'; 0.9384 -> '0.938'; 2.0 -> '2'."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int) or float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def clock(iso: str) -> str:
    """An ISO stamp as its local 'HH:MM' (the date too when it is not the report's day)."""
    return f"{datetime.fromisoformat(iso):%H:%M}"


def _is_stamp(v: Any) -> bool:
    return isinstance(v, str) and len(v) >= 19 and v[4] == "-" and v[10] == "T"


def _span(a: str | None, b: str | None) -> str:
    return f"{clock(a)} to {clock(b)}" if a and b else (clock(a) if a else "")


def value(key: str, v: Any) -> str | None:
    """One evidence value in words; None for a value not worth a row (missing, empty)."""
    if v is None or v == [] or v == {}:
        return None
    if key in VALUE_WORDS and isinstance(v, str):
        return VALUE_WORDS[key].get(v, v)
    if key in SHARES and isinstance(v, int | float):
        return f"{v:.0%}"
    if key in BYTES and isinstance(v, int | float):
        return f"{number(round(v))} bytes"
    if key == "window" and isinstance(v, Mapping):
        what = f"{v['minutes']} minutes" if v.get("minutes") else "the whole day"
        return f"{what}, {_span(v.get('start'), v.get('end'))}"
    if key == "bursts" and isinstance(v, list):
        return ", ".join(_span(b.get("start"), b.get("end")) for b in v if isinstance(b, Mapping))
    if key == "dq_alignment" and isinstance(v, Mapping):
        parts = []
        if v.get("r") is not None:
            lag = v.get("lag") or 0
            parts.append(f"correlation r = {number(v['r'])}" + (f" at a lag of {lag} interval(s)" if lag else ""))
        if v.get("dq_abnormal_intervals") is not None:
            parts.append(f"Dq abnormal in {number(v['dq_abnormal_intervals'])} of its intervals")
        if v.get("dq_excess") is not None:
            parts.append(f"{number(v['dq_excess'])} DNS queries above the usual then")
        return "; ".join(parts) or None
    if key == "retry_cadence" and isinstance(v, Mapping):
        gap = v.get("median_gap_minutes")
        return f"{number(v.get('retried_messages') or 0)} messages retried {number(v.get('retries') or 0)} times" + (
            f", about every {number(round(gap))} minutes" if gap is not None else ""
        )
    if key == "residual_vs_deferred" and isinstance(v, Mapping):
        if v.get("r2_sd") is None:
            return None
        return f"R² = {number(v['r2_sd'])} (slope m_sd = {number(v.get('m_sd') or 0)})"
    if isinstance(v, Mapping):
        inner = [f"{k.replace('_', ' ')} {w}" for k, x in v.items() if (w := value(k, x)) is not None]
        return ", ".join(inner) or None
    if isinstance(v, list):
        return ", ".join(w for x in v if (w := value(key, x)) is not None) or None
    if _is_stamp(v):
        return clock(v)
    if isinstance(v, int | float):
        return number(v)
    return str(v)


def label(key: str, interval_minutes: int) -> str:
    return LABELS.get(key, key.replace("_", " ")).format(m=interval_minutes)


def evidence_rows(ev: Mapping[str, Any], interval_minutes: int) -> list[tuple[str, str]]:
    """(name in words, value in words) per evidence field, those of LABELS first in its order;
    missing values left out."""
    order = {k: n for n, k in enumerate(LABELS)}
    keys = sorted((k for k in ev if k not in NOT_ROWS), key=lambda k: order.get(k, len(order)))
    return [(label(k, interval_minutes), w) for k in keys if (w := value(k, ev[k])) is not None]


def signal_lines(ev: Mapping[str, Any]) -> list[str]:
    """The signals that fired, each as its sentence with its points: why the verdict."""
    out = []
    for s in ev.get("signals") or []:
        if isinstance(s, Mapping) and s.get("says"):
            pts = s.get("points")
            out.append(str(s["says"]) + (f" ({pts:+.2f})" if isinstance(pts, int | float) and pts else ""))
    return out


def peak_rows(ev: Mapping[str, Any]) -> list[dict[str, str]]:
    """The abnormal intervals it dominated: time, its N_SMTP, its share, z of N_SMTP and Dq."""
    rows = []
    for p in ev.get("peaks") or []:
        if not isinstance(p, Mapping) or not p.get("interval_start"):
            continue
        rows.append(
            {
                "time": clock(p["interval_start"]),
                "n_smtp": number(p["n_smtp"]) if p.get("n_smtp") is not None else "",
                "share": f"{p['share']:.0%}" if p.get("share") is not None else "",
                "z_smtp": number(p["z_smtp"]) if p.get("z_smtp") is not None else "",
                "z_dq": number(p["z_dq"]) if p.get("z_dq") is not None else "",
            }
        )
    return sorted(rows, key=lambda r: r["time"])


def when(start: str | None, end: str | None) -> str:
    """'2002-02-16 14:30:04 to 17:29:56 (+09:00)', the end's date only when it differs."""
    if not start:
        return "the whole day"
    a = datetime.fromisoformat(start)
    b = datetime.fromisoformat(end) if end else a
    tail = f"{b:%H:%M:%S}" if b.date() == a.date() else f"{b:%Y-%m-%d %H:%M:%S}"
    z = a.strftime("%z")
    return f"{a:%Y-%m-%d %H:%M:%S} to {tail} ({z[:3]}:{z[3:]})"
