"""Every compiled kernel against its one specification (the expression or regex it replaced, in the
parse module that uses it; docs/speed.md lists them), on seeded random mutations of real lines.

The lines are those of tests/data/sample-lines.txt (the messages after their syslog headers, the
bodies after their queue ids, the relays after "relay="), and the hand-made cases of
tests/test_kernels.py. Each example is a batch of mutants: a line with up to five edits
(a character replaced, a span deleted or doubled, the line cut short, a space, comma, bracket,
quote or a character that is not ASCII inserted), each repeated up to three times (runs of
equal stamps). Hypothesis draws them derandomized: the same examples on every run and machine.
MMW_MUTATION_EXAMPLES sets the number of batches per kernel: 25 by default (make test-fast), 300
under make test (CI), more for a longer search.
"""

from __future__ import annotations

import os
import re
from datetime import date
from functools import cache

import polars as pl
import pytest
from conftest import ROOT
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from mmw_tasks.parse import exim, kernels, pop, postfix, sendmail, stamps, syslog
from mmw_tasks.parse.fields import after_keys_reference, all_ascii_reference, host_of, ip_of, relays
from mmw_tasks.parse.logfiles import split_lines, split_lines_reference

EXAMPLES = int(os.environ.get("MMW_MUTATION_EXAMPLES", "25"))
MUTATION = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# what an edit inserts or puts in a character's place: the bytes the kernels look for, and
# characters of two, three and four bytes (a no-break and an em space: whitespace to a regex)
ODD = [" ", "  ", ",", ", ", "<", ">", "[", "]", "(", ")", ":", ": ", ";", '"', "=", "@", ".", "...", "-", "\t", "\r"]
ODD += ["A", "z", "0", "9", "é", "ü", "ß", "\u00a0", "\u2003", "\u0661", "\U0001f600", "\x00", "\x7f"]
CHARS = st.one_of(st.sampled_from(ODD), st.characters(codec="utf-8", exclude_characters="\n"))


def sample_lines() -> list[str]:
    """Every line of every block of tests/data/sample-lines.txt (conftest.sample_block's reading)."""
    text = (ROOT / "tests" / "data" / "sample-lines.txt").read_text(errors="replace")
    out = []
    for block in re.split(r"^## ", text, flags=re.M)[1:]:
        body = block.partition("\n")[2]
        out += [ln for ln in body.splitlines() if ln.strip() and not ln.startswith("# ")]
    return out


@cache
def pools() -> dict[str, list[str]]:
    """The real values each kernel reads, from the sample lines (and the hand-made cases)."""
    import test_kernels as hand

    lines = sample_lines()
    framed = syslog.frame_lines(pl.Series(lines), 1, stamps.YearAnchor(date(2002, 2, 16)), fast=False)
    msgs = sorted({m for m in framed["msg"].to_list() if m} | set(lines))
    msg = pl.Series(msgs)
    sm = sendmail.sendmail_heads_reference(msg)
    pf = postfix.postfix_heads_reference(msg)
    ex = exim.exim_heads_reference(msg)

    def bodies(df: pl.DataFrame, keep: pl.Expr) -> list[str]:
        return sorted(set(df.filter(keep)["body"].drop_nulls().to_list()))

    relay_values = after_keys_reference(msg, [", relay=", "client=", "H="], None)
    return {
        "lines": lines,
        "msgs": msgs + [m for m in hand.POP_MESSAGES + hand.SENDMAIL_MESSAGES if m],
        "postfix msgs": msgs + [m for m in hand.POSTFIX_MESSAGES if m],
        "exim msgs": msgs + [m for m in hand.EXIM_MESSAGES if m],
        "from bodies": bodies(sm, pl.col("event") == "from") + [b for b, _ in hand.SENDMAIL_FROM_BODIES],
        "to bodies": bodies(sm, pl.col("event") == "to") + [b for b, _ in hand.SENDMAIL_TO_BODIES],
        "reject bodies": bodies(sm, pl.col("event") == "reject") + [b for b, _ in hand.SENDMAIL_REJECTS],
        "postfix to bodies": bodies(pf, pl.col("event") == "to") + hand.POSTFIX_TO_BODIES,
        "exim arrivals": bodies(ex, pl.col("_flag") == "<=") + hand.EXIM_ARRIVALS,
        "exim deliveries": bodies(ex, pl.col("_flag").is_in(["=>", "->", ">>", "*>", "==", "**"]))
        + hand.EXIM_DELIVERIES,
        "relays": sorted({v for s in relay_values for v in s.drop_nulls().to_list()})
        + [r for r in hand.RELAYS if r is not None],
    }


