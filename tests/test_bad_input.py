"""Bytes never stop a day, and a bad file is named in one line (issue #17, items 1 and 7).

Each test holds one case the issue saw on main: a line of Japanese text, a multibyte character
cut by the 6 bytes before its first space in a log with ISO stamps, an all-binary file in the
source glob, a file that cannot be read, a corrupt gzip archive; and the parser defects: a
sendmail to= line without delay=, Exim's H=([helo ip]) [ip], blank lines.
"""

from __future__ import annotations

import base64
import builtins
import gzip
import os
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import polars as pl
import pytest

from mmw_tasks import pipeline
from mmw_tasks.config import Server, load_site
from mmw_tasks.parse import ingest, logfiles
from mmw_tasks.parse.logfiles import LogFileError

TZ = "Asia/Tokyo"
DAYS = (date(2002, 2, 15), date(2002, 2, 16), date(2002, 2, 17))


def _mail(day: date, hh: int, n: int) -> list[str]:
    """A from= and a to= line of message n at hh:00 local time on `day`, stamped as rsyslog does."""
    t = f"{day.isoformat()}T{hh:02d}:{n % 60:02d}:00.000000+09:00 mx sendmail"
    q = f"K{day.day:02d}{hh:02d}{n:05d}"
    return [
        f"{t}[1]: {q}: from=<u{n}@example.ac.jp>, size=100, class=0, nrcpts=1, proto=SMTP, relay=pc{n} [10.1.3.{n}]",
        f"{t}[2]: {q}: to=<r{n}@example.com>, delay=00:00:01, mailer=esmtp, relay=mx.example.com. [192.0.2.1], "
        "stat=Sent",
    ]


def _local(day: date, hh: int) -> float:
    return datetime(day.year, day.month, day.day, hh, tzinfo=ZoneInfo(TZ)).timestamp()


def _site(tmp_path: Path, extra: str = "") -> Path:
    """A mail-only site whose server reads logs/maillog*: three rotated files, one per day."""
    _logs(tmp_path)
    return _toml(tmp_path, extra)


