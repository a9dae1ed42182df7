"""Mailing the daily report through a real SMTP server (aiosmtpd on 127.0.0.1): what arrives is
report.md, report.html and report.json; the password comes from the environment, never the file."""

from __future__ import annotations

import email
import json
import smtplib
import socket
from email import policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from mmw_tasks import pipeline
from mmw_tasks.config import ConfigError, load_site
from mmw_tasks.report.model import report_dir

DAY = "2002-02-16"


class Sink:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    sink = Sink()

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"mmw", b"s3cret")
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 on a failure

    ctl = Controller(sink, hostname="127.0.0.1", port=_free_port(), authenticator=authenticate, auth_require_tls=False)
    ctl.start()
    yield ctl, sink
    ctl.stop()


def _mail_config(site_toml, port: int, extra: str = "") -> str:
    cfg = site_toml.with_name("site-mail.toml")  # beside the original: the same lake
    cfg.write_text(
        site_toml.read_text()
        + f"""
[report.email]
host = "127.0.0.1"
port = {port}
from = "mmw@example.ac.jp"
to = ["postmaster@example.ac.jp", "noc@example.ac.jp"]
username = "mmw"
password_env = "MMW_TEST_SMTP_PASSWORD"
{extra}"""
    )
    return str(cfg)


def test_report_arrives_as_text_html_and_json(klez_site, smtp, monkeypatch):
    ctl, sink = smtp
    monkeypatch.setenv("MMW_TEST_SMTP_PASSWORD", "s3cret")
    out = pipeline.deliver(_mail_config(klez_site, ctl.port), DAY)
    assert out["sent"] and out["to"] == ["postmaster@example.ac.jp", "noc@example.ac.jp"]
    [env] = sink.envelopes
    assert env.mail_from == "mmw@example.ac.jp" and env.rcpt_tos == out["to"]
    msg = email.message_from_bytes(env.content, policy=policy.default)
    folder = report_dir(load_site(klez_site), DAY)
    rep = json.loads((folder / "report.json").read_text())
    found = sum(i["kind"] in ("mmw_suspect", "deferred_surge", "dns_anomaly") for i in rep["incidents"])
    worm = rep["incidents"][0]
    assert msg["Subject"].startswith(
        f"[mmw] example-u {DAY}: {found} incident(s) need attention: WORM SUSPECT {worm['client_ip']} "
    )

    def text(part) -> str:  # SMTP carries CRLF line ends
        return part.get_content().replace("\r\n", "\n")

    # the text opens with the headline: report.md less its title line (the subject's site and day)
    body = text(msg.get_body(("plain",)))
    assert body.splitlines()[0] == f"**{rep['headline'][0]}**  "
    md = (folder / "report.md").read_text()
    assert md.startswith("# mmw daily report: example-u") and md.endswith(body)
    assert text(msg.get_body(("html",))) == (folder / "report.html").read_text()
    [att] = list(msg.iter_attachments())
    assert att.get_filename() == f"mmw-example-u-{DAY}.json" and json.loads(att.get_content()) == rep


def test_wrong_password_fails_loudly(klez_site, smtp, monkeypatch):
    ctl, sink = smtp
    monkeypatch.setenv("MMW_TEST_SMTP_PASSWORD", "guess")
    with pytest.raises(smtplib.SMTPAuthenticationError):
        pipeline.deliver(_mail_config(klez_site, ctl.port), DAY)
    assert sink.envelopes == []


def test_missing_password_variable_names_the_key(klez_site, smtp, monkeypatch):
    monkeypatch.delenv("MMW_TEST_SMTP_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="password_env.*MMW_TEST_SMTP_PASSWORD"):
        pipeline.deliver(_mail_config(klez_site, smtp[0].port), DAY)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('password = "hunter2"', "key 'password' is not allowed"),
        ("hots = 1", "unknown key 'hots'"),
        ('timeout = "soon"', "key 'timeout' must be a number"),
        ('starttls = "yes"', "key 'starttls' must be a bool"),
    ],
)
def test_bad_email_config_names_the_key(klez_site, extra, message):
    with pytest.raises(ConfigError, match=message):
        load_site(_mail_config(klez_site, 25, extra))


def test_no_email_table_sends_nothing(klez_site):
    assert pipeline.deliver(klez_site, DAY) == {"day": DAY, "sent": False}