@st.composite
def mutant(draw, pool: str) -> str:
    s = draw(st.sampled_from(pools()[pool]))
    for _ in range(draw(st.integers(0, 5))):
        i = draw(st.integers(0, len(s)))
        op = draw(st.sampled_from(["replace", "delete", "double", "cut", "insert", "insert"]))
        if op == "replace" and i < len(s):
            s = s[:i] + draw(CHARS) + s[i + 1 :]
        elif op == "delete":
            s = s[:i] + s[i + draw(st.integers(1, 8)) :]
        elif op == "double":
            j = min(len(s), i + draw(st.integers(1, 12)))
            s = s[:j] + s[i:j] + s[j:]
        elif op == "cut":
            s = s[:i]
        elif op == "insert":
            s = s[:i] + draw(CHARS) + s[i:]
    return s


def batch(pool: str):
    """A batch of mutants, each repeated one to three times (runs of equal stamps)."""
    runs = st.lists(st.tuples(mutant(pool), st.integers(1, 3)), min_size=1, max_size=10)
    return runs.map(lambda rs: [s for s, k in rs for _ in range(k)])


def same(got: pl.Series | list, want: pl.Series | list, what: str, values: list[str]) -> None:
    got, want = list(got), list(want)
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g == w, f"{what} of {values[k]!r}: kernel {g!r}, specification {w!r}"


# -- one test per kernel ----------------------------------------------------------------------


@MUTATION
@given(batch("msgs"))
def test_pop_logins(values):
    msg = pl.Series("msg", values)
    got, want = kernels.pop_logins(msg), pop.pop_logins_reference(msg)
    for f in ("kind", "f1", "f2", "f3"):
        same(got[f], want[f], f, values)
    assert (got["cased"], got["mapped"]) == (want["cased"], want["mapped"]), values


@MUTATION
@given(batch("msgs"))
def test_sendmail_heads(values):
    got = sendmail._heads(pl.DataFrame({"msg": values}, schema={"msg": pl.String}))
    want = sendmail.sendmail_heads_reference(pl.Series(values, dtype=pl.String))
    for col in ("queue_id", "body", "event"):
        same(got[col], want[col], col, values)


@MUTATION
@given(batch("postfix msgs"))
def test_postfix_heads(values):
    got = postfix.heads(pl.DataFrame({"msg": values}, schema={"msg": pl.String}))
    want = postfix.postfix_heads_reference(pl.Series(values, dtype=pl.String))
    for col in ("queue_id", "body", "event"):
        same(got[col], want[col], col, values)


@MUTATION
@given(batch("exim msgs"))
def test_exim_heads(values):
    got = exim.heads(pl.DataFrame({"msg": values}, schema={"msg": pl.String}))
    want = exim.exim_heads_reference(pl.Series(values, dtype=pl.String))
    for col in ("queue_id", "_flag", "body", "event"):
        same(got[col], want[col], col, values)


def _fast_rows(values: list[str], kernel, slow, fields: list[str], **known) -> None:
    """The fields a whole-line kernel read (where it says `fast`) against the expressions the
    parser takes for the other lines, on the same lines."""
    rows = pl.DataFrame(
        {"line_no": range(len(values)), "copy": [0] * len(values), "body": values},
        schema={"line_no": pl.Int64, "copy": pl.Int32, "body": pl.String},
    )
    fast, found = kernel(rows["body"])
    got = rows.with_columns(**found).filter(pl.Series(fast))
    got = got.with_columns(**known) if known else got
    want = slow(rows).filter(pl.col("line_no").is_in(got["line_no"].to_list()))
    g, w = got.select("line_no", *fields).rows(), want.select("line_no", *fields).rows()
    assert g == w, [values[r[0]] for r in set(g) ^ set(w)]


def _bodies_of(values: list[str], lead: str) -> list[str]:
    """The mutants that are still bodies of that kind (the heads give the parser no others)."""
    kept = [v for v in values if v.startswith(lead)]
    assume(kept)
    return kept


@MUTATION
@given(batch("from bodies"))
def test_sendmail_from(values):
    values = _bodies_of(values, "from=")
    _fast_rows(values, kernels.sendmail_from, sendmail._from_fields, sendmail._FROM)


@MUTATION
@given(batch("to bodies"))
def test_sendmail_to(values):
    values = _bodies_of(values, "to=")
    _fast_rows(
        values,
        kernels.sendmail_to,
        lambda rows: sendmail._to_fields(rows, []),
        sendmail._TO,
        detail=pl.col("_stat"),
        status=pl.lit("sent"),
        rcpt_index=pl.lit(0, pl.Int32),
    )


@MUTATION
@given(batch("reject bodies"))
def test_sendmail_reject(values):
    _fast_rows(values, kernels.sendmail_reject, sendmail._reject_fields, ["recipient", "recipient_domain", "detail"])


@MUTATION
@given(batch("postfix to bodies"))
@example(["to=<a@b.example>, relay=x[127.0.0.1]:2525, dsn=2.0.0, status=sent \x80250 2.0.0 Ok: queued as 1)"])
def test_postfix_to(values):
    body = pl.Series("body", values, dtype=pl.String)
    got, want = kernels.postfix_to(body), postfix.postfix_to_reference(body)
    for col in ("recipient", "relay", "status", "detail"):
        same(got[col], want[col], col, values)


