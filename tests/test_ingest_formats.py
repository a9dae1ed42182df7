"""The parse stage end to end for the new formats: files in, lake out (mail_events /
dns_queries, line_accounting, malformed_lines), across batches, gzip and day boundaries."""

from __future__ import annotations

import gzip
import itertools
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from mmw_tasks.config import Server, site_from_dict
from mmw_tasks.parse import ingest, logfiles
from mmw_tasks.parse import postfix as parse_postfix

DAY = date(2024, 3, 5)


def _site(tmp_path: Path, fmt: str, role: str = "mail"):
    raw = {
        "site": {"name": "t", "timezone": "Europe/Berlin", "lake": "lake", "local_domains": ["example.org"]},
        "servers": [{"name": "mx", "role": "mail", "format": fmt if role == "mail" else "postfix", "source": "mx*"}],
    }
    if role == "dns":
        raw["servers"].append(
            {"name": "ns", "role": "dns", "format": fmt, "source": "ns*", "mail_server_ips": ["192.0.2.25"]}
        )
    site = site_from_dict(raw, tmp_path / "site.toml")
    return site, site.servers[-1]


def _lake(site, dataset: str):
    return duckdb.sql(f"select * from read_parquet('{site.lake}/{dataset}/*/*.parquet')").pl()


def _postfix_day(n: int) -> list[str]:
    """A message accepted on the 4th and retried on the 5th, then n messages of the 5th, a junk line."""
    lines = [
        "2024-03-04T23:50:00.100000+01:00 mx postfix/smtpd[10]: AAAAA1: client=old.example.net[198.51.100.7]",
        "2024-03-04T23:50:00.200000+01:00 mx postfix/cleanup[11]: AAAAA1: message-id=<old@x>",
        "2024-03-04T23:50:00.300000+01:00 mx postfix/qmgr[12]: AAAAA1: from=<old@example.net>, size=10, nrcpt=1 (queue active)",  # noqa: E501 (a real log line)
        "2024-03-04T23:50:01.000000+01:00 mx postfix/smtp[13]: AAAAA1: to=<a@far.example>, relay=none, delay=1, "
        "delays=1/0/0/0, dsn=4.4.1, status=deferred (connect to far.example[203.0.113.9]:25: Connection refused)",
        "2024-03-05T00:40:00.000000+01:00 mx postfix/qmgr[12]: AAAAA1: from=<old@example.net>, size=10, nrcpt=1 (queue active)",  # noqa: E501 (a real log line)
        "2024-03-05T00:40:01.000000+01:00 mx postfix/smtp[13]: AAAAA1: to=<a@far.example>, relay=far.example[203.0.113.9]:25, "  # noqa: E501 (a real log line)
        "delay=3001, delays=3000/0/0.5/0.5, dsn=2.0.0, status=sent (250 ok)",
        "2024-03-05T00:40:01.100000+01:00 mx postfix/qmgr[12]: AAAAA1: removed",
    ]
    for i in range(n):
        q = f"B{i:09X}"
        t = f"2024-03-05T{1 + i // 3600 % 20:02d}:{i // 60 % 60:02d}:{i % 60:02d}.5+01:00 mx"
        lines += [
            f"{t} postfix/smtpd[20]: {q}: client=c{i % 7}.example.com[192.0.2.{i % 7}]",
            f"{t} postfix/cleanup[21]: {q}: message-id=<{i}@x>",
            f"{t} postfix/qmgr[12]: {q}: from=<s{i % 5}@example.com>, size={100 + i}, nrcpt=1 (queue active)",
            f"{t} postfix/local[22]: {q}: to=<u{i % 9}@example.org>, relay=local, delay=0.1, "
            f"delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered to mailbox)",
            f"{t} postfix/qmgr[12]: {q}: removed",
            f"{t} dovecot: imap-login: Login: user=<u{i % 9}>, method=PLAIN, rip=192.0.2.{50 + i % 3}, lip=192.0.2.25",
        ]
    lines.append("garbage without a stamp")
    return lines


