"""Syslog framing: year inference around New Year, streaming in batches, corrupt archives."""

from __future__ import annotations

import gzip
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest
from conftest import frame
from test_sql_minisite import DAY, copy_minisite

from mmw_tasks import pipeline
from mmw_tasks.config import load_site
from mmw_tasks.parse import logfiles, stamps, syslog, years


def test_year_follows_the_run_day_across_new_year():
    lines = ["Dec 31 23:59:59 ns iplog[1]: a", "Jan  1 00:00:01 ns iplog[1]: b", "Jan 01 00:00:02 ns iplog[1]: c"]
    ts = frame(lines, day=date(2002, 1, 1))["ts_local"].to_list()
    assert ts == [datetime(2001, 12, 31, 23, 59, 59), datetime(2002, 1, 1, 0, 0, 1), datetime(2002, 1, 1, 0, 0, 2)]
    # the same lines seen from the last day of the old year
    assert frame(lines, day=date(2001, 12, 31))["ts_local"].dt.year().to_list() == [2001, 2002, 2002]


def test_february_29_only_in_leap_years():
    line = ["Feb 29 12:00:00 mx sendmail[1]: x"]
    assert frame(line, day=date(2004, 2, 29))["ts_local"].to_list() == [datetime(2004, 2, 29, 12)]
    bad = frame(line, day=date(2003, 3, 1))
    assert bad["ts_local"].to_list() == [None] and bad["framed"].to_list() == [False]


def test_local_time_to_utc_and_lowercase_months():
    df = frame(["jan 27 18:59:28 saturne keytable: Loading keymap"], day=date(2001, 1, 27), tz="Asia/Tokyo")
    assert df["ts"].to_list()[0].isoformat() == "2001-01-27T09:59:28+00:00"
    assert df.select("host", "prog", "msg").row(0) == ("saturne", "keytable", "Loading keymap")


def test_small_batches_give_the_same_day(tmp_path, monkeypatch):
    """Streaming must not change a single count: repeats and unframed lines cross batch edges."""
    toml = copy_minisite(tmp_path / "a")
    site = load_site(toml)
    whole = {
        s.name: pipeline.parse(toml, s.name, DAY, pipeline.fetch(toml, s.name, DAY)["files"]) for s in site.servers
    }
    monkeypatch.setattr(logfiles, "BATCH_BYTES", 150)
    small = {
        s.name: pipeline.parse(toml, s.name, DAY, pipeline.fetch(toml, s.name, DAY)["files"]) for s in site.servers
    }
    assert small == whole
    assert whole["1dns"]["rows"] == 9 and whole["1mx"]["lines_read"] == 13


def test_truncated_gzip_names_the_file(tmp_path):
    path = tmp_path / "messages.2.gz"
    data = gzip.compress(
        b"Feb 16 14:30:01 ns iplog[312]: UDP: dgram to domain from 10.1.0.25:1053 (38 data bytes)\n" * 5000
    )
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(logfiles.LogFileError, match="messages.2.gz: corrupt or truncated"):
        for _ in logfiles.iter_line_batches(path):
            pass


def test_compression_detected_by_content_not_name(tmp_path):
    path = tmp_path / "messages.1"  # no .gz suffix, gzip inside
    path.write_bytes(gzip.compress(b"Feb 16 14:30:01 ns x[1]: y\nFeb 16 14:30:02 ns x[1]: z\n"))
    batches = list(logfiles.iter_line_batches(path))
    assert [b.to_list() for _, b in batches] == [["Feb 16 14:30:01 ns x[1]: y", "Feb 16 14:30:02 ns x[1]: z"]]


