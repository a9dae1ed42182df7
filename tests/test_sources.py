"""Local sources: every rotation scheme and header style gives the same days, years come out
right across New Year and in archives older than a year, a backfill opens only the files that
cover its day, no line is read twice, and a bad day or a damaged archive says what is wrong."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from logsite import bsd_line, count_truth, day_totals, iso_line, make_site, site_toml, write_scheme

from mmw_tasks import lake, pipeline
from mmw_tasks.fetch import manifest
from mmw_tasks.fetch.sources import SourceError
from mmw_tasks.parse import ingest
from mmw_tasks.parse.logfiles import LogFileError

START = date(2001, 12, 30)
DAYS = [START + timedelta(days=i) for i in range(4)]  # 2001-12-30 .. 2002-01-02
TOTAL_KEYS = ("dq", "n_from", "n_to", "n_sent")


@pytest.fixture(scope="module")
def newyear():
    return make_site(START, len(DAYS), seed=3)


def _totals(toml: Path, day: date) -> dict:
    out = pipeline.run_day(toml, day, log=lambda m: None)
    rep = json.loads(Path(out["report"]["report"]).read_text())
    return {k: rep["totals"][k] for k in TOTAL_KEYS}


def _write(site, root: Path, scheme: str, style: str = "bsd") -> Path:
    return site_toml(root, write_scheme(site, root, scheme, style), site.tz)


def test_new_year_site_gets_every_line_into_its_day(newyear, tmp_path):
    """Logs from 2001-12-30 to 2002-01-02: each day's totals, per server and per site, are exactly
    the lines stamped that day; the year comes from each file, not from the run's day."""
    toml = _write(newyear, tmp_path, "numbered")
    for d in DAYS:
        assert _totals(toml, d) == day_totals(newyear, d), d
    con = lake.connect(tmp_path / "lake")
    mail = con.sql(
        "select server, day::varchar, count(*) filter (event = 'from') as n_from from mail_events group by all"
    ).fetchall()
    dns = con.sql("select server, day::varchar, count(*) from dns_queries group by all").fetchall()
    want_mail = {
        (s, d, c["n_from"])
        for s, per in newyear.truth.items()
        for d, c in per.items()
        if s.endswith("mx") and d in {str(x) for x in DAYS}
    }
    want_dns = {
        (s, d, c["dq"])
        for s, per in newyear.truth.items()
        for d, c in per.items()
        if s.endswith("dns") and d in {str(x) for x in DAYS}
    }
    assert set(mail) == want_mail and set(dns) == want_dns
    assert {s for s, _, _ in mail} == {"1mx", "2mx"} and {s for s, _, _ in dns} == {"1dns", "2dns"}
    years = con.sql("select distinct year(ts at time zone 'Asia/Tokyo') from mail_events order by 1").fetchall()
    assert years == [(2001,), (2002,)]


@pytest.mark.parametrize("style", ["bsd0", "rfc3339", "short-iso"])
def test_every_header_style_gives_the_same_days(newyear, tmp_path, style):
    """'Jan 01' zero-padded days, RFC 3339 with fractions and +09:00, journald short-iso +0900."""
    toml = _write(newyear, tmp_path, "dateext", style)
    d = date(2002, 1, 1)
    assert _totals(toml, d) == day_totals(newyear, d)


def test_compression_is_found_by_content_not_name(newyear, tmp_path):
    toml = _write(newyear, tmp_path, "numbered")
    for p in list(tmp_path.glob("*/*.gz")):
        p.rename(p.with_suffix(""))  # maillog.2.gz -> maillog.2, still gzip inside
    d = date(2001, 12, 31)
    assert _totals(toml, d) == day_totals(newyear, d)


def _parse_rows(toml: Path, server: str, day: date) -> int:
    files = pipeline.fetch(toml, server, day)["files"]
    return pipeline.parse(toml, server, day, files)["rows"]