def _logs(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    for k, day in enumerate(DAYS):
        name = "maillog" + ("" if k == 2 else f".{2 - k}")
        path = logs / name
        path.write_text("\n".join(ln for hh in (10, 20) for ln in _mail(day, hh, k * 10 + hh % 7)) + "\n")
        os.utime(path, (_local(day, 21), _local(day, 21)))


def _toml(tmp_path: Path, extra: str = "") -> Path:
    """The site's config (`extra`: more keys of [site])."""
    toml = tmp_path / "site.toml"
    toml.write_text(
        f'[site]\nname = "t"\ntimezone = "{TZ}"\nlake = "lake"\nlocal_domains = ["example.ac.jp"]\n{extra}\n'
        '[[servers]]\nname = "mx"\nrole = "mail"\nformat = "sendmail"\nsource = "logs/maillog*"\n'
    )
    return toml


def _run(toml: Path, day: date) -> tuple[pipeline.FetchResult, ingest.Parsed]:
    got = pipeline.fetch(toml, "mx", day)
    return got, pipeline.parse(toml, "mx", day, got["files"], got["years"])


def _lake(toml: Path, dataset: str) -> pl.DataFrame:
    lake = load_site(toml).lake
    return duckdb.sql(f"select * from read_parquet('{lake}/{dataset}/*/*.parquet', union_by_name = true)").pl()


# ---------------------------------------------------------------- bytes


def test_japanese_text_and_a_character_cut_before_the_first_space_with_iso_stamps(tmp_path):
    """On main: polars "invalid utf8" from the framing, and the whole day failed. The first line
    is UTF-8 Japanese whose first space comes 11 bytes in, so the 6 bytes before it cut 本 in
    two (a line continued from a Japanese subject); the others are Shift_JIS and EUC-JP text."""
    toml = _site(tmp_path)
    path = tmp_path / "logs" / "maillog.1"
    lines = path.read_bytes().splitlines()
    odd = [
        "日本語ab テストの件名です".encode(),
        "2002-02-16T10:30:00.000000+09:00 mx milter[9]: 件名 テスト".encode("shift_jis"),
        "2002-02-16T10:31:00.000000+09:00 mx sendmail[3]: K1610000: 件名 テスト".encode("euc_jp"),
    ]
    path.write_bytes(b"\n".join([lines[0], *odd, *lines[1:]]) + b"\n")
    os.utime(path, (_local(DAYS[1], 21), _local(DAYS[1], 21)))
    _, parsed = _run(toml, DAYS[1])
    assert (parsed["lines_read"], parsed["parsed"], parsed["ignored"], parsed["malformed"]) == (7, 5, 1, 1)
    bad = _lake(toml, "malformed_lines")
    assert bad["line"].to_list() == ["日本語ab テストの件名です"]  # valid UTF-8: kept as it is, no raw copy
    assert bad["raw_base64"].to_list() == [None]
    events = _lake(toml, "mail_events")
    assert events.filter(pl.col("event") == "to")["recipient"].sort().to_list() == [
        "r13@example.com",
        "r16@example.com",
    ]
    other = events.filter(pl.col("event") == "other")["detail"].to_list()
    assert len(other) == 1 and "\ufffd" in other[0]  # EUC-JP read with replacement characters


def test_lines_that_are_not_utf8_keep_their_bytes_in_malformed_lines(tmp_path):
    """Shift_JIS (and random bytes) in a line we cannot read: the text shows U+FFFD, and
    raw_base64 holds the bytes as they were in the file (main kept only the replaced text)."""
    toml = _site(tmp_path)
    path = tmp_path / "logs" / "maillog.1"
    sjis = "受信者不明のため配送できません".encode("shift_jis")
    junk = bytes(range(128, 256))
    path.write_bytes(path.read_bytes() + sjis + b"\r\n" + junk + b"\n")
    os.utime(path, (_local(DAYS[1], 21), _local(DAYS[1], 21)))
    _, parsed = _run(toml, DAYS[1])
    assert (parsed["lines_read"], parsed["malformed"]) == (6, 2)
    bad = _lake(toml, "malformed_lines").sort("line_no")
    assert [base64.b64decode(x) for x in bad["raw_base64"]] == [sjis, junk]  # (the CR of CRLF is no part of it)
    assert all("\ufffd" in x for x in bad["line"])


def test_a_line_too_long_to_address_is_a_bad_file_and_long_lines_are_read(tmp_path, monkeypatch):
    """A line is one string view: over 2 GiB (here, the limit made 1 MB) the file is not a log,
    a LogFileError naming the line, not a ValueError; a line of 50 batches is read whole, its
    pieces joined once (main joined them again at every batch: quadratic)."""
    path = tmp_path / "maillog"
    path.write_bytes(b"first\n" + b"\x00" * (3 << 20) + b"\nlast\n")
    got = [ln for _, lines in logfiles.iter_line_batches(path, batch_bytes=64 << 10) for ln in lines.to_list()]
    assert [len(x) for x in got] == [5, 3 << 20, 4]
    monkeypatch.setattr(logfiles, "_VIEW_BYTES", 1 << 20)
    with pytest.raises(LogFileError, match=r"maillog: line 2 is longer than 1048576 bytes: not a log"):
        list(logfiles.iter_line_batches(path, batch_bytes=64 << 10))


def test_an_all_binary_file_in_the_glob_blocks_only_the_days_it_may_hold(tmp_path):
    """On main every fetch scanned it and failed with polars' "invalid utf8": every day was
    blocked. Now it is read (it has no time stamp: not a log): a file last written long ago
    blocks no day; one written on the 16th fails the days it may hold, in one line naming it
    and the key; `skip` leaves it out and the fetch result names it."""
    toml = _site(tmp_path)
    junk = tmp_path / "logs" / "maillog.bin"
    junk.write_bytes(os.urandom(1 << 18))
    old = datetime(2001, 6, 1, tzinfo=ZoneInfo(TZ)).timestamp()
    os.utime(junk, (old, old))
    for day in DAYS:
        got, parsed = _run(toml, day)
        assert got["bad_files"] == [] and parsed["lines_read"] == 4

    os.utime(junk, (_local(DAYS[1], 12), _local(DAYS[1], 12)))
    with pytest.raises(LogFileError) as e:
        pipeline.fetch(toml, "mx", DAYS[1])
    msg = str(e.value)
    assert "\n" not in msg and "maillog.bin" in msg and "not a log" in msg and 'on_bad_file = "skip"' in msg
    assert pipeline.fetch(toml, "mx", DAYS[2])["bad_files"] == []  # after its mtime: not blocked

    toml = _toml(tmp_path, 'on_bad_file = "skip"')
    got, parsed = _run(toml, DAYS[1])
    assert [b["file"] for b in got["bad_files"]] == [str(junk)] and "not a log" in got["bad_files"][0]["why"]
    assert str(junk) not in got["files"] and parsed["lines_read"] == 4


@pytest.fixture
def unreadable(monkeypatch):
    """Make files unreadable: chmod 000, and, since root reads such files all the same, an
    open() that refuses them as the kernel refuses others."""
    refused: set[str] = set()
    real_open = builtins.open

    def fake_open(file, *a, **k):
        if isinstance(file, str | Path) and str(Path(file).resolve()) in refused:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *a, **k)

    monkeypatch.setattr(builtins, "open", fake_open)

    def make(path: Path) -> None:
        path.chmod(0)
        refused.add(str(path.resolve()))

    yield make
    for p in refused:
        Path(p).chmod(0o644)