def test_fast_repeat_expansion_equals_the_general_path(tmp_path, monkeypatch):
    """Repeats right after their host's line take the short path; it gives the general path's
    rows, copies and carried lines exactly (a simulated 2002 day, whose DNS log repeats a lot)."""
    from mmw_tasks.simulate import simulate_site

    simulate_site(tmp_path, date(2002, 2, 16), 1, scenario="full", seed=1, style="2002", scale=0.1)
    general = syslog._expand_after_previous_line
    fast_used = 0
    for path in sorted((tmp_path / "logs").rglob("*")):
        if not path.is_file():
            continue
        carries: dict = {"fast": {}, "general": {}}
        for first, lines in logfiles.iter_line_batches(path, batch_bytes=1 << 16):
            framed = syslog.frame_lines(lines, first, stamps.YearAnchor(date(2002, 2, 16)), "Asia/Tokyo")
            monkeypatch.setattr(syslog, "_expand_after_previous_line", general)
            fast = syslog.expand_repeats(framed, carries["fast"])
            fast_used += framed["repeat_n"].is_not_null().any() and general(framed, {}) is not None
            monkeypatch.setattr(syslog, "_expand_after_previous_line", lambda df, carry: None)
            assert fast.equals(syslog.expand_repeats(framed, carries["general"])), path
            assert carries["fast"] == carries["general"]
    assert fast_used > 0


@pytest.mark.parametrize("style", ["2002", "modern"])
def test_fast_framing_equals_the_general_path(tmp_path, style):
    """The fast path (BSD or RFC 3339 batches, ASCII) frames every line exactly as the general
    one does: whole simulated files of both stacks, plus the awkward lines of the samples."""
    from conftest import sample_block

    from mmw_tasks.simulate import simulate_site

    simulate_site(tmp_path, date(2002, 2, 16), 1, scenario="full", seed=1, style=style, scale=0.1)
    for path in sorted((tmp_path / "logs").rglob("*")):
        if not path.is_file():
            continue
        for first, lines in logfiles.iter_line_batches(path, batch_bytes=1 << 20):
            args = (lines, first, stamps.YearAnchor(date(2002, 2, 16)), "Asia/Tokyo")
            assert syslog._frame_fast(*args) is not None, path
            assert syslog.frame_lines(*args).equals(syslog.frame_lines(*args, fast=False)), path
    odd = [
        "Feb 16 14:30:01 mx: no host, only a tag",
        "Feb 16 14:30:01 mx sendmail: no pid: two colons",
        "Feb 16 14:30:02 ns last message repeated 3 times",
        "Feb 16 14:30:02 ns -- MARK --",
        "Feb 16 14:30:02 ns x[1]:",
        "Feb 16 14:30:03 ns : empty tag",
        "Feb 16 14:30:03 ns",
        "Feb 16 14:30:04 ns kernel: [12345.6] eth0: link up",
    ]
    for lines in (odd, sample_block("Postfix with RFC 3339")):
        args = (pl.Series("line", lines), 1, stamps.YearAnchor(date(2002, 2, 16)), "Asia/Tokyo")
        assert syslog._frame_fast(*args) is not None
        assert syslog.frame_lines(*args).equals(syslog.frame_lines(*args, fast=False))


