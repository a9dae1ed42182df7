"""Tests that try to break the parsers and the framing (issue #17, item 8): property-based, with
hypothesis, derandomized (the same inputs on every run and machine) and without an example
database.

Inputs: random bytes, and the real sample lines (tests/data/sample-lines.txt; iplog lines as
log-formats.md 5.1 gives them) mutated -- bits flipped, truncated, fields duplicated and
dropped, NUL bytes, CRLF ends, broken and foreign multibyte text, 1 MB lines -- given to every
parser (sendmail, Postfix, Exim and the POP/IMAP lines beside them, iplog, BIND, dnsmasq,
Unbound), to the framing (syslog.frame_lines, fast and general), to the reader
(logfiles.iter_raw_batches, plain and gzip, batches of any size) and to the whole parse of a
day (ingest.parse_server_day, into a lake in tmp, with logfiles.BATCH_BYTES made small).

Invariants: nothing raises; every line is read once and lands parsed, ignored or malformed
(read = parsed + ignored + malformed, and read = the lines given); a valid line gives the same
rows alone and among garbage; batch boundaries change nothing.

`make test-fast` runs a few examples per test (a few seconds in all). More:
MMW_FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest tests/test_parse_fuzz.py --hypothesis-show-statistics
(docs/reliability.md lists the counts of the last such run).
"""

from __future__ import annotations

import gzip
import os
import re
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmw_tasks.config import Server, site_from_dict
from mmw_tasks.parse import ingest, kernels, logfiles, syslog
from mmw_tasks.parse.stamps import YearAnchor

EXAMPLES = int(os.environ.get("MMW_FUZZ_EXAMPLES", "0")) or None


