"""Every header form the issue names, the year of year-less stamps from the file itself, and a
site timezone with DST: the hour that repeats is split by line order, the hour that does not
exist is read with the offset before the change, and DST days count all their lines."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from logsite import day_totals, make_site, site_toml, write_scheme

from mmw_tasks import pipeline
from mmw_tasks.parse import stamps, syslog
from mmw_tasks.parse.stamps import FileYears, YearAnchor
from mmw_tasks.parse.syslog import frame_lines
from mmw_tasks.parse.years import StampScan

FEB_16 = YearAnchor(date(2002, 2, 16))


def _framed(lines: list[str], tz: str = "Asia/Tokyo", anchor: YearAnchor = FEB_16) -> pl.DataFrame:
    return frame_lines(pl.Series("line", lines), 1, anchor, tz)


# (line, UTC time, host, prog, msg): stamps read by hand (kept to the second); Asia/Tokyo is UTC+9
HEADER_FORMS = [
    (
        "Feb  6 14:30:01 mx sendmail[100]: g16: from=<a@b>",
        datetime(2002, 2, 6, 5, 30, 1),
        "mx",
        "sendmail",
        "g16: from=<a@b>",
    ),  # RFC 3164, space-padded day
    (
        "Feb 06 14:30:01 mx sendmail[100]: g16: from=<a@b>",
        datetime(2002, 2, 6, 5, 30, 1),
        "mx",
        "sendmail",
        "g16: from=<a@b>",
    ),  # zero-padded day
    (
        "2002-02-06T14:30:01.572449+09:00 mx postfix/smtpd[60]: connect from x",
        datetime(2002, 2, 6, 5, 30, 1),
        "mx",
        "postfix/smtpd",
        "connect from x",
    ),  # RFC 3339
    (
        "2002-02-06T05:30:01Z mx postfix/qmgr[5]: ABC: removed",
        datetime(2002, 2, 6, 5, 30, 1),
        "mx",
        "postfix/qmgr",
        "ABC: removed",
    ),  # RFC 3339, Z
    (
        "2002-02-06T14:30:01+0900 mx postfix/qmgr[5]: ABC: removed",
        datetime(2002, 2, 6, 5, 30, 1),
        "mx",
        "postfix/qmgr",
        "ABC: removed",
    ),  # journald short-iso
    (
        "<22>1 2002-02-06T14:30:01.003+09:00 mx.example.ac.jp sendmail 812 - - g16: to=<c@d>, stat=Sent",
        datetime(2002, 2, 6, 5, 30, 1),
        "mx.example.ac.jp",
        "sendmail",
        "g16: to=<c@d>, stat=Sent",
    ),
    (
        '<30>1 2002-02-06T06:30:01+01:00 ns unbound - LOG [origin ip="10.0.0.1"][x@1 a="b\\]"] info: 1.2.3.4 a. A IN',
        datetime(2002, 2, 6, 5, 30, 1),
        "ns",
        "unbound",
        "info: 1.2.3.4 a. A IN",
    ),  # RFC 5424 with SD
    (
        "Feb  6 14:30:01 <mail.info> robin sm-mta[2794]: 55H: from=<r@y>",
        datetime(2002, 2, 6, 5, 30, 1),
        "robin",
        "sm-mta",
        "55H: from=<r@y>",
    ),  # FreeBSD syslogd -v
    (
        "Feb  6 14:30:01 jobis sendmail[123]: [ID 801593 mail.info] r72: to=root",
        datetime(2002, 2, 6, 5, 30, 1),
        "jobis",
        "sendmail",
        "r72: to=root",
    ),  # Solaris message ID
    (
        "Feb  6 14:30:01 src@eadmin1 crond[2915]: session closed",
        datetime(2002, 2, 6, 5, 30, 1),
        "eadmin1",
        "crond",
        "session closed",
    ),  # forwarded
    (
        "<22>Feb  6 14:30:01 mx sendmail[100]: g16: from=<a@b>",
        datetime(2002, 2, 6, 5, 30, 1),
        "mx",
        "sendmail",
        "g16: from=<a@b>",
    ),  # a relay kept the "<pri>"
    (
        "Feb  6 14:30:01 dnsmasq[152]: query[A] x.example from 10.1.0.25",
        datetime(2002, 2, 6, 5, 30, 1),
        None,
        "dnsmasq",
        "query[A] x.example from 10.1.0.25",
    ),  # no host field
]


@pytest.mark.parametrize("line,utc,host,prog,msg", HEADER_FORMS, ids=[f"form{i}" for i in range(len(HEADER_FORMS))])
def test_header_forms(line, utc, host, prog, msg):
    row = _framed([line]).row(0, named=True)
    assert row["framed"]
    assert row["ts"] == utc.replace(tzinfo=UTC)
    assert (row["host"], row["prog"], row["msg"]) == (host, prog, msg)
    assert row["line"] == line  # kept as written, for malformed_lines


def test_year_breaks_follow_neighbouring_lines():
    """Dec -> Jan within a file is a new year; a late Dec 31 line after Jan 1 steps back a few
    seconds, not a year; the year of the last line comes from the anchor (mtime)."""
    lines = [
        "Dec 30 10:00:00 h a: x",
        "Dec 31 23:59:59 h a: x",
        "Jan  1 00:00:01 h a: x",
        "Dec 31 23:59:58 h a: late",
        "not a syslog line",
        "Jan  2 00:00:00 h a: x",
    ]
    scan = StampScan()
    scan.feed(1, pl.Series(lines[:3]))  # two batches: the walk carries across them
    scan.feed(4, pl.Series(lines[3:]))
    years, first, last = scan.resolve(datetime(2002, 1, 2, 4, 2), "UTC")
    assert (first, last) == (datetime(2001, 12, 30, 10), datetime(2002, 1, 2))
    got = frame_lines(pl.Series(lines), 1, years)["ts_local"].to_list()
    assert [t.year if t else None for t in got] == [2001, 2001, 2002, 2001, None, 2002]
    # a copy that lost its mtime a year later moves the whole file a year, never splits it
    later, _, _ = scan.resolve(datetime(2003, 1, 5), "UTC")
    assert isinstance(later, FileYears) and [y for _, y in later.breaks] == [y + 1 for _, y in years.breaks]


def test_february_29_needs_a_leap_year_for_the_last_line():
    scan = StampScan()
    scan.feed(1, pl.Series(["Feb 28 23:00:00 h a: x", "Feb 29 12:00:00 h a: y"]))
    _, first, last = scan.resolve(datetime(2006, 6, 1), "UTC")  # 2006 has no Feb 29: 2004 does
    assert (first, last) == (datetime(2004, 2, 28, 23), datetime(2004, 2, 29, 12))


NY = "America/New_York"


def test_repeated_hour_is_split_by_line_order():
    """2024-11-03, New York: 01:00-01:59 happens twice (EDT, then EST)."""
    lines = [
        "Nov  3 00:59:59 h a: edt",
        "Nov  3 01:10:00 h a: first pass",
        "Nov  3 01:50:00 h a: first pass",
        "Nov  3 01:49:57 h a: a few seconds out of order, still first pass",
        "Nov  3 01:05:00 h a: second pass",
        "Nov  3 01:40:00 h a: second pass",
        "Nov  3 02:10:00 h a: est",
    ]
    ts = _framed(lines, NY, YearAnchor(date(2024, 11, 3)))["ts"].to_list()
    want = [
        datetime(2024, 11, 3, 4, 59, 59),
        datetime(2024, 11, 3, 5, 10),
        datetime(2024, 11, 3, 5, 50),
        datetime(2024, 11, 3, 5, 49, 57),
        datetime(2024, 11, 3, 6, 5),
        datetime(2024, 11, 3, 6, 40),
        datetime(2024, 11, 3, 7, 10),
    ]
    assert ts == [w.replace(tzinfo=UTC) for w in want]


def test_repeated_hour_after_a_later_line_is_the_second_pass():
    lines = ["Nov  3 02:00:03 h a: est", "Nov  3 01:59:58 h a: late line of the second pass"]
    ts = _framed(lines, NY, YearAnchor(date(2024, 11, 3)))["ts"].to_list()
    assert ts == [datetime(2024, 11, 3, 7, 0, 3, tzinfo=UTC), datetime(2024, 11, 3, 6, 59, 58, tzinfo=UTC)]


def test_hour_that_does_not_exist_keeps_its_day_and_order():
    """2024-03-10, New York: clocks jump 02:00 -> 03:00; a '02:30' stamp (a clock that had not
    switched) is read as standard time, 07:30 UTC = 03:30 EDT."""
    lines = [
        "Mar 10 01:59:00 h a: est",
        "Mar 10 02:30:00 h a: no such local time",
        "Mar 10 03:45:00 h a: edt",
    ]
    df = _framed(lines, NY, YearAnchor(date(2024, 3, 10)))
    assert df["ts"].to_list() == [
        datetime(2024, 3, 10, 6, 59, tzinfo=UTC),
        datetime(2024, 3, 10, 7, 30, tzinfo=UTC),
        datetime(2024, 3, 10, 7, 45, tzinfo=UTC),
    ]
    assert df["ts_site"].dt.date().to_list() == [date(2024, 3, 10)] * 3


@pytest.mark.parametrize("start", [date(2024, 3, 9), date(2024, 11, 2)], ids=["spring", "autumn"])
def test_dst_days_count_all_their_lines(tmp_path, start):
    """Days of 23 and 25 hours: totals are exactly the lines stamped with that local date."""
    site = make_site(start, 3, tz=NY, seed=21, per_day=150)
    toml = site_toml(tmp_path, write_scheme(site, tmp_path, "numbered"), NY)
    d = start + timedelta(days=1)
    out = pipeline.run_day(toml, d, log=lambda m: None)
    rep = json.loads(Path(out["report"]["report"]).read_text())
    assert {k: rep["totals"][k] for k in ("dq", "n_from", "n_to", "n_sent")} == day_totals(site, d)


BSD_HEADS = [
    f"{m} {d} {t} mx p[1]: x"
    for m in ("Jan", "feb", "MAR", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    for d in (" 1", "01", "28", "29", "30", "31", "00", "32", " 0")
    for t in ("00:00:00", "23:59:59")
]
BSD_HEADS += [
    "Feb 16 23:59:60 mx p: leap second",
    "Feb 16 24:00:00 mx p: x",
    "Feb 16 12:60:00 mx p: x",
    "Feb 16 12:00:61 mx p: x",
    "Mar 10 02:30:00 mx p: a spring-forward gap",
    "Nov  3 01:30:00 mx p: x",
    "Nov  3 01:10:00 mx p: the repeated hour, second pass",
]


@pytest.mark.parametrize(
    "anchor",
    [
        stamps.YearAnchor(date(2002, 2, 16)),
        stamps.YearAnchor(date(2004, 1, 2)),
        stamps.YearAnchor(date(2000, 12, 30)),
        stamps.Yearless(),
        stamps.FileYears(((1, 2003), (100, 2004))),
    ],
    ids=lambda a: "Yearless" if isinstance(a, stamps.Yearless) else repr(a),  # the same in every xdist worker
)
@pytest.mark.parametrize("tz", ["UTC", "Asia/Tokyo", "America/New_York"])
def test_compiled_bsd_stamps_read_as_the_general_path(anchor, tz):
    """kernels.bsd_stamps and the day arithmetic after it give every BSD stamp the times the
    text parse gives: every month in any case, days a month lacks, leap days and seconds, times
    that are none, DST's gap and repeated hour."""
    heads = pl.Series(BSD_HEADS)
    line_nos = pl.Series(range(1, len(heads) + 1), dtype=pl.Int64)
    fast = stamps.parse_stamps(heads, anchor, tz, line_nos)
    general = stamps.parse_stamps(heads, anchor, tz, line_nos, fast=False)  # the kernel's specification
    assert fast.equals(general)
    assert fast["ts_local"].null_count() > 20 and fast["ts_local"].drop_nulls().dt.second().max() <= 59


def test_a_probe_anchor_learns_that_a_stamp_has_no_year():
    """ingest frames a file the manifest does not know with a ProbeYears anchor, and scans it for
    years only when a stamp without one appears: the compiled stamp reader must say so too."""
    for lines, yearless in (
        (["Feb 16 14:30:01 mx p[1]: x"], True),
        (["2002-02-16T14:30:01.000000+09:00 mx p[1]: x"], False),
    ):
        probe = stamps.ProbeYears(date(2002, 2, 16))
        syslog.frame_lines(pl.Series(lines), 1, probe, "Asia/Tokyo")
        assert probe.saw_yearless is yearless