@pytest.mark.parametrize("style", ["2002", "modern"])
def test_compiled_runs_scan_years_as_the_general_path_does(tmp_path, style):
    """The year scan (StampScan) finds the same years, span and year changes with the compiled
    runs as with the general path: simulated files of both stacks, and a year's end with a
    relay's <pri> line, a line without a stamp and an ISO stamp among BSD ones."""
    from mmw_tasks.simulate import simulate_site

    simulate_site(tmp_path, date(2002, 2, 16), 1, scenario="full", seed=1, style=style, scale=0.1)
    files = [p for p in sorted((tmp_path / "logs").rglob("*")) if p.is_file()]
    year_end = tmp_path / "year-end.log"
    year_end.write_text(
        "\n".join(
            [
                "Dec 31 23:59:58 mx p[1]: a",
                "Dec 31 23:59:59 mx p[1]: b",
                "<13>Jan  1 00:00:00 mx p[1]: c",
                "Jan  1 00:00:01 mx p[1]: d",
                "no stamp at all",
                "2003-01-01T00:00:02.000000+09:00 mx p[1]: e",
                "Jan  1 00:00:03 mx p[1]: f",
            ]
            * 3
            + ["Jan  2 10:00:00 mx p[1]: g", "<13>Jan  3 10:00:00 mx p[1]: h"]
        )
        + "\n"
    )
    mixed = tmp_path / "mixed-forms.log"  # a BSD batch with stamps whose seconds lie past a BSD run key
    mixed.write_text(
        "Feb 16 10:00:00 mx p[1]: a\n2002-02-16T10:00:01.000000+09:00 mx p[1]: b\n"
        "2002-02-16T10:00:59.000000+09:00 mx p[1]: c\n"
    )
    for path in [*files, year_end, mixed]:
        scans = {fast: years.StampScan(keep_heads=True, fast=fast) for fast in (True, False)}
        for first, lines in logfiles.iter_line_batches(path, batch_bytes=1 << 20):
            for scan in scans.values():
                scan.feed(first, lines)
        for anchor in (datetime(2002, 2, 17), datetime(2003, 1, 3)):
            assert scans[True].resolve(anchor, "Asia/Tokyo") == scans[False].resolve(anchor, "Asia/Tokyo"), path
        assert scans[True].offsets == scans[False].offsets and scans[True].lines == scans[False].lines


@pytest.mark.parametrize("stamp", ["Feb 16 14:30:01", "2002-02-16T14:30:01.000000+09:00"])
def test_compiled_framing_reads_fields_across_read_buffers(tmp_path, stamp):
    """The compiled header split (kernels) on lines whose fields are short (held in their views)
    or long (pointing into a buffer), in batches that each start with a line left over from the
    previous read (a second buffer): the fast path is taken for every batch and frames exactly as
    the general path does."""
    bodies = [
        "mx sendmail[12]: g1GBU1a12345: from=<a@b.example>, size=1",
        "mail-relay-number-one.example.org postfix/smtpd[99999]: connect from x",
        "ns named[1]: client 10.0.0.1#53: query: a.example IN MX +",
        "mx tag: ",
        "mx : empty tag",
        "mx x[1]:",
        "mx -- MARK --",
        "mx",
        "h p: a: b: c",
        "mx kernel: [1.5] eth0: up",
        ": colon first",
        "mx sendmail: no pid, a long message body that is longer than twelve bytes",
        "mx last message repeated 2 times",
        "mx postfix/qmgr[3]:  last message repeated 2 times",
        "mx above message repeats 3 times",
        "mx rsyslogd: message repeated 4 times: [ x]",
        "mx last message buffered 1 time",
        "mx last message was not a repeat",
    ]
    lines = [f"{stamp} {b}" for b in bodies] * 7
    path = tmp_path / "mixed.log"
    path.write_text("\n".join(lines) + "\n")
    anchor, seen = stamps.YearAnchor(date(2002, 2, 16)), 0
    for first, batch in logfiles.iter_line_batches(path, batch_bytes=300):
        assert syslog._frame_fast(batch, first, anchor, "Asia/Tokyo") is not None
        assert syslog.frame_lines(batch, first, anchor, "Asia/Tokyo").equals(
            syslog.frame_lines(batch, first, anchor, "Asia/Tokyo", fast=False)
        )
        seen += len(batch)
    assert seen == len(lines)


def test_lines_are_split_exactly_whatever_their_length_ending_or_bytes():
    """Lines of 0 to 13 bytes (held inside the view), longer ones (pointing into the buffer),
    CRLF endings, multibyte and invalid UTF-8: each comes out as written (invalid bytes
    replaced), and compares and counts as the same text built any other way."""
    raw = [
        b"",
        b"a",
        b"x" * 11,
        b"y" * 12,
        b"z" * 13,
        b"Feb 16 14:30:01 mx sendmail[1]: long enough line",
        b"crlf line\r",
        b"\r",
        "caf\u00e9 \u65e5\u672c".encode(),
        b"8-bit \xe9t\xe9 1996",
        b"y" * 12,
        b"a",
    ]
    data = b"\n".join(raw) + b"\n"
    expected = logfiles.split_lines_reference(data)  # the kernels' specification
    assert expected == [r.decode("utf-8", errors="replace").removesuffix("\r") for r in raw]
    lines = logfiles.split_lines(data)
    assert lines.to_list() == expected
    assert (lines == pl.Series(expected)).all()
    assert lines.n_unique() == len(set(expected))
    assert lines.str.len_bytes().to_list() == [len(e.encode()) for e in expected]


