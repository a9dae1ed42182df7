"""The compiled kernels (mmw_tasks/parse/csrc/) against the regexes and expressions they stand for.

Each kernel has one specification, in the parse module that uses it (docs/speed.md lists them):
the tests here import it, on hand-made cases first, then on seeded random mutations of the real
lines of tests/data/sample-lines.txt."""

from __future__ import annotations

import polars as pl
import pytest
from conftest import sample_block

from mmw_tasks.parse import kernels
from mmw_tasks.parse import pop as parse_pop
from mmw_tasks.parse.fields import after_keys_reference

POP_MESSAGES = [
    '(v4.0.9) POP login by user "nick" at (host.example) 74.125.46.35 [pop_log.c:244]',
    'POP login by user "Mixed Case" at () 2001:db8::1',
    'POP login by user "" at (h) 10.0.0.1',
    'POP login by user "usér" at (hôte) 10.0.0.2',  # not ASCII: the fields are cut by bytes
    'POP login by user "x" at (h)10.0.0.3',  # no space after ")": not the common form
    'POP login by user "x" at (h) -',  # no address
    "POP login by user nick at (h) 10.0.0.4",  # no quotes
    "Stats: nick 0 0 1 731 host 10.0.0.5",
    "pop3-login: Login: user=<a@b.example>, method=PLAIN, rip=78.55.5.173, lip=172.18.0.2, TLS",
    "imap-login: Login: user=<>, method=PLAIN, rip=::ffff:10.1.2.3, lip=::ffff:10.0.0.1",
    "managesieve-login: Login: user=<u>, orip=x, rip=, rip=10.9.8.7",  # the first rip= with an address
    "submission-login: Login: user=<u> rip=zz",  # no address after any rip=
    "pop3-login: Info: Login: user=<u>, rip=10.0.0.6",  # Dovecot 1.x: the full pattern's
    "dovecot: imap-login: Login: user=<u>, rip=10.0.0.7",  # not at the start
    "pop3-login: Aborted login (no auth attempts): rip=190.210.136.21",
    "LOGIN, user=u, ip=[::ffff:10.0.0.8], port=[1]",
    "Login user=u host=h [10.0.0.9]",
    "Authenticated user=u host=h [10.0.0.10]",
    "",
    "POP login by user",
    'POP login by user "',
    'POP login by usex "x" at (h) 10.0.0.1',
    "pop3-login: Login: user_<u>, rip=10.0.0.1",  # one byte off
]


@pytest.mark.parametrize("with_samples", [False, True])
def test_pop_login_kernel_reads_what_the_regexes_read(with_samples):
    messages = []
    if with_samples:
        lines = sample_block("Dovecot pop3-login/imap-login") + sample_block("Dovecot (1.x-2.4)")
        messages = [ln.split(": ", 1)[1] for ln in lines]
    msg = pl.Series("msg", messages + POP_MESSAGES)
    got = kernels.pop_logins(msg)
    want = parse_pop.pop_logins_reference(msg)
    assert got["kind"].to_list() == want["kind"].to_list()
    for f in ("f1", "f2", "f3"):
        assert got[f].to_list() == want[f].to_list(), f
    assert (got["cased"], got["mapped"]) == (want["cased"], want["mapped"]) == (True, True)
    n = len(messages)
    assert got["f2"][n] == "host.example" and got["f1"][n + 8] == "pop3"  # not null = null
    assert sorted(set(got["kind"].to_list())) == [0, 1, 2, 3, 4]


def test_pop_login_kernel_reads_nulls_and_chunks():
    """A null message is no login; a Series of several chunks is read whole."""
    msg = pl.concat([pl.Series("msg", POP_MESSAGES[:3]), pl.Series("msg", [None, POP_MESSAGES[8]])], rechunk=False)
    got = kernels.pop_logins(msg)
    assert got["kind"].to_list() == [1, 1, 1, 0, 2]
    assert got["f1"].to_list() == ["nick", "Mixed Case", "", None, "pop3"]