def fuzz(default: int):
    """Hypothesis settings of these tests: `default` examples (MMW_FUZZ_EXAMPLES overrides),
    derandomized, no deadline (the machine is shared), no database."""
    return settings(
        max_examples=EXAMPLES or default,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


DAY = date(2002, 2, 16)
SAMPLES = Path(__file__).resolve().parent / "data" / "sample-lines.txt"


def _blocks() -> dict[str, list[str]]:
    text = SAMPLES.read_text(encoding="utf-8")
    out = {}
    for block in re.split(r"^## ", text, flags=re.M)[1:]:
        title, _, body = block.partition("\n")
        out[title] = [ln for ln in body.splitlines() if ln.strip() and not ln.startswith("# ")]
    return out


BLOCKS = _blocks()


def _lines(*words: str) -> list[str]:
    lines = [ln for title, block in BLOCKS.items() if any(w in title for w in words) for ln in block]
    assert lines, words
    return lines


# lines of any syslog: stamps of every form, repeats, odd tags (every format's file has them)
FRAMING = _lines("RFC 3339", "BSD timestamps", "Solaris", "year rollover", "HP-UX", "Non-standard", "repeated")
POP = _lines("Dovecot", "Courier", "UW imapd", "vpopmail") + [
    'Feb 16 21:03:12 mx popper[4021]: (v4.0.5) POP login by user "tanaka" at (dialup12.isp.example.net) 198.51.100.33',
]
POSTFIX_PARTS = [  # message parts of postfix-grok-patterns, under the header they were cut from
    f"Feb 16 10:00:00 mx postfix/smtpd[1]: {ln}" for ln in _lines("Postfix message part")
]
IPLOG = [  # log-formats.md 5.1: the 2.2.3 wording, a resolved source, -D, the 2015 wording, TCP
    "Feb 16 14:30:01 ns iplog[312]: UDP: dgram to domain from 10.1.0.25:1053 (38 data bytes)",
    "Feb 16 14:30:01 ns iplog[312]: UDP: dgram to domain from mx.example.ac.jp (10.1.0.25):1054 (41 data bytes)",
    "Feb 16 14:30:01 ns iplog[312]: UDP: dgram to ns.example.ac.jp:domain from 10.1.0.25:1055 (38 data bytes)",
    "Feb 16 14:30:01 ns iplog[312]: UDP: to domain from 10.1.0.25:1056 (38 data bytes)",
    "Feb 16 14:30:02 ns iplog[312]: UDP: dgram to port 123 from 10.1.0.25:123 (48 data bytes)",
    "Feb 16 14:30:03 ns iplog[312]: TCP: smtp connection attempt from 10.1.0.25:34567",
    "Feb 16 14:30:04 ns last message repeated 3 times",
]
SEEDS: dict[str, list[str]] = {
    "sendmail": _lines("sendmail") + POP,
    "postfix": _lines("Postfix ~", "Postfix bounce", "Postfix 3", "Postfix deferred", "Postfix submission")
    + _lines("Postfix smtpd", "Postfix with RFC")
    + POSTFIX_PARTS
    + POP,
    "exim": _lines("Exim") + POP,
    "iplog": IPLOG,
    "bind": _lines("BIND"),
    "dnsmasq": _lines("dnsmasq"),
    "unbound": _lines("Unbound"),
}
SERVERS = {
    fmt: Server(
        name="srv", role="dns" if fmt in ("iplog", "bind", "dnsmasq", "unbound") else "mail", format=fmt, source="x"
    )
    for fmt in SEEDS
}
MB = 1 << 20


@st.composite
def mutated(draw, seeds: list[str]) -> bytes:
    """A real line, changed up to three times (one change in ten makes it a 1 MB line)."""
    line = bytearray(draw(st.sampled_from(seeds)).encode("utf-8"))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(
            st.sampled_from(
                ["flip", "truncate", "dup", "drop", "nul", "crlf", "insert", "multibyte", "foreign", "long"]
            )
        )
        at = draw(st.integers(0, len(line)))
        if kind == "flip" and line:
            i = min(at, len(line) - 1)
            line[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del line[at:]
        elif kind in ("dup", "drop"):
            sep = b", " if b", " in line else b" "
            fields = bytes(line).split(sep)
            i = draw(st.integers(0, len(fields) - 1))
            fields[i : i + 1] = [fields[i], fields[i]] if kind == "dup" else []
            line = bytearray(sep.join(fields))
        elif kind == "nul":
            line[at:at] = b"\x00"
        elif kind == "crlf":
            line += b"\r"
        elif kind == "insert":
            line[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "multibyte":  # UTF-8 Japanese, sometimes cut in the middle of a character
            text = "日本語の件名".encode()
            line[at:at] = text[: draw(st.integers(1, len(text)))]
        elif kind == "foreign":
            line[at:at] = "件名 テスト".encode(
                draw(st.sampled_from(["shift_jis", "euc_jp", "iso2022_jp", "latin-1"])), "replace"
            )
        elif kind == "long" and draw(st.integers(0, 9)) == 0:
            line += (b" " + bytes(line[-40:] or b"x")) * (MB // (len(line[-40:]) + 1 or 1) + 1)
            del line[MB:]
    return bytes(line)


def garbage() -> st.SearchStrategy[bytes]:
    """One line that no parser can take for one of its own and that changes no other line: no
    stamp (it begins with a byte no stamp begins with), or another program on another host."""
    junk = st.binary(max_size=200).map(lambda b: b.replace(b"\n", b" "))
    return st.one_of(
        junk.map(lambda b: b"\x00" + b),
        junk.map(lambda b: b"\xff\xfe" + b),
        st.text(max_size=80).map(lambda t: f"Feb 16 10:00:00 junkhost kernel: {t}".replace("\n", " ").encode()),
    )


def lines_for(fmt: str) -> st.SearchStrategy[list[bytes]]:
    """Lines of one server's file: its real lines (mutated), any syslog line, random bytes."""
    return st.lists(
        st.one_of(mutated(SEEDS[fmt]), mutated(FRAMING), st.binary(max_size=300), garbage()),
        min_size=1,
        max_size=25,
    )


def n_lines(items: list[bytes]) -> int:
    """How many lines parse_lines reads from `items` (a newline inside an item ends a line)."""
    return sum(item.count(b"\n") + 1 for item in items)


def check_accounts(events: pl.DataFrame, fates: pl.DataFrame, counts: dict, n: int) -> None:
    assert counts["lines_read"] == n
    assert counts["parsed"] >= 0
    assert counts["parsed"] + counts["ignored"] + counts["malformed"] == n
    own = fates.filter(pl.col("copy") == 0)
    assert own["line_no"].is_unique().all() and own["line_no"].is_between(1, n).all()
    assert set(own["fate"].unique()) <= {"ignored", "malformed"}
    assert events["line_no"].is_between(1, n).all()


@pytest.mark.parametrize("fmt", list(SEEDS))
@fuzz(8)
@given(data=st.data())
def test_any_bytes_every_line_lands_once(fmt, data):
    """Every parser, any bytes: no exception, each line read once, parsed, ignored or malformed."""
    items = data.draw(lines_for(fmt))
    events, fates, counts = ingest.parse_lines(SERVERS[fmt], items, DAY)
    check_accounts(events, fates, counts, n_lines(items))


@pytest.mark.parametrize("fmt", list(SEEDS))
@fuzz(6)
@given(data=st.data())
def test_a_real_line_reads_the_same_alone_and_among_garbage(fmt, data):
    """A real line gives the same rows (and fate) alone as with garbage before and after it: no
    byte of another line, no batch taken off the fast path, changes what a line says."""
    line = data.draw(st.sampled_from(SEEDS[fmt] + FRAMING)).encode()
    before = data.draw(st.lists(garbage(), max_size=6))
    after = data.draw(st.lists(garbage(), max_size=6))
    alone, alone_fates, _ = ingest.parse_lines(SERVERS[fmt], [line], DAY)
    events, fates, counts = ingest.parse_lines(SERVERS[fmt], [*before, line, *after], DAY)
    check_accounts(events, fates, counts, len(before) + 1 + len(after))
    at = len(before) + 1
    mine = events.filter(pl.col("line_no") == at).drop("line_no")
    assert mine.equals(alone.drop("line_no")), (line, before, after)
    assert fates.filter(pl.col("line_no") == at).drop("line_no").equals(alone_fates.drop("line_no"))


@fuzz(25)
@given(
    items=st.lists(st.one_of(mutated(FRAMING + IPLOG), st.binary(max_size=120)), min_size=1, max_size=40),
    batch=st.integers(1, 600),
    compressed=st.booleans(),
    last_newline=st.booleans(),
)
def test_reader_batches_of_any_size_give_every_line_and_its_bytes(
    tmp_path_factory, items, batch, compressed, last_newline
):
    """logfiles.iter_raw_batches, plain or gzip, batches of 1 to 600 bytes: the lines numbered
    1.. in order, as Python reads them (CR of CRLF off, invalid UTF-8 replaced), and the bytes
    of exactly the lines that were not UTF-8."""
    data = b"\n".join(items) + (b"\n" if last_newline else b"")
    path = tmp_path_factory.mktemp("reader") / "log"
    path.write_bytes(gzip.compress(data) if compressed else data)
    want = data.split(b"\n")
    if data.endswith(b"\n") or not data:
        want = want[:-1]
    want = [w[:-1] if w.endswith(b"\r") else w for w in want]
    got, raw, next_no = [], [], 1
    for first_no, lines, bad in logfiles.iter_raw_batches(path, batch_bytes=batch):
        assert first_no == next_no
        next_no += len(lines)
        got += lines.to_list()
        raw += bad.to_list() if bad is not None else [None] * len(lines)
    assert got == [w.decode("utf-8", "replace") for w in want]
    assert raw == [None if _utf8(w) else w for w in want]


@fuzz(100)
@given(items=st.lists(st.one_of(st.binary(max_size=40), st.text(max_size=20).map(str.encode)), min_size=1, max_size=30))
def test_utf8_check_is_pythons(items):
    """kernels.invalid_utf8 (C) flags exactly the lines Python's UTF-8 decoder refuses."""
    data = b"".join(b.replace(b"\n", b"") + b"\n" for b in items)
    raw = np.frombuffer(data, dtype=np.uint8)
    views = np.empty((len(items), 4), dtype=np.int32)
    assert kernels.line_views(raw, views) == len(items)
    bad = kernels.invalid_utf8(views, np.array([raw.ctypes.data], dtype=np.uint64))
    want = [not _utf8(ln) for ln in data.split(b"\n")[:-1]]
    assert (bad.tolist() if bad is not None else [False] * len(items)) == want


def _utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


@fuzz(20)
@given(items=st.lists(mutated(FRAMING + IPLOG + SEEDS["sendmail"]), min_size=1, max_size=30))
def test_framing_fast_path_equals_the_general_path(items):
    """syslog.frame_lines: the compiled fast path (when it takes a batch) gives what the general
    path gives, on mutated real lines (valid UTF-8, as the reader hands them over)."""
    lines = pl.Series("line", [b.decode("utf-8", "replace").replace("\n", " ") for b in items])
    args = (lines, 1, YearAnchor(DAY), "Asia/Tokyo")
    assert syslog.frame_lines(*args).equals(syslog.frame_lines(*args, fast=False))


def _site(tmp: Path, fmt: str):
    role = SERVERS[fmt].role
    raw = {
        "site": {"name": "t", "timezone": "Asia/Tokyo", "lake": "lake", "local_domains": ["example.ac.jp"]},
        "servers": [{"name": "srv", "role": role, "format": fmt, "source": "log*"}],
    }
    if role == "dns":
        raw["servers"][0]["mail_server_ips"] = ["10.1.0.25"]
        raw["servers"].append({"name": "mx", "role": "mail", "format": "sendmail", "source": "none*"})
    site = site_from_dict(raw, tmp / "site.toml")
    return site, site.servers[0]


def _lake(site, dataset: str) -> pl.DataFrame:
    files = list(Path(site.lake, dataset).glob("*/*.parquet"))
    if not files:
        return pl.DataFrame()
    df = duckdb.sql(f"select * from read_parquet({[str(f) for f in files]})").pl()
    return df.drop("day", strict=False)


@fuzz(4)
@given(data=st.data())
def test_a_day_parsed_in_small_batches_is_the_day_parsed_whole(tmp_path_factory, data):
    """parse_server_day on a file of mutated lines (through a lake in tmp), once with the
    default batches and once with logfiles.BATCH_BYTES of 64 bytes to 4 kB: the same counts,
    events, malformed lines and accounts; nothing raises."""
    fmt = data.draw(st.sampled_from(list(SEEDS)))
    items = data.draw(lines_for(fmt))
    small = data.draw(st.integers(64, 4096))
    tmp = tmp_path_factory.mktemp("day")
    path = tmp / "log"
    path.write_bytes(b"\n".join(items) + b"\n")
    results = []
    for batch in (None, small):
        site, server = _site(tmp / f"b{batch}", fmt)
        with pytest.MonkeyPatch.context() as mp:
            if batch:
                mp.setattr(logfiles, "BATCH_BYTES", batch)
            out = ingest.parse_server_day(site, server, DAY, [path])
        assert out["lines_read"] <= n_lines(items) and out["parsed"] >= 0
        assert out["lines_read"] == out["parsed"] + out["ignored"] + out["malformed"]
        dataset = out["dataset"]
        keys = ["line_no", "rcpt_index"] if dataset == "mail_events" else ["line_no"]
        events = _lake(site, dataset)
        bad = _lake(site, "malformed_lines")
        assert bad.height == out["malformed"]
        results.append(
            (out, events.sort(keys) if events.height else events, bad.sort("line_no") if bad.height else bad)
        )
    (whole, ev1, bad1), (parts, ev2, bad2) = results
    assert whole == parts
    assert ev1.equals(ev2) and bad1.equals(bad2)
