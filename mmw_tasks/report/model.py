"""What a day's report holds, shared by its renderings (json, md, html, mail) and the trends page:
the shape of report.json section by section (`Report` and the types it is made of, each key
documented once here), the kinds of incident and their titles, where it is written."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict

from mmw_tasks.config import Site
from mmw_tasks.report.gaps import Gap

TotalKey = Literal["dq", "n_from", "n_to", "n_sent", "n_deferred", "n_pop", "n_user_unknown"]
TOTAL_KEYS: tuple[TotalKey, ...] = ("dq", "n_from", "n_to", "n_sent", "n_deferred", "n_pop", "n_user_unknown")
MODEL_KEYS = ("m_s", "m_p", "r2", "q", "n", "m_sd", "r2_sd")
BAND_KEYS = ("m_s", "m_p", "r2", "q", "n")  # the coefficients with a history band
ATTENTION = ("mmw_suspect", "deferred_surge", "dns_anomaly")  # kinds someone must look at
KIND_TITLES = {
    "mmw_suspect": "Suspected worm-infected host",
    "bulk_sender": "Bulk mailing (benign burst)",
    "mailing_list": "Mailing list traffic",
    "deferred_surge": "Other sites are deferring our mail",
    "dns_anomaly": "DNS queries with no mail to explain them",
}
COEFFICIENT_NAMES = {
    "m_s": "m_s (DNS queries per SMTP access)",
    "m_p": "m_p (DNS queries per POP3 login)",
    "r2": "R² of the fit",
    "q": "q (share delivered locally)",
    "n": "n (hosts per remote domain)",
}
DRIFT_CAUSES = "a changed mail setup, a new relay or a resolver cache change"


class Totals(TypedDict):
    """The day's lines counted (contract section 5): the sums of the day's `intervals`."""

    dq: int  # DNS queries from the site's mail_server_ips
    n_from: int  # sendmail from= lines (Postfix: messages accepted into the queue)
    n_to: int  # to= lines (one per delivery attempt)
    n_sent: int  # to= lines with status sent
    n_deferred: int  # to= lines with status deferred
    n_pop: int  # POP3/IMAP logins
    n_user_unknown: int  # recipients refused as unknown
    partial: NotRequired[bool]  # these count less than the whole day: a server missing or with a gap


class Model(TypedDict):
    """The day's fit of Dq = m_s·N_from + m_p·N_pop (sql/model/model_fits.sql); None where the day
    has too few intervals to fit, or a value is not finite."""

    m_s: float | None  # DNS queries per SMTP access (from= line)
    m_p: float | None  # DNS queries per POP3 login
    r2: float | None  # R² of the fit
    q: float | None  # share of recipients delivered locally
    n: float | None  # hosts per remote domain, (m_s - 2) / (4 (1 - q))
    m_sd: float | None  # slope of the residual Dq against N_deferred
    r2_sd: float | None  # R² of that residual regression
    reliable: NotRequired[bool]  # no negative m_s, m_p or n and R² >= [report] min_r2 (fit_problems)
    unreliable_because: NotRequired[list[str]]  # why not, in words; [] when reliable


class LineRef(TypedDict):
    """A log line an incident cites: where it is, and its text read back from the file."""

    file: str  # the log file's path as parsed
    line_no: int  # 1-based line number in that file
    event: NotRequired[str]  # what the line is (from, to, reject, query, ...), where the citation says
    text: NotRequired[str | None]  # the line itself; None (raw_lines) or left out (lines) when unreadable now


class Incident(TypedDict):
    """One incident of the day, as report.json lists it."""

    number: int  # 1, 2, ...: its number on the report's figures and cards
    kind: str  # mmw_suspect, bulk_sender, mailing_list, deferred_surge or dns_anomaly
    title: str  # KIND_TITLES[kind]
    start: str | None  # ISO 8601 with the site's offset
    end: str | None
    sender: str | None  # the envelope sender, when one sender explains it
    client_ip: str | None  # the host, when one host explains it
    reverse_name: str | None  # client_ip's name as the mail server logged it
    domain: NotRequired[str]  # deferred_surge: the destination that defers our mail
    score: float  # 0..1: how sure detection is of the kind
    evidence: dict[str, Any]  # the numbers behind the verdict, and `why` in words (docs/detection.md)
    lines: list[LineRef]  # every line detection cited, with its text where it could be read
    raw_lines: list[LineRef]  # the first [report].raw_lines of them, quoted on the incident's card


class Interval(TypedDict):
    """One row of the day's `intervals` dataset (less site and day), with the model's Dq."""

    interval_start: str  # ISO 8601 with the site's offset
    dq: int
    n_from: int
    n_to: int
    n_sent: int
    n_deferred: int
    n_bounced: int
    n_pop: int
    n_user_unknown: int
    n_reject: int
    dq_fitted: float | None  # m_s·n_from + m_p·n_pop; None without a fit


class TopSource(TypedDict):
    """One of figure 2's top senders or hosts."""

    rank: int  # 1 = the most from= lines
    source: str  # the host's address, or the sender when the mail came without one
    client_ip: str | None
    reverse_name: str | None
    senders: int  # distinct sender addresses it used
    total_from: int  # its from= lines of the day
    total_to: int
    total_user_unknown: int
    n_from: list[int]  # its from= lines per interval, aligned with `intervals`


class DeferredDomain(TypedDict):
    """The destination with the most deferred deliveries of the day."""

    domain: str
    total_deferred: int
    n_deferred: list[int]  # per interval, aligned with `intervals`


class HostCurve(TypedDict):
    """A worm suspect's own N_SMTP(i), drawn against Dq at the top of the page."""

    client_ip: str
    n_from: list[int]  # its from= lines per interval, aligned with `intervals`
    n_to: list[int]  # its to= lines per interval (N_SMTP(i) = n_from + n_to)
    n_user_unknown: list[int]  # its recipients refused as "User unknown" per interval