SENDMAIL_MESSAGES = [
    "g1GBU1a12345: from=<a@b.example>, size=1, class=0, nrcpts=1",
    "g1GBU1a12345[2]: to=<x@y.example>, delay=00:00:01, stat=Sent",
    "AB12345: to=x",
    "AB1234: to=x",
    "A" * 20 + ": from=<>",
    "A" * 21 + ": from=<>",
    "A" * 16 + "[12345]: to=x",  # the id and its [n] end past the first 26 characters
    "ABCDEFG[]: x",
    "ABCDEFG[1a]: x",
    "ABCDEFG[١]: x",
    "ABCDEFG:x",
    "ABCDEFG: ",
    "ABCDEFGé: to=x",
    "g1GBU1a12345: ruleset=check_rcpt, arg1=<u@v>, relay=h [10.0.0.1], reject=550 5.1.1 <u@v>... User unknown",
    "ruleset=check_mail, arg1=x, relay=h",
    "ruleset=check_mail, arg1=x, rejectx550",
    "g1GBU1a12345: <bad@x.example>... User unknown",
    "g1GBU1a12345: bad@x.example... User unknown",
    "@x... y",
    "a@... y",
    "a@b... y",
    "a<b@c... x",
    "a@b<c... x",
    "a@b...\tx",
    "ä@b.example... x",
    "naïve text@b... x",
    "a\u00a0b@c... x",  # a no-break space is whitespace to the regex: the kernel leaves it to the regex
    "",
    "not from=<x>",
    "STARTTLS=client, relay=x",
    None,  # a null message has a null body
]


def test_sendmail_head_kernel_reads_what_the_regexes_read():
    from mmw_tasks.parse import sendmail as parse_mail

    msg = pl.Series("msg", SENDMAIL_MESSAGES)
    got = parse_mail._heads(pl.DataFrame({"msg": msg}))
    want = parse_mail.sendmail_heads_reference(msg)
    for col in ("queue_id", "body", "event"):
        assert got[col].to_list() == want[col].to_list(), col
    assert got["queue_id"][1] == "g1GBU1a12345" and got["event"].to_list().count("reject") == 5


@pytest.mark.parametrize("stop", [",", None])
def test_after_keys_reads_the_first_occurrence_up_to_the_stop(stop):
    values = pl.Series(
        "v",
        [
            "to=<a>, delay=1, mailer=esmtp, relay=h [1.2.3.4], dsn=2.0.0, stat=Sent (ok, queued)",
            "x, size=",
            "ü ñ, size=12, mailer=local",
            "mailer=nocomma, size=3",
            None,
            "",
            "a, relay=one, relay=two",
            ", dsn=5.1.1, stat=Deferred: Connection refused by h.example",
        ],
    )
    keys = [", size=", ", mailer=", ", relay=", ", stat="]
    got = kernels.after_keys(values, keys, stop)
    for key, series, want in zip(keys, got, after_keys_reference(values, keys, stop), strict=True):
        assert series.to_list() == want.to_list(), key
    assert got[2][6] == ("one" if stop else "one, relay=two") and got[0][1] == "" and got[0][4] is None


POSTFIX_MESSAGES = [
    "3FA2B1C0D9: client=unknown[10.0.0.1]",
    "3FA2B1C0D9: from=<a@b.example>, size=10, nrcpt=1 (queue active)",
    "3FA2B1C0D9: from=<a@b.example>, status=expired, returned to sender",
    "NOQUEUE: reject: RCPT from x",
    "3FA2B: to=<x@y>, relay=none, status=bounced",
    "3FA2: to=x",
    "3fa2b1c0d9: to=x",  # 4 digits; lower-case hex
    "4Bq3Xj2H9Zz1kP: message-id=<m@x>",
    "4Bq3Xj2H9Zz: removed",
    "A" * 20 + ": removed",
    "A" * 21 + ": removed",
    "3FA2B1C0D9:removed",
    "3FA2B1C0D9: uid=0 from=<root>",
    "3FA2B1C0D9: sender=x",
    "3FA2B1C0D9: milter-reject: END",
    "3FA2B1C0D9: proxy-reject: END",
    "connect from h[1.2.3.4]",
    "disconnect from h[1.2.3.4] ehlo=1",
    "Anonymous TLS connection established",
    "Untrusted TLS",
    "3FA2B1C0D9: sender non-delivery notification: 4C",
    "3FA2B1C0D9: sender delivery status notification: 4C",
    "3FA2B1C0D9: Sender delivery notification: x",
    "removed delivery notification: x",
    "warning: hostname x does not resolve",
    "NOQUEUE: filter: RCPT",
    "3FA2B1C0D9: from=x",
    "",
    "NOQUEUE",
    "ÄÖ: to=x",
    "3FA2B1C0D9: to=<ü@x>, status=sent",
    None,
]


