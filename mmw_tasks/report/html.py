"""report.html: one self-contained page per day, rendered from the report dict alone.

The page is the Jinja2 template templates/report.html.j2; this module draws its figures and
hands the template what it shows. Inline SVG figures (mmw_tasks.report.svg), inline CSS
(templates/style.css), no script and nothing fetched at view time. The verdict comes first:

1. the headline (mmw_tasks.report.headline), one line per incident that needs attention, each a
   link to its card, and the drift alert;
2. the worm suspects' own N_SMTP(i) against Dq (the site's N_SMTP on a day without a suspect),
   so that the headline and the curve that proves it fit the first screen at 1280×800;
3. a card per incident that needs attention (its reasons in words, the rest behind <details>),
   then benign traffic one line each ([report] benign_lines of them; the rest counted by kind);
4. the day's totals, the papers' Figure 1 (Dq, N_SMTP, N_POP3) and Figure 2 (N_SMTP against the
   top senders or hosts; to=, Sent, Deferred and the most deferred domain), the model panel (Dq
   observed against fitted, the coefficients against their history band), the notes.

Every curve is a count per interval, as the papers plot them. On the time charts an incident
that needs attention is a shaded span across the plot; a benign one is a thin strip along its
top, drawn underneath, so that a long benign band never hides a suspect's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup

from mmw_tasks.report import svg, words
from mmw_tasks.report.headline import LABELS, QUIET, benign_line, line, subject
from mmw_tasks.report.model import (
    ATTENTION,
    BAND_KEYS,
    COEFFICIENT_NAMES,
    DRIFT_CAUSES,
    KIND_TITLES,
    Incident,
    Report,
    dq_types_known,
    partial_lines,
    who,
)

# The pages' templates (report.html.j2, trends.html.j2) with autoescaping on: every value is
# escaped unless it is Markup (the SVG figures, which mmw_tasks.report.svg escapes itself). A
# missing value (None) renders as a dash, never as "None".
ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("mmw_tasks.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    finalize=lambda v: "–" if v is None else v,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
BENIGN_LINES = 20  # benign incidents listed one line each when the report does not say ([report] benign_lines)
HOST_CURVES = 4  # worm suspects drawn in the figure under the headline; the others have their cards
WIDE = 960  # width of the time charts' drawing (the page scales it to its column)
TOTAL_WORDS = (
    ("dq", "DNS queries (Dq)"),
    ("n_from", "from= lines"),
    ("n_to", "to= lines"),
    ("n_sent", "sent"),
    ("n_deferred", "deferred"),
    ("n_pop", "POP3/IMAP logins"),
    ("n_user_unknown", '"User unknown"'),
)


def _t(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def time_axis(starts: list[datetime], tz: ZoneInfo, every_hours: int = 3) -> list[tuple[float, str]]:
    """Ticks at the local full hours that are multiples of `every_hours`."""
    ticks = []
    for s in starts:
        loc = s.astimezone(tz)
        if loc.minute == 0 and loc.hour % every_hours == 0:
            ticks.append((s.timestamp(), loc.strftime("%H:%M")))
    return ticks


def split(rep: Report, benign_lines: int) -> tuple[list[Incident], list[Incident], list[Incident]]:
    """The incidents that need attention, the benign ones listed one line each, the benign rest."""
    attention = [i for i in rep["incidents"] if i["kind"] in ATTENTION]
    benign = [i for i in rep["incidents"] if i["kind"] not in ATTENTION]
    return attention, benign[:benign_lines], benign[benign_lines:]


def incident_markers(incidents: list[Incident], spans: set[int] | None = None) -> list[svg.Marker]:
    """A span per incident that needs attention (or per number in `spans`), a strip per other one."""
    out = []
    for i in incidents:
        start = i.get("start")
        if not start:
            continue
        end = i["end"] or start
        out.append(
            svg.Marker(
                _t(start).timestamp(),
                _t(end).timestamp(),
                str(i["number"]),
                svg.KIND_COLORS.get(i["kind"], "#777"),
                f"{i['number']}. {i['title']}: {who(i)} ({start[11:16]} to {end[11:16]})",
                ref=f"incident-{i['number']}",
                strip=i["kind"] not in ATTENTION if spans is None else i["number"] not in spans,
            )
        )
    return out


class Axis:
    """The day's shared x axis and what every time chart of the page draws on it."""

    def __init__(self, rep: Report, shown: list[Incident]):
        starts = [_t(r["interval_start"]) for r in rep["intervals"]]
        self.xs = [s.timestamp() for s in starts]
        self.ticks = time_axis(starts, ZoneInfo(rep["timezone"]))
        self.shown = shown
        self.markers = incident_markers(shown)
        self.per = f"per {rep['interval_minutes']} min"

    def chart(
        self,
        title: str,
        series: list[svg.Series],
        ylabel: str,
        height: int,
        top: int = 30,
        markers: list[svg.Marker] | None = None,
    ) -> Markup:
        return Markup(
            svg.line_chart(
                title,
                self.xs,
                series,
                self.ticks,
                f"{ylabel} {self.per}",
                markers=self.markers if markers is None else markers,
                frame=svg.Frame(width=WIDE, height=height, top=top),
            )
        )


