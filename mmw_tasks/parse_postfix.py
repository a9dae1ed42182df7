"""Postfix 2.x and 3.x lines (and the POP/IMAP lines beside them) to `mail_events` rows.

Events, with the contract's counting (section 5):
- `from`: the qmgr `from=<s>, size=N, nrcpt=N (queue active)` line of a message accepted into
  the queue, once. qmgr logs the same line again on every retry from the deferred queue: those
  are `requeue` (not counted). A from= is a retry when the previous line of its queue id among
  client=/pickup/cleanup/from=/removed was itself a from=. The smtpd `client=` line gives the
  message its client_ip/relay_host (a pickup, local submission, has none).
- `to`: one per delivery-attempt `to=` line (smtp, lmtp, local, virtual, pipe, error), status
  sent/deferred/bounced (user_unknown when the reply says so)/expired...; `mailer` = the daemon.
- `reject`: `NOQUEUE: reject: RCPT ...` and friends (milter-reject, proxy-reject, cleanup
  header/body rejects), with sender, recipient and client.
- `expired` (qmgr "status=expired, returned to sender"), `dsn` (bounce notifications), `other`
  (warnings, lost connections, pipelining...). connect/disconnect/TLS/message-id/removed lines
  are understood but make no row.
Multi-instance and submission names (`postfix-in/smtpd`, `postfix/submission/smtpd`) included.
The state that spans batches and files (queue ids seen) lives in a PostfixParser instance.
"""

from __future__ import annotations

import polars as pl

from mmw_tasks.parse_pop import is_pop, parse_pop
from mmw_tasks.parse_util import (
    BASE, addr, concat_fates, domain, fates_of, finish, host_of, ip_of, unframed, user_unknown,
)
from mmw_tasks.syslog import bslice

_QID = r"^(?:[0-9A-F]{5,20}|NOQUEUE|[0-9A-Za-z]{12,20})$"
_QUIET = r"^(?:connect from |disconnect from |message-id=|removed$|(?:Anonymous|Trusted|Untrusted|Verified) TLS)"
_MARKERS = {"client": "K", "pickup": "P", "cleanup": "C", "from": "F", "removed": "R"}


def _kind(body: pl.Expr) -> pl.Expr:
    return (pl.when(body.str.starts_with("to=")).then(pl.lit("to"))
            .when(body.str.starts_with("from=<")).then(
                pl.when(body.str.contains(", status=expired", literal=True)).then(pl.lit("expired"))
                .otherwise(pl.lit("from")))
            .when(body.str.starts_with("client=")).then(pl.lit("client"))
            .when(body.str.starts_with("message-id=")).then(pl.lit("cleanup"))
            .when(body.str.starts_with("removed")).then(pl.lit("removed"))
            .when(body.str.starts_with("uid=") | body.str.starts_with("sender=")).then(pl.lit("pickup"))
            .when(body.str.contains(r"^(?:reject|milter-reject|proxy-reject): ")).then(pl.lit("reject"))
            .when(body.str.contains(r"^[a-z]+ (?:non-)?delivery (?:status )?notification: ")).then(pl.lit("dsn"))
            .when(body.str.contains(_QUIET)).then(pl.lit("quiet"))
            .otherwise(pl.lit("other")))


def postfix_status(status: pl.Expr, text: pl.Expr) -> pl.Expr:
    undeliverable = status.str.starts_with("undeliverable")
    return (pl.when(((status == "bounced") | undeliverable) & user_unknown(text)).then(pl.lit("user_unknown"))
            .when(undeliverable).then(pl.lit("bounced"))
            .otherwise(status))


