"""The 2002 stack's lines (sendmail 8.x, qpopper, iplog) parsed into the fields a user reads.

Sendmail lines come verbatim from tests/fixtures/sample-lines.txt (a copy of the reference file);
iplog and qpopper lines follow the formats documented in log-formats.md (§5.1, §6).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest
from conftest import frame, sample_block

from mmw_tasks.parse.dns import parse_iplog
from mmw_tasks.parse.sendmail import parse_mail


def events_of(lines, day=date(1996, 6, 13)):
    events, fates = parse_mail(frame(lines, day))
    return events, fates


def test_sendmail_87_from_and_to_lines():
    events, fates = events_of(sample_block("sendmail 8.7/8.8 era (1996"))
    # fates list the lines that were not parsed: the other 26 were
    assert fates["fate"].value_counts().sort("fate").to_dicts() == [{"fate": "ignored", "count": 2}]
    frm = events.filter((pl.col("event") == "from") & (pl.col("queue_id") == "BAA26050")).row(0, named=True)
    assert frm["sender"] == "joinkids@foo.phyast.pitt.edu"
    assert frm["size"] == 5357 and frm["nrcpts"] == 1
    assert frm["client_ip"] == "136.142.111.40" and frm["relay_host"] == "hamlet.phyast.pitt.edu"
    assert frm["ts"] == datetime(1996, 6, 13, 1, 38, 10, tzinfo=UTC)
    # majordomo re-injection: relay=user@localhost has no address
    local = events.filter(pl.col("queue_id") == "OAA20646", pl.col("event") == "from").row(0, named=True)
    assert local["sender"] == "unique1@usa.healthnet.org" and local["client_ip"] is None
    # a comma-separated recipient list is one to= line with two recipients
    multi = events.filter(pl.col("queue_id") == "GAA01612", pl.col("event") == "to")
    assert multi["recipient"].to_list() == ["unione@ok.wpgate.galaxy.dnet.yorkhospital.edu", "unitwo@ok.healthnet.org"]
    assert multi["rcpt_index"].to_list() == [0, 1]
    deferred = events.filter(pl.col("queue_id") == "DAA29033", pl.col("event") == "to").row(0, named=True)
    assert deferred["status"] == "deferred" and deferred["recipient_domain"] == "ign.healthnet.org"
    sent = events.filter(pl.col("queue_id") == "WAA18702").row(0, named=True)
    assert sent["status"] == "sent" and sent["client_ip"] == "132.192.1.1" and sent["mailer"] == "smtp"


def test_sendmail_812_msp_relay_and_daemon_lines():
    events, fates = events_of(sample_block("sendmail 8.12.9"), day=date(2005, 1, 22))
    assert fates["fate"].to_list().count("malformed") == 0
    frm = events.filter(pl.col("queue_id") == "j061bXn5000812", pl.col("event") == "from").row(0, named=True)
    assert frm["client_ip"] == "127.0.0.1" and frm["relay_host"] == "localhost" and frm["size"] == 2262
    to = events.filter(pl.col("queue_id") == "j061bXn5000812", pl.col("event") == "to").row(0, named=True)
    assert to["recipient"] == "cpan-testers@perl.org" and to["status"] == "sent"
    assert to["relay_host"] == "mx.develooper.com" and to["client_ip"] == "63.251.223.176"
    # "starting daemon" and friends are sendmail's own lines: parsed, kept as 'other'
    assert events.filter(pl.col("event") == "other").height == 8


def test_user_unknown_in_every_form():
    lines = sample_block("sendmail 8.14-8.16")
    events, fates = events_of(lines, day=date(2014, 2, 25))
    unknown = events.filter(pl.col("status") == "user_unknown")
    assert sorted(unknown["recipient"].to_list()) == sorted(
        [
            "non-existing-user@example.com",
            "arhipov@domain.com",
            "anatoliy@domain.com",
            "artem@domain.com",
            "anto@domain.com",
            "davaojk25@domain.com",
            "anton@domain.com",
            "baduser@yourhost.com",
        ]
    )
    rule = unknown.filter(pl.col("recipient") == "non-existing-user@example.com").row(0, named=True)
    assert rule["client_ip"] == "189.30.205.74" and rule["queue_id"] == "s1REn1un088377"
    # relaying denied is a rejection, not an unknown user
    denied = events.filter(pl.col("recipient") == "asservnew@freemailhost.ru").row(0, named=True)
    assert denied["event"] == "reject" and denied["status"] == "rejected"
    # nrcpts=0: every recipient of that message was refused
    assert events.filter(pl.col("queue_id") == "rA37ZTSC026254", pl.col("event") == "from")["nrcpts"].to_list() == [0]
    # FreeBSD syslogd -v puts <mail.notice> before the host
    assert events.filter(pl.col("queue_id") == "55HIbcGI002794").height == 2
    assert fates.filter(pl.col("fate") == "malformed").height == 0


def test_truncated_to_line_is_malformed_not_dropped():
    events, fates = events_of(sample_block("sendmail truncated to= line"))
    assert events.height == 0
    assert fates.to_dicts() == [
        {"line_no": 1, "copy": 0, "fate": "malformed", "reason": "to= line truncated (no delay=/stat=)"}
    ]


def test_to_line_without_stat_takes_status_from_dsn():
    events, _ = events_of(sample_block("sendmail sm-mta with 'done;'"), day=date(2005, 8, 8))
    to = events.filter(pl.col("event") == "to").row(0, named=True)
    assert to["recipient"] == "kweek@glurpp" and to["status"] == "sent" and to["mailer"] == "cyrusv2"


def test_solaris_message_id_is_stripped():
    line = (
        "Feb 16 09:00:01 mx sendmail[12325]: [ID 801593 mail.info] r72DY20O010335: to=root, "
        "delay=00:00:01, xdelay=00:00:00, mailer=local, pri=30000, dsn=2.0.0, stat=Sent"
    )
    events, _ = events_of([line], day=date(2002, 2, 16))
    assert events.row(0, named=True)["queue_id"] == "r72DY20O010335"
    assert events.row(0, named=True)["recipient"] == "root"


def test_qpopper_login_and_stats():
    lines = [
        'Feb 16 21:03:12 mx popper[4021]: (v4.0.5) POP login by user "tanaka" at (dialup12.isp.example.net) 198.51.100.33',  # noqa: E501 (a real log line)
        'Feb 16 21:03:14 mx in.qpopper[7597]: (v4.0.9) POP login by user "nick" at (host) 74.125.46.35 [pop_log.c:244]',
        "Feb 16 21:03:15 mx popper[4021]: Stats: tanaka 0 0 3 12034 dialup12.isp.example.net 198.51.100.33",
    ]
    events, fates = events_of(lines, day=date(2002, 2, 16))
    logins = events.filter(pl.col("event") == "pop_login")
    assert logins["user"].to_list() == ["tanaka", "nick"]
    assert logins["client_ip"].to_list() == ["198.51.100.33", "74.125.46.35"]
    assert fates.height == 0  # every line parsed


@pytest.mark.parametrize(
    "line, ip, port, name",
    [
        (
            "Feb 16 14:30:01 ns iplog[312]: UDP: dgram to domain from 10.1.0.25:1053 (38 data bytes)",
            "10.1.0.25",
            1053,
            None,
        ),
        (
            "Feb 16 14:30:01 ns iplog[312]: UDP: dgram to domain from mx.example.ac.jp (10.1.0.25):1054 (41 data bytes)",  # noqa: E501 (a real log line)
            "10.1.0.25",
            1054,
            "mx.example.ac.jp",
        ),
        (
            "Feb 16 14:30:01 ns iplog[312]: UDP: dgram to ns.example.ac.jp:domain from 10.1.0.25:1055 (38 data bytes)",
            "10.1.0.25",
            1055,
            None,
        ),
        ("Feb 16 14:30:01 ns iplog[312]: UDP: to domain from 10.1.0.25:1056 (38 data bytes)", "10.1.0.25", 1056, None),
    ],
)
def test_iplog_dns_query_forms(line, ip, port, name):
    queries, fates = parse_iplog(frame([line]))
    assert fates.height == 0  # parsed
    q = queries.row(0, named=True)
    assert (q["client_ip"], q["client_port"], q["client_name"]) == (ip, port, name)


def test_iplog_other_datagrams_are_ignored_and_truncated_kept():
    lines = [
        "Feb 16 14:30:01 ns iplog[312]: UDP: dgram to port 123 from 10.1.0.25:123 (48 data bytes)",
        "Feb 16 14:30:01 ns iplog[312]: TCP: smtp connection attempt from 10.1.0.25:34567",
        "Feb 16 14:30:02 ns sshd[99]: Accepted password for root from 10.1.9.9 port 22 ssh2",
        "Feb 16 14:30:03 ns iplog[312]: UDP: dgram to domain from 10.1.0.2",
    ]
    queries, fates = parse_iplog(frame(lines))
    assert queries.height == 0
    assert fates["fate"].to_list() == ["ignored", "ignored", "ignored", "malformed"]


def test_last_message_repeated_expands_per_host():
    lines = sample_block("syslog 'last message repeated' interleaved by host")
    df = frame(lines, day=date(1996, 6, 13))
    copies = df.group_by("host", "msg").len().sort("host", "msg").to_dicts()
    assert {"host": "satellife", "msg": "connect from 5times.rep.com", "len": 5} in copies
    assert {"host": "otherhost", "msg": "connect from 3times.rep.com", "len": 3} in copies
    assert {"host": "satellife", "msg": "connect from 7times.rep.com", "len": 7} in copies
