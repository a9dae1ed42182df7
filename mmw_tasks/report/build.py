"""The daily report (contract section 5): report.json, report.md and report.html per day.

`gather` reads everything the report shows from the lake (and the raw lines back from the log
files) into one JSON-able dict; report.md and report.html are rendered from that dict alone, so
report.json is the whole report and the other two can be rebuilt from it.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import duckdb
import polars as pl

from mmw_tasks import lake
from mmw_tasks import sql as sqlfiles
from mmw_tasks.config import Site
from mmw_tasks.parse import rawlines
from mmw_tasks.report import html as report_html
from mmw_tasks.report import words
from mmw_tasks.report.headline import QUIET, benign_line, headline, line, ordered, subject
from mmw_tasks.report.model import (
    ATTENTION,
    BAND_KEYS,
    DRIFT_CAUSES,
    KIND_TITLES,
    MODEL_KEYS,
    TOTAL_KEYS,
    Band,
    DeferredDomain,
    Figures,
    History,
    HostCurve,
    Incident,
    Interval,
    LineRef,
    Model,
    Report,
    SeriesPoint,
    TopSource,
    Totals,
    band_params,
    dq_types_known,
    fit_problems,
    partial_lines,
    report_dir,
)

NO_DNS = (
    'No DNS server: the site config has no [[servers]] with role = "dns", so Dq is not measured '
    "(0) and the model is not fitted (its coefficients are null but q); hosts are judged on the mail "
    "logs alone, without the DNS signals."
)


def iso_local(ts: datetime | None, tz: ZoneInfo) -> str | None:
    return ts.astimezone(tz).isoformat() if ts is not None else None


def _num(v: Any) -> float | None:
    """A JSON number, or null for a missing or non-finite value (NaN is not JSON)."""
    if v is None:
        return None
    v = float(v)
    return round(v, 6) if math.isfinite(v) else None


def build(
    site: Site,
    day: date,
    totals: dict[str, Any],
    fit: dict[str, Any],
    incidents: list[dict[str, Any]],
    intervals: list[dict[str, Any]],
    notes: list[str],
    *,
    figures: Figures,
    history: History,
    raw: dict[tuple[str, int], str | None] | None = None,
    reverse_names: dict[str, str | None] | None = None,
    dq_by_type: dict[str, int] | None = None,
) -> Report:
    """The report from the lake's rows: `totals` the day's sums of TOTAL_KEYS, `fit` its model_fits
    row (or {}), `incidents` its incidents rows (`lines` and `evidence` as JSON text or parsed),
    `intervals` its intervals rows. `raw` maps (file, line_no) to the line's text (read back from
    the log files here: detection cites lines by file and number only)."""
    tz = site.tz
    raw, reverse_names = raw or {}, reverse_names or {}
    ms, mp = _num(fit.get("m_s")), _num(fit.get("m_p"))

    def incident(n: int, i: dict[str, Any]) -> Incident:
        lines: list[LineRef] = json.loads(i["lines"]) if isinstance(i["lines"], str) else (i["lines"] or [])
        card = {
            "number": n,
            "kind": i["kind"],
            "title": KIND_TITLES.get(i["kind"], i["kind"]),
            "start": iso_local(i["start"], tz),
            "end": iso_local(i["end"], tz),
            "sender": i["sender"],
            "client_ip": i["client_ip"],
            "reverse_name": reverse_names.get(i["client_ip"]) if i["client_ip"] else None,
            **({"domain": i["domain"]} if i.get("domain") else {}),
            "score": i["score"],
            "evidence": json.loads(i["evidence"]) if isinstance(i["evidence"], str) else i["evidence"],
            "lines": [{**ln, "text": text} if (text := raw.get(_ref(ln))) is not None else ln for ln in lines],
            "raw_lines": [{**ln, "text": raw.get(_ref(ln))} for ln in lines[: site.report.raw_lines]],
        }
        return cast(Incident, card)  # with `domain` where the incident has one, in its place

    def interval(r: dict[str, Any]) -> Interval:
        # every column of the intervals dataset but site and day, in its order (so report.json
        # shows any column added to sql/aggregate/intervals.sql), then the model's Dq
        row = {
            **{k: v for k, v in r.items() if k not in ("site", "day")},
            "interval_start": iso_local(r["interval_start"], tz),
            "dq_fitted": (round(ms * r["n_from"] + (mp or 0.0) * r["n_pop"], 3) if ms is not None else None),
        }
        return cast(Interval, row)

    model = cast(Model, {k: _num(fit.get(k)) for k in MODEL_KEYS})
    problems = fit_problems(cast(dict[str, float | None], model), site.report.min_r2)
    model["reliable"], model["unreliable_because"] = not problems, problems
    # most severe first (contract section 5), numbered in that order on the figures and cards
    cards = ordered([incident(0, i) for i in incidents])
    for n, card in enumerate(cards, 1):
        card["number"] = n
    return {
        "day": str(day),
        "site": site.name,
        "timezone": site.timezone,
        "interval_minutes": site.interval_minutes,
        "headline": headline({"incidents": cards}),
        "totals": cast(Totals, {**{k: int(totals.get(k) or 0) for k in TOTAL_KEYS}, "partial": False}),
        "dq_by_type": dq_by_type or {},
        "model": model,
        "incidents": cards,
        "notes": notes,
        "intervals": [interval(r) for r in intervals],
        "figures": figures,
        "history": history,
        "links": {
            "previous": f"../day={day - timedelta(days=1)}/report.html",
            "next": f"../day={day + timedelta(days=1)}/report.html",
            "trends": "../trends.html",
        },
    }


def _ref(line: LineRef) -> tuple[str, int]:
    return line["file"], int(line["line_no"])


def _aligned(starts: list[datetime], df: pl.DataFrame, column: str) -> list[int]:
    """A sparse per-interval column as a full list, zeros where the interval has no row."""
    got = dict(zip(df["interval_start"].to_list(), df[column].to_list(), strict=True))
    return [int(got.get(s) or 0) for s in starts]


def figures_of(
    con: duckdb.DuckDBPyConnection, site: Site, d: date, starts: list[datetime], hosts: list[str] | None = None
) -> Figures:
    """The figures' data: the top senders or hosts per interval and the most deferred domain
    (figure 2), and the N_SMTP(i) of each of `hosts` (the worm suspects)."""
    top = sqlfiles.query(con, "report/top_sources", {"day": d, "top": site.report.top_sources}).pl()
    sources: list[TopSource] = []
    for _, g in top.group_by(["rank"], maintain_order=True):
        first = g.row(0, named=True)
        sources.append(
            {
                "rank": first["rank"],
                "source": first["source"],
                "client_ip": first["client_ip"],
                "reverse_name": first["reverse_name"],
                "senders": first["senders"],
                "total_from": first["total_from"],
                "total_to": first["total_to"],
                "total_user_unknown": first["total_user_unknown"],
                "n_from": _aligned(starts, g, "n_from"),
            }
        )
    dom = sqlfiles.query(con, "report/most_deferred_domain", {"day": d}).pl()
    deferred: DeferredDomain | None = None
    if dom.height:
        deferred = {
            "domain": dom["recipient_domain"][0],
            "total_deferred": int(dom["n_deferred"].sum()),
            "n_deferred": _aligned(starts, dom, "n_deferred"),
        }
    curves: list[HostCurve] = []
    if hosts:
        per = sqlfiles.query(con, "report/host_intervals", {"day": d, "client_ips": hosts}).pl()
        for ip in hosts:
            g = per.filter(pl.col("client_ip") == ip)
            curves.append(
                {
                    "client_ip": ip,
                    "n_from": _aligned(starts, g, "n_from"),
                    "n_to": _aligned(starts, g, "n_to"),
                    "n_user_unknown": _aligned(starts, g, "n_user_unknown"),
                }
            )
    return {"top_sources": sources, "most_deferred_domain": deferred, "hosts": curves}


def history_of(con: duckdb.DuckDBPyConnection, site: Site, d: date) -> History:
    """The day's coefficients against the trailing days' band, and the drift alert."""
    r = site.report
    bands = sqlfiles.query(con, "trends/coefficient_bands", band_params(site)).pl()
    bands = bands.filter((pl.col("day") <= d) & (pl.col("day") >= d - timedelta(days=r.history_days)))
    today = {row["coefficient"]: row for row in bands.filter(pl.col("day") == d).iter_rows(named=True)}

    def band(row: dict[str, Any]) -> Band:
        # the columns of sql/trends/coefficient_bands.sql but day and coefficient, in their order
        return cast(
            Band,
            {x: (_num(v) if isinstance(v, float) else v) for x, v in row.items() if x not in ("day", "coefficient")},
        )

    coefficients = {k: band(today[k]) for k in BAND_KEYS if k in today}
    days_available = max((c["history_days"] for c in coefficients.values()), default=0)
    series: dict[str, list[SeriesPoint]] = {}
    for (name,), g in bands.sort("day").group_by(["coefficient"], maintain_order=True):
        series[name] = [
            {
                "day": str(row["day"]),
                "value": _num(row["value"]),
                "lo": _num(row["lo"]),
                "hi": _num(row["hi"]),
                "reliable": bool(row["reliable"]),
            }
            for row in g.iter_rows(named=True)
        ]
    return {
        "history_days": r.history_days,
        "min_history": r.min_history,
        "band_k": r.band_k,
        "band_floor": r.band_floor,
        "days_available": days_available,
        "day_kind": "weekend" if d.weekday() >= 5 else "weekday",
        "min_r2": r.min_r2,
        "too_short": days_available < r.min_history,
        "coefficients": coefficients,
        "series": series,
        "drift": [k for k, c in coefficients.items() if c["drift"]],
    }


def history_notes(history: History, n_attention: int, problems: list[str] | None = None) -> list[str]:
    """The notes on the day's coefficients: an unreliable fit (`problems`: model.fit_problems), a
    history too short to judge drift, each drift."""
    notes = []
    kind = history.get("day_kind", "")
    if problems and problems != ["no fit this day"]:
        notes.append(
            f"The day's fit is unreliable ({'; '.join(problems)}): its coefficients are not "
            "judged against their bands and are left out of later days' bands."
        )
    if history.get("too_short"):
        notes.append(
            f"History too short for a drift alert: {history['days_available']} earlier "
            f"{kind + ' ' if kind else ''}day(s) with a reliable fit in the last {history['history_days']}, "
            f"at least {history['min_history']} needed."
        )
    for k in history.get("drift", []):
        c = history["coefficients"][k]
        notes.append(
            f"Drift: {k} = {c['value']:.4g} left its band {c['lo']:.4g} to {c['hi']:.4g} "
            f"(median of {c['history_days']} earlier {kind + ' ' if kind else ''}days {c['median']:.4g}). "
            f"Is it {DRIFT_CAUSES}?" + (" Today's incidents may explain it." if n_attention else "")
        )
    return notes


def raw_lines_for(
    con: duckdb.DuckDBPyConnection, site: Site, d: date, incidents: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Incidents whose detection cited no lines get some from the lake: the deferred deliveries of
    a deferred_surge, the DNS queries of a dns_anomaly. Returns the incidents with `lines` set."""
    out = []
    for i in incidents:
        lines = json.loads(i["lines"]) if i.get("lines") else []
        if not lines and i["kind"] in ("deferred_surge", "dns_anomaly") and i["start"] is not None:
            rows = sqlfiles.query(
                con,
                "report/evidence_lines",
                {
                    "day": d,
                    "domain": i.get("domain") if i["kind"] == "deferred_surge" else None,
                    "start": i["start"],
                    "end": i["end"],
                    "limit": site.report.raw_lines,
                    "mail_server_ips": list(site.mail_server_ips),
                },
            ).pl()
            lines = rows.select("file", "line_no", "event").to_dicts()
        out.append({**i, "lines": lines})
    return out