def test_a_buffer_beyond_the_views_offsets_is_split_at_line_ends(monkeypatch):
    """Views address at most 2 GiB of one buffer: a larger one is cut at a line end into pieces
    that each fit (here with the limit lowered to 64 bytes), and no line is lost or cut; a
    single line longer than the limit is refused with a clear error."""
    monkeypatch.setattr(logfiles, "_VIEW_BYTES", 64)
    raw = [f"Feb 16 14:30:{i:02d} mx sendmail[{i}]: line {i}".encode() for i in range(12)] + [b"", b"end\r"]
    expected = [r.decode().removesuffix("\r") for r in raw]
    assert logfiles.split_lines(b"\n".join(raw) + b"\n").to_list() == expected
    with pytest.raises(ValueError, match="a line of more than 64 bytes"):
        logfiles.split_lines(b"x" * 100 + b"\n")


@pytest.mark.parametrize(
    "anchor", [stamps.YearAnchor(date(2002, 1, 1)), stamps.FileYears(breaks=((1, 2001), (3, 2002)))]
)
def test_stamps_read_by_slices_equal_the_regexes(anchor):
    """The two fixed layouts (classic syslog, rsyslog RFC 3339) are read by slices when every
    head has one: the same fields as the regexes, including the days, months and offsets that
    are easy to cut wrong, an impossible date, and each line's year from a file's year breaks."""
    bsd = ["Dec 31 23:59:59 ", "Jan  1 00:00:01 ", "jan 01 00:00:02 ", "Feb 29 12:00:00 ", "Sep  9 09:09:09 "]
    iso = [
        "2024-03-05T00:40:00.100000+01:00 ",
        "2024-10-27T02:30:00.000001-05:30 ",
        "2024-12-31T23:59:59.999999Z ",
        "2023-02-29T12:00:00.000000+09:00 ",
    ]
    for heads in (bsd, iso):
        rest = (
            pl.DataFrame({"h": heads})
            .with_row_index("i")
            .with_columns(line_no=pl.int_range(1, len(heads) + 1, dtype=pl.Int64))
        )
        fixed = stamps._fixed_stamps(rest, anchor)
        assert fixed is not None
        assert fixed.equals(stamps._stamp_forms(rest, anchor))
    # anything else is left to the regexes
    for odd in (["Feb 16 14:30:01.123 "], ["Foo 16 14:30:01 "], ["2024-03-05T00:40:00+01:00 "], bsd[:1] + iso[:1]):
        rest = pl.DataFrame({"h": odd}).with_row_index("i").with_columns(line_no=pl.lit(1, pl.Int64))
        assert stamps._fixed_stamps(rest, anchor) is None
    times = stamps.parse_stamps(pl.Series(bsd), anchor, "Asia/Tokyo")
    assert times["ts_local"].to_list()[3] is None  # no 29 February in 2001 or 2002


def _rss_mb() -> float:
    return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) / 1024


def test_small_files_hold_no_batch_sized_buffers(tmp_path):
    """Lines are views into the bytes read: a file smaller than a batch must not keep a whole
    batch's worth of memory alive behind them (a day's many small rotated files add up)."""
    path = tmp_path / "small"
    path.write_bytes(b"Feb 16 14:30:01 mx sendmail[1]: a line of a small file\n" * 10)
    before = _rss_mb()
    kept = [lines for _ in range(40) for _, lines in logfiles.iter_line_batches(path)]
    grown = _rss_mb() - before
    assert [len(lines) for lines in kept] == [10] * 40
    assert grown < 100, f"40 ten-line files hold {grown:.0f} MB"
