"""Compiled loops (C, `mmw_tasks/parse/csrc/`) over a batch's lines, where polars would need many passes.

A batch's lines are an Arrow string-view array over the buffers they were read into
(logfiles.split_lines). The kernels read those buffers in place and write views: `field_views`
makes a string-view array of them over the same buffers, so no field is copied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import polars as pl
import pyarrow as pa

from mmw_tasks.parse import _kernels

count_lines = _kernels.count_lines  # (data) -> the number of newlines
line_views = _kernels.line_views  # (data, views) -> n: each line's view, newline and CR left out
NEEDS_GENERAL = _kernels.NEEDS_GENERAL  # a header the general framer must read ("<pri>", "src@host", "[ID ")
MAY_REPEAT = _kernels.MAY_REPEAT  # some message may be "last message repeated N times" (or a variant)


@dataclass
class LineBuffers:
    """The Arrow pieces of a Series of lines: 16-byte views and the buffers they point into."""

    n: int
    views: np.ndarray  # (n, 4) int32: length, first 4 bytes (or the text), buffer index, offset
    addresses: np.ndarray  # uint64: where each data buffer is
    data: list  # the data buffers (pyarrow): field arrays share them, which keeps them alive
    valid: np.ndarray | None = None  # which values were not null (text_buffers read nulls as "")


def line_buffers(lines: pl.Series) -> LineBuffers | None:
    """The buffers of `lines`; None when they are not one null-free string-view chunk (the
    caller then takes its general path)."""
    arr = lines.to_arrow(compat_level=pl.CompatLevel.newest())
    if isinstance(arr, pa.ChunkedArray):
        if arr.num_chunks != 1:
            return None
        arr = arr.chunk(0)
    if arr.type != pa.string_view() or arr.null_count:
        return None
    bufs = arr.buffers()
    views = np.frombuffer(bufs[1], dtype=np.int32).reshape(-1, 4)[arr.offset : arr.offset + len(arr)]
    data = list(bufs[2:])
    addresses = np.array([b.address for b in data], dtype=np.uint64)
    return LineBuffers(len(arr), np.ascontiguousarray(views), addresses, data)


def field_views(lb: LineBuffers, views: np.ndarray, valid: np.ndarray | None) -> pl.Series:
    """A String Series of fields given as views into `lb`'s buffers (`valid`: False is null; the
    field of a null value is null)."""
    if lb.valid is not None:
        valid = lb.valid if valid is None else valid & lb.valid
    validity, nulls = None, 0
    if valid is not None and not valid.all():
        nulls = int(lb.n - np.count_nonzero(valid))
        validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
    arr = pa.Array.from_buffers(pa.string_view(), lb.n, [validity, pa.py_buffer(views), *lb.data], null_count=nulls)
    return pl.Series(arr)


def names_of(codes: pl.Series | np.ndarray, names: dict[int, str]) -> pl.Series:
    """A String Series of `names[code]` for each code (0-255; a code without a name is null): one
    gather of 16-byte views from a table, where replace_strict hashes every value."""
    table, known, data = np.zeros((256, 4), dtype=np.int32), np.zeros(256, dtype=np.bool_), b""
    for code, name in names.items():
        raw = name.encode()
        view = bytearray(16)  # length, then the text (12 bytes or fewer) or its first 4 and where it is
        view[:4] = len(raw).to_bytes(4, "little")
        if len(raw) <= 12:
            view[4 : 4 + len(raw)] = raw
        else:
            view[4:8], view[12:16] = raw[:4], len(data).to_bytes(4, "little")  # buffer 0 at this offset
            data += raw
        table[code], known[code] = np.frombuffer(bytes(view), dtype=np.int32), True
    idx = np.asarray(codes.to_numpy() if isinstance(codes, pl.Series) else codes, dtype=np.uint8)
    lb = LineBuffers(len(idx), table[idx], np.zeros(1, dtype=np.uint64), [pa.py_buffer(data or b" ")])
    return field_views(lb, lb.views, known[idx])


def text_buffers(values: pl.Series) -> LineBuffers:
    """line_buffers of any String Series (a null is read as an empty string, and its fields are
    null)."""
    lb = line_buffers(values)
    if lb is None:
        lb = line_buffers(values.fill_null("").rechunk())
        assert lb is not None, "polars gave no string views"
        if values.null_count():
            lb.valid = values.is_not_null().to_numpy()
    return lb


def all_ascii(values: pl.Series) -> bool:
    """Whether every byte of `values` is ASCII (one pass over the bytes; polars would count
    characters). Null values are allowed."""
    lb = text_buffers(values)
    return _kernels.all_ascii(lb.views, lb.addresses)


def invalid_utf8(views: np.ndarray, addresses: np.ndarray) -> np.ndarray | None:
    """Which of the strings given as (n, 4) views into the buffers at `addresses` are not valid
    UTF-8 (a bool array), or None when every one is. One compiled pass; logfiles.split_lines
    calls it only for a batch the cast to String refused."""
    ok = np.empty(len(views), dtype=np.bool_)
    bad = _kernels.utf8_lines(np.ascontiguousarray(views), addresses, ok)
    return ~ok if bad else None


class PopLogins(TypedDict):
    """What pop_logins reads (see there)."""

    kind: pl.Series
    f1: pl.Series
    f2: pl.Series
    f3: pl.Series
    cased: bool
    mapped: bool


def pop_logins(msg: pl.Series) -> PopLogins:
    """parse_pop's login kinds (1 qpopper, 2 Dovecot, 3 Courier, 4 UW, 0 other) and the fields of
    the common qpopper (f1 user, f2 host, f3 address) and Dovecot (f1 service, f2 user, f3
    address) forms; a field is null where the line is not of that form. `cased`: some user or
    host read has a capital or is not ASCII; `mapped`: some address read begins "::ffff:"."""
    lb = text_buffers(msg)
    n = lb.n
    kind = np.zeros(n, dtype=np.uint8)
    fields = [np.empty((n, 4), dtype=np.int32) for _ in range(3)]
    oks = [np.zeros(n, dtype=np.bool_) for _ in range(3)]
    flags = _kernels.pop_logins(lb.views, lb.addresses, kind, fields[0], oks[0], fields[1], oks[1], fields[2], oks[2])
    f1, f2, f3 = (field_views(lb, fields[i], oks[i]) for i in range(3))
    return {
        "kind": pl.Series(kind),
        "f1": f1,
        "f2": f2,
        "f3": f3,
        "cased": bool(flags & _kernels.POP_CASED),
        "mapped": bool(flags & _kernels.POP_MAPPED),
    }


def _heads(kernel, msg: pl.Series) -> dict[str, pl.Series]:
    lb = text_buffers(msg)
    n = lb.n
    qid, body = np.empty((n, 4), dtype=np.int32), np.empty((n, 4), dtype=np.int32)
    qid_ok, kind = np.zeros(n, dtype=np.bool_), np.zeros(n, dtype=np.uint8)
    kernel(lb.views, lb.addresses, qid, qid_ok, body, kind)
    return {"queue_id": field_views(lb, qid, qid_ok), "body": field_views(lb, body, None), "kind": pl.Series(kind)}


def sendmail_heads(msg: pl.Series) -> dict[str, pl.Series]:
    """Each sendmail message's queue_id (null without one), body and kind code (parse_mail's
    _KINDS; 255: the regex decides)."""
    return _heads(_kernels.sendmail_heads, msg)


def sendmail_from(body: pl.Series) -> tuple[np.ndarray, dict[str, pl.Series]]:
    """(fast, fields) of sendmail from= bodies: sender, size, nrcpts and relay, read where `fast`
    (the common form, see csrc/sendmail.c); elsewhere the fields are null."""
    lb = text_buffers(body)
    out, ok = np.empty((2, lb.n, 4), dtype=np.int32), np.zeros((2, lb.n), dtype=np.bool_)
    nums, fast = np.empty((2, lb.n), dtype=np.int64), np.zeros(lb.n, dtype=np.bool_)
    _kernels.sendmail_from(lb.views, lb.addresses, out, ok, nums, fast)
    return fast, {
        "sender": field_views(lb, out[0], ok[0]),
        "size": pl.Series(nums[0]).set(pl.Series(~fast), None),
        "nrcpts": pl.Series(nums[1].astype(np.int32)).set(pl.Series(~fast), None),
        "_relay": field_views(lb, out[1], ok[1]),
    }


def _fast_fields(kernel, body: pl.Series, names: tuple[str, ...]) -> tuple[np.ndarray, dict[str, pl.Series]]:
    """(fast, fields) of a kernel that reads whole lines of one form (see csrc/sendmail.c): the
    fields `names` where `fast`, null elsewhere."""
    lb = text_buffers(body)
    out, ok = np.empty((len(names), lb.n, 4), dtype=np.int32), np.zeros((len(names), lb.n), dtype=np.bool_)
    fast = np.zeros(lb.n, dtype=np.bool_)
    kernel(lb.views, lb.addresses, out, ok, fast)
    return fast, {name: field_views(lb, out[i], ok[i]) for i, name in enumerate(names)}


def sendmail_to(body: pl.Series) -> tuple[np.ndarray, dict[str, pl.Series]]:
    """(fast, fields) of sendmail to= bodies of one recipient delivered: recipient,
    recipient_domain, mailer, relay and stat."""
    return _fast_fields(_kernels.sendmail_to, body, ("recipient", "recipient_domain", "mailer", "_relay", "_stat"))


def sendmail_reject(body: pl.Series) -> tuple[np.ndarray, dict[str, pl.Series]]:
    """(fast, fields) of sendmail "<addr>... reason" bodies: recipient, recipient_domain, detail."""
    return _fast_fields(_kernels.sendmail_reject, body, ("recipient", "recipient_domain", "detail"))


def postfix_heads(msg: pl.Series) -> dict[str, pl.Series]:
    """Each Postfix message's queue_id (null without one, or NOQUEUE), body and kind code
    (postfix._KINDS)."""
    return _heads(_kernels.postfix_heads, msg)


def after_keys(values: pl.Series, keys: list[str], stop: str | None = ",") -> list[pl.Series]:
    """For each key: the text of each value after the key's first occurrence, up to the next
    `stop` (or the end; None: the end); null where the key does not occur (or the value is null)."""
    if stop is not None and not (len(stop) == 1 and stop.isascii()):
        raise ValueError(f"after_keys: the stop must be one ASCII character, not {stop!r}")
    lb = text_buffers(values)
    n, nk = lb.n, len(keys)
    out, ok = np.empty((nk, n, 4), dtype=np.int32), np.zeros((nk, n), dtype=np.bool_)
    stop_byte = -1 if stop is None else ord(stop)
    _kernels.after_keys(lb.views, lb.addresses, tuple(k.encode() for k in keys), stop_byte, out, ok)
    return [field_views(lb, out[i], ok[i]) for i in range(nk)]


def exim_heads(msg: pl.Series) -> dict[str, pl.Series]:
    """Each Exim message's queue_id and two-character flag (null without), body and kind code
    (exim._KINDS)."""
    lb = text_buffers(msg)
    n = lb.n
    qid, flag, body = (np.empty((n, 4), dtype=np.int32) for _ in range(3))
    qid_ok, flag_ok, kind = np.zeros(n, dtype=np.bool_), np.zeros(n, dtype=np.bool_), np.zeros(n, dtype=np.uint8)
    _kernels.exim_heads(lb.views, lb.addresses, qid, qid_ok, flag, flag_ok, body, kind)
    return {
        "queue_id": field_views(lb, qid, qid_ok),
        "flag": field_views(lb, flag, flag_ok),
        "body": field_views(lb, body, None),
        "kind": pl.Series(kind),
    }


def postfix_to(body: pl.Series) -> dict[str, pl.Series]:
    """recipient, relay, status and detail of Postfix to= bodies (see csrc/mail.c)."""
    lb = text_buffers(body)
    out, ok = np.empty((4, lb.n, 4), dtype=np.int32), np.zeros((4, lb.n), dtype=np.bool_)
    _kernels.postfix_to(lb.views, lb.addresses, out, ok)
    return {name: field_views(lb, out[i], ok[i]) for i, name in enumerate(("recipient", "relay", "status", "detail"))}


def relay_fields(relay: pl.Series) -> tuple[pl.Series, pl.Series] | None:
    """(host, address) of each relay as fields.host_of and ip_of read them (see csrc/mail.c);
    None when some relay is not ASCII or has a capital in its host."""
    lb = text_buffers(relay)
    host, ip = np.empty((lb.n, 4), dtype=np.int32), np.empty((lb.n, 4), dtype=np.int32)
    host_ok, ip_ok = np.zeros(lb.n, dtype=np.bool_), np.zeros(lb.n, dtype=np.bool_)
    if not _kernels.relay_fields(lb.views, lb.addresses, host, host_ok, ip, ip_ok):
        return None
    return field_views(lb, host, host_ok), field_views(lb, ip, ip_ok)


EXIM_FIELDS = {False: ("sender", "size", "host", "for"), True: ("first", "orig", "host", "mailer", "detail")}


def exim_fields(body: pl.Series, to: bool) -> dict[str, pl.Series]:
    """The fields parse_exim reads from arrival (to=False) or delivery (to=True) bodies, and
    `wide`: rows with a byte that is not ASCII, whose fields are null (the regexes read them)."""
    lb = text_buffers(body)
    out, ok = np.empty((5, lb.n, 4), dtype=np.int32), np.zeros((5, lb.n), dtype=np.bool_)
    wide = np.zeros(lb.n, dtype=np.bool_)
    _kernels.exim_fields(lb.views, lb.addresses, int(to), out, ok, wide)
    fields = {name: field_views(lb, out[i], ok[i]) for i, name in enumerate(EXIM_FIELDS[to])}
    return {**fields, "wide": pl.Series(wide)}


def bsd_stamps(heads: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(month, day of the month, seconds of the day) of the BSD stamps that begin `heads`
    (stamps._FIXED_BSD; the day unchecked, seconds -1 for a time that is none), or None when some
    head is not of that form or `heads` is not one null-free chunk of string views."""
    lb = line_buffers(heads)
    if lb is None:
        return None
    month, dom, sod = (np.zeros(lb.n, dtype=np.int32) for _ in range(3))
    return (month, dom, sod) if _kernels.bsd_stamps(lb.views, lb.addresses, month, dom, sod) else None