def gather(con: duckdb.DuckDBPyConnection, site: Site, d: date, notes: list[str]) -> Report:
    """Everything the day's report shows, from the lake and the log files."""
    iv = sqlfiles.query(con, "report/day_intervals", {"day": d}).pl()
    totals = iv.select(pl.col(list(TOTAL_KEYS)).sum()).row(0, named=True)
    fits = sqlfiles.query(con, "report/day_fit", {"day": d}).pl()
    fit = fits.row(0, named=True) if fits.height else {}
    inc = sqlfiles.query(con, "report/day_incidents", {"day": d}).pl()
    incidents = raw_lines_for(con, site, d, inc.to_dicts())
    wanted = [_ref(ln) for i in incidents for ln in i["lines"]]  # every cited line's text
    ips = sorted({i["client_ip"] for i in incidents if i["client_ip"]})
    suspects = sorted({i["client_ip"] for i in incidents if i["kind"] == "mmw_suspect" and i["client_ip"]})
    names = dict(sqlfiles.query(con, "report/reverse_names", {"day": d, "client_ips": ips}).fetchall()) if ips else {}
    history = history_of(con, site, d)
    by_type = (
        dict(
            sqlfiles.query(
                con, "report/dq_by_type", {"day": d, "mail_server_ips": list(site.mail_server_ips)}
            ).fetchall()
        )
        if lake.has_files(site.lake, "dns_queries")
        else {}
    )
    n_attention = sum(i["kind"] in ATTENTION for i in incidents)
    return build(
        site,
        d,
        totals,
        fit,
        incidents,
        iv.to_dicts(),
        notes
        + history_notes(
            history, n_attention, fit_problems({k: _num(fit.get(k)) for k in MODEL_KEYS}, site.report.min_r2)
        ),
        figures=figures_of(con, site, d, iv["interval_start"].to_list(), suspects),
        history=history,
        raw=rawlines.read_lines(wanted),
        reverse_names=names,
        dq_by_type=by_type,
    )


