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
    Incident,
    Interval,
    LineRef,
    Model,
    Report,
    SeriesPoint,
    TopSource,
    Totals,
    dq_types_known,
    partial_lines,
    report_dir,
    who,
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

    return {
        "day": str(day),
        "site": site.name,
        "timezone": site.timezone,
        "interval_minutes": site.interval_minutes,
        "totals": cast(Totals, {**{k: int(totals.get(k) or 0) for k in TOTAL_KEYS}, "partial": False}),
        "dq_by_type": dq_by_type or {},
        "model": cast(Model, {k: _num(fit.get(k)) for k in MODEL_KEYS}),
        "incidents": [incident(n, i) for n, i in enumerate(incidents, 1)],
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


def figures_of(con: duckdb.DuckDBPyConnection, site: Site, d: date, starts: list[datetime]) -> Figures:
    """Figure 2's data: the top senders or hosts per interval, and the most deferred domain."""
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
    return {"top_sources": sources, "most_deferred_domain": deferred}


def history_of(con: duckdb.DuckDBPyConnection, site: Site, d: date) -> History:
    """The day's coefficients against the trailing days' band, and the drift alert."""
    r = site.report
    bands = sqlfiles.query(
        con,
        "trends/coefficient_bands",
        {"history_days": r.history_days, "band_k": r.band_k, "band_floor": r.band_floor, "min_history": r.min_history},
    ).pl()
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
            {"day": str(row["day"]), "value": _num(row["value"]), "lo": _num(row["lo"]), "hi": _num(row["hi"])}
            for row in g.iter_rows(named=True)
        ]
    return {
        "history_days": r.history_days,
        "min_history": r.min_history,
        "band_k": r.band_k,
        "band_floor": r.band_floor,
        "days_available": days_available,
        "too_short": days_available < r.min_history,
        "coefficients": coefficients,
        "series": series,
        "drift": [k for k, c in coefficients.items() if c["drift"]],
    }


def history_notes(history: History, n_attention: int) -> list[str]:
    notes = []
    if history.get("too_short"):
        notes.append(
            f"History too short for a drift alert: {history['days_available']} earlier day(s) in "
            f"the last {history['history_days']}, at least {history['min_history']} needed."
        )
    for k in history.get("drift", []):
        c = history["coefficients"][k]
        notes.append(
            f"Drift: {k} = {c['value']:.4g} left its band {c['lo']:.4g} to {c['hi']:.4g} "
            f"(median of {c['history_days']} earlier days {c['median']:.4g}). Is it {DRIFT_CAUSES}?"
            + (" Today's incidents may explain it." if n_attention else "")
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
        notes + history_notes(history, n_attention),
        figures=figures_of(con, site, d, iv["interval_start"].to_list()),
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


def markdown(rep: Report) -> str:
    """A plain-text summary short enough to mail: totals, model, drift, one paragraph per incident."""
    t = rep["totals"]
    lines = [f"# mmw daily report: {rep['site']}, {rep['day']} ({rep['timezone']})", ""]
    found = [i for i in rep["incidents"] if i["kind"] in ATTENTION]
    lines.append(
        f"**{len(found)} incident(s) need attention**, {len(rep['incidents']) - len(found)} benign burst(s) noted."
        if rep["incidents"]
        else "No incidents."
    )
    partial = partial_lines(rep)
    if partial:
        lines += ["", "**Partial day:** " + "; ".join(partial) + "."]
    drift = rep.get("history", {}).get("drift", [])
    if drift:
        lines += [
            "",
            f"**Drift alert:** {', '.join(drift)} left the band of the last "
            f"{rep['history']['history_days']} days ({DRIFT_CAUSES}?).",
        ]
    lines += [
        "",
        "## Totals",
        "",
        "| DNS queries (Dq) | from= | to= | sent | deferred | POP3 logins | User unknown |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {t['dq']} | {t['n_from']} | {t['n_to']} | {t['n_sent']} | {t['n_deferred']} | {t['n_pop']} "
        f"| {t['n_user_unknown']} |",
        "",
    ]
    if dq_types_known(rep):
        lines += ["Dq by query type: " + ", ".join(f"{k} {v}" for k, v in rep["dq_by_type"].items()) + ".", ""]
    if rep.get("dns_servers") == []:
        lines += ["## Model", "", "Not fitted: the site has no DNS server, so there is no Dq to model.", ""]
    else:
        lines += _model_lines(rep)
    for i in rep["incidents"]:
        ev = i["evidence"]
        lines += [
            f"## {i['number']}. {i['title']}: {who(i)}",
            "",
            f"- when: {i['start']} to {i['end']}",
            f"- score: {i['score']}",
            f"- why: {ev.get('why', '')}",
        ]
        brief = [
            f"{k.replace('_', ' ')} {v}"
            for k, v in ev.items()
            if k not in ("why", "sample_senders") and not isinstance(v, list | dict)
        ][:6]
        if brief:
            lines.append(f"- evidence: {'; '.join(brief)}")
        quoted = [text for ln in i.get("raw_lines", []) if (text := ln.get("text"))][:3]
        if quoted:
            lines += ["", "```", *quoted, "```"]
        lines.append("")
    for n in rep["notes"]:
        lines.append(f"> {n}")
    return "\n".join(lines) + "\n"


def html_page(rep: Report) -> str:
    return report_html.render(rep)


def write(site: Site, rep: Report) -> Path:
    out = report_dir(site, rep["day"])
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("report.md", markdown(rep)),
        ("report.html", html_page(rep)),
        ("report.json", json.dumps(rep, indent=2, default=str) + "\n"),
    ):
        with lake.atomic_file(out / name) as tmp:
            tmp.write_text(text)
    return out / "report.json"