@pytest.mark.parametrize("compress", [False, True])
def test_postfix_day_across_batches_and_gzip(tmp_path, monkeypatch, compress):
    monkeypatch.setattr(logfiles, "BATCH_BYTES", 4096)  # many batches: state must carry between them
    site, mx = _site(tmp_path, "postfix")
    lines = _postfix_day(300)
    data = ("\n".join(lines) + "\n").encode()
    path = tmp_path / ("mx.gz" if compress else "mx")
    path.write_bytes(gzip.compress(data) if compress else data)
    out = ingest.parse_server_day(site, mx, DAY, [path])
    ev = _lake(site, "mail_events")
    counts = ev.group_by("event").len().sort("event").rows()
    # the retry of yesterday's message is not a new message; every message of the day is one from
    assert dict(counts) == {"from": 300, "to": 301, "requeue": 1, "pop_login": 300}
    assert ev.filter(ev["event"] == "from")["client_ip"].null_count() == 0
    acct = _lake(site, "line_accounting").row(0, named=True)
    assert acct["lines_read"] == 3 + 300 * 6 + 1 == out["lines_read"]  # the 4th's lines are not read as the 5th's
    assert (acct["malformed"], acct["ignored"]) == (1, 0)
    bad = _lake(site, "malformed_lines").row(0, named=True)
    assert (bad["line_no"], bad["line"], bad["file"]) == (len(lines), "garbage without a stamp", str(path))


def test_row_groups_follow_the_batches(tmp_path, monkeypatch):
    """Rows are not sorted inside a batch (data_lake/README.md, "Row order"), but each batch
    with events is one row group, after the one before: their line and time ranges do not
    overlap, so a filter on time skips row groups."""
    monkeypatch.setattr(logfiles, "BATCH_BYTES", 4096)
    site, mx = _site(tmp_path, "postfix")
    path = tmp_path / "mx"
    path.write_text("\n".join(_postfix_day(300)) + "\n")
    ingest.parse_server_day(site, mx, DAY, [path])
    (part,) = (site.lake / "mail_events").glob("*/*.parquet")
    meta = pq.ParquetFile(part).metadata
    names = meta.schema.to_arrow_schema().names
    ranges = [
        tuple(
            (g.column(names.index(c)).statistics.min, g.column(names.index(c)).statistics.max)
            for c in ("line_no", "ts")
        )
        for g in (meta.row_group(i) for i in range(meta.num_row_groups))
    ]
    for (lines, times), (next_lines, next_times) in itertools.pairwise(ranges):
        assert lines[1] < next_lines[0] and times[1] <= next_times[0]
    # the batches the file is read in, and which of them hold an event's line
    batches = [(first, first + len(lines) - 1) for first, lines in logfiles.iter_line_batches(path)]
    event_lines = pq.read_table(part, columns=["line_no"]).column("line_no").to_pylist()
    assert len(event_lines) == 300 * 3 + 2
    with_events = sorted({i for n in event_lines for i, (lo, hi) in enumerate(batches) if lo <= n <= hi})
    assert len(with_events) > 10
    of_group = [
        next(i for i, (lo, hi) in enumerate(batches) if lo <= lines[0] and lines[1] <= hi) for lines, _ in ranges
    ]  # StopIteration: a row group spans two batches
    assert of_group == with_events