def test_postfix_head_kernel_reads_what_the_regexes_read():
    from mmw_tasks.parse import postfix as pp

    msg = pl.Series("msg", POSTFIX_MESSAGES)
    got = pp.heads(pl.DataFrame({"msg": msg}))
    want = pp.postfix_heads_reference(msg)
    for col in ("queue_id", "body", "event"):
        assert got[col].to_list() == want[col].to_list(), col
    assert set(got["event"]) == set(pp._KINDS.values())


def test_pop_logins_the_kernel_leaves_go_through_the_full_patterns():
    """Courier, UW and Dovecot 1.x logins are read by the full patterns after the kernel: each
    gives its user, address, host and service; a login line no pattern reads is malformed."""
    from datetime import datetime

    from mmw_tasks.parse.fields import BASE

    lines = [
        ("popper", '(v4.0.9) POP login by user "Nick" at (host.example) 74.125.46.35 [pop_log.c:244]'),
        ("dovecot", "pop3-login: Info: Login: user=<Ann>, method=PLAIN, rip=::ffff:10.0.0.6, lip=10.0.0.1"),
        ("imapd", "LOGIN, user=bob, ip=[::ffff:10.0.0.8], port=[4712], protocol=IMAP"),
        ("ipop3d", "Login user=carol host=pc.example [10.0.0.9]"),
        ("dovecot", "imap-login: Login: user=<dave>, method=PLAIN, rip=10.0.0.7, lip=10.0.0.1"),
        ("popper", 'POP login by user "x" at (h)10.0.0.3'),
        ("popper", "Stats: nick 0 0 1 731 host 10.0.0.5"),
    ]
    rows = pl.DataFrame(
        {
            "ts": [datetime(2002, 2, 16)] * len(lines),
            "line_no": range(1, len(lines) + 1),
            "copy": [0] * len(lines),
            "repeat": [False] * len(lines),
            "prog": [p for p, _ in lines],
            "msg": [m for _, m in lines],
        }
    )
    events, fates = parse_pop.parse_pop(rows, BASE)
    got = events.sort("line_no").select("line_no", "event", "user", "client_ip", "relay_host", "mailer").rows()
    assert got == [
        (1, "pop_login", "nick", "74.125.46.35", "host.example", "pop3"),
        (2, "pop_login", "ann", "10.0.0.6", None, "pop3"),
        (3, "pop_login", "bob", "10.0.0.8", None, "imap"),
        (4, "pop_login", "carol", "10.0.0.9", "pc.example", "pop3"),
        (5, "pop_login", "dave", "10.0.0.7", None, "imap"),
        (7, "pop_other", None, None, None, None),
    ]
    assert fates.select("line_no", "fate").rows() == [(6, "malformed")]


@pytest.mark.parametrize(
    ("prog", "msg", "want"),
    [
        (
            "popper",
            '(v4.0.9) POP login by user "nick" at (Host.Example) 10.0.0.1',
            ("nick", "10.0.0.1", "host.example"),
        ),
        ("popper", '(v4.0.9) POP login by user "Nick" at (host) 10.0.0.5', ("nick", "10.0.0.5", "host")),
        ("popper", '(v4.0.9) POP login by user "nick" at (host) ::ffff:10.0.0.2', ("nick", "10.0.0.2", "host")),
        (
            "dovecot",
            "imap-login: Login: user=<Ann>, method=PLAIN, rip=::ffff:10.0.0.3, lip=10.0.0.9",
            ("ann", "10.0.0.3", None),
        ),
        (
            "dovecot",
            "imap-login: Login: user=<Ännä>, method=PLAIN, rip=10.0.0.4, lip=10.0.0.9",
            ("ännä", "10.0.0.4", None),
        ),
    ],
)
def test_pop_logins_read_by_the_kernel_alone_are_lower_cased_and_unmapped(prog, msg, want):
    """Users and hosts are lower-cased, and "::ffff:" addresses unmapped, also in a batch whose
    every login the kernel reads (parse_pop then skips what would change nothing)."""
    from datetime import datetime

    from mmw_tasks.parse.fields import BASE

    plain = ("popper", '(v4.0.9) POP login by user "x" at (h) 10.0.0.9')
    rows = pl.DataFrame(
        {
            "ts": [datetime(2002, 2, 16)] * 2,
            "line_no": [1, 2],
            "copy": [0, 0],
            "repeat": [False] * 2,
            "prog": [plain[0], prog],
            "msg": [plain[1], msg],
        }
    )
    events, _ = parse_pop.parse_pop(rows, BASE)
    assert events.sort("line_no").select("user", "client_ip", "relay_host").rows() == [("x", "10.0.0.9", "h"), want]


