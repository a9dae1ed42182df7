"""Exim 4 main log (its own file, `YYYY-MM-DD HH:MM:SS [pid] ...`, or through syslog as
`exim[pid]:`) and the POP/IMAP lines beside it, to `mail_events` rows.

- `<=` arrival: `from` (sender, size S=, client from H=...[ip], nrcpts from `for a b c` if logged)
- `=>` delivery and `->` further address of the same delivery (also `>>` cutthrough, `*>`
  suppressed): `to`, status sent. `==` deferral: `to`, deferred. `**` failure: `to`, bounced
  (user_unknown for "Unrouteable address", "unknown user" ...).
- `H=... rejected RCPT <r>: reason`: `reject`.
- Completed, queue runs, start-up: understood, no row. Anything else Exim logs: `other`.
Message ids `1MUhnF-0000JZ-OX` (16 chars) and Exim 4.97+'s 23-char form.
"""

from __future__ import annotations

import polars as pl

from mmw_tasks.parse import kernels
from mmw_tasks.parse.fields import (
    BASE,
    addr,
    by_value,
    concat_fates,
    domain,
    fates_of,
    finish,
    ip_of,
    of_day,
    unframed,
    user_unknown,
)
from mmw_tasks.parse.pop import is_pop, parse_pop

EXIM_PROGS = ["exim", "exim4"]
_ID = r"[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}"
# What kernels.exim_heads reads (exim_heads_reference)
_HEAD = rf"^((?:\[[0-9]+\] )?(?:({_ID}) (?:([<=\-*>]{{2}}) )?)?)"  # 1: all of it (ASCII), 2: id, 3: flag
_QUIET = r"^(?:Completed|Start queue run|End queue run|exim [0-9.]+ daemon started|Frozen|Message is frozen)"
_FLAGS = {"<=": "from", "=>": "to", "->": "to", ">>": "to", "*>": "to", "==": "to", "**": "to"}
_KINDS = {0: "other", 1: "from", 2: "to", 3: "reject", 4: "quiet"}


def exim_heads_reference(msg: pl.Series) -> pl.DataFrame:
    """queue_id, _flag, body and event of each message as heads() gives them, by the polars
    expressions kernels.exim_heads replaced: its specification (tests/test_kernels.py holds the
    kernel to it)."""
    g = pl.col("g").struct
    df = pl.DataFrame({"msg": msg}, schema={"msg": pl.String}).with_columns(g=pl.col("msg").str.extract_groups(_HEAD))
    df = df.select(
        queue_id=g.field("2"), _flag=g.field("3"), body=pl.col("msg").str.slice(g.field("1").str.len_chars())
    )
    body, flag = pl.col("body"), pl.col("_flag")
    return df.with_columns(
        event=pl.when(flag.is_not_null())
        .then(flag.replace_strict(_FLAGS, default="other"))
        .when(body.str.contains(" rejected RCPT ", literal=True))
        .then(pl.lit("reject"))
        .when(body.str.contains(_QUIET))
        .then(pl.lit("quiet"))
        .otherwise(pl.lit("other"))
    )


def heads(ex: pl.DataFrame) -> pl.DataFrame:
    """queue_id, _flag, body and `event` of each message (`msg`), by one compiled pass
    (kernels.exim_heads: _HEAD, then the flag's kind (_FLAGS), or " rejected RCPT " (reject),
    or _QUIET (quiet), else other)."""
    found = kernels.exim_heads(ex["msg"])
    ex = ex.with_columns(
        queue_id=found["queue_id"],
        _flag=found["flag"],
        body=found["body"],
        event=kernels.names_of(found["kind"], _KINDS),
    )
    return ex


# What kernels.exim_fields reads on ASCII bodies (exim_fields_reference): arrivals, deliveries
_HOST = r"\bH=((?:[^\s\[(]+ )?(?:\([^)]*\) )?\[[0-9A-Fa-f:.]+\])"
_FROM_FIELDS = {"sender": r"^(<>|\S+)", "size": r"\bS=(\d+)", "host": _HOST, "for": r" for (.+)$"}
_TO_FIELDS = {
    "first": r"^(\S+)",
    "orig": r"^\S+ <([^>]+)>",
    "host": _HOST,
    "mailer": r"\bT=(\S+)",
    "detail": r"^\S+(?: <[^>]*>)?:? (.*)$",
}


def exim_fields_reference(body: pl.Series, to: bool) -> pl.DataFrame:
    """The fields of deliveries (_TO_FIELDS) or arrivals (_FROM_FIELDS) by their regexes, which
    kernels.exim_fields replaced on ASCII bodies: its specification (tests/test_kernels.py holds
    the kernel to it)."""
    patterns = _TO_FIELDS if to else _FROM_FIELDS
    return pl.DataFrame({"body": body}, schema={"body": pl.String}).select(
        [pl.col("body").str.extract(rx, 1).alias(k) for k, rx in patterns.items()]
    )


