"""The daily report (contract section 5): report.json, report.md and report.html per day."""

from __future__ import annotations

import html
import json
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from mmw_tasks import lake
from mmw_tasks.config import Site

TOTAL_KEYS = ("dq", "n_from", "n_to", "n_sent", "n_deferred", "n_pop", "n_user_unknown")
MODEL_KEYS = ("m_s", "m_p", "r2", "q", "n", "m_sd", "r2_sd")
KIND_TITLES = {
    "mmw_suspect": "Suspected worm-infected host",
    "bulk_sender": "Bulk mailing (benign burst)",
    "mailing_list": "Mailing list traffic",
    "deferred_surge": "Other sites are deferring our mail",
    "dns_anomaly": "DNS queries with no mail to explain them",
}


def report_dir(site: Site, day: date | str) -> Path:
    return Path(site.lake) / "reports" / f"day={day}"


def iso_local(ts: datetime | None, tz: ZoneInfo) -> str | None:
    return ts.astimezone(tz).isoformat() if ts is not None else None


def _num(v):
    return None if v is None else round(float(v), 6)


def build(site: Site, day: date, totals: dict, fit: dict, incidents: list[dict], intervals: list[dict],
          notes: list[str]) -> dict:
    tz = site.tz
    return {
        "day": str(day),
        "site": site.name,
        "timezone": site.timezone,
        "interval_minutes": site.interval_minutes,
        "totals": {k: int(totals.get(k) or 0) for k in TOTAL_KEYS},
        "model": {k: _num(fit.get(k)) for k in MODEL_KEYS},
        "incidents": [{
            "kind": i["kind"], "start": iso_local(i["start"], tz), "end": iso_local(i["end"], tz),
            "sender": i["sender"], "client_ip": i["client_ip"],
            **({"domain": i["domain"]} if i["domain"] else {}),
            "score": i["score"], "evidence": json.loads(i["evidence"]), "lines": json.loads(i["lines"]),
        } for i in incidents],
        "notes": notes,
        "intervals": [{**{k: v for k, v in r.items() if k not in ("site", "day")},
                       "interval_start": iso_local(r["interval_start"], tz)} for r in intervals],
    }


def markdown(rep: dict) -> str:
    t, m = rep["totals"], rep["model"]

    def f(v, digits=2):
        return "n/a" if v is None else f"{v:.{digits}f}"

    lines = [f"# mmw daily report: {rep['site']}, {rep['day']} ({rep['timezone']})", ""]
    found = [i for i in rep["incidents"] if i["kind"] in ("mmw_suspect", "deferred_surge", "dns_anomaly")]
    lines.append(f"**{len(found)} incident(s) need attention**, "
                 f"{len(rep['incidents']) - len(found)} benign burst(s) noted." if rep["incidents"]
                 else "No incidents.")
    lines += ["", "## Totals", "",
              "| DNS queries (Dq) | from= | to= | sent | deferred | POP3 logins | User unknown |",
              "|---:|---:|---:|---:|---:|---:|---:|",
              f"| {t['dq']} | {t['n_from']} | {t['n_to']} | {t['n_sent']} | {t['n_deferred']} | {t['n_pop']} "
              f"| {t['n_user_unknown']} |", "",
              "## Model", "",
              f"Each SMTP access cost the mail server {f(m['m_s'])} DNS queries and each POP3 login "
              f"{f(m['m_p'])} (fit R² = {f(m['r2'], 3)}; local share q = {f(m['q'])}, "
              f"hosts per remote domain n = {f(m['n'])}). Deferred mail explains R² = {f(m['r2_sd'], 3)} of what "
              f"the model leaves over.", ""]
    for i in rep["incidents"]:
        ev = i["evidence"]
        who = ", ".join(x for x in (i.get("client_ip") and f"host {i['client_ip']}",
                                     i.get("sender") and f"sender {i['sender']}",
                                     i.get("domain") and f"domain {i['domain']}") if x)
        lines += [f"## {KIND_TITLES.get(i['kind'], i['kind'])}: {who}", "",
                  f"- when: {i['start']} to {i['end']}", f"- score: {i['score']}",
                  f"- why: {ev.get('why', '')}"]
        for k, v in ev.items():
            if k != "why":
                lines.append(f"- {k.replace('_', ' ')}: {v}")
        for ln in i.get("lines", [])[:6]:
            lines.append(f"- line: `{ln['file']}:{ln['line_no']}` ({ln['event']})")
        lines.append("")
    for n in rep["notes"]:
        lines.append(f"> {n}")
    return "\n".join(lines) + "\n"


def html_page(rep: dict) -> str:
    """A self-contained page; the figures come with the reports issue."""
    md = html.escape(markdown(rep))
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>mmw {html.escape(rep['site'])} {rep['day']}</title></head>"
            f"<body><pre>{md}</pre></body></html>\n")


def write(site: Site, rep: dict) -> Path:
    out = report_dir(site, rep["day"])
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (("report.md", markdown(rep)), ("report.html", html_page(rep)),
                       ("report.json", json.dumps(rep, indent=2, default=str) + "\n")):
        with lake.atomic_file(out / name) as tmp:
            tmp.write_text(text)
    return out / "report.json"