@pytest.mark.parametrize("collide", [False, True])
def test_postfix_retries_of_interleaved_messages(monkeypatch, collide):
    """Two messages whose lines interleave: the retry of one is a requeue and each keeps its own
    client. With every queue id given the same hash the messages must still not mix."""
    if collide:
        monkeypatch.setattr(parse_postfix, "qid_hash", lambda qid: pl.repeat(7, len(qid), dtype=pl.UInt64, eager=True))
    t = "Mar  5 10:00:0{} mx postfix/{}: {}"
    lines = [
        t.format(0, "smtpd[1]", "AAAA1: client=one.example[192.0.2.1]"),
        t.format(1, "smtpd[2]", "BBBB2: client=two.example[192.0.2.2]"),
        t.format(2, "qmgr[3]", "AAAA1: from=<a@example.com>, size=10, nrcpt=1 (queue active)"),
        t.format(3, "qmgr[3]", "BBBB2: from=<b@example.com>, size=20, nrcpt=1 (queue active)"),
        t.format(4, "qmgr[3]", "AAAA1: from=<a@example.com>, size=10, nrcpt=1 (queue active)"),
        t.format(5, "qmgr[3]", "BBBB2: removed"),
        t.format(6, "qmgr[3]", "AAAA1: from=<a@example.com>, size=10, nrcpt=1 (queue active)"),
    ]
    ev, _, _ = ingest.parse_lines(Server("mx", "mail", "postfix", "x"), lines, DAY)
    got = ev.select("line_no", "event", "client_ip", "relay_host").rows()
    assert got == [
        (3, "from", "192.0.2.1", "one.example"),
        (4, "from", "192.0.2.2", "two.example"),
        (5, "requeue", "192.0.2.1", "one.example"),
        (7, "requeue", "192.0.2.1", "one.example"),
    ]


def test_events_name_their_server_and_own_file(tmp_path, monkeypatch):
    """server and file are not parsed but given to the writer per batch: a day read from two
    files, in many batches, names for each event the file its line is in."""
    monkeypatch.setattr(logfiles, "BATCH_BYTES", 2048)
    site, mx = _site(tmp_path, "postfix")
    lines = _postfix_day(60)[:-1]
    half = len(lines) // 2
    paths = [tmp_path / "mx.1", tmp_path / "mx"]
    for path, part in zip(paths, (lines[:half], lines[half:]), strict=True):
        path.write_text("\n".join(part) + "\n")
    ingest.parse_server_day(site, mx, DAY, paths)
    ev = _lake(site, "mail_events")
    assert set(ev["server"]) == {"mx"}
    for path, part in zip(paths, (lines[:half], lines[half:]), strict=True):
        mine = ev.filter(ev["file"] == str(path))
        assert mine.height > 50
        for line_no, queue_id in mine.select("line_no", "queue_id").drop_nulls().rows():
            assert f" {queue_id}: " in part[line_no - 1]


@pytest.mark.parametrize("fmt", ["sendmail", "postfix"])
def test_a_size_too_large_for_its_column_is_a_malformed_line(fmt):
    """A size or recipient count that does not fit its column makes its line malformed; it used
    to stop the whole batch when the column was cast."""
    huge = "9" * 20
    if fmt == "sendmail":
        tmpl = "Mar  5 10:00:00 mx sendmail[1]: g25A0001{}: from=<a@b.example>, size={}, class=0, nrcpts={}"
    else:
        tmpl = "Mar  5 10:00:00 mx postfix/qmgr[1]: AAAA{}: from=<a@b.example>, size={}, nrcpt={} (queue active)"
    lines = [tmpl.format(1, 10, 1), tmpl.format(2, huge, 1), tmpl.format(3, 10, 3000000000)]
    ev, fates, counts = ingest.parse_lines(Server("mx", "mail", fmt, "x"), lines, DAY)
    if fmt == "sendmail":  # sendmail's from= needs both
        assert ev.select("size", "nrcpts").rows() == [(10, 1)]
        assert (counts["malformed"], fates["line_no"].to_list()) == (2, [2, 3])
    else:  # Postfix's needs its size (nrcpt, like a missing one, is null)
        assert ev.select("size", "nrcpts").rows() == [(10, 1), (10, None)]
        assert (counts["malformed"], fates["line_no"].to_list()) == (1, [2])


def test_a_sendmail_to_line_without_a_recipient_is_malformed():
    """ "to=," names no recipient: the line is malformed (it made no event and no fate, so it was
    counted as parsed), and a list's empty items are skipped, not delivered to ""."""
    t = "Mar  5 10:00:0{} mx sendmail[1]: g25A0001{}: to={}, delay=00:00:01, mailer=esmtp, stat=Sent"
    lines = [t.format(1, 1, ""), t.format(2, 2, "<a@b.example>,,<c@d.example>"), t.format(3, 3, ",")]
    ev, fates, counts = ingest.parse_lines(Server("mx", "mail", "sendmail", "x"), lines, DAY)
    assert ev.select("line_no", "recipient", "rcpt_index").rows() == [(2, "a@b.example", 0), (2, "c@d.example", 1)]
    assert fates.select("line_no", "reason").rows() == [
        (1, "to= line without a recipient"),
        (3, "to= line without a recipient"),
    ]
    assert (counts["lines_read"], counts["parsed"], counts["malformed"]) == (3, 1, 2)