EXIM_MESSAGES = [
    "1MUhnF-0000JZ-OX <= a@b.example H=h [1.2.3.4] P=esmtp S=123",
    "[1234] 1MUhnF-0000JZ-OX => x@y R=r T=smtp",
    "1MUhnF-0000JZ-OX -> x2@y",
    "1MUhnF-0000JZ-OX >> x@y",
    "1MUhnF-0000JZ-OX *> x@y",
    "1MUhnF-0000JZ-OX == x@y",
    "1MUhnF-0000JZ-OX ** x@y: Unrouteable address",
    "1MUhnF-0000JZ-OX << weird",
    "1MUhnF-0000JZ-OX Completed",
    "1MUhnF-0000JZ-OX =>x",
    "1rWzOe-000000004yO-2Awl <= a@b",
    "1MUhnFX-0000JZ-OX <= a",
    "1MUhnF-0000JZ-OXXXX <= a",
    "1MUhnF-00000-OX <= a",
    "1MUhnF-0000JZ-OX",
    "[12] H=x rejected RCPT <u@v>: unknown",
    "[] 1MUhnF-0000JZ-OX <= a",
    "[١٢] 1MUhnF-0000JZ-OX <= a",
    "exim 4.96 daemon started: pid=1",
    "exim x daemon started",
    "Start queue run: pid=2",
    "End queue run: pid=2",
    "Frozen (delivery error message)",
    "Message is frozen",
    "",
    "H=(x) [1.2.3.4] F=<a@b> rejected RCPT <c@d>: relay not permitted",
    "1MUhnF-0000JZ-OX ** é@x: no",
    None,
]


def test_exim_head_kernel_reads_what_the_regexes_read():
    from mmw_tasks.parse import exim as px

    msg = pl.Series("msg", EXIM_MESSAGES)
    got = px.heads(pl.DataFrame({"msg": msg}))
    want = px.exim_heads_reference(msg)
    for col in ("queue_id", "_flag", "body", "event"):
        assert got[col].to_list() == want[col].to_list(), col
    assert set(got["event"]) == set(px._KINDS.values()) and got["queue_id"][10] == "1rWzOe-000000004yO-2Awl"


POSTFIX_TO_BODIES = [
    "to=<a@b.example>, relay=mx.b.example[10.0.0.2]:25, delay=1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as X)",
    "to=<a@b.example>, relay=none, delay=30, dsn=4.4.1, status=deferred (connect to x[10.0.0.3]:25: Connection refused)",  # noqa: E501 (a real log line)
    "to=<u@c.example>, relay=c[10.0.0.4]:25, dsn=5.1.1, status=bounced (host c said: 550 no (in reply to RCPT TO))",
    "to=<u@c.example>, orig_to=<u>, relay=local, status=sent (delivered to mailbox)",
    "to=<a@b>, status=sent",
    "to=<a@b>, status=deferred (x) extra",
    "to=<a@b>, status=Sent (x)",
    "to=<a@b>, status=sent ()",
    "to=<a@b>, status=s (",
    "to=a@b, relay=h[1.2.3.4]:25, status=sent (ok)",
    "to=<a>b>, relay=x",
    "to=<a@b>x, relay=y",
    "to=<a,b@c>, relay=z",
    "to=<ü@x.example>, relay=ħ[10.0.0.5]:25, status=sent (250 ök)",
    "to=<a@b>, relay=x",
    "",
    "to=",
    "to=<>,",
    "to=<a@b>, status=expired, returned to sender",
    "to=<a@b>, status=undeliverable-mailbox (x)",
]


def test_postfix_to_kernel_reads_what_the_finds_and_slices_read():
    """kernels.postfix_to against the polars code it replaced (finds, slices, the recipient regex)."""
    from mmw_tasks.parse import postfix as pp

    body = pl.Series("body", POSTFIX_TO_BODIES)
    got, want = kernels.postfix_to(body), pp.postfix_to_reference(body)
    for col in ("recipient", "relay", "status", "detail"):
        assert got[col].to_list() == want[col].to_list(), col
    assert got["detail"][2] == "host c said: 550 no (in reply to RCPT TO)" and got["recipient"][12] == "a"