def test_archive_older_than_a_year_counts_each_february_16_once(tmp_path):
    """pflogsumm's bug: a log kept for more than a year holds 'Feb 16' twice. A file rotated
    rarely runs from 2001-01-10 to 2002-03-01; each Feb 16 gets only its own year's lines."""
    lines = []
    t = datetime(2001, 1, 10, 8, 0)
    while t < datetime(2002, 3, 1):
        n = 3 if t.date() == date(2002, 2, 16) else 2 if t.date() == date(2001, 2, 16) else 1
        for k in range(n):
            lines.append(
                (
                    t + timedelta(minutes=k),
                    f"1dns iplog[312]: UDP: dgram to domain from 10.1.0.25:{1024 + k} (38 data bytes)",
                )
            )
        t += timedelta(hours=7)
    site = make_site(date(2002, 2, 16), 1)
    for s in site.servers:
        if s.name == "1dns":
            s.lines = lines
    site.truth = count_truth(site.servers)
    toml = _write(site, tmp_path, "numbered")
    big = tmp_path / "1dns" / "messages.1"
    assert big.exists()  # the 14-month archive sits in one rotated file
    for d in (date(2002, 2, 16), date(2001, 2, 16), date(2001, 12, 31)):
        assert _parse_rows(toml, "1dns", d) == site.truth["1dns"][str(d)]["dq"], d