def test_dns_formats_count_mail_server_queries(tmp_path):
    site, ns = _site(tmp_path, "bind", role="dns")
    lines = []
    for i in range(50):
        lines.append(
            f"Mar  5 10:{i:02d}:00 ns named[7]: client @0x7f00 192.0.2.25#{1000 + i} (x{i}.example): "
            f"query: x{i}.example IN {'MX' if i % 2 else 'A'} +E(0)K (192.0.2.53)"
        )
        lines.append(f"Mar  5 10:{i:02d}:01 ns named[7]: client 198.51.100.{i}#53: query: y.example IN AAAA +")
    lines.append("Mar  5 11:00:00 ns named[7]: zone example.org/IN: loaded serial 7")
    (tmp_path / "ns").write_text("\n".join(lines) + "\n")
    out = ingest.parse_server_day(site, ns, DAY, [tmp_path / "ns"])
    q = _lake(site, "dns_queries")
    assert out["rows"] == 100 and out["ignored"] == 1
    mine = q.filter(q["client_ip"] == "192.0.2.25")
    assert mine.height == 50 and sorted(set(mine["qtype"])) == ["A", "MX"]


def test_parse_lines_has_every_format():
    for fmt, role in [
        ("sendmail", "mail"),
        ("postfix", "mail"),
        ("exim", "mail"),
        ("iplog", "dns"),
        ("bind", "dns"),
        ("dnsmasq", "dns"),
        ("unbound", "dns"),
    ]:
        ev, fates, c = ingest.parse_lines(Server("s", role, fmt, "x", ("1.2.3.4",)), ["junk"], DAY)
        assert c["malformed"] == 1 and ev.height == 0


def test_non_ascii_lines_keep_their_fields():
    """Fields are cut at byte offsets: a line with UTF-8 before them (an SMTPUTF8 address, a
    remote reply in Japanese) gives the same fields as its ASCII twin, in every mail format."""
    from mmw_tasks.parse.ingest import parse_lines

    pf = (
        "Feb 16 10:00:00 mx postfix/smtp[1]: ABCDE12345: to=<{r}>, relay=mx.example.jp[192.0.2.9]:25, "
        "delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 {t})"
    )
    sm = (
        "Feb 16 10:00:00 mx sendmail[1]: g1G1000000001: from=<{r}>, size=321, class=0, nrcpts=1, "
        "msgid=<x@y>, proto=ESMTP, daemon=MTA, relay=pc1.example.jp [192.0.2.8]"
    )
    bind = "Feb 16 10:00:00 ns named[1]: client @0x7f00 192.0.2.25#5353 ({q}): query: {q} IN A + (192.0.2.53)"
    for fmt, role, tmpl, field in (
        ("postfix", "mail", pf, "detail"),
        ("sendmail", "mail", sm, "sender"),
        ("bind", "dns", bind, "qname"),
    ):
        server = Server("s", role, fmt, "x", ("192.0.2.25",))
        ascii_ev = parse_lines(
            server, [tmpl.format(r="taro@example.jp", t="ok queued", q="www.example.jp")], date(2002, 2, 16)
        )[0]
        utf_ev = parse_lines(
            server, [tmpl.format(r="太郎@example.jp", t="受け付けました", q="日本.example.jp")], date(2002, 2, 16)
        )[0]
        assert ascii_ev.height == utf_ev.height == 1, fmt
        a, u = ascii_ev.row(0, named=True), utf_ev.row(0, named=True)
        assert u[field] in ("太郎@example.jp", "250 受け付けました", "日本.example.jp"), (fmt, u)
        same = {k for k in a if a[k] == u[k]}
        assert {"client_ip", "relay_host", "status", "size", "qtype", "client_port"} & set(a) <= same, (fmt, a, u)