def host_figure(rep: Report, ax: Axis, attention: list[Incident]) -> dict[str, Any]:
    """Dq above the worm suspects' own N_SMTP(i) (from= and to= lines per interval), or above the
    site's N_SMTP on a day without a suspect: the papers' evidence, under the headline."""
    iv = rep["intervals"]
    curves = {c["client_ip"]: c for c in rep["figures"].get("hosts", [])}
    suspects = [i for i in attention if i["kind"] == "mmw_suspect" and i.get("client_ip") in curves]
    shown = suspects[:HOST_CURVES]
    # the suspects drawn are spans, every other incident a strip: nothing covers their curves
    markers = incident_markers(ax.shown, {i["number"] for i in shown}) if shown else None
    dq = ax.chart(
        "Dq: DNS queries from the mail servers",
        [svg.Series("Dq: DNS queries from the mail servers", [r["dq"] for r in iv], svg.PALETTE["dq"])],
        "Dq",
        height=150,
        top=24,
        markers=markers,
    )
    series = []
    for i, color in zip(shown, svg.SOURCE_COLORS, strict=False):
        c = curves[cast(str, i["client_ip"])]
        name = f"#{i['number']} {i['client_ip']}"
        smtp = [a + b for a, b in zip(c["n_from"], c["n_to"], strict=True)]
        series.append(svg.Series(f"N_SMTP({name}): its from= and to= lines", list(map(float, smtp)), color, width=1.8))
        if len(shown) == 1:
            unknown = c["n_user_unknown"]
            series.append(svg.Series('its "User unknown"', unknown, color, width=1.2, dash="4 3", css="unknown"))
    if not series:
        smtp = [r["n_from"] + r["n_to"] for r in iv]
        series = [svg.Series("N_SMTP: from= and to= lines of the whole site", smtp, svg.PALETTE["n_from"])]
    title = (
        "N_SMTP(i) of " + ", ".join(str(i["client_ip"]) for i in shown)
        if shown
        else "N_SMTP: from= and to= lines of the whole site"
    )
    return {
        "title": "Dq against N_SMTP(i) of " + ", ".join(str(i["client_ip"]) for i in shown)
        if shown
        else "Dq against N_SMTP",
        "charts": [dq, ax.chart(title, series, "N_SMTP", height=170, top=24, markers=markers)],
        "hosts": [i["client_ip"] for i in shown],
        "more": len(suspects) - len(shown),
    }


def figure1(rep: Report, ax: Axis) -> list[Markup]:
    """The papers' Figure 1: Dq, N_SMTP and N_POP3, one panel each."""
    iv = rep["intervals"]
    panels: list[tuple[str, Literal["dq", "n_from", "n_pop"], str]] = [
        ("Dq: DNS queries from the mail servers", "dq", "Dq"),
        ("N_SMTP: from= lines (SMTP accesses)", "n_from", "N_SMTP"),
        ("N_POP3: POP3/IMAP logins", "n_pop", "N_POP3"),
    ]
    return [
        ax.chart(title, [svg.Series(title, [float(r[key]) for r in iv], svg.PALETTE[key])], ylabel, height=160)
        for title, key, ylabel in panels
    ]


