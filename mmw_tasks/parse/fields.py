"""What every parser shares: the `mail_events` schema, the fate bookkeeping, address helpers.

A parser takes the framed rows of one batch (syslog.frame_lines plus `copy`, `repeat`, `in_day`,
`server`, `file`) and returns (events, fates). Events are rows of its dataset for the lines of the
day (`in_day`); fates list only the lines that were NOT parsed -- `ignored` (not ours) or
`malformed` (ours, or unreadable, but not understood) with a reason -- so that a batch of good
lines costs no bookkeeping. Parsed = lines of the day - ignored - malformed.
"""

from __future__ import annotations

from typing import TypeVar

import polars as pl

from mmw_tasks.lake import Schema
from mmw_tasks.parse import kernels
from mmw_tasks.parse.logfiles import bslice

ExprOrSeries = TypeVar("ExprOrSeries", pl.Expr, pl.Series)

EVENT_SCHEMA: Schema = {
    "ts": pl.Datetime("us", "UTC"),
    "server": pl.String,
    "file": pl.String,
    "line_no": pl.Int64,
    "repeat": pl.Boolean,
    "event": pl.String,
    "queue_id": pl.String,
    "sender": pl.String,
    "recipient": pl.String,
    "recipient_domain": pl.String,
    "rcpt_index": pl.Int32,
    "status": pl.String,
    "client_ip": pl.String,
    "relay_host": pl.String,
    "nrcpts": pl.Int32,
    "size": pl.Int64,
    "mailer": pl.String,
    "user": pl.String,
    "detail": pl.String,
}
FATE_SCHEMA: Schema = {"line_no": pl.Int64, "copy": pl.Int32, "fate": pl.String, "reason": pl.String}
BASE = ["ts", "line_no", "copy", "repeat"]
# one value per batch: parsers never see them (carrying them through every filter, join and sort
# cost 5% of the sendmail parse); the Parquet writer adds them (lake.StreamingPart's constants)
PER_BATCH = ("server", "file")


def detached(frame: pl.DataFrame) -> pl.DataFrame:
    """A copy that owns its strings. Slices of a batch's lines point into the batch's buffer and
    keep all of it alive: whatever outlives its batch (state, kept lines) is detached first, so
    that memory stays bounded whatever the file size."""
    return pl.from_arrow(frame.to_arrow())  # type: ignore[return-value]


def of_day(rows: pl.DataFrame) -> pl.DataFrame:
    """The rows of the day (stateless parsers need nothing else)."""
    if "in_day" not in rows.columns or rows.select(pl.col("in_day").all()).item():
        return rows
    return rows.filter(pl.col("in_day"))


def fates_of(frame: pl.DataFrame, fate: str | pl.Expr, reason: str | pl.Expr | None = None) -> pl.DataFrame:
    fate_e = pl.lit(fate) if isinstance(fate, str) else fate
    reason_e = pl.lit(reason, pl.String) if reason is None or isinstance(reason, str) else reason
    return frame.select(
        "line_no", pl.col("copy").cast(pl.Int32), fate_e.alias("fate"), reason_e.cast(pl.String).alias("reason")
    )


def unframed(rows: pl.DataFrame) -> pl.DataFrame:
    """Fates of the lines without a syslog header: malformed, but a blank line (empty, or white
    space only: frame_lines gives it the message "") is ignored, as nothing was logged."""
    lines = rows.filter(~pl.col("framed"))
    blank = (pl.col("msg") == "").fill_null(False)
    return fates_of(
        lines,
        pl.when(blank).then(pl.lit("ignored")).otherwise(pl.lit("malformed")),
        pl.when(blank).then(pl.lit("blank line")).otherwise(pl.lit("no syslog header")),
    )


def concat_fates(parts: list[pl.DataFrame]) -> pl.DataFrame:
    parts = [p for p in parts if p.height]
    if not parts:
        return pl.DataFrame(schema=FATE_SCHEMA)
    return pl.concat([p.cast(FATE_SCHEMA) for p in parts]).sort("line_no", "copy")  # type: ignore[arg-type]


def finish(parts: list[pl.DataFrame], schema: dict = EVENT_SCHEMA) -> pl.DataFrame:
    """Stack event frames of different kinds into `schema` (absent columns are null, PER_BATCH
    columns left out), kind by kind. ingest writes them so (data_lake/README.md, "Row order");
    `in_file_order` sorts them for parse_lines."""
    schema = {c: t for c, t in schema.items() if c not in PER_BATCH}
    parts = [p.select([c for c in schema if c in p.columns]) for p in parts if p.height]
    if not parts:
        return pl.DataFrame(schema=schema)
    df = pl.concat(parts, how="diagonal_relaxed")  # one cast per column, not one per column and kind
    return df.select([pl.col(c).cast(t) if c in df.columns else pl.lit(None, t).alias(c) for c, t in schema.items()])


