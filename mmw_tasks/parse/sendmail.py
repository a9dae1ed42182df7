"""sendmail 8.7 to 8.18 lines (and the POP/IMAP lines beside them) to `mail_events` rows.

Queue ids of 8 (<= 8.9), 12 (8.10/8.11) and 14-15 (8.12+) characters, `QID[n]:` forms;
`from=` (with or without pri=), `to=` (comma-separated lists, ` [more]` continuations, quoted
program deliveries, with or without stat=), "<addr>... User unknown" and every other
"<addr>... reason", ruleset rejects (check_rcpt, check_mail, check_relay), DSN/clone lines.

Cheap literal tests pick each line's kind; each kind then gets one capture pass over its own rows.
from= lines, delivered to= lines of one recipient and "<addr>... reason" lines, most of a log, are
read whole by compiled passes (kernels.sendmail_from/_to/_reject); the expressions here read the rest.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from mmw_tasks.parse import kernels
from mmw_tasks.parse.fields import (
    BASE,
    EVENT_SCHEMA,
    addr,
    afters,
    concat_fates,
    digits,
    domain,
    fates_of,
    finish,
    host_of,
    ip_of,
    of_day,
    relays,
    slicer,
    unframed,
    user_unknown,
)
from mmw_tasks.parse.pop import is_pop, parse_pop

__all__ = ["EVENT_SCHEMA", "SENDMAIL_PROGS", "parse_mail", "sendmail_status"]

SENDMAIL_PROGS = ["sendmail", "sm-mta", "sm-msp-queue", "sm-acceptingconnections"]

_QID_HEAD = r"^[A-Za-z0-9]{7,20}(?:\[[0-9]+\])?: "  # what kernels.sendmail_heads reads (sendmail_heads_reference)
_RCPTS = r"^to=(.*?),? (?:\[more\]|ctladdr=|delay=)"  # "a,b" ; "[more]" marks a list cut in two
# A whole line (it has its stat= or dsn=) whose list no delay= follows ("to=<a>,<b>, 00:00:00,
# xdelay=..."): sendmail joins the recipients with bare commas, so the list ends at the first
# comma and space, or at a comma right before a field of the line (a space left out)
_RCPTS_LOOSE = r"^to=(.*?)(?:, |,(?:ctladdr|delay|xdelay|mailer|pri|relay|dsn|stat)=)"
_WHOLE = r"(?:^|,) ?(?:stat|dsn)="


def sendmail_status(stat: pl.Expr, dsn: pl.Expr) -> pl.Expr:
    """sent, deferred, user_unknown, queued or bounced, from stat= (or dsn= when stat= is absent)."""
    return (
        pl.when(stat.str.starts_with("Sent"))
        .then(pl.lit("sent"))
        .when(stat.str.contains(r"(?i)^(?:deferred|please try again later)"))
        .then(pl.lit("deferred"))
        .when(stat.str.contains(r"(?i)^sent"))
        .then(pl.lit("sent"))
        .when(user_unknown(stat))
        .then(pl.lit("user_unknown"))
        .when(stat.str.contains(r"(?i)^(?:queued|quarantined)"))
        .then(pl.lit("queued"))
        .when(stat.is_not_null())
        .then(pl.lit("bounced"))
        .when(dsn.str.starts_with("2"))
        .then(pl.lit("sent"))
        .when(dsn.str.starts_with("4"))
        .then(pl.lit("deferred"))
        .when(dsn.str.starts_with("5"))
        .then(pl.lit("bounced"))
    )


_KINDS = {0: "other", 1: "from", 2: "to", 3: "ruleset_reject", 4: "reject"}
_ADDR_DOTS = r"^[^\s<>]+@[^\s]+\.\.\. "  # "user@host... reason" without angle brackets


def _heads(sm: pl.DataFrame) -> pl.DataFrame:
    """queue_id ("QID: body"; lines tied to no message have none), body and `event` (from, to,
    ruleset_reject, reject, other) of each message, by one compiled pass (kernels.sendmail_heads:
    _QID_HEAD in the first 26 characters, then cheap literal tests on the body)."""
    found = kernels.sendmail_heads(sm["msg"])
    sm = sm.with_columns(queue_id=found["queue_id"], body=found["body"], _kind=found["kind"])
    kind = pl.col("_kind")
    if sm.select((kind == 255).any()).item():  # not ASCII before the first space: the regex decides
        dots = pl.col("body").str.contains(_ADDR_DOTS)
        sm = sm.with_columns(
            _kind=pl.when(kind != 255).then(kind).when(dots).then(pl.lit(4, pl.UInt8)).otherwise(pl.lit(0, pl.UInt8))
        )
    return sm.with_columns(event=kernels.names_of(sm["_kind"], _KINDS)).drop("_kind", "msg")


def sendmail_heads_reference(msg: pl.Series) -> pl.DataFrame:
    """queue_id, body and event of each message as _heads gives them, by the polars expressions
    kernels.sendmail_heads replaced: its specification (tests/test_kernels.py holds the kernel to
    it). _QID_HEAD in the first 26 characters, then literal tests and _ADDR_DOTS on the body."""
    m, h = pl.col("msg"), pl.col("msg").str.slice(0, 26)
    q = pl.when(h.str.contains(_QID_HEAD)).then(h.str.find(": ", literal=True))
    df = pl.DataFrame({"msg": msg}, schema={"msg": pl.String}).select(
        queue_id=pl.when(q.is_not_null()).then(h.str.slice(0, q)).str.replace(r"\[[0-9]+\]$", ""),
        body=m.str.slice(q.fill_null(-2) + 2),
    )
    body = pl.col("body")
    return df.with_columns(
        event=pl.when(body.str.starts_with("from="))
        .then(pl.lit("from"))
        .when(body.str.starts_with("to="))
        .then(pl.lit("to"))
        .when(body.str.starts_with("ruleset=") & body.str.contains(", reject=", literal=True))
        .then(pl.lit("ruleset_reject"))
        .when(body.str.contains(">... ", literal=True) | body.str.contains(_ADDR_DOTS))
        .then(pl.lit("reject"))
        .otherwise(pl.lit("other"))
    )


def _recipients(body: pl.Expr, sl) -> pl.Expr:
    """The list after "to=", up to ", ctladdr=", ", delay=" or ", [more]" (the first of them);
    other spacings go through _RCPTS (see _to_fields)."""
    end = pl.min_horizontal([body.str.find(k, literal=True) for k in (", ctladdr=", ", delay=", ", [more]")])
    return pl.when(end.is_not_null()).then(sl(body, 3, end - 3))


_FROM = ["sender", "size", "nrcpts", "_relay"]
_TO = ["recipient", "rcpt_index", "status", "mailer", "_relay", "detail", "recipient_domain"]


def _fast_or_slow(
    rows: pl.DataFrame, fast: np.ndarray, found: dict[str, pl.Series], slow_fields, fields: list[str], **known: pl.Expr
) -> pl.DataFrame:
    """`rows` with `fields`: from the kernel's `found` (and `known`, what the kernel's form implies)
    where it read the line (`fast`), from `slow_fields` (the expressions) on the other rows."""
    done = rows.with_columns(**found)
    done = done.with_columns(**known) if known else done  # (known may use what the kernel found)
    cols = [*rows.columns, *fields]
    if fast.all():
        return done.select(cols)
    mask = pl.Series(fast)
    return pl.concat([done.filter(mask).select(cols), slow_fields(rows.filter(~mask)).select(cols)])


def _from_fields(fr: pl.DataFrame) -> pl.DataFrame:
    """sender, size, nrcpts and _relay of from= rows by expressions (what kernels.sendmail_from
    reads in the common form). Few rows: few operations, each costs a tenth of a millisecond."""
    body, sl = pl.col("body"), slicer(fr, "body")
    gt, comma = body.str.find(">", literal=True), body.str.find(",", literal=True)
    sender = (
        pl.when(body.str.starts_with("from=<") & gt.is_not_null())
        .then(sl(body, 5, gt - 4))
        .otherwise(sl(body, 5, comma - 5))
    )
    fr = afters(fr, "body", {"size": ", size=", "nrcpts": ", nrcpts=", "_relay": ", relay="})
    return fr.with_columns(
        sender=addr(sender), size=digits(pl.col("size"), pl.Int64), nrcpts=digits(pl.col("nrcpts"), pl.Int32)
    )


def _to_fields(to: pl.DataFrame, fates: list[pl.DataFrame]) -> pl.DataFrame:
    """The _TO fields of to= rows by expressions, a row per recipient of a list (what
    kernels.sendmail_to reads for a delivered single recipient); truncated lines go to `fates`."""
    body, sl = pl.col("body"), slicer(to, "body")
    to = afters(to, "body", {"_dsn": ", dsn=", "mailer": ", mailer=", "_relay": ", relay="})
    to = to.with_columns(
        recipient=_recipients(body, sl),
        _stat=sl(body, body.str.find(", stat=", literal=True) + 7),
        _dsn=pl.col("_dsn").str.extract(r"^([\d.]+)", 1),
    )
    # other spacings: the regexes (the recipient's backtracks), on the rows that need them only
    odd = pl.col("recipient").is_null() | (pl.col("_stat").is_null() & body.str.contains("stat=", literal=True))
    if to.select(odd.any()).item():
        to = to.with_columns(
            recipient=pl.coalesce("recipient", pl.when(odd).then(body).str.extract(_RCPTS, 1)),
            _stat=pl.coalesce("_stat", pl.when(odd).then(body).str.extract(r"(?:, ?|^)stat=(.*)$", 1)),
        )
        loose = pl.col("recipient").is_null() & body.str.contains(_WHOLE)
        to = to.with_columns(
            recipient=pl.coalesce("recipient", pl.when(loose).then(body).str.extract(_RCPTS_LOOSE, 1)),
            _dsn=pl.coalesce("_dsn", pl.when(loose).then(body).str.extract(r",dsn=([\d.]+)", 1)),
        )
    recipient = pl.col("recipient")
    fates.append(fates_of(to.filter(recipient.is_null()), "malformed", "to= line truncated (no delay=/stat=)"))
    to = to.filter(recipient.is_not_null()).with_columns(
        recipient=recipient.str.split(",").list.eval(pl.element().filter(pl.element() != ""))
    )
    none = recipient.list.len() == 0
    fates.append(fates_of(to.filter(none), "malformed", "to= line without a recipient"))
    return (
        to.lazy()
        .filter(~none)
        .with_columns(
            status=sendmail_status(pl.col("_stat"), pl.col("_dsn")),
            detail=pl.col("_stat"),
            rcpt_index=pl.int_ranges(0, recipient.list.len(), dtype=pl.Int32),
        )
        .explode("recipient", "rcpt_index")  # a list's recipients, in order, on rows of their own
        .with_columns(recipient=addr(recipient))
        .with_columns(recipient_domain=domain(recipient))
        .collect()
    )


_REJECT = r"^<?([^>\s]*?)>?\.\.\. (.*)$"  # what kernels.sendmail_reject reads (tests compare)


def _reject_fields(rj: pl.DataFrame) -> pl.DataFrame:
    """recipient, its domain and detail of "<addr>... reason" rows by the expressions."""
    g = pl.col("body").str.extract_groups(_REJECT).struct
    return rj.with_columns(recipient=addr(g.field("1")), detail=g.field("2")).with_columns(
        recipient_domain=domain(pl.col("recipient"))
    )


def _rejects(sm: pl.DataFrame) -> list[pl.DataFrame]:
    """reject events of "<addr>... reason" lines and ruleset rejects."""
    body, g = pl.col("body"), pl.col("g").struct
    rj = sm.filter(pl.col("event") == "reject")
    rj = _fast_or_slow(
        rj, *kernels.sendmail_reject(rj["body"]), _reject_fields, ["recipient", "recipient_domain", "detail"]
    )
    rj = rj.select(*BASE, "queue_id", "recipient", "recipient_domain", "detail")
    rr = sm.filter(pl.col("event") == "ruleset_reject").with_columns(
        g=body.str.extract_groups(r"^ruleset=([^,]*), arg1=([^,]*),.*? relay=(.*?), reject=(.*)$")
    )
    rr = rr.select(
        *BASE,
        "queue_id",
        recipient=pl.when(g.field("1") == "check_rcpt").then(addr(g.field("2"))),
        sender=pl.when(g.field("1") == "check_mail").then(addr(g.field("2"))),
        client_ip=ip_of(g.field("3")),
        relay_host=host_of(g.field("3")),
        detail=pl.concat_str([g.field("1"), g.field("4")], separator=": "),
    )
    rr = rr.with_columns(recipient_domain=domain(pl.col("recipient")))
    return [
        frame.with_columns(
            event=pl.lit("reject"),
            status=pl.when(user_unknown(pl.col("detail"))).then(pl.lit("user_unknown")).otherwise(pl.lit("rejected")),
        )
        for frame in (rj, rr)
        if frame.height
    ]


def parse_mail(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(events, fates) of a sendmail server's framed rows (see parse_util)."""
    rows = of_day(rows)
    prog = pl.col("prog")
    is_sm = prog.is_in(SENDMAIL_PROGS).fill_null(False)
    framed = rows.filter(pl.col("framed"))
    sm = framed.filter(is_sm).select(*BASE, "msg")
    sm = _heads(sm)
    body = pl.col("body")
    parts: list[pl.DataFrame] = []
    fates = [unframed(rows), fates_of(framed.filter(~is_sm & ~is_pop(prog)), "ignored")]

    # from=: one accepted message
    fr = sm.filter(pl.col("event") == "from")
    fr = _fast_or_slow(fr, *kernels.sendmail_from(fr["body"]), _from_fields, _FROM)
    bad = pl.col("size").is_null() | pl.col("nrcpts").is_null()
    fates.append(fates_of(fr.filter(bad), "malformed", "from= line without size=/nrcpts="))
    fr = relays(fr.filter(~bad), "_relay")
    parts.append(fr.select(*BASE, "event", "queue_id", "sender", "size", "nrcpts", "client_ip", "relay_host"))

    # to=: one delivery attempt, for one recipient or a comma-separated list of them
    to = sm.filter(pl.col("event") == "to")
    to_fates: list[pl.DataFrame] = []
    to = _fast_or_slow(
        to,
        *kernels.sendmail_to(to["body"]),
        lambda slow: _to_fields(slow, to_fates),
        _TO,
        rcpt_index=pl.lit(0, pl.Int32),
        status=pl.lit("sent"),
        detail=pl.col("_stat"),
    )
    fates.extend(to_fates)
    to = relays(to, "_relay")
    parts.append(
        to.select(
            *BASE,
            "event",
            "queue_id",
            "recipient",
            "rcpt_index",
            "status",
            "mailer",
            "client_ip",
            "relay_host",
            "detail",
            "recipient_domain",
        )
    )

    # "<addr>... User unknown" and ruleset rejects: a refused recipient (or sender, or client)
    if sm["event"].is_in(["reject", "ruleset_reject"]).any():
        parts.extend(_rejects(sm))

    other = sm.filter(pl.col("event") == "other")
    parts.append(other.select(*BASE, "event", "queue_id", detail=body))

    pop_events, pop_fates = parse_pop(framed.filter(is_pop(prog)), BASE)
    parts.append(pop_events)
    fates.append(pop_fates)
    return finish(parts), concat_fates(fates)