def test_february_29_only_where_the_year_has_one(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    lines = [
        (datetime(2004, 2, 28, 23, 0), "a"),
        (datetime(2004, 2, 29, 12, 0), "b"),
        (datetime(2004, 2, 29, 13, 0), "c"),
        (datetime(2004, 3, 1, 1, 0), "d"),
    ]  # mtime: 2004-03-01
    (d / "messages").write_text(
        "".join(
            bsd_line(t, "1dns iplog[1]: UDP: dgram to domain from 10.1.0.25:1 (1 data bytes)") + "\n" for t, _ in lines
        )
    )
    stamp = datetime(2004, 3, 1, 1, 0).timestamp()
    os.utime(d / "messages", (stamp, stamp))
    toml = site_toml(
        tmp_path,
        {"1mx": "logs/none*", "2mx": "logs/none*", "1dns": "logs/messages*", "2dns": "logs/none*"},
        "UTC",
    )
    assert _parse_rows(toml, "1dns", date(2004, 2, 29)) == 2
    assert _parse_rows(toml, "1dns", date(2004, 2, 28)) == 1


def test_backfill_opens_only_the_files_that_cover_its_day(tmp_path, monkeypatch):
    site = make_site(date(2002, 2, 1), 12, per_day=40, seed=5)
    toml = _write(site, tmp_path, "numbered")
    n_files = len(list((tmp_path / "1mx").glob("maillog*")))
    assert n_files >= 12
    pipeline.fetch(toml, "1mx", date(2002, 2, 3))  # the first fetch scans the archive once
    scans, opened = [], []
    real_scan, real_iter = manifest.scan_file, ingest.iter_raw_batches
    monkeypatch.setattr(manifest, "scan_file", lambda p, *a, **k: scans.append(Path(p).name) or real_scan(p, *a, **k))
    monkeypatch.setattr(
        ingest, "iter_raw_batches", lambda p, *a, **k: opened.append(Path(p).name) or real_iter(p, *a, **k)
    )
    day = date(2002, 2, 9)
    rows = _parse_rows(toml, "1mx", day)
    assert scans == []  # known by path, size and mtime: not re-read
    assert 1 <= len(opened) <= 3, opened
    assert rows == sum(site.truth["1mx"][str(day)][k] for k in ("n_from", "n_to"))


def test_copies_and_snapshots_are_read_once(newyear, tmp_path):
    """logrotate caught mid-compression (maillog.1 beside maillog.1.gz), a backup copy of an
    archive, and an old snapshot of the live file: the day still counts every line once."""
    toml = _write(newyear, tmp_path, "numbered")
    d = tmp_path / "1mx"
    (d / "maillog.1.gz").write_bytes(gzip.compress((d / "maillog.1").read_bytes()))
    shutil.copy2(d / "maillog.3.gz", d / "maillog.3.gz.bak")
    live = (d / "maillog").read_bytes()
    (d / "maillog.snapshot").write_bytes(live[: live.rfind(b"\n", 0, len(live) // 2) + 1])
    for day in (date(2001, 12, 31), date(2002, 1, 1), date(2002, 1, 2)):
        assert _totals(toml, day) == day_totals(newyear, day), day


def test_live_file_that_grew_is_read_again(tmp_path):
    site = make_site(date(2002, 2, 16), 1, per_day=60, seed=9)
    mx = next(s for s in site.servers if s.name == "1mx")
    late = [x for x in mx.lines if x[0] >= datetime(2002, 2, 16, 20)]
    mx.lines = [x for x in mx.lines if x[0] < datetime(2002, 2, 16, 20)]
    toml = _write(site, tmp_path, "numbered")
    day = date(2002, 2, 16)
    before = _parse_rows(toml, "1mx", day)
    with open(tmp_path / "1mx" / "maillog", "a") as fh:
        fh.writelines(bsd_line(t, x) + "\n" for t, x in late)
    stamp = datetime(2002, 2, 17, 5, 0).timestamp()
    os.utime(tmp_path / "1mx" / "maillog", (stamp, stamp))
    after = _parse_rows(toml, "1mx", day)
    assert after - before == sum(1 for t, x in late if t.date() == day)
    mx.lines += late
    assert after == sum(count_truth([mx])["1mx"][str(day)][k] for k in ("n_from", "n_to"))


def test_day_without_a_covering_file_names_server_day_and_files(newyear, tmp_path):
    toml = _write(newyear, tmp_path, "dateext")
    with pytest.raises(SourceError) as e:
        pipeline.fetch(toml, "2dns", date(2002, 3, 20))
    msg = str(e.value)
    assert "2dns" in msg and "2002-03-20" in msg and "messages-20020101.gz [2001-12-31" in msg


def test_truncated_archive_fails_the_days_it_holds_and_names_file_and_offset(newyear, tmp_path):
    toml = _write(newyear, tmp_path, "numbered")
    bad = tmp_path / "1mx" / "maillog.3.gz"  # 2001-12-31 04:02 .. 2002-01-01 04:02
    data = bad.read_bytes()
    cut = len(data) * 2 // 3
    bad.write_bytes(data[:cut])
    for day in (date(2001, 12, 31), date(2002, 1, 1)):  # the lost tail may hold Jan 1 lines too
        with pytest.raises(LogFileError) as e:
            pipeline.fetch(toml, "1mx", day)
        msg = str(e.value)
        assert "1mx" in msg and str(day) in msg and "maillog.3.gz" in msg and f"at byte {cut} of {cut}" in msg
    assert pipeline.fetch(toml, "1mx", date(2002, 1, 2))["files"]  # other days are not blocked
    assert pipeline.fetch(toml, "1mx", date(2001, 12, 30))["files"]


@pytest.mark.parametrize("batch_bytes", [None, 2048])
def test_year_less_stamps_after_dated_ones_take_the_files_years_without_a_fetch(tmp_path, monkeypatch, batch_bytes):
    """A file parsed without a fetch (so not scanned beforehand) whose first lines carry their
    year (RFC 3339) and whose later ones do not (BSD, 13 months, Feb 16 twice): the year-less
    lines still take the file's own years, so 2001-02-16 counts only its own lines."""
    if batch_bytes:  # the dated lines fill the first batches, the year-less ones come later
        monkeypatch.setattr("mmw_tasks.parse.logfiles.BATCH_BYTES", batch_bytes)
    text = "1dns iplog[312]: UDP: dgram to domain from 10.1.0.25:1024 (38 data bytes)"
    t, out, stamps = datetime(2001, 1, 10, 8, 0), [], []
    while t < datetime(2002, 3, 1):
        n = 3 if t.date() == date(2002, 2, 16) else 2 if t.date() == date(2001, 2, 16) else 1
        for k in range(n):
            at = t + timedelta(minutes=k)
            out.append(iso_line(at, text, "UTC") if at < datetime(2001, 2, 1) else bsd_line(at, text))
            stamps.append(at.date())
        t += timedelta(hours=7)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "messages").write_text("\n".join(out) + "\n")
    stamp = datetime(2002, 3, 1, 1, 0).replace(tzinfo=ZoneInfo("UTC")).timestamp()
    os.utime(logs / "messages", (stamp, stamp))
    toml = site_toml(
        tmp_path,
        {"1mx": "logs/none*", "2mx": "logs/none*", "1dns": "logs/messages*", "2dns": "logs/none*"},
        "UTC",
    )
    for d in (date(2001, 2, 16), date(2002, 2, 16), date(2001, 1, 20)):
        assert pipeline.parse(toml, "1dns", d, [str(logs / "messages")])["rows"] == stamps.count(d), d


def _iplog_file(tmp_path: Path, start: datetime, end: datetime, mtime: datetime) -> tuple[Path, Path, list]:
    """A BSD-stamped iplog file from `start` to `end` (a line every 7 hours), its site and stamps."""
    text = "1dns iplog[312]: UDP: dgram to domain from 10.1.0.25:1024 (38 data bytes)"
    out, stamps, t = [], [], start
    while t < end:
        out.append(bsd_line(t, text))
        stamps.append(t.date())
        t += timedelta(hours=7)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "messages").write_text("\n".join(out) + "\n")
    stamp = mtime.replace(tzinfo=ZoneInfo("UTC")).timestamp()
    os.utime(logs / "messages", (stamp, stamp))
    toml = site_toml(
        tmp_path,
        {"1mx": "logs/none*", "2mx": "logs/none*", "1dns": "logs/messages*", "2dns": "logs/none*"},
        "UTC",
    )
    return toml, logs / "messages", stamps


def test_years_found_while_reading_a_file_across_new_year(tmp_path, monkeypatch):
    """A file not scanned beforehand (no fetch), in many batches, whose stamps lack years and
    cross a new year: its years are found while it is read, and each day gets its own lines."""
    monkeypatch.setattr("mmw_tasks.parse.logfiles.BATCH_BYTES", 2048)
    toml, path, stamps = _iplog_file(tmp_path, datetime(2001, 12, 20), datetime(2002, 1, 12), datetime(2002, 1, 12, 1))
    for d in (date(2001, 12, 31), date(2002, 1, 1), date(2002, 1, 11)):
        assert pipeline.parse(toml, "1dns", d, [str(path)])["rows"] == stamps.count(d), d


def test_a_file_whose_later_lines_move_its_years_is_read_again_with_a_scan(tmp_path, monkeypatch):
    """A year of log in one file, parsed for December without a fetch: its first batch alone
    (January) would be placed next to the run's day, in the following year; the whole file puts
    it in its own year. The read-time years fail their check at the end, and the day is parsed
    again after a scan: December 15 counts its own lines, once."""
    from mmw_tasks.parse.logfiles import iter_line_batches
    from mmw_tasks.parse.years import OnlineYears

    monkeypatch.setattr("mmw_tasks.parse.logfiles.BATCH_BYTES", 2048)
    toml, path, stamps = _iplog_file(tmp_path, datetime(2001, 1, 1), datetime(2002, 1, 1), datetime(2002, 1, 1, 0, 30))
    online = OnlineYears(path, "UTC", date(2001, 12, 15))
    for first_no, lines in iter_line_batches(path):
        online.next_anchor(first_no, lines)
    assert len(online.used) > 10 and not online.holds()
    for d in (date(2001, 12, 15), date(2001, 1, 3)):
        assert pipeline.parse(toml, "1dns", d, [str(path)])["rows"] == stamps.count(d), d
    days = duckdb.sql(
        f"select distinct year(ts) as y from read_parquet('{tmp_path}/lake/dns_queries/*/*.parquet')"
    ).fetchall()
    assert days == [(2001,)]