@pytest.mark.parametrize("to", [False, True], ids=["arrivals", "deliveries"])
def test_exim_fields(to):
    @MUTATION
    @given(batch("exim deliveries" if to else "exim arrivals"))
    def check(values):
        got = exim._fields(pl.DataFrame({"body": values}, schema={"body": pl.String}), to)
        want = exim.exim_fields_reference(pl.Series(values, dtype=pl.String), to)
        for k in want.columns:
            same(got[f"_{k}"], want[k], k, values)

    check()


@MUTATION
@given(batch("relays"))
def test_relay_fields(values):
    r = pl.Series("r", values, dtype=pl.String)
    want = pl.DataFrame({"r": r}).select(host=host_of(pl.col("r")), ip=ip_of(pl.col("r")))
    found = kernels.relay_fields(r)
    if found is not None:
        same(found[0], want["host"], "host", values)
        same(found[1], want["ip"], "ip", values)
    got = relays(pl.DataFrame({"r": r}), "r", host="host", ip="ip")  # the kernel, or the expressions
    assert got.select("host", "ip").rows() == want.rows()


@MUTATION
@given(batch("msgs"), st.sampled_from([",", None, ";", " "]))
def test_after_keys(values, stop):
    keys = [", size=", ", relay=", ", stat=", "to=", " H=", "rip="]
    v = pl.Series("v", values, dtype=pl.String)
    for key, got, want in zip(
        keys, kernels.after_keys(v, keys, stop), after_keys_reference(v, keys, stop), strict=True
    ):
        same(got, want, key, values)


@MUTATION
@given(batch("msgs"))
def test_all_ascii(values):
    v = pl.Series("v", values, dtype=pl.String)
    assert kernels.all_ascii(v) == all_ascii_reference(v), values


INVALID_UTF8 = [b"\xff", b"\xc3", b"\xe3\x81", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\r", b"\n", b"\r\n"]


@MUTATION
@given(
    batch("lines"),
    st.sampled_from([b"\n", b"\r\n"]),
    st.lists(st.tuples(st.integers(0, 1 << 16), st.sampled_from(INVALID_UTF8)), max_size=4),
    st.booleans(),
)
def test_line_views(values, newline, inserts, unended):
    """count_lines and line_views, through split_lines: the bytes may be any (invalid UTF-8, a
    stray CR or newline), and the last line may lack its newline."""
    data = b"".join(v.encode() + newline for v in values)
    for at, raw in inserts:
        at %= len(data) + 1
        data = data[:at] + raw + data[at:]
    if unended:
        data += b"no newline yet"
    assert split_lines(data).to_list() == split_lines_reference(data)


@MUTATION
@given(batch("lines"))
def test_scan_runs(values):
    lines = pl.Series("line", values, dtype=pl.String)
    lb = kernels.line_buffers(lines)
    assert lb is not None
    for iso in (False, True):
        got, want = kernels.runs(lb, iso), stamps.run_starts_reference(lines, iso)
        assert (got is None) == (want is None), (iso, values)
        if got is not None:
            same(got.tolist(), want.tolist(), f"run start (iso={iso})", values)


@MUTATION
@given(batch("lines"), st.sampled_from(["UTC", "Asia/Tokyo", "America/New_York"]))
def test_bsd_stamps(values, tz):
    """kernels.bsd_stamps through parse_stamps, against parse_stamps' general path."""
    heads = pl.Series("h", values, dtype=pl.String).str.slice(0, 48)
    anchor = stamps.YearAnchor(date(2002, 2, 16))
    fast = stamps.parse_stamps(heads, anchor, tz)
    general = stamps.parse_stamps(heads, anchor, tz, fast=False)
    for col in general.columns:
        same(fast[col], general[col], col, values)


@MUTATION
@given(batch("lines"), st.sampled_from(["UTC", "Asia/Tokyo"]))
@example(  # the general path's run key cut a character in two, which failed the whole batch
    [
        " un\U00010000 13 01:38:10 satellife sendmail[26050]: BAA26050: from=<a@b>, size=1, nrcpts=1",
        "2014-05-20T09:01:07.283219-04:00 arrakis unbound: [9405:0] notice: sendto failed",
    ],
    "UTC",
)
def test_scan_headers(values, tz):
    """kernels.headers (with runs and bsd_stamps) through frame_lines, against its general path."""
    lines = pl.Series("line", values, dtype=pl.String)
    anchor = stamps.YearAnchor(date(2002, 2, 16))
    fast = syslog.frame_lines(lines, 1, anchor, tz)
    general = syslog.frame_lines(lines, 1, anchor, tz, fast=False)
    for col in general.columns:
        same(fast[col], general[col], col, values)