def _fields(frame: pl.DataFrame, to: bool) -> pl.DataFrame:
    """Columns _<field> of _TO_FIELDS (deliveries) or _FROM_FIELDS (arrivals): one compiled pass
    for ASCII bodies; the regexes read the others (their character classes are Unicode)."""
    patterns = _TO_FIELDS if to else _FROM_FIELDS
    found = kernels.exim_fields(frame["body"], to)
    frame = frame.with_columns([found[k].alias(f"_{k}") for k in patterns])
    if found["wide"].any():
        wide = found["wide"]
        frame = frame.with_columns(
            [
                pl.when(wide).then(pl.col("body")).str.extract(rx, 1).fill_null(pl.col(f"_{k}")).alias(f"_{k}")
                for k, rx in patterns.items()
            ]
        )
    return frame


def _exim_host(h: pl.Expr) -> pl.Expr:
    """The name in "H=name (helo) [ip]" ("H=(helo) [ip]" has none)."""
    return h.str.extract(r"^([^\s\[(]+)", 1).str.to_lowercase()


def _exim_ip(h: pl.Expr) -> pl.Expr:
    """The address in "H=name (helo) [ip]": the brackets _HOST ends with, not those of a HELO
    that was itself an address ("H=([1.2.3.5]) [1.2.3.4]" is 1.2.3.4)."""
    return h.str.extract(r"\[([0-9A-Fa-f:.]+)\]$", 1)


def _hosts(frame: pl.DataFrame) -> pl.DataFrame:
    """client_ip and relay_host of the `_h` host field (a host's regexes once, not per line)."""
    return by_value(frame, "_h", client_ip=_exim_ip, relay_host=_exim_host)


def _other_ip(body: pl.Expr) -> pl.Expr:
    """The client of another line: the first address in brackets outside parentheses (a HELO
    given as "([1.2.3.5])" is not the client)."""
    return ip_of(body.str.replace_all(r"\([^)]*\)", "").str.extract(r"(\[[0-9A-Fa-f:.]+\])", 1))


def parse_exim(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(events, fates) of an Exim server's framed rows (see parse_util)."""
    rows = of_day(rows)
    prog = pl.col("prog")
    framed = rows.filter(pl.col("framed"))
    is_exim = (prog.is_in(EXIM_PROGS) | (pl.col("plain") & prog.is_null())).fill_null(False)
    ex = heads(framed.filter(is_exim))
    body = pl.col("body")
    parts: list[pl.DataFrame] = []
    fates = [unframed(rows), fates_of(framed.filter(~is_exim & ~is_pop(prog)), "ignored")]

    fr = _fields(ex.filter(pl.col("event") == "from"), to=False)
    fr = _hosts(fr.with_columns(sender=addr(pl.col("_sender")), size=pl.col("_size"), _h=pl.col("_host")))
    parts.append(
        fr.select(
            *BASE,
            "event",
            "queue_id",
            "sender",
            "size",
            "client_ip",
            "relay_host",
            nrcpts=pl.col("_for").str.count_matches(" ") + 1,
        )
    )

    to = _fields(ex.filter(pl.col("event") == "to"), to=True).with_columns(
        mailer=pl.col("_mailer"),
        _h=pl.col("_host"),
        detail=pl.when(pl.col("_flag").is_in(["==", "**"])).then(pl.col("_detail")),
    )
    to = to.with_columns(recipient=addr(pl.coalesce("_orig", pl.col("_first").str.strip_suffix(":"))))
    status = (
        pl.when(pl.col("_flag") == "==")
        .then(pl.lit("deferred"))
        .when((pl.col("_flag") == "**") & user_unknown(pl.col("detail")))
        .then(pl.lit("user_unknown"))
        .when(pl.col("_flag") == "**")
        .then(pl.lit("bounced"))
        .otherwise(pl.lit("sent"))
    )
    to = _hosts(to)
    parts.append(
        to.select(
            *BASE,
            "event",
            "queue_id",
            "recipient",
            "mailer",
            "detail",
            "client_ip",
            "relay_host",
            status=status,
            rcpt_index=pl.lit(0, pl.Int32),
            recipient_domain=domain(pl.col("recipient")),
        )
    )

    rj = ex.filter(pl.col("event") == "reject").with_columns(
        recipient=addr(body.str.extract(r" rejected RCPT <?([^>:\s]*)>?", 1)),
        sender=addr(body.str.extract(r"\bF=<?([^>\s]*)>?", 1)),
        _h=body.str.extract(_HOST, 1),
        detail=body.str.extract(r" rejected RCPT [^:]*: (.*)$", 1),
    )
    rj = _hosts(rj)
    parts.append(
        rj.select(
            *BASE,
            "event",
            "queue_id",
            "recipient",
            "sender",
            "detail",
            "client_ip",
            "relay_host",
            status=pl.when(user_unknown(pl.col("detail"))).then(pl.lit("user_unknown")).otherwise(pl.lit("rejected")),
            recipient_domain=domain(pl.col("recipient")),
        )
    )
    other = ex.filter(pl.col("event") == "other")
    parts.append(other.select(*BASE, "event", "queue_id", client_ip=_other_ip(body), detail=body))

    pop_events, pop_fates = parse_pop(framed.filter(is_pop(prog)), BASE)
    parts.append(pop_events)
    fates.append(pop_fates)
    return finish(parts), concat_fates(fates)
