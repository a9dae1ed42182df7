"""Syslog framing, vectorised: split each line into timestamp, host, program and message, and
expand repeat lines.

Everything works on polars frames of whole batches of lines; no per-line Python. The common
batch (every stamp BSD, or every stamp rsyslog's RFC 3339) is framed by two compiled passes
(`_frame_fast`); anything else by byte offsets (`str.find`) and byte slices, with regexes on the
runs' first lines only. Files are read by logfiles.py, stamps made times by stamps.py.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from mmw_tasks.parse import kernels
from mmw_tasks.parse.logfiles import bslice
from mmw_tasks.parse.stamps import (
    FileYears,
    YearAnchor,
    normalise_headers,
    parse_stamps,
    run_heads,
    stamp_times,
)

_REPEAT = (
    r"^ ?(?:last message repeated|last message buffered|above message repeats"
    r"|message repeated) (\d+) times?"
)
_REPEAT_N = pl.col("msg").str.extract(_REPEAT, 1).cast(pl.Int64)  # anchored: one quick pass


def _stamp_columns(stamp_parts: bool) -> list[str]:
    return ["ts", "ts_site", *(("ts_local", "ts_utc_given") if stamp_parts else ())]


def _frame_fast(
    lines: pl.Series,
    first_line_no: int,
    anchor: YearAnchor | FileYears,
    tz: str,
    stamp_parts: bool = True,
    runs: tuple | None = None,
) -> pl.DataFrame | None:
    """frame_lines for the common batch: ASCII syslog lines whose stamps are all BSD
    (`Feb 16 14:30:01 `) or all rsyslog RFC 3339 with microseconds. Every line's stamp is its
    run head's (the run key covers the whole stamp and the space after it), so the per-line work
    is one compiled pass for the runs and one for the header fields (kernels). None when the
    batch is anything else (then the general path below handles it, byte-exact)."""
    n = len(lines)
    if n == 0:
        return None
    lb = kernels.line_buffers(lines)
    runs = runs or run_heads(lines, first_line_no, lb)
    if runs is None or lb is None:
        return None
    heads, head_nos, first = runs
    run = pl.Series("run", np.cumsum(first, dtype=np.int64) - 1)
    times = parse_stamps(heads, anchor, tz, head_nos)  # line numbers: a FileYears anchor needs them
    if times.select(pl.col("plain").any() | pl.col("ts").is_null().any() | (pl.col("body_at").n_unique() > 1)).item():
        return None  # an unframed line or another stamp form among them
    flags, host, prog, msg, may_repeat = kernels.headers(lb, int(times["body_at"][0]))
    if flags < 0 or flags & kernels.NEEDS_GENERAL:
        return None  # FreeBSD's <facility.level>, Solaris message ids, forwarded src@host: the general path
    stamp = _stamp_columns(stamp_parts)
    df = times.select(stamp)[run].with_columns(
        line_no=pl.int_range(first_line_no, first_line_no + n, dtype=pl.Int64),
        line=lines,
        host=host,
        prog=prog,
        msg=msg,
    )
    if flags & kernels.MAY_REPEAT:  # the pattern read on the messages the kernel marked only
        marked = np.flatnonzero(may_repeat)
        counts = pl.DataFrame({"msg": msg.gather(marked)}).select(_REPEAT_N).to_series()
        repeat_n = pl.repeat(None, n, dtype=pl.Int64, eager=True).scatter(marked, counts)
    else:
        repeat_n = pl.repeat(None, n, dtype=pl.Int64, eager=True)
    return df.select(
        "line_no",
        "line",
        *stamp,
        "host",
        "prog",
        "msg",
        repeat_n=repeat_n.alias("repeat_n"),
        framed=pl.lit(True),
        plain=pl.lit(False),
    )


def frame_lines(
    lines: pl.Series,
    first_line_no: int,
    anchor: YearAnchor | FileYears,
    tz: str = "UTC",
    fast: bool = True,
    stamp_parts: bool = True,
    runs: tuple | None = None,
) -> pl.DataFrame:
    """Split raw lines into header fields.

    Columns: line_no, line, ts (UTC), ts_site (naive site-local), ts_local and ts_utc_given (the
    stamp's parts, unless `stamp_parts` is False), host, prog, msg, repeat_n, framed (the line has
    a stamp we could read), plain (the stamp was the program's own, as in Exim's main log or
    BIND's file channel: no syslog host or tag). A line without a stamp has no host, program or
    message, except a blank one (empty, or white space only), whose message is "" (the parsers
    count it ignored, fields.unframed). `fast=False` skips the fast path (tests compare
    the two). `runs`: these lines' runs as the year scan found them (StampScan.last_runs), if it did.
    """
    done = _frame_fast(lines, first_line_no, anchor, tz, stamp_parts, runs) if fast else None
    if done is not None:
        return done
    n = len(lines)
    original = lines
    lines = normalise_headers(lines)
    times = stamp_times(lines, anchor, tz, first_line_no)
    df = (
        pl.DataFrame({"line": lines})
        .with_columns(line_no=pl.int_range(first_line_no, first_line_no + n, dtype=pl.Int64))
        .hstack(times)
    )
    line, at = pl.col("line"), pl.col("body_at")
    # Header after the stamp: "host tag: msg", "tag: msg" (no host), or "host msg" (no tag).
    df = df.with_columns(c=line.str.find(": ", literal=True).cast(pl.Int64))
    df = df.with_columns(
        head=pl.when(pl.col("c") > at).then(bslice(line, at, pl.col("c") - at)).otherwise(bslice(line, at))
    )
    df = df.with_columns(sp=pl.col("head").str.find(" ", literal=True).cast(pl.Int64))
    # a program's own stamp is followed by its text, unless that is "[host ]prog[pid]: "
    host_prog = pl.col("head").str.contains(r"^(?:\S+ )?[\w./-]+\[[\d:]+\]$")
    df = df.with_columns(plain=pl.col("plain") & ~(pl.col("sp").is_not_null() & host_prog))
    has_tag = (pl.col("c") > at) & (pl.col("sp").is_null() | ~pl.col("plain"))
    host = pl.when(~pl.col("plain") & pl.col("sp").is_not_null()).then(bslice(pl.col("head"), 0, pl.col("sp")))
    tag = (
        pl.when(has_tag & pl.col("plain"))
        .then(pl.col("head"))
        .when(has_tag & pl.col("sp").is_null())
        .then(pl.col("head"))
        .when(has_tag)
        .then(bslice(pl.col("head"), pl.col("sp") + 1))
    )
    msg = (
        pl.when(has_tag)
        .then(bslice(line, pl.col("c") + 2))
        .when(~pl.col("plain") & pl.col("sp").is_not_null())
        .then(bslice(line, at + pl.col("sp") + 1))
        .otherwise(bslice(line, at))
    )
    df = df.with_columns(host=host, tag=tag, msg=msg)
    if df.select(pl.col("host").str.starts_with("<").any()).item():  # FreeBSD syslogd -v "<mail.info>"
        pri = pl.col("host").str.starts_with("<") & pl.col("tag").str.contains(" ", literal=True)
        df = df.with_columns(
            host=pl.when(pri).then(pl.col("tag").str.extract(r"^(\S+) ", 1)).otherwise(pl.col("host")),
            tag=pl.when(pri).then(pl.col("tag").str.extract(r"^\S+ (.*)$", 1)).otherwise(pl.col("tag")),
        )
    if df.select(pl.col("host").str.contains("[@/]").any()).item():  # forwarded "src@host", "host/host"
        df = df.with_columns(host=pl.col("host").str.replace(r"^[^@]*@", "").str.replace(r"/.*$", ""))
    df = df.with_columns(prog=bslice(pl.col("tag"), 0, pl.col("tag").str.find("[", literal=True)))
    if df.select(pl.col("msg").str.starts_with("[ID ").any()).item():  # Solaris message ids
        df = df.with_columns(msg=pl.col("msg").str.replace(r"^\[ID \d+ [\w.]+\] ", ""))
    df = df.with_columns(repeat_n=_REPEAT_N)
    if df.select(pl.col("ts").is_null().any()).item():  # a blank line: no header, and an empty message
        blank = pl.col("ts").is_null() & pl.col("line").str.contains(r"^\s*$")
        df = df.with_columns(msg=pl.when(blank).then(pl.lit("")).otherwise(pl.col("msg")))
    if lines is not original:
        df = df.with_columns(line=original)  # malformed lines are kept as they were written
    return df.select(
        "line_no",
        "line",
        *_stamp_columns(stamp_parts),
        "host",
        "prog",
        "msg",
        "repeat_n",
        framed=pl.col("ts").is_not_null(),
        plain=pl.col("plain").fill_null(False),
    )


def expand_repeats(df: pl.DataFrame, carry: dict[str, tuple[str | None, str | None]]) -> pl.DataFrame:
    """Replace each 'last message repeated N times' line by N copies of the host's previous line.

    `carry` maps host -> (prog, msg) of its last line in the previous batch and is updated.
    rsyslog's "message repeated N times: [ text]" carries its own text and program.
    The copies keep the repeat line's timestamp and line number and are flagged `repeat`;
    `copy` numbers them (0 for every ordinary line).
    """
    if df.select(pl.col("repeat_n").is_null().all()).item():
        _update_carry(df, carry)
        return df.with_columns(repeat=pl.lit(False), copy=pl.lit(0, pl.Int32))
    done = _expand_after_previous_line(df, carry)
    if done is not None:
        return done
    is_rep = pl.col("repeat_n").is_not_null()
    inline = is_rep & pl.col("msg").str.contains(r"times: \[", literal=False)
    df = df.with_columns(
        msg=pl.when(inline).then(pl.col("msg").str.extract(r"times: \[ ?(.*)\]\s*$", 1)).otherwise(pl.col("msg")),
        repeat_n=pl.col("repeat_n"),
        _inline=inline,
    )
    from_prev = is_rep & ~pl.col("_inline")
    src = pl.when(~from_prev).then(pl.struct("prog", "msg")).forward_fill().over("host")
    filled = df.with_columns(_src=src)
    if carry:
        seed = pl.DataFrame(
            {"host": list(carry), "_p": [v[0] for v in carry.values()], "_m": [v[1] for v in carry.values()]},
            schema={"host": pl.String, "_p": pl.String, "_m": pl.String},
        )
        filled = filled.join(seed, on="host", how="left", maintain_order="left")
        filled = filled.with_columns(_src=pl.coalesce("_src", pl.struct(prog=pl.col("_p"), msg=pl.col("_m"))))
        filled = filled.drop("_p", "_m")
    filled = filled.with_columns(
        [pl.when(from_prev).then(pl.col("_src").struct.field(c)).otherwise(pl.col(c)).alias(c) for c in ("prog", "msg")]
    ).drop("_src", "_inline")
    _update_carry(filled, carry, ~is_rep | pl.col("msg").is_not_null())
    # A repeat with nothing before it (its line was in an older file) stays one unexpanded line.
    ok = is_rep & pl.col("msg").is_not_null()
    out = (
        filled.with_columns(
            _n=pl.when(ok).then(pl.col("repeat_n")).otherwise(1),
            repeat=ok,
        )
        .with_columns(copy=pl.int_ranges(0, pl.col("_n")))
        .explode("copy")
        .drop("_n")
    )
    return out.with_columns(pl.col("copy").cast(pl.Int32))


def _expand_after_previous_line(df: pl.DataFrame, carry: dict) -> pl.DataFrame | None:
    """expand_repeats for the usual batch: every repeat line says "last message repeated N
    times" (N >= 1) right after a line of the same host that is not a repeat, so its text is
    that line's. Works on the repeat lines' row numbers (few) and one gather for the copies,
    where the general path forward-fills per host and explodes every row. None otherwise."""
    n = df.height
    reps = df.select(pl.arg_where(pl.col("repeat_n").is_not_null())).to_series().cast(pl.Int64)
    if reps[0] == 0:
        return None
    prev = reps - 1
    check = pl.DataFrame(
        {
            "host": df["host"].gather(reps),
            "prev_host": df["host"].gather(prev),
            "prev_rep": df["repeat_n"].gather(prev),
            "n": df["repeat_n"].gather(reps),
            "msg": df["msg"].gather(reps),
        }
    )
    if not check.select(
        pl.col("host").eq_missing(pl.col("prev_host")).all()
        & pl.col("prev_rep").is_null().all()
        & (pl.col("n") >= 1).all()
        & ~pl.col("msg").str.contains(r"times: \[", literal=False).any()
    ).item():
        return None
    # each repeat line takes its previous line's program and text (set in place: few rows)
    df = df.with_columns(
        df["prog"].scatter(reps, df["prog"].gather(prev)), df["msg"].scatter(reps, df["msg"].gather(prev))
    )
    ok = pl.col("repeat_n").is_not_null() & pl.col("msg").is_not_null()
    df = df.with_columns(repeat=ok)
    _update_carry(df, carry, pl.col("repeat_n").is_null() | pl.col("msg").is_not_null())
    counts = (
        df.select(pl.when(pl.col("repeat")).then(pl.col("repeat_n")).otherwise(1))
        .to_series()
        .to_numpy()
        .astype(np.int64)
    )
    take = np.repeat(np.arange(n, dtype=np.int64), counts)
    copy = np.arange(len(take), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return df[pl.Series(take)].with_columns(copy=pl.Series(copy, dtype=pl.Int32))


def _update_carry(df: pl.DataFrame, carry: dict, keep: pl.Expr | None = None) -> None:
    """Note each host's last (prog, msg) among the rows `keep` marks (all rows by default)."""
    usable = pl.col("host").is_not_null() if keep is None else pl.col("host").is_not_null() & keep
    h = pl.col("host")
    if df.select((h.is_null() | (h == h.drop_nulls().first())).all()).item():  # one host: its last row
        last = df.select(pl.arg_where(usable).last()).item()
        if last is not None:
            host, prog, msg = df.select("host", "prog", "msg").row(last)
            carry[host] = (prog, msg)
        return
    last = df.filter(usable).group_by("host").agg(pl.col("prog").last(), pl.col("msg").last())
    for host, prog, msg in last.iter_rows():
        carry[host] = (prog, msg)
