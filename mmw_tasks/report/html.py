"""report.html: one self-contained page per day, rendered from the report dict alone.

Inline SVG figures (mmw_tasks.report.svg), inline CSS, no script and nothing fetched at view time:
the papers' Figure 1 (Dq, N_SMTP, N_POP3 in s⁻¹) and Figure 2 (N_SMTP against the top senders or
hosts; to=, Sent, Deferred and the most deferred domain), the model panel (Dq observed against
fitted, the coefficients against their history band), one card per incident with the raw lines
behind it, and links to the previous and next day.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from html import escape
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from mmw_tasks.report import svg
from mmw_tasks.report.model import (
    ATTENTION,
    BAND_KEYS,
    COEFFICIENT_NAMES,
    DRIFT_CAUSES,
    TOTAL_KEYS,
    Incident,
    Report,
    dq_types_known,
    partial_lines,
    who,
)

CSS = """
body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;color:#222;margin:0;
background:#fafafa}
main{max-width:900px;margin:0 auto;padding:12px 20px 40px;background:#fff}
h1{font-size:22px;margin:8px 0 2px}h2{font-size:18px;margin:28px 0 6px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:4px 0}
nav{display:flex;justify-content:space-between;font-size:13px;margin:6px 0 10px}
a{color:#1f4e9c}
.summary{font-size:15px;margin:6px 0}
.alert{border-left:5px solid #c0392b;background:#fdecea;padding:8px 12px;margin:10px 0}
.note{border-left:5px solid #999;background:#f3f3f3;padding:6px 12px;margin:6px 0;font-size:13px}
table{border-collapse:collapse;margin:6px 0;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right}th{background:#f2f2f2}
td.l,th.l{text-align:left}
svg.chart{display:block;max-width:100%;height:auto;font-size:11px;margin:2px 0}
svg .tick{fill:#555}svg .legend{fill:#333}svg .ylabel,svg .xlabel{fill:#333;font-size:11px}
svg .flag{font-weight:bold;font-size:11px}
.caption{font-size:12px;color:#555;margin:0 0 10px}
.pair{display:flex;gap:12px;flex-wrap:wrap;align-items:flex-start}.side{flex:1 1 420px;min-width:0}
.incident-card{border:1px solid #ddd;border-left:6px solid #999;border-radius:4px;padding:8px 12px;
margin:12px 0}
.incident-card dl{display:grid;grid-template-columns:110px 1fr;gap:2px 10px;margin:6px 0}
table.evidence th{white-space:nowrap;font-weight:600}
.incident-card dt{color:#666}.incident-card dd{margin:0}
pre.raw{background:#f6f6f6;border:1px solid #e3e3e3;padding:6px 8px;font-size:11.5px;overflow-x:auto;
white-space:pre;margin:6px 0}
.drift td{background:#fdecea}
footer{font-size:12px;color:#666;margin-top:30px}
.scroll{overflow-x:auto}table.trends{font-size:12px}table.trends th{font-weight:600}
table.trends td:first-child{white-space:nowrap}
"""


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


def figure1(rep: Report, xs: list[float], ticks: list[tuple[float, str]], markers: list[svg.Marker], sec: float) -> str:
    iv = rep["intervals"]
    frame = svg.Frame(height=170)
    panels: list[tuple[str, Literal["dq", "n_from", "n_pop"], str]] = [
        ("Dq: DNS queries from the mail servers", "dq", "Dq (s⁻¹)"),
        ("N_SMTP: from= lines (SMTP accesses)", "n_from", "N_SMTP (s⁻¹)"),
        ("N_POP3: POP3/IMAP logins", "n_pop", "N_POP3 (s⁻¹)"),
    ]
    charts = [
        svg.line_chart(
            title,
            xs,
            [svg.Series(title, _rate([r[key] for r in iv], sec), svg.PALETTE[key])],
            ticks,
            ylabel,
            markers=markers,
            frame=svg.Frame(height=frame.height),
        )
        for title, key, ylabel in panels
    ]
    return (
        "<section id='figure1'><h2>Figure 1. Dq, N_SMTP and N_POP3 per interval</h2>"
        + "".join(charts)
        + f"<p class='caption'>Per {rep['interval_minutes']}-minute interval, in events per second, "
        f"local time ({escape(rep['timezone'])}). Shaded spans are the incidents below, by number.</p>"
        "</section>"
    )


def figure2(rep: Report, xs: list[float], ticks: list[tuple[float, str]], markers: list[svg.Marker], sec: float) -> str:
    iv, fig = rep["intervals"], rep["figures"]
    series = [svg.Series("total N_SMTP", _rate([r["n_from"] for r in iv], sec), "#222", width=2.2, css="total")]
    rows = []
    for s, color in zip(fig["top_sources"], svg.SOURCE_COLORS, strict=False):
        label = s["source"] + (f" ({s['reverse_name']})" if s.get("reverse_name") else "")
        series.append(svg.Series(f"#{s['rank']} {s['source']}", _rate(s["n_from"], sec), color, width=1.3))
        rows.append(
            f"<tr><td><span style='color:{color}'>■</span> {s['rank']}</td>"
            f"<td class='l'>{escape(label)}</td>"
            f"<td>{s['senders']}</td><td>{s['total_from']}</td><td>{s['total_to']}</td>"
            f"<td>{s['total_user_unknown']}</td></tr>"
        )
    a = svg.line_chart(
        "Total N_SMTP and the top senders or hosts",
        xs,
        series,
        ticks,
        "N_SMTP (s⁻¹)",
        markers=markers,
        frame=svg.Frame(height=230, top=40),
    )
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
    b = svg.line_chart(
        "to= lines by status", xs, b_series, ticks, "to= lines (s⁻¹)", markers=markers, frame=svg.Frame(height=200)
    )
    head = (
        "<tr><th>#</th><th class='l'>sender or host (reverse name)</th><th>senders</th>"
        "<th>from=</th><th>to=</th><th>User unknown</th></tr>"
    )
    table = (
        f"<table class='sources'>{head}{''.join(rows)}</table>" if rows else "<p class='caption'>No mail this day.</p>"
    )
    most = (
        f"The most deferred domain was <b>{escape(dom['domain'])}</b> ({dom['total_deferred']} deferrals)."
        if dom
        else "Nothing was deferred."
    )
    return (
        "<section id='figure2'><h2>Figure 2. N_SMTP by sender or host; deliveries</h2>"
        + a
        + f"<p class='caption'>(a) All from= lines against the {len(rows)} senders or hosts with the "
        "most of them (a host when the mail came with a client address, else the sender).</p>"
        + table
        + b
        + f"<p class='caption'>(b) to= lines, Sent and Deferred. {most}</p></section>"
    )


def coefficient_table(rep: Report) -> str:
    h, m = rep.get("history", {}), rep["model"]
    coeffs = h.get("coefficients", {})
    rows = []
    for k in BAND_KEYS:
        c: Mapping[str, Any] = coeffs.get(k) or {}
        lo, hi = c.get("lo"), c.get("hi")
        band = "n/a" if lo is None else f"{lo:.4g} to {hi:.4g}"
        cls = " class='drift'" if c.get("drift") else ""
        v = c.get("value")
        if c.get("drift"):
            flag = "<b>outside: drift</b>"
        elif lo is None or v is None:
            flag = "no history"
        elif lo <= v <= hi:
            flag = "inside"
        else:
            flag = "outside (history too short to alert)"
        v = m.get(k)
        today = "n/a" if v is None else f"{v:.4g}"
        rows.append(
            f"<tr{cls}><td class='l'>{escape(COEFFICIENT_NAMES[k])}</td><td>{today}</td>"
            f"<td>{band}</td><td>{c.get('history_days', 0)}</td><td class='l'>{flag}</td></tr>"
        )
    extra = (
        f"<p class='caption'>Band: median of the earlier days ± {h.get('band_k')} × 1.4826 × MAD "
        f"(at least {h.get('band_floor', 0) * 100:.0f}% of the median), over the last "
        f"{h.get('history_days')} days. Residual against N_deferred: m_sd = {_fmt(m.get('m_sd'))}, "
        f"R² = {_fmt(m.get('r2_sd'))}.</p>"
    )
    return (
        "<table class='coefficients'><tr><th class='l'>coefficient</th><th>today</th>"
        "<th>history band</th><th>days</th><th class='l'></th></tr>" + "".join(rows) + "</table>" + extra
    )


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def band_charts(rep: Report) -> str:
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
    return "<div class='pair bands'>" + "".join(out) + "</div>" if out else ""


def model_panel(
    rep: Report, xs: list[float], ticks: list[tuple[float, str]], markers: list[svg.Marker], sec: float
) -> str:
    iv, m = rep["intervals"], rep["model"]
    if m.get("m_s") is None:
        return (
            "<section id='model'><h2>Model</h2><p>No fit this day (too few intervals with mail or DNS "
            "queries).</p></section>"
        )
    obs = _rate([r["dq"] for r in iv], sec)
    fit = _rate([r.get("dq_fitted") for r in iv], sec)
    ts = svg.line_chart(
        "Dq observed and fitted",
        xs,
        [
            svg.Series("Dq observed", obs, svg.PALETTE["dq"]),
            svg.Series("Dq fitted = m_s·N_from + m_p·N_pop", fit, svg.PALETTE["fitted"], dash="4 2"),
        ],
        ticks,
        "Dq (s⁻¹)",
        markers=markers,
        frame=svg.Frame(height=200),
    )
    sc = svg.scatter(
        "Dq observed against fitted", fit, obs, "fitted Dq (s⁻¹)", "observed Dq (s⁻¹)", svg.PALETTE["dq"], size=250
    )
    h = rep.get("history", {})
    short = (
        f"<p class='note'>History too short for a drift alert: {h.get('days_available', 0)} earlier "
        f"day(s), {h.get('min_history')} needed. The band is shown as far as it goes.</p>"
        if h.get("too_short")
        else ""
    )
    return (
        f"<section id='model'><h2>Model: Dq = m_s·N_from + m_p·N_pop</h2>{ts}"
        f"<div class='pair'>{sc}<div class='side'>{coefficient_table(rep)}{short}</div></div>"
        f"{band_charts(rep)}</section>"
    )


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


def _ev_cell(v: Any) -> str:
    """An evidence value as an administrator reads it: the detector's signals as sentences with
    their points, nested values as plain words."""
    if isinstance(v, list) and v and all(isinstance(x, dict) and "says" in x for x in v):
        return (
            "<ul>"
            + "".join(
                f"<li>{escape(x['says'])}" + (f" ({x['points']:+g})" if x.get("points") else "") + "</li>" for x in v
            )
            + "</ul>"
        )
    return escape(_plain(v) if isinstance(v, dict | list) else str(v))


def incident_card(i: Incident) -> str:
    color = svg.KIND_COLORS.get(i["kind"], "#999")
    ev = i.get("evidence") or {}
    host = i.get("client_ip") or "–"
    ev_rows = "".join(
        f"<tr><th class='l'>{escape(k.replace('_', ' '))}</th><td class='l'>{_ev_cell(v)}</td></tr>"
        for k, v in ev.items()
        if k != "why"
    )
    raw = list(i.get("raw_lines", []))
    files = sorted({ln["file"] for ln in raw})
    raw_txt = "\n".join(
        f"{Path(ln['file']).name}:{ln['line_no']}  {ln['text']}"
        if ln.get("text") is not None
        else f"{Path(ln['file']).name}:{ln['line_no']}  (no longer readable)"
        for ln in raw
    )
    more = len(i.get("lines", [])) - len(raw)
    shown = f" (first {len(raw)} of {len(raw) + more})" if more > 0 else ""
    return (
        f"<article class='incident-card kind-{escape(i['kind'])}' id='incident-{i['number']}' "
        f"style='border-left-color:{color}'>"
        f"<h3><span style='color:{color}'>{i['number']}.</span> {escape(i['title'])}</h3><dl>"
        f"<dt>what</dt><dd>{escape(i['kind'])}: {escape(str(ev.get('why', '')))}</dd>"
        f"<dt>sender</dt><dd>{escape(i.get('sender') or '–')}</dd>"
        f"<dt>host</dt><dd>{escape(host)}</dd>"
        f"<dt>reverse name</dt><dd>{escape(i.get('reverse_name') or '–')}</dd>"
        + (f"<dt>domain</dt><dd>{escape(i['domain'])}</dd>" if i.get("domain") else "")
        + f"<dt>when</dt><dd>{escape(_when(i['start'], i['end']))}</dd>"
        f"<dt>score</dt><dd>{i['score']}</dd></dl>"
        + (f"<table class='evidence'>{ev_rows}</table>" if ev_rows else "")
        + (
            f"<p class='caption'>Raw lines behind it{shown}"
            f", from {escape(', '.join(files))}:</p><pre class='raw'>{escape(raw_txt)}</pre>"
            if raw
            else "<p class='caption'>No raw lines cited.</p>"
        )
        + "</article>"
    )


def render(rep: Report) -> str:
    tz = ZoneInfo(rep["timezone"])
    starts = [_t(r["interval_start"]) for r in rep["intervals"]]
    xs = [s.timestamp() for s in starts]
    ticks = time_axis(starts, tz)
    sec = rep["interval_minutes"] * 60.0
    markers = incident_markers(rep)
    t = rep["totals"]
    found = [i for i in rep["incidents"] if i["kind"] in ATTENTION]
    summary = (
        f"<b>{len(found)} incident(s) need attention</b>, {len(rep['incidents']) - len(found)} benign burst(s) noted."
        if rep["incidents"]
        else "No incidents."
    )
    drift = rep.get("history", {}).get("drift", [])
    alert = (
        f"<div class='alert drift-alert'><b>Drift alert:</b> {escape(', '.join(drift))} left the band "
        f"of the last {rep['history']['history_days']} days. Is it {DRIFT_CAUSES}?</div>"
        if drift
        else ""
    )
    partial = partial_lines(rep)
    if partial:
        alert += (
            "<div class='alert partial-alert'><b>Partial day:</b> "
            + "; ".join(escape(x) for x in partial)
            + ". Totals and incidents miss what these servers logged then.</div>"
        )
    links = rep.get("links", {})
    nav = (
        f"<nav><a rel='prev' href='{escape(links.get('previous', '#'))}'>← previous day</a>"
        f"<a href='{escape(links.get('trends', '#'))}'>trends</a>"
        f"<a rel='next' href='{escape(links.get('next', '#'))}'>next day →</a></nav>"
    )
    totals = (
        "<table class='totals'><tr>"
        + "".join(f"<th>{k}</th>" for k in TOTAL_KEYS)
        + "</tr><tr>"
        + "".join(f"<td>{t[k]}</td>" for k in TOTAL_KEYS)
        + "</tr></table>"
    )
    if dq_types_known(rep):
        by_type = rep["dq_by_type"]
        totals += (
            "<table class='totals dq-by-type'><caption>Dq by query type</caption><tr>"
            + "".join(f"<th>{escape(k)}</th>" for k in by_type)
            + "</tr><tr>"
            + "".join(f"<td>{v}</td>" for v in by_type.values())
            + "</tr></table>"
        )
    cards = "".join(incident_card(i) for i in rep["incidents"]) or "<p>No incidents this day.</p>"
    notes = "".join(f"<p class='note'>{escape(n)}</p>" for n in rep.get("notes", []))
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>mmw {escape(rep['site'])} {rep['day']}</title><style>{CSS}</style></head><body><main>"
        f"{nav}<h1>mmw daily report: {escape(rep['site'])}, {rep['day']}</h1>"
        f"<p class='caption'>Local day {rep['day']} 00:00 to 24:00, {escape(rep['timezone'])}.</p>"
        f"<p class='summary'>{summary}</p>{alert}{totals}"
        + figure1(rep, xs, ticks, markers, sec)
        + figure2(rep, xs, ticks, markers, sec)
        + model_panel(rep, xs, ticks, markers, sec)
        + f"<section id='incidents'><h2>Incidents</h2>{cards}</section>"
        + (f"<section id='notes'><h2>Notes</h2>{notes}</section>" if notes else "")
        + f"{nav}<footer>The same report as <a href='report.json'>report.json</a> and "
        "<a href='report.md'>report.md</a>. Made by mmw.</footer></main></body></html>\n"
    )
