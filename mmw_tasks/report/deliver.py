"""Mail a day's report through an SMTP server ([report.email] in the site config).

A plain function, so `mmw run`, an Airflow notifier or a cron job can all call it. The body is
report.md as text (less its title: it opens with the headline) with report.html as its HTML
alternative, and report.json attached. The
password, when the server wants one, is read from the environment variable the config names.
"""

from __future__ import annotations

import json
import os
import smtplib
import ssl
from datetime import date
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TypedDict

from mmw_tasks.config import ConfigError, EmailSettings, Site
from mmw_tasks.report import headline
from mmw_tasks.report.model import ATTENTION, Report, report_dir


class Sent(TypedDict):
    """A report mailed: to whom, and under which subject."""

    day: str  # YYYY-MM-DD
    to: list[str]  # the addresses the server accepted
    refused: list[str]  # the addresses it refused
    subject: str


def subject(prefix: str, rep: Report) -> str:
    """'[mmw] site day: 2 incident(s) need attention: WORM SUSPECT 10.1.3.102 (pc102...) 14:30-17:29':
    the count, then the most severe verdict up to its span (the body has the whole line)."""
    attention = headline.ordered([i for i in rep["incidents"] if i["kind"] in ATTENTION])
    what = f"{len(attention)} incident(s) need attention" if attention else headline.QUIET
    if attention:
        first = attention[0]
        who = first.get("domain") if first["kind"] == "deferred_surge" else headline.host(first)
        what += f": {headline.LABELS.get(first['kind'], first['kind'])} {who} {headline.span(first)}"
    drift = rep.get("history", {}).get("drift", [])
    tail = f", drift in {', '.join(drift)}" if drift else ""
    return f"{prefix} {rep['site']} {rep['day']}: {what}{tail}"


def text_body(markdown: str) -> str:
    """report.md without its title line (the subject names the site and the day): the mail's
    text opens with the headline, as report.md does after its title."""
    lines = markdown.splitlines(keepends=True)
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
        while lines and not lines[0].strip():
            lines = lines[1:]
    return "".join(lines)


def message(site: Site, day: date | str, email: EmailSettings) -> EmailMessage:
    folder = report_dir(site, day)
    rep = json.loads((folder / "report.json").read_text())
    msg = EmailMessage()
    msg["Subject"] = subject(email.subject_prefix, rep)
    msg["From"] = email.sender
    msg["To"] = ", ".join(email.to)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=email.sender.rpartition("@")[2] or None)
    msg.set_content(text_body((folder / "report.md").read_text()))
    msg.add_alternative((folder / "report.html").read_text(), subtype="html")
    msg.add_attachment(
        (folder / "report.json").read_bytes(),
        maintype="application",
        subtype="json",
        filename=f"mmw-{rep['site']}-{rep['day']}.json",
    )
    return msg


def send_report(site: Site, day: date | str, email: EmailSettings | None = None) -> Sent:
    """Send the day's report; returns who it went to. Raises on SMTP errors (the caller decides)."""
    email = email or site.report.email
    if email is None:
        raise ConfigError(f"{site.config_path}: no [report.email] table: nowhere to send the report")
    password = None
    if email.password_env:
        password = os.environ.get(email.password_env)
        if password is None:
            raise ConfigError(
                f"{site.config_path}: [report.email] key 'password_env': the environment "
                f"variable {email.password_env} is not set"
            )
    msg = message(site, day, email)
    context = ssl.create_default_context()
    smtp = (
        smtplib.SMTP_SSL(email.host, email.port, timeout=email.timeout, context=context)
        if email.ssl
        else smtplib.SMTP(email.host, email.port, timeout=email.timeout)
    )
    with smtp:
        if email.starttls and not email.ssl:
            smtp.starttls(context=context)
        if email.username:
            smtp.login(email.username, password or "")
        refused = smtp.send_message(msg)
    return {
        "day": str(day),
        "to": [a for a in email.to if a not in refused],
        "refused": sorted(refused),
        "subject": msg["Subject"],
    }