EXIM_ARRIVALS = [
    "a@b.example H=mx.b.example (helo) [10.0.0.1] P=esmtp S=1234 id=x for c@d e@f",
    "<> R=1MUhnF-0000JZ-OX U=Debian-exim P=local S=890",
    "<>x S=1",
    "a@b H=(helo) [10.0.0.1]:25 S=12",
    "a@b H=[10.0.0.1] S=x S=15",
    "a@b XS=10 S=11",
    "a@b H=name [xyz] H=ok [1.2.3.4]",
    "a@b H=name (helo with space) [1.2.3.4]",
    "a@b H=name(helo) [1.2.3.4]",
    "a@b H=(helo)[1.2.3.4]",
    "a@b H= [1.2.3.4]",
    "a@b H=n (h) [] H=m [::1]",
    "a@b for",
    "a@b for ",
    "a@b for x",
    "",
    " leading space",
    "ü@b H=h [10.0.0.1] S=5",
    "a@b\u00a0H=h [1.2.3.4] S=6",
    "a@b\tS=7 for  two",
    "a_H=h [1.2.3.4]",
]
EXIM_DELIVERIES = [
    'c@d R=dnslookup T=remote_smtp H=mx.d [10.0.0.2] X=TLS C="250 OK"',
    "c@d <orig@d> R=r T=local_delivery",
    "c@d: Unrouteable address",
    "c@d <o@d>: mailbox full",
    "c@d <o@d> retry timeout exceeded",
    "c@d <>: x",
    "c@d\tT=x",
    "c@dT=x",
    "c@d <o@d>",
    "  x T=y",
    "c@d <o@d:x",
    "c@d T=",
    "c@d T=a T=b",
    "é@d T=x <o>: y",
    "c@d <o@d>:x",
    "c@d <o@d>: ",
    "c@d ",
    "c@d",
    "",
]


@pytest.mark.parametrize("to", [False, True])
def test_exim_field_kernel_reads_what_the_regexes_read(to):
    from mmw_tasks.parse import exim as px

    bodies = EXIM_DELIVERIES if to else EXIM_ARRIVALS
    got = px._fields(pl.DataFrame({"body": bodies}), to)
    want = px.exim_fields_reference(pl.Series(bodies), to)
    for k in want.columns:
        assert got[f"_{k}"].to_list() == want[k].to_list(), k
    if to:
        assert got["_detail"][3] == "mailbox full" and got["_mailer"][12] == "a" and got["_orig"][1] == "orig@d"
    else:
        assert got["_size"][5] == "11" and got["_host"][6] == "ok [1.2.3.4]" and got["_sender"][17] == "ü@b"


def test_postfix_to_reads_a_reply_that_is_not_ascii_after_the_status_word():
    """The finds and slices this kernel replaced stopped the whole batch with "invalid utf8" when
    a character that is not ASCII followed the status word's space (a byte offset cut it)."""
    from mmw_tasks.parse import postfix as pp

    got = pp._to_fields(
        pl.DataFrame(
            {
                "body": [
                    "to=<a@b>, relay=x, status=bounced \u2003(x)",
                    "to=<a@b>, relay=x, status=bounced (ünïcode reply)",
                ]
            }
        )
    )
    assert got.select("recipient", "_relay", "_status", "detail").rows() == [
        ("a@b", "x", "bounced", None),
        ("a@b", "x", "bounced", "ünïcode reply"),
    ]
    with pytest.raises(ValueError, match="one ASCII character"):
        kernels.after_keys(pl.Series(["k=aé b"]), ["k="], "é")


