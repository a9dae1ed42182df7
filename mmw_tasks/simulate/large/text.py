"""Vectorised text: numbers, hex, delays and stamps for whole columns at once.

Everything here turns numpy arrays into polars string Series (gathers from small tables and
concat_str), so that a million lines cost a few polars calls instead of a million f-strings.
"""

from __future__ import annotations

import string
from functools import cache

import numpy as np
import polars as pl

from mmw_tasks.simulate.mail import QIC
from mmw_tasks.simulate.render import hms_table

S = pl.String


def lit(s: str) -> pl.Expr:
    return pl.lit(s, S)


def cat(*parts, separator: str = "") -> pl.Series:
    """concat_str of Series and literals, evaluated: cat(a, lit("@"), b) or cat([a, lit("@"), b])."""
    if len(parts) == 1 and isinstance(parts[0], list):
        parts = tuple(parts[0])
    return pl.select(pl.concat_str(list(parts), separator=separator)).to_series()


def col_str(x) -> pl.Series:
    """Integers (numpy or Series) as decimal text."""
    return pl.Series(x).cast(pl.Int64).cast(S)


@cache
def _hex_table(digits: int, upper: bool) -> pl.Series:
    x = "X" if upper else "x"
    return pl.Series([f"{i:0{digits}{x}}" for i in range(16**digits)], dtype=S)


def hexs(x: np.ndarray, width: int, upper: bool = False) -> pl.Series:
    """Non-negative integers below 16**width as `width` hex digits."""
    x = np.asarray(x, dtype=np.int64)
    parts = []
    rest = width
    while rest > 0:
        d = 4 if rest % 4 == 0 else rest % 4
        rest -= d
        parts.append(_hex_table(d, upper).gather((x >> (4 * rest)) & (16**d - 1)))
    if len(parts) == 1:
        return parts[0]
    return pl.DataFrame({f"p{i}": p for i, p in enumerate(parts)}).select(pl.concat_str(pl.all()))[:, 0]


@cache
def _table(name: str) -> pl.Series:
    if name == "hms":  # HH:MM:SS of every second of a day
        return pl.Series(hms_table(), dtype=S)
    if name == "qic":  # sendmail's queue-id characters
        return pl.Series(list(QIC), dtype=S)
    if name == "qic2":  # two of them: a 2-character sequence number 0..3599
        return pl.Series([QIC[i // 60] + QIC[i % 60] for i in range(3600)], dtype=S)
    if name == "b64":  # base64 alphabet
        return pl.Series(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"), dtype=S)
    raise KeyError(name)


def table(name: str, idx) -> pl.Series:
    return _table(name).gather(np.asarray(idx, dtype=np.int64))


def fmt_delay(sec: np.ndarray) -> pl.Series:
    """sendmail's pintvl(): HH:MM:SS, or D+HH:MM:SS once a day has passed (negative: 00:00:00)."""
    s = np.maximum(np.asarray(sec, dtype=np.float64), 0).astype(np.int64)
    hms = table("hms", s % 86400)
    days = s // 86400
    if not days.any():
        return hms
    return (
        pl.DataFrame({"d": days, "h": hms})
        .select(pl.when(pl.col("d") > 0).then(pl.concat_str(pl.col("d").cast(S), lit("+"), "h")).otherwise("h"))
        .to_series()
    )


def pf_delay(d: np.ndarray) -> pl.Series:
    """A delay as Postfix logs it: 2 decimals under 10 s, 1 under 100 s, none above; no trailing 0."""
    d = np.maximum(np.asarray(d, dtype=np.float64), 0.0)
    # hundredths under 10 s, tenths under 100 s, whole seconds above
    h = np.where(d < 10, np.round(d * 100), np.where(d < 100, np.round(d * 10) * 10, np.floor(d) * 100))
    h = h.astype(np.int64)
    df = pl.DataFrame({"i": h // 100, "f": h % 100})
    i, f = pl.col("i").cast(S), pl.col("f")
    return df.select(
        pl.when(f == 0)
        .then(i)
        .when(f % 10 == 0)
        .then(pl.concat_str(i, lit("."), (f // 10).cast(S)))
        .otherwise(pl.concat_str(i, lit("."), f.cast(S).str.zfill(2)))
    ).to_series()


def ip4(a, b, c, d) -> pl.Series:
    """Dotted quads from four octet arrays (or scalars)."""
    n = max(np.size(x) for x in (a, b, c, d))
    cols = {k: np.broadcast_to(np.asarray(v, dtype=np.int64), (n,)) for k, v in zip("abcd", (a, b, c, d), strict=True)}
    return pl.DataFrame(cols).select(pl.concat_str([pl.col(k).cast(S) for k in "abcd"], separator=".")).to_series()


def in_addr(ip: pl.Series) -> pl.Series:
    """10.1.3.77 -> 77.3.1.10.in-addr.arpa"""
    return (
        pl.DataFrame({"ip": ip})
        .select(pl.concat_str(pl.col("ip").str.split(".").list.reverse().list.join("."), lit(".in-addr.arpa")))
        .to_series()
    )


def b64_session(rng: np.random.Generator, n: int) -> pl.Series:
    """Dovecot's session ids: 12 random bytes in base64 (16 characters)."""
    raw = rng.integers(0, 256, size=(n, 12), dtype=np.uint8).tobytes()
    import base64

    enc = base64.b64encode(raw)
    return pl.Series(np.frombuffer(enc, dtype="S16")).cast(S)


def group_cumsum(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Running sums of `values` within runs of equal `groups` (sorted, contiguous)."""
    cs = np.cumsum(values)
    if len(values) == 0:
        return cs
    start = np.r_[True, groups[1:] != groups[:-1]]
    base = (cs - values)[start]
    return cs - np.repeat(base, np.diff(np.r_[np.flatnonzero(start), len(values)]))


def rank_in_group(groups: np.ndarray) -> np.ndarray:
    """0, 1, 2... within runs of equal `groups` (sorted, contiguous)."""
    n = len(groups)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    start = np.r_[True, groups[1:] != groups[:-1]]
    idx = np.arange(n)
    return idx - np.repeat(idx[start], np.diff(np.r_[np.flatnonzero(start), n]))


_FIELDS = string.Formatter()


def fmt(template: str, **cols) -> pl.Series:
    """A template filled from columns: fmt("{user} at {host}", user=users, host=hosts). Values are
    Series, numpy arrays (numbers become decimal text) or strings (the same for every row)."""
    parts: list = []
    for text, name, _, _ in _FIELDS.parse(template):
        if text:
            parts.append(lit(text))
        if name is None:
            continue
        v = cols[name]
        if isinstance(v, str):
            parts.append(lit(v))
            continue
        if not isinstance(v, pl.Series):
            v = pl.Series(np.asarray(v))
        parts.append(v if v.dtype == S else v.cast(S))
    return pl.select(pl.concat_str(parts)).to_series()


def pick(cond, a, b) -> pl.Series:
    """a where cond, else b (Series, or strings for every row)."""

    def val(v):
        return lit(v) if isinstance(v, str) else v

    return pl.select(pl.when(pl.Series(np.asarray(cond, dtype=bool))).then(val(a)).otherwise(val(b))).to_series()