def in_file_order(events: pl.DataFrame) -> pl.DataFrame:
    """Events in the order of their lines, as users read them."""
    return events.sort("line_no", maintain_order=True)


def slicer(frame: pl.DataFrame, col: str = "msg"):
    """A slice function for offsets from `str.find` (bytes): `str.slice` when every value of
    `col` is ASCII (bytes are characters), else the byte-exact and slower `bslice`."""
    ascii_ok = kernels.all_ascii(frame[col])
    return (lambda e, offset, length=None: e.str.slice(offset, length)) if ascii_ok else bslice


def all_ascii_reference(values: pl.Series) -> bool:
    """kernels.all_ascii's specification (tests/test_kernel_mutations.py holds it to this): the polars
    expression it replaced, every value as many bytes as characters."""
    return bool(
        pl.DataFrame({"v": values}).select((pl.col("v").str.len_bytes() == pl.col("v").str.len_chars()).all()).item()
    )


def after_keys_reference(values: pl.Series, keys: list[str], stop: str | None = ",") -> list[pl.Series]:
    """kernels.after_keys' specification (tests/test_kernels.py holds it to this): for each key,
    the text after its first occurrence (null without one), up to the first `stop` after it."""
    out = []
    for key in keys:
        after = values.str.splitn(key, 2).struct.field("field_1")
        out.append(after if stop is None else after.str.split(stop).list.first())
    return out


def afters(frame: pl.DataFrame, col: str, keys: dict[str, str], stop: str = ",") -> pl.DataFrame:
    """Columns name -> the text of `col` after the first `key` up to the next `stop` (or the
    end); null without `key`. One compiled pass for all keys (kernels.after_keys)."""
    values = kernels.after_keys(frame[col], list(keys.values()), stop)
    return frame.with_columns([v.alias(name) for name, v in zip(keys, values, strict=True)])


def digits(text: pl.Expr, dtype: pl.DataType | type[pl.DataType]) -> pl.Expr:
    """The number a text starts with, as `dtype` (null when it does not, or when it does not fit:
    the line is then malformed, not the batch)."""
    return text.str.extract(r"^(\d+)", 1).cast(dtype, strict=False)


def by_value(frame: pl.DataFrame, col: str, **fields) -> pl.DataFrame:
    """Add columns computed from `col` once per distinct value (relays, clients, programs repeat
    a lot: a regex over a few hundred values instead of every row). fields: name -> fn(expr)."""
    if frame.height == 0:
        return frame.with_columns([pl.lit(None, pl.String).alias(k) for k in fields])
    # each row's value numbered by a categorical of its own (a mapping private to this call, freed
    # with it): the fields of the distinct values, gathered by those numbers (half a join's cost)
    codes = frame[col].cast(pl.Categorical(pl.Categories.random()))
    values = pl.DataFrame({col: codes.cat.get_categories()})
    values = values.select([fn(pl.col(col)).alias(k) for k, fn in fields.items()])
    number = codes.to_physical()
    return frame.with_columns([values[k].gather(number).alias(k) for k in fields])


def relays(frame: pl.DataFrame, col: str, host: str = "relay_host", ip: str = "client_ip") -> pl.DataFrame:
    """Columns `host` and `ip` (host_of, ip_of) of the relays in `col`: one compiled pass
    (kernels.relay_fields), or by_value when some relay needs the expressions."""
    found = kernels.relay_fields(frame[col]) if frame.height else None
    if found is None:
        return by_value(frame, col, **{host: host_of, ip: ip_of})
    return frame.with_columns(found[0].alias(host), found[1].alias(ip))


def addr(expr: ExprOrSeries) -> ExprOrSeries:
    """An address as users read it: no angle brackets, no spaces, lower case."""
    return expr.str.strip_chars(" <>").str.to_lowercase()


def domain(expr: pl.Expr) -> pl.Expr:
    return expr.str.extract(r"@([^@>\s\"]+)$", 1).str.strip_suffix(".")


def ip_of(relay: pl.Expr) -> pl.Expr:
    """The address in 'host [1.2.3.4]', 'host[1.2.3.4]:25' or '[IPv6:2001:db8::1]'."""
    return relay.str.extract(r"\[(?:IPv6:|ipv6:)?([0-9A-Fa-f:.]+)\]", 1)


def host_of(relay: pl.Expr) -> pl.Expr:
    return relay.str.extract(r"^([^\s\[]+)", 1).str.strip_suffix(".").str.to_lowercase()


USER_UNKNOWN = (
    r"(?i)user unknown|no such user|unknown user|unrouteable address|mailbox unavailable"
    r"|recipient address rejected: undeliverable|account that you tried to reach does not exist"
    r"|user not found|no mailbox here|invalid recipient|address rejected: user"
)


def user_unknown(text: pl.Expr) -> pl.Expr:
    """Every wording of "no such recipient" seen in sendmail, Postfix, Exim and remote replies
    (one case-blind regex pass: no lower-cased copy of the text)."""
    return text.str.contains(USER_UNKNOWN)
