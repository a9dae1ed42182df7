"""report.html: one self-contained page per day, rendered from the report dict alone.

The page is the Jinja2 template templates/report.html.j2; this module draws its figures and
hands the template what it shows. Inline SVG figures (mmw_tasks.report.svg), inline CSS
(templates/style.css), no script and nothing fetched at view time:
the papers' Figure 1 (Dq, N_SMTP, N_POP3 in s⁻¹) and Figure 2 (N_SMTP against the top senders or
hosts; to=, Sent, Deferred and the most deferred domain), the model panel (Dq observed against
fitted, the coefficients against their history band), one card per incident with the raw lines
behind it, and links to the previous and next day.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup

from mmw_tasks.report import svg
from mmw_tasks.report.headline import verdict
from mmw_tasks.report.model import (
    BAND_KEYS,
    COEFFICIENT_NAMES,
    DRIFT_CAUSES,
    TOTAL_KEYS,
    Incident,
    Report,
    dq_types_known,
    who,
)

TEMPLATES = Path(__file__).resolve().parent / "templates"
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


def incident_markers(rep: Report) -> list[svg.Marker]:
    out = []
    for i in rep["incidents"]:
        start = i.get("start")
        if not start:
            continue
        end = i["end"] or start
        x0, x1 = _t(start).timestamp(), _t(end).timestamp()
        out.append(
            svg.Marker(
                x0,
                x1,
                str(i["number"]),
                svg.KIND_COLORS.get(i["kind"], "#777"),
                f"{i['number']}. {i['title']}: {who(i)} ({start[11:16]} to {(i['end'] or '')[11:16]})",
                ref=f"incident-{i['number']}",
            )
        )
    return out


def _rate(values: Sequence[float | None], seconds: float) -> list[float | None]:
    return [None if v is None else v / seconds for v in values]


class Axis:
    """The day's shared x axis and what every time chart of the page draws on it."""

    def __init__(self, rep: Report):
        starts = [_t(r["interval_start"]) for r in rep["intervals"]]
        self.xs = [s.timestamp() for s in starts]
        self.ticks = time_axis(starts, ZoneInfo(rep["timezone"]))
        self.markers = incident_markers(rep)
        self.sec = rep["interval_minutes"] * 60.0


def figure1(rep: Report, ax: Axis) -> list[Markup]:
    """The papers' Figure 1: Dq, N_SMTP and N_POP3, one panel each."""
    iv = rep["intervals"]
    panels: list[tuple[str, Literal["dq", "n_from", "n_pop"], str]] = [
        ("Dq: DNS queries from the mail servers", "dq", "Dq (s⁻¹)"),
        ("N_SMTP: from= lines (SMTP accesses)", "n_from", "N_SMTP (s⁻¹)"),
        ("N_POP3: POP3/IMAP logins", "n_pop", "N_POP3 (s⁻¹)"),
    ]
    return [
        Markup(
            svg.line_chart(
                title,
                ax.xs,
                [svg.Series(title, _rate([r[key] for r in iv], ax.sec), svg.PALETTE[key])],
                ax.ticks,
                ylabel,
                markers=ax.markers,
                frame=svg.Frame(height=170),
            )
        )
        for title, key, ylabel in panels
    ]


def figure2(rep: Report, ax: Axis) -> dict[str, Any]:
    """The papers' Figure 2: N_SMTP against the top senders or hosts; to= lines by status."""
    iv, fig, sec = rep["intervals"], rep["figures"], ax.sec
    series = [svg.Series("total N_SMTP", _rate([r["n_from"] for r in iv], sec), "#222", width=2.2, css="total")]
    sources = []
    for s, color in zip(fig["top_sources"], svg.SOURCE_COLORS, strict=False):
        series.append(svg.Series(f"#{s['rank']} {s['source']}", _rate(s["n_from"], sec), color, width=1.3))
        label = s["source"] + (f" ({s['reverse_name']})" if s.get("reverse_name") else "")
        sources.append({**s, "color": color, "label": label})
    dom = fig.get("most_deferred_domain")
    b_series = [
        svg.Series("to=", _rate([r["n_to"] for r in iv], sec), svg.PALETTE["n_to"]),
        svg.Series("Sent", _rate([r["n_sent"] for r in iv], sec), svg.PALETTE["n_sent"]),
        svg.Series("Deferred", _rate([r["n_deferred"] for r in iv], sec), svg.PALETTE["n_deferred"]),
    ]
    if dom:
        b_series.append(
            svg.Series(f"Deferred to {dom['domain']}", _rate(dom["n_deferred"], sec), svg.PALETTE["domain"], dash="5 3")
        )
    return {
        "sources_chart": Markup(
            svg.line_chart(
                "Total N_SMTP and the top senders or hosts",
                ax.xs,
                series,
                ax.ticks,
                "N_SMTP (s⁻¹)",
                markers=ax.markers,
                frame=svg.Frame(height=230, top=40),
            )
        ),
        "sources": sources,
        "status_chart": Markup(
            svg.line_chart(
                "to= lines by status",
                ax.xs,
                b_series,
                ax.ticks,
                "to= lines (s⁻¹)",
                markers=ax.markers,
                frame=svg.Frame(height=200),
            )
        ),
        "domain": dom,
    }