def runs(lb: LineBuffers, iso: bool) -> np.ndarray | None:
    """Which lines begin a run of lines with the same stamp key; None when a line is 12 bytes or
    shorter (no stamp fits) or not ASCII."""
    first = np.zeros(lb.n, dtype=np.bool_)
    # BSD: the stamp and its space; RFC 3339: the seconds, then the offset and its space
    if not _kernels.scan_runs(lb.views, lb.addresses, *((19, 26, 7) if iso else (16, 0, 0)), first):
        return None
    return first


def headers(lb: LineBuffers, at: int) -> tuple[int, pl.Series, pl.Series, pl.Series, np.ndarray]:
    """(flags, host, prog, msg, may_repeat) of every line after its `at`-byte stamp; flags -1: a
    short line. may_repeat marks the messages that may be a "last message repeated" notice."""
    n = lb.n
    host, prog, msg = (np.empty((n, 4), dtype=np.int32) for _ in range(3))
    host_ok, prog_ok, may = np.zeros(n, dtype=np.bool_), np.zeros(n, dtype=np.bool_), np.zeros(n, dtype=np.bool_)
    flags = _kernels.scan_headers(lb.views, lb.addresses, at, host, host_ok, prog, prog_ok, msg, may)
    if flags < 0:
        return flags, None, None, None, may  # type: ignore[return-value]
    return (
        flags,
        field_views(lb, host, host_ok).alias("host"),
        field_views(lb, prog, prog_ok).alias("prog"),
        field_views(lb, msg, None).alias("msg"),
        may,
    )
