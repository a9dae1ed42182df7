"""Every block of the reference sample lines (tests/data/sample-lines.txt, a copy of
shared/reference/sample-lines.txt: genuine lines from public repositories) parsed as its
format, asserting what a user reads in mail_events / dns_queries, and that every line is
accounted for: parsed, ignored (not ours) or malformed (kept with its line number).

Blocks that hold only the message part of a line (no stamp, host or tag) are wrapped in a
syslog header first; the wrapper is named in BLOCKS.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from mmw_tasks.config import Server
from mmw_tasks.parse.ingest import parse_lines

SAMPLES = Path(__file__).parent / "data" / "sample-lines.txt"
HDR = "Feb 16 10:00:00 mx "


def _blocks() -> dict[str, list[str]]:
    text = SAMPLES.read_text(encoding="utf-8", errors="replace")
    out = {}
    for chunk in re.split(r"^## ", text, flags=re.M)[1:]:
        title, *lines = chunk.split("\n")
        out[title] = [ln for ln in lines if ln.strip() and not ln.startswith("# note")]
    return out


def run(fmt: str, lines: list[str], day=date(2002, 6, 13), tz="UTC"):
    role = "dns" if fmt in ("iplog", "bind", "dnsmasq", "unbound") else "mail"
    ev, fates, counts = parse_lines(Server("s", role, fmt, "x", ("10.0.0.1",)), lines, day, tz)
    assert counts["lines_read"] == len(lines)
    assert counts["parsed"] + counts["ignored"] + counts["malformed"] == len(lines)
    return ev, fates, counts


def rows(ev: pl.DataFrame, **eq) -> list[dict]:
    for k, v in eq.items():
        ev = ev.filter(pl.col(k) == v)
    return ev.sort("line_no").to_dicts()


def one(ev: pl.DataFrame, **eq) -> dict:
    r = rows(ev, **eq)
    assert len(r) == 1, (eq, r)
    return r[0]


def malformed_lines(fates: pl.DataFrame) -> list[int]:
    return sorted(fates.filter(pl.col("fate") == "malformed")["line_no"].to_list())


# --- checks, one per block ---------------------------------------------------------------------


def chk_sendmail_1996(ev, fates, c):
    assert c["ignored"] == 2 and c["malformed"] == 0  # in.identd and vmunix lines
    r = one(ev, event="from", queue_id="BAA26050")
    assert (r["sender"], r["size"], r["nrcpts"], r["client_ip"], r["relay_host"]) == (
        "joinkids@foo.phyast.pitt.edu",
        5357,
        1,
        "136.142.111.40",
        "hamlet.phyast.pitt.edu",
    )
    assert r["ts"] == datetime(2002, 6, 13, 1, 38, 10, tzinfo=UTC)
    multi = rows(ev, event="to", queue_id="GAA01612")
    assert [m["recipient"] for m in multi] == [
        "unione@ok.wpgate.galaxy.dnet.yorkhospital.edu",
        "unitwo@ok.healthnet.org",
    ]
    assert [m["rcpt_index"] for m in multi] == [0, 1] and multi[0]["client_ip"] == "192.206.231.90"
    d = one(ev, event="to", queue_id="DAA29033")
    assert d["status"] == "deferred" and d["detail"].startswith("Deferred: 451")
    assert one(ev, event="to", queue_id="DAA29556")["mailer"] == "fidogate"
    assert one(ev, event="other", queue_id="DAA29008")["detail"].startswith("clone DAA29007")
    assert len(rows(ev, event="from")) == 10 and len(rows(ev, event="to")) == 16  # 15 to= lines, one with 2


def chk_repeats(ev, fates, c):
    # 4+2+6 copies of identd lines (not mail): every copy is counted, none parsed
    assert c["lines_read"] == 6 and c["repeats_expanded"] == 12 and c["ignored"] == 6


def chk_truncated(ev, fates, c):
    assert c["malformed"] == 1 and ev.height == 0
    assert fates["reason"].to_list() == ["to= line truncated (no delay=/stat=)"]


def chk_prev_day(ev, fates, c):
    assert one(ev, event="from", queue_id="NAA20697")["client_ip"] == "134.174.141.3"
    assert one(ev, event="to", queue_id="OAA20658")["recipient"] == "count1@ptime.healthnet.org"


def chk_sendmail_812(ev, fates, c):
    assert c["parsed"] == 16
    r = one(ev, event="to", queue_id="j061bXn5000812")
    assert (r["recipient"], r["status"], r["mailer"], r["relay_host"], r["client_ip"]) == (
        "cpan-testers@perl.org",
        "sent",
        "esmtp",
        "mx.develooper.com",
        "63.251.223.176",
    )
    assert one(ev, event="from", queue_id="j061bW9V000809")["sender"] == "maddingue"
    assert len(rows(ev, event="other")) == 8  # start-up lines of the daemon


def chk_sendmail_dsn(ev, fates, c):
    assert c["malformed"] == 0
    assert one(ev, queue_id="j4K93AYX027873")["status"] == "user_unknown"
    assert one(ev, queue_id="j4K93AYX027873")["recipient"] == "nobody@example.edu"
    assert one(ev, event="to", queue_id="j4K97fD5028627")["recipient"] == "somebody@example.net"
    assert one(ev, event="reject", queue_id="j4KFAp6f001621")["status"] == "rejected"
    dsn = one(ev, queue_id="j4K970hV028494")
    assert dsn["event"] == "other" and "DSN: Service unavailable" in dsn["detail"]
    assert one(ev, queue_id="j4KDbUaV007215")["event"] == "other"  # QID[n]: and 8-bit text


def chk_ruleset(ev, fates, c):
    r = rows(ev, event="reject")
    assert len(r) == 3 and r[0]["recipient"] == "fwipada@dakkitydak.fap" and r[0]["status"] == "rejected"
    assert r[2]["client_ip"] == "24.98.81.172" and r[2]["relay_host"] == "c-24-98-81-172.hsd1.ga.comcast.net"


def chk_done(ev, fates, c):
    r = one(ev, event="to")
    assert (r["recipient"], r["status"], r["mailer"]) == ("kweek@glurpp", "sent", "cyrusv2")  # dsn=2.0.0, no stat=
    assert one(ev, event="from")["client_ip"] == "62.210.95.136"


def chk_clone(ev, fates, c):
    assert one(ev, event="other")["queue_id"] == "h9NL1K9M013890"


def chk_sendmail_reject(ev, fates, c):
    assert c["malformed"] == 0 and c["ignored"] == 0
    uu = rows(ev, status="user_unknown")
    assert {r["recipient"] for r in uu} >= {
        "non-existing-user@example.com",
        "arhipov@domain.com",
        "baduser@yourhost.com",
    }
    relay = rows(ev, event="reject", client_ip="192.0.2.123")[0]
    assert relay["recipient"] is None and relay["detail"].startswith("check_relay: 421")
    assert one(ev, event="from", queue_id="rA37ZTSC026254")["nrcpts"] == 0
    assert one(ev, queue_id="xA32R2PQ3529565")["event"] == "other"  # 15-char id (7-digit pid)
    assert one(ev, event="from", queue_id="55HIbcGI002794")["client_ip"] == "192.168.1.45"  # <mail.info>


def chk_sendmail_auth(ev, fates, c):
    assert c["parsed"] == 13 and set(ev["event"]) == {"other"}


def chk_message_part_sendmail(ev, fates, c):
    r = rows(ev, event="reject")
    assert len(r) == 14
    assert r[0]["sender"] == "brbomaquinas@brbom.com" and r[0]["recipient"] is None  # check_mail
    assert r[3]["recipient"] == "andre.pereira@gerdau.com.br"  # check_rcpt
    assert r[6]["client_ip"] == "201.29.120.119" and r[6]["queue_id"] is None  # check_relay


def chk_postfix_21(ev, fates, c):
    assert c["parsed"] == 10
    f = rows(ev, event="from")
    assert [(x["queue_id"], x["sender"], x["size"]) for x in f] == [
        ("0D7037A4", "root@fangorn.maddingue.net", 567),
        ("CCAE27A4", "cpanplus@fangorn.maddingue.net", 3255),
    ]
    t = one(ev, event="to", queue_id="CCAE27A4")
    assert (t["recipient"], t["status"], t["client_ip"], t["mailer"]) == (
        "cpan-testers@perl.org",
        "sent",
        "63.251.223.176",
        "smtp",
    )


def chk_postfix_bounce(ev, fates, c):
    assert one(ev, event="to")["status"] == "bounced"
    r = one(ev, event="reject")
    assert (r["sender"], r["recipient"], r["client_ip"]) == (
        "bcfxhdfyrey4l@easterndalek.com",
        "service@exterminate.com",
        "192.168.7.245",
    )


def chk_postfix_flow(ev, fates, c):
    f = rows(ev, event="from")
    assert [(x["queue_id"], x["client_ip"], x["nrcpts"]) for x in f] == [
        ("BA8F630001DA", "89.247.252.52", 5),
        ("1310930001DB", "127.0.0.1", 5),
    ]
    assert len(rows(ev, event="to")) == 2


def chk_postfix_multi(ev, fates, c):
    to = rows(ev, event="to", queue_id="1310930001DB")
    assert [t["status"] for t in to] == ["bounced", "bounced", "user_unknown", "sent", "sent"]
    assert one(ev, event="from", queue_id="C7B4530001DA")["sender"] == ""  # the bounce, from=<>
    assert one(ev, event="to", queue_id="C7B4530001DA")["mailer"] == "lmtp"
    assert one(ev, event="dsn")["queue_id"] == "1310930001DB"


def chk_postfix_expired(ev, fates, c):
    f = rows(ev, queue_id="23EBE3D5C0", event="from")
    assert len(f) == 1 and f[0]["client_ip"] == "239.58.50.50"  # accepted once ...
    assert len(rows(ev, queue_id="23EBE3D5C0", event="requeue")) == 4  # ... retried four times
    assert [t["status"] for t in rows(ev, queue_id="23EBE3D5C0", event="to")] == ["deferred"] * 5
    assert one(ev, event="expired")["sender"] == "h-498b874f2bf0cf639807ad80e1@h-5e67b9b4406.com"
    assert c["ignored"] == 1 and malformed_lines(fates) == [28]  # DKIM signer; the wrapped "ir/)"


def chk_postfix_submission(ev, fates, c):
    r = one(ev, event="reject")
    assert (r["queue_id"], r["recipient"], r["client_ip"], r["status"]) == (
        "D155CDC24C3",
        "h-2d34d8bb8@h-93a1a37cd1.com",
        "30.207.11.100",
        "rejected",
    )


def chk_dovecot_in_postfix(ev, fates, c):
    lg = rows(ev, event="pop_login")
    assert [(x["user"], x["client_ip"], x["mailer"]) for x in lg] == [
        ("discourse@some.example.com", "78.55.5.173", "pop3"),
        ("another.user@some.example.com", "79.106.69.106", "imap"),
    ]


def chk_postfix_rejects(ev, fates, c):
    assert c["malformed"] == 0 and c["parsed"] == 40
    rj = rows(ev, event="reject")
    assert len(rj) == 26
    uu = rows(ev, status="user_unknown")
    assert {r["recipient"] for r in uu} == {None, "sales@server.com", "user1@example.com"}
    ps = one(ev, event="reject", client_ip="216.245.194.173")  # postscreen, comma-separated
    assert (ps["sender"], ps["recipient"]) == ("spammer@example.com", "goodguy@example.com")
    assert len(rows(ev, event="other")) == 14


def chk_postfix_rfc3339(ev, fates, c):
    assert ev["ts"].to_list()[0] == datetime(2016, 3, 23, 0, 9, 28, tzinfo=UTC)
    assert set(ev["event"]) == {"other"}


def chk_pf_from(ev, fates, c):
    r = one(ev, event="from")
    assert (r["sender"], r["size"], r["nrcpts"]) == ("owner-postfix-users@postfix.org", 5360, 1)


def chk_pf_expired(ev, fates, c):
    assert one(ev, event="expired")["status"] == "expired"


def chk_pf_quiet(ev, fates, c):
    assert ev.height == 0 and c["parsed"] == 1  # understood, nothing to count


def chk_pf_reject_vu(ev, fates, c):
    r = one(ev, event="reject")
    assert r["status"] == "user_unknown" and r["recipient"] == "toernooicommissie@example.com"
    assert r["sender"] == "wumt5@cchfdc.com" and r["client_ip"] == "61.238.241.86"


def chk_pf_reject_vrfy(ev, fates, c):
    r = one(ev, event="reject")
    assert r["client_ip"] == "2001:968:9999:20:88b:9b7d:2a54:2bd2" and r["status"] == "user_unknown"


def to_check(recipient, status, mailer, client_ip=None):
    def chk(ev, fates, c):
        r = one(ev, event="to")
        assert (r["recipient"], r["status"], r["mailer"]) == (recipient, status, mailer)
        if client_ip:
            assert r["client_ip"] == client_ip

    return chk


def chk_pf_dsn(ev, fates, c):
    assert one(ev, event="dsn")["detail"].endswith("notification: ADD2F8052") or ev["event"].to_list() == ["dsn"]


def chk_exim_crowdsec(ev, fates, c):
    assert c["malformed"] == 0
    r = one(ev, event="reject", recipient="sales@toto.com.au")
    assert (r["status"], r["sender"], r["client_ip"], r["relay_host"]) == (
        "user_unknown",
        "jack@test.biz",
        "1.2.3.4",
        "imfo.test.biz",
    )
    assert one(ev, event="reject", recipient="tutu@titi.com.au")["relay_host"] is None  # H=(helo) [ip]
    assert len(rows(ev, event="reject")) == 4


def chk_exim_fail2ban(ev, fates, c):
    assert malformed_lines(fates) == [15]  # no stamp at the start of the line
    r = one(ev, event="reject")
    assert (r["recipient"], r["sender"], r["client_ip"]) == (
        "dir@ml3.ru",
        "menacedsj04@listserv.eurasia.org",
        "202.132.70.178",
    )


def chk_exim_0224(ev, fates, c):
    assert c["parsed"] == 16
    f = rows(ev, event="from")
    assert [x["sender"] for x in f] == ["caller@test.ex", "", "caller@test.ex", ""]
    to = rows(ev, event="to")
    assert [(t["recipient"], t["status"]) for t in to] == [
        ("useryx@test.ex", "user_unknown"),
        ("userxx@test.ex", "user_unknown"),
        ("caller@test.ex", "sent"),
        ("useryy@test.ex", "deferred"),
        ("userxy@test.ex", "deferred"),
        ("file@test.ex", "deferred"),
        ("caller@test.ex", "sent"),
    ]
    assert ev.filter(pl.col("event") == "other").height == 0  # Completed, queue runs: no rows


def chk_exim_476(ev, fates, c):
    to = rows(ev, event="to")
    assert [t["status"] for t in to] == ["deferred", "deferred", "user_unknown"]
    assert to[0]["queue_id"] == "1XEPof-0001p2-Oi" and to[0]["mailer"] == "mail_spool"


def dns_none(n_ignored, n_malformed=0):
    def chk(ev, fates, c):
        assert ev.height == 0 and (c["ignored"], c["malformed"]) == (n_ignored, n_malformed)

    return chk


def chk_bind_querylog(ev, fates, c):
    assert [(r["client_ip"], r["client_port"], r["qname"], r["qtype"]) for r in rows(ev)] == [
        ("172.26.0.1", 12345, "test.example.com", "A"),
        ("192.168.10.48", 60061, "91.2.10.170.in-addr.internal", "PTR"),
    ]
    assert ev["ts"].to_list()[0] == datetime(2018, 2, 17, 23, 6, 56, tzinfo=UTC)
    assert malformed_lines(fates) == [3]  # journal line without a stamp


def chk_dnsmasq_extra(ev, fates, c):
    r = one(ev)
    assert (r["client_ip"], r["client_port"], r["qname"], r["qtype"]) == (
        "10.10.10.33",
        59490,
        "server.example.com",
        "A",
    )
    assert c["ignored"] == 2  # forwarded, reply


def chk_unbound_syslog(ev, fates, c):
    assert [(r["client_ip"], r["qname"], r["qtype"]) for r in rows(ev)] == [
        ("127.0.0.1", "talkgadget.google.com", "A"),
        ("127.0.0.1", "github.com", "AAAA"),
    ]
    assert ev["ts"].to_list()[1] == datetime(2014, 7, 14, 19, 5, 7, tzinfo=UTC)


def chk_dovecot_f2b(ev, fates, c):
    assert c["malformed"] == 0 and not rows(ev, event="pop_login")  # failures are not logins
    assert c["parsed"] == len(rows(ev, event="pop_other")) and c["ignored"] >= 1


def chk_dovecot_1x(ev, fates, c):
    lg = one(ev, event="pop_login")  # Dovecot's own log file: no host, "Info:" first
    assert (lg["user"], lg["client_ip"], lg["mailer"]) == ("username", "1.2.3.4", "imap")


def chk_courier_failed(ev, fates, c):
    assert not rows(ev, event="pop_login") and c["parsed"] == 6


def chk_courier_2003(ev, fates, c):
    assert not rows(ev, event="pop_login") and c["parsed"] == 2


def chk_uw(ev, fates, c):
    lg = rows(ev, event="pop_login")
    assert [(x["user"], x["client_ip"], x["relay_host"]) for x in lg] == [
        ("joao", "200.255.5.8", "bahiana.resenet.com.br"),
        ("tiago", "200.255.5.8", "bahiana.resenet.com.br"),
        ("tiago", "200.255.5.8", "bahiana.resenet.com.br"),
    ]


def chk_vpopmail(ev, fates, c):
    assert c["ignored"] == 5  # failures of a program we do not count


def chk_rfc3339_repeats(ev, fates, c):
    # 6 (no line before it: kept as one), then 6 + 12 + 8 + 7 copies of sshd's line
    assert c["repeats_expanded"] == 33 and c["malformed"] == 0 and c["ignored"] == 12


def chk_bsd_repeats(ev, fates, c):
    assert c["repeats_expanded"] == 33 and c["ignored"] == 12


def chk_solaris(ev, fates, c):
    assert c["repeats_expanded"] == 11 and c["ignored"] == 5


def chk_solaris26(ev, fates, c):
    assert c["repeats_expanded"] == 17 and c["ignored"] == 11


def chk_yearchange(ev, fates, c):
    assert c["ignored"] == 17 and c["malformed"] == 0  # 'Feb  28' is read too


def chk_hpux(ev, fates, c):
    assert c["lines_read"] == 2 and c["repeats_expanded"] == 2


def chk_year_first(ev, fates, c):
    assert c["ignored"] == 2 and c["malformed"] == 0


# block title (a distinctive part) -> (format, wrapper for message-only lines, check)
BLOCKS = {
    "gitpan/SyslogScan:t/good_syslog": ("sendmail", None, chk_sendmail_1996),
    "gitpan/SyslogScan:t/repeat_syslog": ("sendmail", None, chk_repeats),
    "gitpan/SyslogScan:t/bad_syslog": ("sendmail", None, chk_truncated),
    "gitpan/SyslogScan:t/prev_syslog": ("sendmail", None, chk_prev_day),
    "sendmail-plain.log": ("sendmail", None, chk_sendmail_812),
    "sendmail-custom-dsn.log": ("sendmail", None, chk_sendmail_dsn),
    "sendmail-ruleset.log": ("sendmail", None, chk_ruleset),
    "sendmail-done.log": ("sendmail", None, chk_done),
    "technoids.log": ("sendmail", None, chk_clone),
    "logs/sendmail-reject": ("sendmail", None, chk_sendmail_reject),
    "logs/sendmail-auth": ("sendmail", None, chk_sendmail_auth),
    "log-entries/mail-alerts": ("sendmail", HDR, chk_message_part_sendmail),
    "postfix-plain.log": ("postfix", None, chk_postfix_21),
    "cpan-rt-28807.log": ("postfix", None, chk_postfix_bounce),
    "11_single_successful_delivery.log": ("postfix", None, chk_postfix_flow),
    "2_multiple_recipients_some_bounces.log": ("postfix", None, chk_postfix_multi),
    "18_expired.log": ("postfix", None, chk_postfix_expired),
    "20_rejected.log": ("postfix", None, chk_postfix_submission),
    "6_deferred_message_retry.log": ("postfix", None, chk_dovecot_in_postfix),
    "fail2ban/tests/files/logs/postfix": ("postfix", None, chk_postfix_rejects),
    "log-entries/postfix.ini": ("postfix", None, chk_postfix_rfc3339),
    "test/qmgr_0002.yaml": ("postfix", HDR + "postfix/qmgr[1]: ", chk_pf_from),
    "test/qmgr_0004.yaml": ("postfix", HDR + "postfix/qmgr[1]: ", chk_pf_expired),
    "test/qmgr_0005.yaml": ("postfix", HDR + "postfix/qmgr[1]: ", chk_pf_expired),
    "test/cleanup_0001.yaml": ("postfix", HDR + "postfix/cleanup[1]: ", chk_pf_quiet),
    "test/cleanup_0002.yaml": ("postfix", HDR + "postfix/cleanup[1]: ", chk_pf_quiet),
    "test/smtpd_0001.yaml": ("postfix", HDR + "postfix/smtpd[1]: ", chk_pf_quiet),
    "test/smtpd_0002.yaml": ("postfix", HDR + "postfix/smtpd[1]: ", chk_pf_quiet),
    "test/smtpd_0003.yaml": ("postfix", HDR + "postfix/smtpd[1]: ", chk_pf_quiet),
    "test/smtpd_0004.yaml": ("postfix", HDR + "postfix/smtpd[1]: ", chk_pf_reject_vu),
    "test/smtpd_0018.yaml": ("postfix", HDR + "postfix/smtpd[1]: ", chk_pf_reject_vrfy),
    "test/smtpd_0028.yaml": ("postfix", HDR + "postfix/smtpd[1]: ", chk_pf_quiet),
    "test/smtpd_0032.yaml": ("postfix", HDR + "postfix/smtpd[1]: ", chk_pf_quiet),
    "test/smtp_0001.yaml": (
        "postfix",
        HDR + "postfix/smtp[1]: ",
        to_check("admin@example.com", "sent", "smtp", "127.0.0.1"),
    ),
    "test/smtp_0002.yaml": (
        "postfix",
        HDR + "postfix/smtp[1]: ",
        to_check("jos@example.com", "sent", "smtp", "10.74.103.11"),
    ),
    "test/smtp_0018.yaml": (
        "postfix",
        HDR + "postfix/smtp[1]: ",
        to_check("redacted@gmail.com", "bounced", "smtp", "2607:f8b0:400e:c04::1b"),
    ),
    "test/smtp_0026.yaml": (
        "postfix",
        HDR + "postfix/smtp[1]: ",
        to_check("whatever-user@lists.example.org", "deferred", "smtp", "10.49.140.10"),
    ),
    "test/lmtp_0001.yaml": ("postfix", HDR + "postfix/lmtp[1]: ", to_check("admin@example.com", "sent", "lmtp")),
    "test/local_0001.yaml": (
        "postfix",
        HDR + "postfix/local[1]: ",
        to_check("user@hostname.example.com", "sent", "local"),
    ),
    "test/local_0002.yaml": (
        "postfix",
        HDR + "postfix/local[1]: ",
        to_check("ghdsgfhdslfh@localhost", "user_unknown", "local"),
    ),
    "test/virtual_0001.yaml": (
        "postfix",
        HDR + "postfix/virtual[1]: ",
        to_check("postmaster@example.com", "sent", "virtual"),
    ),
    "test/error_0001.yaml": ("postfix", HDR + "postfix/error[1]: ", to_check("user@yahoo.com", "deferred", "error")),
    "test/error_0002.yaml": (
        "postfix",
        HDR + "postfix/error[1]: ",
        to_check("user@yahoo.com", "user_unknown", "error"),
    ),
    "test/bounce_0001.yaml": ("postfix", HDR + "postfix/bounce[1]: ", chk_pf_dsn),
    "test/bounce_0004.yaml": ("postfix", HDR + "postfix/bounce[1]: ", chk_pf_dsn),
    "test/pickup_0001.yaml": ("postfix", HDR + "postfix/pickup[1]: ", chk_pf_quiet),
    "exim-logs/exim-logs.log": ("exim", None, chk_exim_crowdsec),
    "exim-syslog-logs/exim-logs.log": ("exim", None, chk_exim_crowdsec),
    "fail2ban/tests/files/logs/exim": ("exim", None, chk_exim_fail2ban),
    "Exim/exim:test/log/0224": ("exim", None, chk_exim_0224),
    "pastebin.com/Mjx5iZEP": ("exim", None, chk_exim_476),
    "logs/named-refused": ("bind", None, dns_none(15, 1)),
    "bind9-logs/bind9-logs.log": ("bind", None, dns_none(11, 2)),
    "bind9-syslog/bind9-syslog.log": ("bind", None, dns_none(12)),
    "patterns/bind_spec.rb": ("bind", None, chk_bind_querylog),
    "tests/named.ini": ("bind", None, dns_none(7)),
    "decoders/0155-named_decoders.xml": ("bind", None, dns_none(4)),
    "test/logfile_filter.0": ("dnsmasq", None, dns_none(9)),
    "tests/dnsmasq.ini": ("dnsmasq", None, chk_dnsmasq_extra),
    "decoders/0345-unbound_decoders.xml": ("unbound", None, chk_unbound_syslog),
    "examples/example1.rst": ("unbound", None, dns_none(4)),
    "fail2ban/tests/files/logs/dovecot": ("postfix", None, chk_dovecot_f2b),
    "tests/dovecot.ini": ("postfix", None, chk_dovecot_1x),
    "logs/courier-auth": ("postfix", None, chk_courier_failed),
    "2003-07-05-more-mail-woes": ("sendmail", None, chk_courier_2003),
    "log-entries/imapd": ("sendmail", None, chk_uw),
    "log-entries/vpopmail": ("sendmail", None, chk_vpopmail),
    "t/linux-rfc3339syslog": ("sendmail", None, chk_rfc3339_repeats),
    "t/linux-syslog": ("sendmail", None, chk_bsd_repeats),
    "t/solaris28-syslog": ("sendmail", None, chk_solaris),
    "t/solaris26-syslog": ("sendmail", None, chk_solaris26),
    "t/yearchange-syslog": ("sendmail", None, chk_yearchange),
    "t/misc-syslog": ("sendmail", None, chk_hpux),
    "rules-testing/tests/syslog.ini": ("sendmail", None, chk_year_first),
}


def _entry(title: str):
    hits = [k for k in BLOCKS if k in title]
    return max(hits, key=len) if hits else None


def test_every_block_has_a_check():
    missing = [t for t in _blocks() if _entry(t) is None]
    assert not missing, missing


@pytest.mark.parametrize("title", list(_blocks()), ids=lambda t: t.split(" — ")[-1][-60:])
def test_block(title):
    fmt, wrap, check = BLOCKS[_entry(title)]
    lines = _blocks()[title]
    if wrap:
        lines = [wrap + ln for ln in lines]
    ev, fates, counts = run(fmt, lines)
    check(ev, fates, counts)