class PostfixParser:
    """Callable parser; keeps, per queue id still in flight, the last marker line and client."""

    stateful = True  # needs the lines before the day too (a message's client= and retries)

    def __init__(self) -> None:
        self.state = pl.DataFrame(schema={"queue_id": pl.String, "_m": pl.String, "client_ip": pl.String,
                                          "relay_host": pl.String})

    def __call__(self, rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        prog, msg = pl.col("prog"), pl.col("msg")
        framed = rows.filter(pl.col("framed"))
        is_pf = prog.str.starts_with("postfix").fill_null(False)
        pf = framed.filter(is_pf).with_columns(_q=msg.str.find(": ", literal=True))
        pf = pf.with_columns(_c=pl.when(pl.col("_q").is_between(5, 20)).then(bslice(msg, 0, pl.col("_q"))))
        has = pl.col("_c").str.contains(_QID)
        pf = pf.with_columns(
            queue_id=pl.when(has & (pl.col("_c") != "NOQUEUE")).then(pl.col("_c")),
            body=pl.when(has).then(bslice(msg, pl.col("_q") + 2)).otherwise(msg),
            mailer=prog.str.extract(r"([^/]+)$", 1))
        body = pl.col("body")
        pf = pf.with_columns(event=_kind(body)).drop("_q", "_c")
        pf = self._markers(pf)
        day = pf.filter(pl.col("in_day"))
        parts: list[pl.DataFrame] = []
        fates = [unframed(rows.filter(pl.col("in_day"))),
                 fates_of(framed.filter(pl.col("in_day") & ~is_pf & ~is_pop(prog)), "ignored")]

        fr = day.filter(pl.col("event") == "from").with_columns(
            sender=addr(body.str.extract(r"^from=<([^>]*)>", 1)),
            size=body.str.extract(r", size=(\d+)", 1), nrcpts=body.str.extract(r", nrcpt=(\d+)", 1))
        bad = pl.col("size").is_null()
        fates.append(fates_of(fr.filter(bad), "malformed", "qmgr from= line without size="))
        parts.append(fr.filter(~bad).select(*BASE, "queue_id", "sender", "size", "nrcpts", "client_ip",
                                            "relay_host", event=pl.when(pl.col("_new")).then(pl.lit("from"))
                                            .otherwise(pl.lit("requeue"))))

        to = day.filter(pl.col("event") == "to").with_columns(
            recipient=addr(body.str.extract(r"^to=<?([^,>]*)>?,", 1)),
            _relay=body.str.extract(r", relay=([^,]*)", 1),
            _status=body.str.extract(r", status=([a-z-]+)", 1),
            detail=body.str.extract(r", status=[a-z-]+ \((.*)\)$", 1))
        bad = pl.col("recipient").is_null() | pl.col("_status").is_null()
        fates.append(fates_of(to.filter(bad), "malformed", "to= line without status="))
        to = to.filter(~bad).with_columns(
            status=postfix_status(pl.col("_status"), pl.col("detail")),
            relay_host=host_of(pl.col("_relay")), client_ip=ip_of(pl.col("_relay")))
        parts.append(to.select(*BASE, "event", "queue_id", "recipient", "status", "mailer", "relay_host",
                               "client_ip", "detail", rcpt_index=pl.lit(0, pl.Int32),
                               recipient_domain=domain(pl.col("recipient"))))

        rj = day.filter(pl.col("event") == "reject").with_columns(
            recipient=addr(body.str.extract(r"\bto=<([^>]*)>", 1)),
            sender=addr(body.str.extract(r"\bfrom=<([^>]*)>", 1)),
            _client=body.str.extract(r" from ([^\s\[]*\[[0-9A-Fa-f:.]+\])", 1),
            detail=pl.coalesce(body.str.extract(r": ([45]\d\d [^;]*)", 1), body))
        parts.append(rj.select(
            *BASE, "queue_id", "sender", "recipient", "detail", event=pl.lit("reject"),
            status=pl.when(user_unknown(pl.col("detail"))).then(pl.lit("user_unknown")).otherwise(pl.lit("rejected")),
            client_ip=ip_of(pl.col("_client")), relay_host=host_of(pl.col("_client")),
            recipient_domain=domain(pl.col("recipient"))))

        ex = day.filter(pl.col("event") == "expired")
        parts.append(ex.select(*BASE, "event", "queue_id", sender=addr(body.str.extract(r"^from=<([^>]*)>", 1)),
                               status=pl.lit("expired")))
        other = day.filter(pl.col("event").is_in(["dsn", "other"]))
        parts.append(other.select(*BASE, "event", "queue_id", "mailer", detail=body))

        pop_events, pop_fates = parse_pop(framed.filter(pl.col("in_day") & is_pop(prog)), BASE)
        parts.append(pop_events)
        fates.append(pop_fates)
        return finish(parts), concat_fates(fates)

    def _markers(self, pf: pl.DataFrame) -> pl.DataFrame:
        """Add `_new` (a from= that is not a retry) and the message's client to from= rows."""
        mk = pf.filter(pl.col("event").is_in(list(_MARKERS)) & pl.col("queue_id").is_not_null())
        body = pl.col("body")
        cur = mk.select(
            "line_no", "copy", "queue_id", _m=pl.col("event").replace_strict(_MARKERS, return_dtype=pl.String),
            _ip=pl.when(pl.col("event") == "client").then(
                pl.coalesce(ip_of(body.str.extract(r"^client=([^,]*)", 1)), pl.lit("")))
            .when(pl.col("event").is_in(["pickup", "removed"])).then(pl.lit("")),
            _host=pl.when(pl.col("event") == "client").then(
                pl.coalesce(host_of(body.str.extract(r"^client=([^,]*)", 1)), pl.lit("")))
            .when(pl.col("event").is_in(["pickup", "removed"])).then(pl.lit("")))
        seed = self.state.select(pl.lit(-1, pl.Int64).alias("line_no"), pl.lit(0, pl.Int32).alias("copy"),
                                 "queue_id", "_m", _ip=pl.coalesce("client_ip", pl.lit("")),
                                 _host=pl.coalesce("relay_host", pl.lit("")))
        allm = pl.concat([seed, cur.cast({"copy": pl.Int32})], how="vertical_relaxed")
        allm = allm.with_columns(
            _prev=pl.col("_m").shift(1).over("queue_id"),
            _ip=pl.col("_ip").forward_fill().over("queue_id"),
            _host=pl.col("_host").forward_fill().over("queue_id"))
        last = allm.group_by("queue_id").agg(pl.all().last())
        self.state = last.filter(pl.col("_m") != "R").select(
            "queue_id", "_m", client_ip=pl.col("_ip").replace("", None), relay_host=pl.col("_host").replace("", None))
        fromrows = allm.filter((pl.col("_m") == "F") & (pl.col("line_no") >= 0)).select(
            "line_no", "copy", _new=pl.col("_prev").is_null() | (pl.col("_prev") != "F"),
            client_ip=pl.col("_ip").replace("", None), relay_host=pl.col("_host").replace("", None))
        return pf.join(fromrows, on=["line_no", "copy"], how="left", maintain_order="left")


def parse_postfix(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One batch parsed with fresh state (tests, one-off use); ingest uses a PostfixParser."""
    return PostfixParser()(rows)