def figure2(rep: Report, ax: Axis) -> dict[str, Any]:
    """The papers' Figure 2: N_SMTP against the top senders or hosts; to= lines by status."""
    iv, fig = rep["intervals"], rep["figures"]
    series = [svg.Series("total N_SMTP", [float(r["n_from"]) for r in iv], "#222", width=2.2, css="total")]
    sources = []
    for s, color in zip(fig["top_sources"], svg.SOURCE_COLORS, strict=False):
        series.append(svg.Series(f"#{s['rank']} {s['source']}", s["n_from"], color, width=1.3))
        label = s["source"] + (f" ({s['reverse_name']})" if s.get("reverse_name") else "")
        sources.append({**s, "color": color, "label": label})
    dom = fig.get("most_deferred_domain")
    b_series = [
        svg.Series("to=", [float(r["n_to"]) for r in iv], svg.PALETTE["n_to"]),
        svg.Series("Sent", [float(r["n_sent"]) for r in iv], svg.PALETTE["n_sent"]),
        svg.Series("Deferred", [float(r["n_deferred"]) for r in iv], svg.PALETTE["n_deferred"]),
    ]
    if dom:
        b_series.append(
            svg.Series(f"Deferred to {dom['domain']}", dom["n_deferred"], svg.PALETTE["domain"], dash="5 3")
        )
    return {
        "sources_chart": ax.chart("Total N_SMTP and the top senders or hosts", series, "N_SMTP", height=230, top=40),
        "sources": sources,
        "status_chart": ax.chart("to= lines by status", b_series, "to= lines", height=200),
        "domain": dom,
    }


