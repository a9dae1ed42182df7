"""What a site is told when a run fails or a day has incidents.

Plain data and a stdlib HTTP POST: Airflow's notifiers (plugins/mmw_airflow.py) gather the
context and send these messages by e-mail (SmtpNotifier) and to a webhook. The JSON carries a
`text` field, so chat webhooks (Slack, Mattermost, Rocket.Chat) show it as it is.
"""

from __future__ import annotations

import html
import json
import urllib.request
from pathlib import Path

from mmw_tasks.report import headline

MAX_ERROR = 2000


def _subject(site: str, day: str | None, what: str) -> str:
    return f"[mmw {site}] {day or 'unknown day'}: {what}"[:200]


def failure_message(
    site: str,
    day: str | None,
    dag_id: str,
    run_id: str | None,
    task: str | None,
    error: str | None,
    tries: int | None = None,
) -> dict:
    """A task that failed for good (after its retries): which one, for which day, and why."""
    error = (error or "no error text (the task was killed or lost)").strip()[:MAX_ERROR]
    tried = f" after {tries} tries" if tries and tries > 1 else ""
    what = f"{task or 'the run'} failed{tried}"
    text = (
        f"mmw {site}, day {day or '?'}: {what}.\n{error}\n"
        f"DAG {dag_id}, run {run_id}. Re-run the day once the cause is fixed "
        f"(clear the failed task, or trigger with params day and force)."
    )
    return {
        "source": "mmw",
        "event": "failure",
        "site": site,
        "day": day,
        "dag_id": dag_id,
        "run_id": run_id,
        "task": task,
        "tries": tries,
        "error": error,
        "subject": _subject(site, day, f"{what}: {error.splitlines()[0][:120]}"),
        "text": text,
    }


def incident_message(
    site: str,
    report: dict,
    report_path: str | Path,
    kinds: tuple[str, ...] | list[str],
    dag_id: str | None = None,
    run_id: str | None = None,
) -> dict | None:
    """A day whose report has incidents of the kinds the site cares about, or is partial (servers
    missing, or a gap in one: each told in a line of its own); else None."""
    found = [i for i in report.get("incidents", []) if i.get("kind") in set(kinds)]
    partial = bool(report.get("partial"))
    if not found and not partial:
        return None
    day = report.get("day")
    lines = [
        f"- {i['kind']}: {i.get('client_ip') or i.get('domain') or i.get('sender') or '?'} "
        f"{i.get('start')} .. {i.get('end')} (score {i.get('score')})"
        for i in found
    ]
    head = f"{len(found)} incident(s)" if found else "no incidents"
    missing = report.get("missing_servers", [])
    gaps = [g["text"] for g in report.get("gaps", [])]
    if partial:
        why = ([f"no data from {', '.join(missing)}"] if missing else []) + (
            [f"gaps in {', '.join(dict.fromkeys(g['server'] for g in report.get('gaps', [])))}"] if gaps else []
        )
        head += f", PARTIAL report ({'; '.join(why)})" if why else ", PARTIAL report"
    # the report's own verdict lines open the text (contract section 5), each gap right after them
    # in a line of its own; a report.json from before `headline` existed gets them built from its incidents
    verdicts = report["headline"] if "headline" in report else headline.headline(report)
    text = "\n".join(
        [
            *(verdicts or [headline.QUIET]),
            *(f"- {g}" for g in gaps),
            "",
            f"mmw {site}, day {day}: {head}.",
            *lines,
            f"Report: {report_path}",
        ]
    )
    brief = ", ".join(
        f"{i['kind']} {i.get('client_ip') or i.get('domain') or i.get('sender') or ''}".strip() for i in found[:3]
    )
    return {
        "source": "mmw",
        "event": "incidents",
        "site": site,
        "day": day,
        "dag_id": dag_id,
        "run_id": run_id,
        "partial": partial,
        "missing_servers": missing,
        "gaps": report.get("gaps", []),
        "incidents": [
            {k: i.get(k) for k in ("kind", "start", "end", "sender", "client_ip", "domain", "score")} for i in found
        ],
        "headline": verdicts,
        "report": str(report_path),
        "subject": _subject(site, day, head + (f": {brief}" if brief else "")),
        "text": text,
    }


def as_html(message: dict) -> str:
    return f"<pre>{html.escape(message['text'])}</pre>"


def post_json(url: str, payload: dict, timeout: float = 10.0) -> int:
    """POST `payload` as JSON; raises on a connection error or a non-2xx answer."""
    req = urllib.request.Request(
        url,
        data=json.dumps(payload, default=str).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "mmw"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (the site's own URL)
        return resp.status