def _f(v: float | None, digits: int = 2) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _model_lines(rep: Report) -> list[str]:
    """The model paragraph of report.md: the day's coefficients and their band."""
    m = rep["model"]
    lines = [
        "## Model",
        "",
        f"Each SMTP access cost the mail server {_f(m['m_s'])} DNS queries and each POP3 login "
        f"{_f(m['m_p'])} (fit R² = {_f(m['r2'], 3)}; local share q = {_f(m['q'])}, "
        f"hosts per remote domain n = {_f(m['n'])}). Deferred mail explains R² = {_f(m['r2_sd'], 3)} "
        f"of what the model leaves over.",
    ]
    band = rep.get("history", {}).get("coefficients", {}).get("m_s")
    if band and band.get("lo") is not None:
        lines.append(
            f"History band of m_s over {band['history_days']} earlier day(s): {_f(band['lo'])} to {_f(band['hi'])}."
        )
    lines.append("")
    return lines


def markdown(rep: Report, benign_lines: int = report_html.BENIGN_LINES) -> str:
    """A plain-text report short enough to mail: the headline, each incident that needs attention
    in a paragraph, benign traffic one line each, the totals, the model, the notes."""
    t, iv = rep["totals"], rep["interval_minutes"]
    lines = [f"# mmw daily report: {rep['site']}, {rep['day']} ({rep['timezone']})", ""]
    attention, listed, rest = report_html.split(rep, benign_lines)
    lines += [f"**{line(i)}**  " for i in attention] or [f"**{QUIET}**  "]  # two spaces: a line break
    partial = partial_lines(rep)  # right after the headline: why the day counts less than it seems
    if partial:
        lines.append("**Partial day:** " + "; ".join(partial) + ".  ")
    if listed or rest:
        n = len(listed) + len(rest)
        lines.append(f"{n} benign incident{'s' if n != 1 else ''} (mailing lists, bulk mailings) noted below.")
    drift = rep.get("history", {}).get("drift", [])
    if drift:
        lines += [
            "",
            f"**Drift alert:** {', '.join(drift)} left the band of the last "
            f"{rep['history']['history_days']} days ({DRIFT_CAUSES}?).",
        ]
    lines.append("")
    if attention:
        lines += ["## Incidents that need attention", ""]
    for i in attention:
        ev = i["evidence"]
        lines += [f"### {i['number']}. {i['title']}: {subject(i)}", ""]
        flagged = f"; first flagged {words.clock(ev['first_flagged'])}" if ev.get("first_flagged") else ""
        lines.append(f"- when: {words.when(i['start'], i['end'])}{flagged}; score {float(i['score']):.2f} of 1")
        signals = words.signal_lines(ev)
        lines += ["- why:", *[f"  - {s}" for s in signals]] if signals else [f"- why: {ev.get('why', '')}"]
        rows = words.evidence_rows(ev, iv)[:6]
        if rows:
            lines.append("- evidence: " + "; ".join(f"{k} {v}" for k, v in rows))
        quoted = [text for ln in i.get("raw_lines", []) if (text := ln.get("text"))][:3]
        if quoted:
            lines += ["", "```", *quoted, "```"]
        lines.append("")
    if listed:
        lines += ["## Benign traffic", "", *[f"- {i['number']}. {benign_line(i)}" for i in listed]]
        for r in report_html.benign_rest(rest):
            lines.append(f"- and {r['incidents']} more: {r['kind'].lower()}, {r['messages']} messages")
        lines.append("")
    lines += [
        "## Totals",
        "",
        "| DNS queries (Dq) | from= | to= | sent | deferred | POP3/IMAP logins | User unknown |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {t['dq']:,} | {t['n_from']:,} | {t['n_to']:,} | {t['n_sent']:,} | {t['n_deferred']:,} "
        f"| {t['n_pop']:,} | {t['n_user_unknown']:,} |",
        "",
    ]
    if dq_types_known(rep):
        lines += ["Dq by query type: " + ", ".join(f"{k} {v:,}" for k, v in rep["dq_by_type"].items()) + ".", ""]
    if rep.get("dns_servers") == []:
        lines += ["## Model", "", "Not fitted: the site has no DNS server, so there is no Dq to model.", ""]
    else:
        lines += _model_lines(rep)
    lines += [f"> {note}" for note in rep["notes"]]
    return "\n".join(lines) + "\n"


def html_page(rep: Report, benign_lines: int = report_html.BENIGN_LINES) -> str:
    return report_html.render(rep, benign_lines)


def write(site: Site, rep: Report) -> Path:
    """Write the report's files into the day's partition of `reports` (the generation being written,
    if any: lake.partition_dir); returns the public path of report.json (report_dir)."""
    out = lake.partition_dir(site.lake, "reports", rep["day"])
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("report.md", markdown(rep, site.report.benign_lines)),
        ("report.html", html_page(rep, site.report.benign_lines)),
        ("report.json", json.dumps(rep, indent=2, default=str) + "\n"),
    ):
        with lake.atomic_file(out / name) as tmp:
            tmp.write_text(text)
    return report_dir(site, rep["day"]) / "report.json"