SENDMAIL_FROM_BODIES = [  # (body, read by the kernel)
    (
        "from=<takeda11@example.ac.jp>, size=2610, class=0, nrcpts=1, msgid=<2002.914C@example.ac.jp>, "
        "proto=ESMTP, daemon=MTA, relay=pc2069.example.ac.jp [10.1.2.69]",
        True,
    ),
    ("from=<>, size=1234, class=0, nrcpts=0, proto=ESMTP, relay=mx.example [192.0.2.1]", True),
    ("from=MAILER-DAEMON, size=10, class=0, nrcpts=1", False),
    ("from=daemon, size=10, nrcpts=1", True),
    ("from=<a@b>, size=12x, nrcpts=3", True),
    ("from= <a@b> , size=05, nrcpts=007, relay=", True),
    ("from=<a>b>, size=1, nrcpts=1", True),
    ("from=x, y>, size=1, nrcpts=1, relay=r1, relay=r2", True),
    ("from=<a@b>, size=123456789012345678, nrcpts=1", True),
    ("from=<A@B.example>, size=1, nrcpts=1", False),
    ("from=<a@b>, size=, nrcpts=1", False),
    ("from=<a@b>, nrcpts=1", False),
    ("from=a@b", False),
    ("from=<a@b>, size=1234567890123456789, nrcpts=1", False),
    ("from=<a@b>, size=1, nrcpts=1234567890", False),
    ("from=<a@ü.example>, size=1, nrcpts=1", False),
    ("from=<a@b>, size=\u0661\u0662, nrcpts=1", False),
    ("from=<a@b>, size=99999999999999999999, nrcpts=1", False),
]
SENDMAIL_TO_BODIES = [
    (
        "to=<kumiko.ono@mobile.ne.jp>, delay=00:00:03, xdelay=00:00:01, mailer=esmtp, pri=32610, "
        "relay=mx1.mobile.ne.jp. [198.18.0.4], dsn=2.0.0, stat=Sent (Ok: queued as 52634C9)",
        True,
    ),
    ("to=<kudo10@example.ac.jp>, delay=00:00:03, xdelay=00:00:00, mailer=local, pri=31413, dsn=2.0.0, stat=Sent", True),
    ('to="|/usr/bin/procmail -f-", ctladdr=<u@x> (1/2), delay=00:00:01, mailer=prog, stat=Sent', True),
    ("to=a@b, ctladdr=x, delay=1, stat=Sent", True),
    ("to=<a@b>, delay=1, ctladdr=x, stat=Sent", True),
    ("to=<a@b.>, delay=1, stat=Sent", True),
    ("to=<a@>, delay=1, stat=Sent", True),
    ("to=<a@b c>, delay=1, stat=Sent", True),
    ('to=<a"b@c">, delay=1, stat=Sent', True),
    ("to=<>, delay=1, stat=Sent", True),
    ("to=<a@b>, delay=1, mailer=esmtp, relay=, stat=Sent", True),
    ("to=<a@b>, delay=1, stat=Sent, mailer=x", True),
    ("to=<a@b>, delay=1, xstat=1, stat=Sent", True),
    ("to=<a@b.>, [more], stat=Sent", True),
    ("to=<a@b>,<c@d>, delay=1, stat=Sent", False),
    ("to=<a@b>, [more]", False),
    ("to=<a@b>, delay=1, dsn=4.0.0, stat=Deferred: Connection refused", False),
    ("to=<a@b>, delay=1, stat=sent", False),
    ("to=<A@b>, delay=1, stat=Sent", False),
    ("to=, delay=1, stat=Sent", False),
    ("to=<a@b>,delay=1, stat=Sent", False),
    ("to=<a@b>, delay=1,stat=Sent", False),
    ("to=<a@b>, delay=1, stat=Sent ü", False),
    ("to=<a@b>, delay=1", False),
]


@pytest.mark.parametrize("to", [False, True])
def test_sendmail_field_kernels_read_what_the_expressions_read(to):
    """kernels.sendmail_from/_to against parse_mail's expressions (its path for the lines they
    leave): the same fields on every line they read, and they leave the odd ones."""
    from mmw_tasks.parse import sendmail as pm

    cases = SENDMAIL_TO_BODIES if to else SENDMAIL_FROM_BODIES
    rows = pl.DataFrame({"line_no": range(len(cases)), "copy": [0] * len(cases), "body": [b for b, _ in cases]})
    fast, found = (kernels.sendmail_to if to else kernels.sendmail_from)(rows["body"])
    assert fast.tolist() == [read for _, read in cases]
    want = pm._to_fields(rows, []) if to else pm._from_fields(rows)
    got = rows.with_columns(**found).filter(pl.Series(fast))
    if to:
        got = got.with_columns(detail=pl.col("_stat"), status=pl.lit("sent"), rcpt_index=pl.lit(0, pl.Int32))
    fields = pm._TO if to else pm._FROM
    want = want.filter(pl.col("line_no").is_in(got["line_no"].to_list()))
    assert got.select("line_no", *fields).rows() == want.select("line_no", *fields).rows()
    assert got.height == sum(read for _, read in cases)