def test_a_file_that_cannot_be_read_is_named_in_one_line_and_the_policy_decides(tmp_path, unreadable):
    """On main: PermissionError and its traceback from the manifest scan. Now: one line naming
    the file and the key (fail), or the file left out and named in the fetch result (skip)."""
    toml = _site(tmp_path)
    path = tmp_path / "logs" / "maillog.1"  # the 16th
    unreadable(path)
    with pytest.raises(LogFileError) as e:
        pipeline.fetch(toml, "mx", DAYS[1])
    msg = str(e.value)
    assert "\n" not in msg and "maillog.1: cannot be read: Permission denied" in msg
    assert "server mx, day 2002-02-16" in msg and 'on_bad_file = "skip"' in msg
    assert pipeline.fetch(toml, "mx", DAYS[2])["files"]  # a later day is not blocked

    toml = _toml(tmp_path, 'on_bad_file = "skip"')
    got = pipeline.fetch(toml, "mx", DAYS[2])
    assert [b["file"] for b in got["bad_files"]] == [] and got["files"]
    with pytest.raises(pipeline.SourceError, match="left out as bad: .*maillog.1"):
        pipeline.fetch(toml, "mx", DAYS[1])  # nothing else holds the 16th


def test_a_corrupt_gzip_fails_its_days_naming_the_key_or_is_left_out(tmp_path):
    """On main the damaged archive failed its days with no word of what to do, and no policy
    could leave it out. Its readable part is not used under skip: the day is parsed without it."""
    toml = _site(tmp_path)
    path = tmp_path / "logs" / "maillog.1"
    data = gzip.compress(path.read_bytes())
    (tmp_path / "logs" / "maillog.1.gz").write_bytes(data[: len(data) * 2 // 3])
    os.utime(tmp_path / "logs" / "maillog.1.gz", (_local(DAYS[1], 21), _local(DAYS[1], 21)))
    path.unlink()
    with pytest.raises(LogFileError) as e:
        pipeline.fetch(toml, "mx", DAYS[1])
    msg = str(e.value)
    assert "\n" not in msg and "maillog.1.gz: corrupt or truncated gzip" in msg and 'on_bad_file = "skip"' in msg

    toml = _toml(tmp_path, 'on_bad_file = "skip"')
    with pytest.raises(pipeline.SourceError, match="left out as bad"):
        pipeline.fetch(toml, "mx", DAYS[1])
    got, parsed = _run(toml, DAYS[2])
    assert got["bad_files"] == [] and parsed["lines_read"] == 4


def test_parse_leaves_out_a_file_it_cannot_read_under_skip(tmp_path, unreadable):
    """A file that turns bad after its fetch (or is given to parse directly): fail names it and
    the key; skip parses the day again without it, nothing of it in the lake."""
    toml = _site(tmp_path)
    site = load_site(toml)
    good = tmp_path / "logs" / "maillog.1"
    broken = tmp_path / "logs" / "maillog.1.gz"
    data = gzip.compress(b"\n".join(ln.encode() for ln in _mail(DAYS[1], 11, 99) * 3000) + b"\n")
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(LogFileError, match=r"server mx, day 2002-02-16: .*maillog.1.gz: corrupt .*on_bad_file"):
        ingest.parse_server_day(site, site.servers[0], DAYS[1], [broken, good])

    site = load_site(_toml(tmp_path, 'on_bad_file = "skip"'))
    out = ingest.parse_server_day(site, site.servers[0], DAYS[1], [broken, good])
    assert [b["file"] for b in out["bad_files"]] == [str(broken)] and out["files"] == [str(good)]
    assert out["lines_read"] == 4 and out["rows"] == 4
    unreadable(good)
    out = ingest.parse_server_day(site, site.servers[0], DAYS[1], [good])
    assert out["bad_files"][0]["why"].endswith("cannot be read: Permission denied") and out["lines_read"] == 0


# ---------------------------------------------------------------- parser defects (item 7)

SENDMAIL = Server(name="mx", role="mail", format="sendmail", source="x")
EXIM = Server(name="mx", role="mail", format="exim", source="x")


def test_sendmail_to_line_without_delay_keeps_its_recipients():
    """The issue's line: a whole to= line (stat=Sent) whose `delay=` key was lost, so the list
    ends at ", 00:00:00" -- the real line of yudai09/fluent-plugin-sendmail:test/data/data as the
    issue saw it. On main: malformed "to= line truncated", both recipients lost."""
    head = "Apr  2 00:15:25 mta001 sendmail[32302]: u31FFPtp032300: "
    lines = [
        head + "to=<sent1@example.com>,<sent2@example.com>, 00:00:00, xdelay=00:00:00, mailer=esmtp, pri=245938, "
        "relay=[93.184.216.34] [93.184.216.34], dsn=2.0.0, stat=Sent (ok:  Message 40279894 accepted)",
        # a space left out before a field ("dsn=5.0.0,stat=Service unavailable" is seen in real logs)
        head + "to=<deferred1@example.com>,delay=00:00:15, xdelay=00:00:15, mailer=esmtp, pri=34527, "
        "relay=[93.184.216.34] [93.184.216.34], dsn=4.3.5,stat=Deferred: 451 4.3.5 Server configuration problem",
        # still malformed: the truncated line of gitpan/SyslogScan:t/bad_syslog (no list end, no stat=)
        'Jun 13 02:13:06 satellife sendmail[27824]: CAA26889: to="errortest@ign.com"',
    ]
    events, fates, counts = ingest.parse_lines(SENDMAIL, lines, date(2016, 4, 2))
    to = events.filter(pl.col("event") == "to")
    assert to.select("line_no", "recipient", "rcpt_index", "status").rows() == [
        (1, "sent1@example.com", 0, "sent"),
        (1, "sent2@example.com", 1, "sent"),
        (2, "deferred1@example.com", 0, "deferred"),
    ]
    assert to["client_ip"].to_list() == ["93.184.216.34"] * 3 and to["mailer"].to_list() == ["esmtp"] * 3
    assert fates.rows() == [(3, 0, "malformed", "to= line truncated (no delay=/stat=)")]
    assert (counts["parsed"], counts["malformed"]) == (2, 1)


def test_exim_bracketed_helo_is_not_the_client_address():
    """`H=([1.2.3.5]) [1.2.3.4]`: the HELO was an address in brackets; the client is the one
    after it. On main every event of such a host took 1.2.3.5. (Lines of
    crowdsecurity/hub:.tests/exim-logs/exim-logs.log with the HELO of the issue.)"""
    lines = [
        "2022-06-29 13:54:29 H=([1.2.3.5]) [1.2.3.4]:17125 X=TLS1.3:TLS_AES_128_GCM_SHA256:128 CV=no "
        "F=<info@toto.com.au> rejected RCPT <tutu@titi.com.au>: SMTP AUTH is required for message submission on "
        "port 587",
        "2022-06-29 13:54:30 1qJ2Zr-0004lW-1X <= info@toto.com.au H=([1.2.3.5]) [1.2.3.4]:17126 P=esmtps S=1532",
        "2022-06-29 13:54:31 1qJ2Zr-0004lW-1X => tutu@titi.com.au R=dnslookup T=remote_smtp "
        'H=mx.titi.com.au [203.0.113.7] X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes C="250 OK"',
        "2022-06-29 13:54:32 H=([1.2.3.5]) [1.2.3.4]:17127 F=<info@toto.com.au> rejected after DATA: spam",
        "2022-06-29 13:54:33 H=(smtpclient.test) [1.136.28.14]:17125 X=TLS1.3:TLS_AES_128_GCM_SHA256:128 CV=no "
        "F=<info@toto.com.au> rejected RCPT <tutu@titi.com.au>: SMTP AUTH is required for message submission on "
        "port 587",
    ]
    events, fates, _ = ingest.parse_lines(EXIM, lines, date(2022, 6, 29))
    assert fates.height == 0
    assert events.select("event", "client_ip", "relay_host").rows() == [
        ("reject", "1.2.3.4", None),
        ("from", "1.2.3.4", None),
        ("to", "203.0.113.7", "mx.titi.com.au"),
        ("other", "1.2.3.4", None),
        ("reject", "1.136.28.14", None),
    ]


@pytest.mark.parametrize(
    "server",
    [Server(name="mx", role="mail", format=f, source="x") for f in ("sendmail", "postfix", "exim")]
    + [Server(name="ns", role="dns", format=f, source="x") for f in ("iplog", "bind", "dnsmasq", "unbound")],
    ids=lambda s: s.format,
)
def test_blank_lines_are_ignored_not_malformed(server):
    """Empty and white-space lines (a file padded, a line end doubled) log nothing: ignored,
    with the reason "blank line". On main they were malformed ("no syslog header")."""
    lines = ["", "Feb 16 10:00:00 host kernel: x", "   ", "\t", "no header at all"]
    _, fates, counts = ingest.parse_lines(server, lines, date(2002, 2, 16))
    assert fates.select("line_no", "fate", "reason").rows() == [
        (1, "ignored", "blank line"),
        (2, "ignored", None),
        (3, "ignored", "blank line"),
        (4, "ignored", "blank line"),
        (5, "malformed", "no syslog header"),
    ]
    assert (counts["lines_read"], counts["ignored"], counts["malformed"]) == (5, 4, 1)