def coefficient_rows(rep: Report) -> list[dict[str, Any]]:
    """The model panel's table: each coefficient today against its history band."""
    coeffs, m = rep.get("history", {}).get("coefficients", {}), rep["model"]
    unreliable = m.get("reliable") is False
    rows = []
    for k in BAND_KEYS:
        c: Mapping[str, Any] = coeffs.get(k) or {}
        lo, hi, v = c.get("lo"), c.get("hi"), c.get("value")
        if c.get("drift"):
            flag = "outside: drift"
        elif unreliable and v is not None:
            flag = "unreliable fit: not judged"
        elif lo is None or v is None:
            flag = "no history"
        elif lo <= v <= hi:
            flag = "inside"
        else:
            flag = "outside (history too short to alert)"
        rows.append(
            {
                "name": COEFFICIENT_NAMES[k],
                "today": _fmt(cast(Mapping[str, float | None], m).get(k)),
                "band": "n/a" if lo is None else f"{lo:.4g} to {hi:.4g}",
                "days": c.get("history_days", 0),
                "flag": flag,
                "drift": bool(c.get("drift")),
                "unreliable": unreliable,
            }
        )
    return rows


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def band_charts(rep: Report) -> list[Markup]:
    series = rep.get("history", {}).get("series", {})
    out = []
    for k in BAND_KEYS:
        pts = series.get(k) or []
        if len(pts) < 2:
            continue
        xs = [date.fromisoformat(p["day"]).toordinal() for p in pts]
        ticks = [(x, date.fromordinal(x).strftime("%m-%d")) for x in xs[:: max(1, len(xs) // 6)]]
        last = pts[-1]
        out.append(
            Markup(
                svg.line_chart(
                    f"{k} over the last days, with its history band",
                    xs,
                    [
                        svg.Series(k, [p["value"] for p in pts], "#1f4e9c"),
                        svg.Series(
                            "unreliable fit",
                            [None if p.get("reliable", True) else p["value"] for p in pts],
                            "#999999",
                            dots=True,
                            css="unreliable",
                        ),
                    ],
                    ticks,
                    k,
                    bands=[svg.Band([p["lo"] for p in pts], [p["hi"] for p in pts], "band", steps=True)],
                    y_min=None,
                    frame=svg.Frame(width=420, height=150, left=52, top=24),
                    highlight=(xs[-1], last["value"], f"{rep['day']}: {k} = {last['value']}")
                    if last["day"] == rep["day"] and last["value"] is not None
                    else None,
                )
            )
        )
    return out


def model_panel(rep: Report, ax: Axis) -> dict[str, Any]:
    iv, m = rep["intervals"], rep["model"]
    if m.get("m_s") is None:
        return {"fitted": False}
    obs = [float(r["dq"]) for r in iv]
    fit = [r.get("dq_fitted") for r in iv]
    return {
        "fitted": True,
        "timeline": ax.chart(
            "Dq observed and fitted",
            [
                svg.Series("Dq observed", obs, svg.PALETTE["dq"]),
                svg.Series("Dq fitted = m_s·N_from + m_p·N_pop", fit, svg.PALETTE["fitted"], dash="4 2"),
            ],
            "Dq",
            height=200,
        ),
        "scatter": Markup(
            svg.scatter(
                "Dq observed against fitted",
                fit,
                obs,
                f"fitted Dq {ax.per}",
                f"observed Dq {ax.per}",
                svg.PALETTE["dq"],
                size=250,
            )
        ),
        "coefficients": coefficient_rows(rep),
        "floor_percent": f"{rep.get('history', {}).get('band_floor', 0) * 100:.0f}",
        "m_sd": _fmt(m.get("m_sd")),
        "r2_sd": _fmt(m.get("r2_sd")),
        "bands": band_charts(rep),
    }


def card(i: Incident, interval_minutes: int) -> dict[str, Any]:
    """What an incident's card shows: who and when, why (the signals, or the reason), then behind
    <details> every piece of evidence in words, the peaks it dominated and the log lines."""
    ev = i.get("evidence") or {}
    raw = list(i.get("raw_lines", []))
    cited = len(i.get("lines", []))
    return {
        "number": i["number"],
        "kind": i["kind"],
        "title": i["title"],
        "color": svg.KIND_COLORS.get(i["kind"], "#999"),
        "who": subject(i),
        "line": benign_line(i),
        "when": words.when(i["start"], i["end"]),
        "first_flagged": words.clock(ev["first_flagged"]) if ev.get("first_flagged") else None,
        "score": f"{float(i['score']):.2f}",
        "why": str(ev.get("why") or ""),
        "signals": words.signal_lines(ev),
        "rows": words.evidence_rows(ev, interval_minutes),
        "peaks": words.peak_rows(ev),
        "earlier": [d for d in ev.get("earlier_suspect_days") or [] if isinstance(d, str)],
        "raw": [
            f"{Path(ln['file']).name}:{ln['line_no']}  "
            + (text if (text := ln.get("text")) is not None else "(no longer readable)")
            for ln in raw
        ],
        "files": sorted({ln["file"] for ln in raw}),
        "raw_count": f"the first {len(raw)} of {cited:,}" if cited > len(raw) else f"{len(raw)}",
    }


def _total(incidents: list[Incident], key: str) -> int:
    return sum(int((i.get("evidence") or {}).get(key) or 0) for i in incidents)


def benign_rest(rest: list[Incident]) -> list[dict[str, Any]]:
    """The benign incidents beyond the listed ones, counted by kind."""
    out = []
    for kind in dict.fromkeys(i["kind"] for i in rest):
        mine = [i for i in rest if i["kind"] == kind]
        starts = [s for i in mine if (s := i.get("start"))]
        ends = [e for i in mine if (e := i.get("end"))]
        out.append(
            {
                "kind": KIND_TITLES.get(kind, kind),
                "incidents": f"{len(mine):,}",
                "messages": f"{_total(mine, 'messages'):,}",
                "recipients": f"{_total(mine, 'recipients_attempted'):,}",
                "user_unknown": f"{_total(mine, 'user_unknown'):,}",
                "first": words.clock(min(starts)) if starts else "",
                "last": words.clock(max(ends)) if ends else "",
            }
        )
    return out


def _verdict_line(i: Incident) -> dict[str, Any]:
    """A headline line split into its label (WORM SUSPECT, ...) and the rest, linked to its card."""
    text, label = line(i), LABELS.get(i["kind"], "")
    if not text.startswith(label + " "):
        label = ""
    return {"label": label, "text": text[len(label) :], "ref": f"incident-{i['number']}", "kind": i["kind"]}


def render(rep: Report, benign_lines: int = BENIGN_LINES) -> str:
    attention, listed, rest = split(rep, benign_lines)
    ax = Axis(rep, attention + listed)
    m = rep["interval_minutes"]
    benign = len(listed) + len(rest)
    return ENV.get_template("report.html.j2").render(
        rep=rep,
        weekday=date.fromisoformat(rep["day"]).strftime("%A"),
        links=rep.get("links", {}),
        verdict=[_verdict_line(i) for i in attention] or [{"label": "", "text": QUIET, "ref": None, "kind": "quiet"}],
        benign_count=f"{benign} benign incident{'s' if benign != 1 else ''} (mailing lists, bulk mailings) noted below"
        if benign
        else "",
        partial=partial_lines(rep),  # missing servers and gaps, right after the verdict
        drift=rep.get("history", {}).get("drift", []),
        drift_causes=DRIFT_CAUSES,
        host=host_figure(rep, ax, attention),
        cards=[card(i, m) for i in attention],
        benign=[card(i, m) for i in listed],
        rest=benign_rest(rest),
        rest_total=len(rest),
        totals=[(label, f"{cast(Mapping[str, int], rep['totals'])[k]:,}") for k, label in TOTAL_WORDS],
        dq_by_type=rep["dq_by_type"] if dq_types_known(rep) else {},
        figure1=figure1(rep, ax),
        figure2=figure2(rep, ax),
        model=model_panel(rep, ax),
    )