def coefficient_rows(rep: Report) -> list[dict[str, Any]]:
    """The model panel's table: each coefficient today against its history band."""
    coeffs, m = rep.get("history", {}).get("coefficients", {}), rep["model"]
    rows = []
    for k in BAND_KEYS:
        c: Mapping[str, Any] = coeffs.get(k) or {}
        lo, hi, v = c.get("lo"), c.get("hi"), c.get("value")
        if c.get("drift"):
            flag = "outside: drift"
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
                    [svg.Series(k, [p["value"] for p in pts], "#1f4e9c")],
                    ticks,
                    k,
                    bands=[svg.Band([p["lo"] for p in pts], [p["hi"] for p in pts], "band")],
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
    obs = _rate([r["dq"] for r in iv], ax.sec)
    fit = _rate([r.get("dq_fitted") for r in iv], ax.sec)
    return {
        "fitted": True,
        "timeline": Markup(
            svg.line_chart(
                "Dq observed and fitted",
                ax.xs,
                [
                    svg.Series("Dq observed", obs, svg.PALETTE["dq"]),
                    svg.Series("Dq fitted = m_s·N_from + m_p·N_pop", fit, svg.PALETTE["fitted"], dash="4 2"),
                ],
                ax.ticks,
                "Dq (s⁻¹)",
                markers=ax.markers,
                frame=svg.Frame(height=200),
            )
        ),
        "scatter": Markup(
            svg.scatter(
                "Dq observed against fitted",
                fit,
                obs,
                "fitted Dq (s⁻¹)",
                "observed Dq (s⁻¹)",
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


def _when(start: str | None, end: str | None) -> str:
    """'2002-02-16 10:00:02 to 12:59:40 (+09:00)', the end's date only when it differs."""
    if not start:
        return "–"
    a, b = _t(start), _t(end or start)
    tail = b.strftime("%H:%M:%S") if b.date() == a.date() else b.strftime("%Y-%m-%d %H:%M:%S")
    return f"{a:%Y-%m-%d %H:%M:%S} to {tail} ({a.strftime('%z')[:3]}:{a.strftime('%z')[3:]})"


def _plain(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k.replace('_', ' ')} {_plain(x)}" for k, x in v.items())
    if isinstance(v, list):
        return "; ".join(_plain(x) for x in v)
    return str(v)


def _ev_value(v: Any) -> str | list[str]:
    """An evidence value as an administrator reads it: the detector's signals as sentences with
    their points (a list), nested values as plain words."""
    if isinstance(v, list) and v and all(isinstance(x, dict) and "says" in x for x in v):
        return [x["says"] + (f" ({x['points']:+g})" if x.get("points") else "") for x in v]
    return _plain(v) if isinstance(v, dict | list) else str(v)


def card(i: Incident) -> dict[str, Any]:
    """What an incident's card shows."""
    ev = i.get("evidence") or {}
    raw = list(i.get("raw_lines", []))
    more = len(i.get("lines", [])) - len(raw)
    return {
        **i,
        "color": svg.KIND_COLORS.get(i["kind"], "#999"),
        "why": str(ev.get("why", "")),
        "when": _when(i["start"], i["end"]),
        "evidence": [(k.replace("_", " "), _ev_value(v)) for k, v in ev.items() if k != "why"],
        "raw": [
            f"{Path(ln['file']).name}:{ln['line_no']}  "
            + (text if (text := ln.get("text")) is not None else "(no longer readable)")
            for ln in raw
        ],
        "files": sorted({ln["file"] for ln in raw}),
        "shown": f" (first {len(raw)} of {len(raw) + more})" if more > 0 else "",
    }


def render(rep: Report) -> str:
    ax = Axis(rep)
    return ENV.get_template("report.html.j2").render(
        rep=rep,
        links=rep.get("links", {}),
        verdict=verdict(rep),
        drift=rep.get("history", {}).get("drift", []),
        drift_causes=DRIFT_CAUSES,
        total_keys=TOTAL_KEYS,
        dq_by_type=rep["dq_by_type"] if dq_types_known(rep) else {},
        figure1=figure1(rep, ax),
        figure2=figure2(rep, ax),
        model=model_panel(rep, ax),
        incidents=[card(i) for i in rep["incidents"]],
    )