class Figures(TypedDict):
    """The figures' data beyond the intervals."""

    top_sources: list[TopSource]  # figure 2
    most_deferred_domain: DeferredDomain | None  # None: nothing was deferred
    hosts: NotRequired[list[HostCurve]]  # every mmw_suspect host's, by address (absent before issue 20)


class Band(TypedDict):
    """One coefficient today against its history band (sql/trends/coefficient_bands.sql)."""

    value: float | None  # today's value
    median: float | None  # median of the earlier days in the window
    mad: float | None  # their median absolute deviation
    history_days: int  # earlier days in the window with a value
    lo: float | None  # the band: median ± max(band_k·1.4826·MAD, band_floor·|median|)
    hi: float | None
    drift: bool  # a reliable fit outside the band with at least min_history days behind it
    reliable: bool  # the day's fit is reliable (unreliable fits are left out of every band)
    day_kind: str  # weekday or weekend: the band is of the earlier days of the same kind


class SeriesPoint(TypedDict):
    """A day of a coefficient's recent history, for the band charts."""

    day: str  # YYYY-MM-DD
    value: float | None
    lo: float | None
    hi: float | None
    reliable: NotRequired[bool]  # that day's fit was reliable


class History(TypedDict):
    """The day's coefficients against the trailing days ([report] settings echoed)."""

    history_days: int  # the window, in days
    min_history: int  # days needed before drift is alerted
    band_k: float
    band_floor: float
    days_available: int  # the most earlier days of the same kind with a reliable fit in the window
    day_kind: NotRequired[str]  # weekday or weekend: whose band the day is judged against
    min_r2: NotRequired[float]  # [report] min_r2: fits with a lower R² are unreliable
    too_short: bool  # days_available < min_history: band shown, drift not alerted
    coefficients: dict[str, Band]  # by coefficient name (BAND_KEYS), where today has one
    series: dict[str, list[SeriesPoint]]  # by coefficient name, oldest first, today last
    drift: list[str]  # the coefficients that left their band


class Links(TypedDict):
    """Relative links from the day's report.html."""

    previous: str
    next: str
    trends: str


class Report(TypedDict):
    """report.json (contract section 5): report.md, report.html and the mail are rendered from
    it alone."""

    day: str  # the site's local day, YYYY-MM-DD
    site: str  # [site].name
    timezone: str  # [site].timezone: the offset of every time in the report
    interval_minutes: int  # [site].interval
    totals: Totals
    dq_by_type: dict[str, int]  # Dq by query type (A, MX, ...; all "unknown" for iplog); {} without DNS
    model: Model
    incidents: list[Incident]  # most severe first (headline.severity_key), numbered in that order
    headline: list[str]  # one line per incident that needs attention, most severe first; [] when none
    notes: list[str]  # remarks that open the report: partial data, short history, drift, detection's notes
    intervals: list[Interval]  # the day's intervals in time order
    figures: Figures
    history: History
    links: Links
    partial: NotRequired[bool]  # servers missing (on_missing_server = "partial") or with a gap
    missing_servers: NotRequired[list[str]]  # the servers missing
    gaps: NotRequired[list[Gap]]  # stretches of the day a server that arrived has no line in
    dns_servers: NotRequired[list[str]]  # the site's DNS servers; [] for a site of mail servers only
    as_of: NotRequired[str]  # a partial run's report (mmw_tasks/intraday.py): lines stamped before this only


def band_params(site: Site) -> dict[str, Any]:
    """sql/trends/coefficient_bands.sql's parameters, from [report]."""
    r = site.report
    return {
        "history_days": r.history_days,
        "band_k": r.band_k,
        "band_floor": r.band_floor,
        "min_history": r.min_history,
        "min_r2": r.min_r2,
    }


def fit_problems(model: Mapping[str, float | None], min_r2: float) -> list[str]:
    """Why a day's fit is unreliable, in words; [] when it is reliable. The same rule as
    sql/trends/coefficient_bands.sql's `reliable`: a negative m_s, m_p or n (a login or an SMTP
    access does not take DNS queries away), or an R² below `min_r2` (the model explains too little
    of Dq's variation for its coefficients to mean anything)."""
    if model.get("m_s") is None:
        return ["no fit this day"]
    out = [f"{k} = {v:.3g} is negative" for k in ("m_s", "m_p", "n") if (v := model.get(k)) is not None and v < 0]
    r2 = model.get("r2")
    if r2 is None or r2 < min_r2:
        out.append(f"R² = {r2:.3g} is below {min_r2:g}" if r2 is not None else "no R²")
    return out


def report_dir(site: Site, day: date | str) -> Path:
    return Path(site.lake) / "reports" / f"day={day}"


def who(i: Incident) -> str:
    host = i.get("client_ip") and (
        f"host {i['client_ip']}" + (f" ({i['reverse_name']})" if i.get("reverse_name") else "")
    )
    return (
        ", ".join(
            x
            for x in (host, i.get("sender") and f"sender {i['sender']}", i.get("domain") and f"domain {i['domain']}")
            if x
        )
        or "no single sender"
    )


def partial_lines(rep: Report) -> list[str]:
    """Why the day is partial, one line each: the missing servers, then the gaps."""
    out = [f'{m}: no data at all (on_missing_server = "partial")' for m in rep.get("missing_servers", [])]
    return out + [g["text"] for g in rep.get("gaps", [])]


def dq_types_known(rep: Report) -> bool:
    """Whether the DNS log gave query types (iplog's have none: all 'unknown')."""
    return any(k != "unknown" for k in rep.get("dq_by_type", {}))
