"""Notifications through Airflow's notifier mechanism, into a real webhook receiver and a real
SMTP server on 127.0.0.1: a task that failed for good, and a day with incidents or a partial report."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from notify_sinks import SmtpSink, WebhookSink
from test_sql_minisite import copy_minisite

from mmw_tasks import pipeline
from mmw_tasks.report import notify

sys.path.insert(0, str(ROOT / "plugins"))


def _notifier(event, **kw):
    from mmw_airflow import MmwNotifier

    return MmwNotifier(
        event=event,
        site="mini",
        timezone="Asia/Tokyo",
        incident_kinds=("mmw_suspect", "deferred_surge", "dns_anomaly"),
        **kw,
    )


def test_failure_reaches_webhook_and_mailbox_naming_the_server(monkeypatch):
    err = RuntimeError("server 1mx: cannot fetch 2002-02-16: SourceError: no file covers 2002-02-16")
    context = {"run_id": "scheduled__2002-02-16", "params": {"day": "2002-02-16"}, "exception": err}
    with WebhookSink() as hook, SmtpSink() as smtp:
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_MMW", smtp.conn_uri())
        _notifier("failure", webhook=hook.url, email=("noc@example.ac.jp",), smtp_conn_id="smtp_mmw")(context)
        assert len(hook.received) == 1
        msg = hook.received[0]
        assert msg["event"] == "failure" and msg["day"] == "2002-02-16" and "1mx" in msg["error"]
        assert "1mx" in msg["text"] and msg["run_id"] == "scheduled__2002-02-16"
        [(rcpts, mail)] = smtp.messages
        assert rcpts == ["noc@example.ac.jp"]
        assert "[mmw mini] 2002-02-16" in mail["Subject"] and "1mx" in mail["Subject"]
        assert mail["From"] == "mmw@example.ac.jp"


def test_a_broken_webhook_does_not_silence_the_email(monkeypatch):
    context = {"run_id": "r", "params": {"day": "2002-02-16"}, "exception": RuntimeError("boom")}
    with WebhookSink(status=500) as hook, SmtpSink() as smtp:
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_MMW", smtp.conn_uri())
        with pytest.raises(Exception, match="500"):
            _notifier("failure", webhook=hook.url, email=("noc@example.ac.jp",), smtp_conn_id="smtp_mmw")(context)
        assert len(hook.received) == 1 and len(smtp.messages) == 1


def test_webhook_url_from_an_airflow_connection(monkeypatch):
    with WebhookSink() as hook:
        monkeypatch.setenv(
            "AIRFLOW_CONN_MMW_HOOK",
            json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": hook.port, "schema": "hook/token-123"}),
        )
        _notifier("failure", webhook_conn_id="mmw_hook")({"run_id": "r", "params": {"day": "2002-02-16"}})
        assert [m["path"] for m in hook.received] == ["/hook/token-123"]
        assert "no error text" in hook.received[0]["error"]


def test_incident_notifier_tells_only_about_days_that_matter(tmp_path):
    toml = copy_minisite(tmp_path / "s")
    pipeline.run_day(toml, "2002-02-16", log=lambda m: None)
    context = {"run_id": "r", "params": {"config": str(toml), "day": "2002-02-16"}}
    with WebhookSink() as hook:
        _notifier("incidents", webhook=hook.url)(context)
        assert hook.received == []  # a quiet day: nobody is paged
        toml.write_text(
            toml.read_text()
            .replace("logs/1dns/messages*", "logs/gone/*")
            .replace('interval = "10m"', 'interval = "10m"\non_missing_server = "partial"')
        )
        pipeline.run_day(toml, "2002-02-16", log=lambda m: None)
        _notifier("incidents", webhook=hook.url)(context)
        [msg] = hook.received
        assert msg["partial"] is True and msg["missing_servers"] == ["1dns"] and "PARTIAL" in msg["subject"]
        assert Path(msg["report"]).is_file()


def test_a_gap_in_a_servers_day_is_told_by_webhook_and_mail(truncated_site, monkeypatch):
    """A truncated mail log (tests/test_gaps.py): the report task's notifier names the gap, one
    line of its own, in the webhook's JSON and the e-mail."""
    toml, r = truncated_site
    assert r.returncode == 0, r.stderr
    context = {"run_id": "r", "params": {"config": str(toml), "day": "2002-02-16"}}
    gap = "1mx: no lines 13:04-24:00 (the day is partial)"
    with WebhookSink() as hook, SmtpSink() as smtp:
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_MMW", smtp.conn_uri())
        _notifier("incidents", webhook=hook.url, email=("noc@example.ac.jp",), smtp_conn_id="smtp_mmw")(context)
        [msg] = hook.received
        [(_, mail)] = smtp.messages
    assert msg["partial"] is True and [g["text"] for g in msg["gaps"]] == [gap]
    assert f"- {gap}" in msg["text"].splitlines() and "gaps in 1mx" in msg["subject"]
    assert "gaps in 1mx" in mail["Subject"]
    body = mail.get_payload(decode=True) if not mail.is_multipart() else mail.get_payload(0).get_payload(decode=True)
    assert gap in body.decode()


T0, T1 = "2002-02-16T14:30:00+09:00", "2002-02-16T17:29:00+09:00"


def test_incident_message_lists_kinds_the_site_cares_about():
    rep = {
        "day": "2002-02-16",
        "incidents": [
            {"kind": "mmw_suspect", "client_ip": "10.1.3.7", "start": T0, "end": T1, "score": 0.9},
            {"kind": "bulk_sender", "sender": "news@example.ac.jp", "start": T0, "end": T1, "score": 0.5},
        ],
    }
    msg = notify.incident_message("mini", rep, "/lake/reports/day=2002-02-16/report.json", ("mmw_suspect",))
    assert [i["kind"] for i in msg["incidents"]] == ["mmw_suspect"]
    assert "10.1.3.7" in msg["subject"] and "news@" not in msg["text"]
    # the text opens with the verdict: report.json's headline, or one built from its incidents
    assert msg["text"].splitlines()[0] == "WORM SUSPECT 10.1.3.7 14:30-17:29" == msg["headline"][0]
    said = notify.incident_message("mini", {**rep, "headline": ["WORM SUSPECT x"]}, "x", ("mmw_suspect",))
    assert said["text"].startswith("WORM SUSPECT x\n")
    only_benign = {"day": "2002-02-16", "incidents": rep["incidents"][1:]}
    assert notify.incident_message("mini", only_benign, "x", ("mmw_suspect",)) is None