SENDMAIL_REJECTS = [  # (body, read by the kernel)
    ("<matsuda39x@example.ac.jp>... User unknown", True),
    ("a@b.example... User unknown", True),
    ("<a@b.... x", True),
    ("<<a@b>... x", True),
    ("<>... x", True),
    ("<a@b>... x... y", True),
    ("...  x", True),
    ("<a@b.>... 550 5.1.1 no", True),
    ("<a b>... x", False),
    ("<a@b>...x", False),
    ("<a@B>... x", False),
    ("a>b... x", False),
    ("<a@b>>... x", False),
    ("<a@ü.example>... x", False),
    ("<a@b>\t... x", False),
    ("", False),
]


def test_sendmail_reject_kernel_reads_what_the_regex_reads():
    """kernels.sendmail_reject against parse_mail._REJECT (with addr and domain after it) on the
    lines it reads; it leaves the others, which the regex reads (or finds no match in)."""
    from mmw_tasks.parse import sendmail as pm

    rows = pl.DataFrame({"line_no": range(len(SENDMAIL_REJECTS)), "body": [b for b, _ in SENDMAIL_REJECTS]})
    fast, found = kernels.sendmail_reject(rows["body"])
    assert fast.tolist() == [read for _, read in SENDMAIL_REJECTS]
    cols = ["line_no", "recipient", "recipient_domain", "detail"]
    got = rows.with_columns(**found).filter(pl.Series(fast)).select(cols)
    want = pm._reject_fields(rows).filter(pl.Series(fast)).select(cols)
    assert got.rows() == want.rows()
    assert got.row(0) == (0, "matsuda39x@example.ac.jp", "example.ac.jp", "User unknown")


RELAYS = [
    "mx1.mobile.ne.jp. [198.18.0.4]",
    "mx.example[203.0.113.9]:25",
    "[IPv6:2001:db8::1]",
    "[ipv6:::1]",
    "local",
    "none",
    "",
    ".",
    "h [nope] [10.0.0.1]",
    "h [] [10.0.0.2]",
    "h [10.0.0.3",
    "h\t[10.0.0.4]",
    "h [IPV6:2001:db8::2]",
    "h [IPv6:] [10.0.0.5]",
    "x.example. [10.0.0.6] (may be forged)",
    " lead [10.0.0.7]",
    None,
    "h[fe80::1%eth0]",
    "h [10.0.0.8][10.0.0.9]",
]


def test_relay_kernel_reads_what_host_of_and_ip_of_read():
    """kernels.relay_fields against parse_util.host_of and ip_of; a relay whose host has a capital
    or that is not ASCII makes it decline the batch (the expressions read it)."""
    from mmw_tasks.parse.fields import host_of, ip_of, relays

    values = pl.Series("r", RELAYS)
    host, ip = kernels.relay_fields(values)
    want = pl.DataFrame({"r": values}).select(host=host_of(pl.col("r")), ip=ip_of(pl.col("r")))
    assert host.to_list() == want["host"].to_list() and ip.to_list() == want["ip"].to_list()
    assert host[0] == "mx1.mobile.ne.jp" and ip[2] == "2001:db8::1"
    for odd in ("MX.example [10.0.0.1]", "h\u00a0x [10.0.0.1]"):
        assert kernels.relay_fields(pl.Series([*RELAYS, odd])) is None
        got = relays(pl.DataFrame({"r": [*RELAYS, odd]}), "r")
        assert got.row(-1)[1:] == pl.select(host_of(pl.lit(odd)).alias("h"), ip_of(pl.lit(odd)).alias("i")).row(0)


def test_names_of_gives_each_code_its_name():
    """kernels.names_of against replace_strict: names of 12 bytes or fewer (held in the view) and
    longer (in a buffer), a code without a name (null), every code of a byte."""
    import numpy as np

    names = {0: "other", 1: "to", 2: "exactly12byt", 3: "ruleset_reject", 7: "delivery_notification", 255: "ü-name"}
    codes = pl.Series(np.arange(256, dtype=np.uint8)).append(pl.Series([3, 3, 1, 7], dtype=pl.UInt8))
    want = codes.replace_strict(names, default=None, return_dtype=pl.String)
    assert kernels.names_of(codes, names).to_list() == want.to_list()
