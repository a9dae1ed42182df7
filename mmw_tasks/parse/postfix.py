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

from mmw_tasks.parse import kernels
from mmw_tasks.parse.fields import (
    BASE,
    addr,
    afters,
    by_value,
    concat_fates,
    detached,
    digits,
    domain,
    fates_of,
    finish,
    relays,
    slicer,
    unframed,
    user_unknown,
)
from mmw_tasks.parse.logfiles import bslice
from mmw_tasks.parse.pop import is_pop, parse_pop

# What kernels.postfix_heads reads (postfix_heads_reference): the queue id, then the kind from the
# first words of the body
_QID_HEAD = r"^(?:[0-9A-F]{5,20}|NOQUEUE|[0-9A-Za-z]{12,20}): "
_NONE = "\x00"  # a group's "nothing yet", so that a forward fill never crosses into the next message
_MARKERS = {"client": "K", "pickup": "P", "cleanup": "C", "from": "F", "removed": "R"}


_LEAD = (
    r"^(to=|from=<|client=|message-id=|removed|uid=|sender=|(?:milter-|proxy-)?reject: |connect from "
    r"|disconnect from |(?:Anonymous|Trusted|Untrusted|Verified) TLS"
    r"|[a-z]+ (?:non-)?delivery (?:status )?notification: )"
)
_LEAD_KIND = {
    "to=": "to",
    "from=<": "from",
    "client=": "client",
    "message-id=": "cleanup",
    "removed": "removed",
    "uid=": "pickup",
    "sender=": "pickup",
    "reject: ": "reject",
    "milter-reject: ": "reject",
    "proxy-reject: ": "reject",
    "connect from ": "quiet",
    "disconnect from ": "quiet",
    "Anonymous TLS": "quiet",
    "Trusted TLS": "quiet",
    "Untrusted TLS": "quiet",
    "Verified TLS": "quiet",
}


_KINDS = {
    0: "other",
    1: "to",
    2: "from",
    3: "client",
    4: "cleanup",
    5: "removed",
    6: "pickup",
    7: "reject",
    8: "quiet",
    9: "dsn",
    10: "expired",
}


def heads(pf: pl.DataFrame) -> pl.DataFrame:
    """queue_id ("QID: body"; null for NOQUEUE and lines of no message), body and `event` of each
    message (`msg`), by one compiled pass (kernels.postfix_heads): _QID_HEAD in the first 22
    characters, the kind from the body's first words (_LEAD, _LEAD_KIND: a lead not in the
    table is `dsn`, no lead is `other`), and from= lines of an expired message are `expired`."""
    found = kernels.postfix_heads(pf["msg"])
    pf = pf.with_columns(queue_id=found["queue_id"], body=found["body"], event=kernels.names_of(found["kind"], _KINDS))
    return pf.drop("msg")


def postfix_heads_reference(msg: pl.Series) -> pl.DataFrame:
    """queue_id, body and event of each message as heads() gives them, by the polars expressions
    kernels.postfix_heads replaced: its specification (tests/test_kernels.py holds the kernel to it)."""
    m, h = pl.col("msg"), pl.col("msg").str.slice(0, 22)
    q = pl.when(h.str.contains(_QID_HEAD)).then(h.str.find(": ", literal=True))
    df = pl.DataFrame({"msg": msg}, schema={"msg": pl.String}).select(
        queue_id=pl.when(q.is_not_null() & (h.str.slice(0, q) != "NOQUEUE")).then(h.str.slice(0, q)),
        body=m.str.slice(q.fill_null(-2) + 2),
    )
    body = pl.col("body")
    lead = body.str.extract(_LEAD, 1)
    kind = lead.replace_strict(_LEAD_KIND, default=None, return_dtype=pl.String)
    return df.with_columns(
        event=pl.when(lead.is_null())
        .then(pl.lit("other"))
        .when(kind.is_null())
        .then(pl.lit("dsn"))
        .when((kind == "from") & body.str.contains(", status=expired"))
        .then(pl.lit("expired"))
        .otherwise(kind)
    )


def postfix_status(status: pl.Expr, text: pl.Expr) -> pl.Expr:
    undeliverable = status.str.starts_with("undeliverable")
    return (
        pl.when(((status == "bounced") | undeliverable) & user_unknown(text))
        .then(pl.lit("user_unknown"))
        .when(undeliverable)
        .then(pl.lit("bounced"))
        .otherwise(status)
    )


class PostfixParser:
    """Callable parser; keeps, per queue id still in flight, the last marker line and client.

    One compiled pass (heads) splits off the queue id and sorts the lines by kind; fields come
    from finds and slices on each kind's own rows; the regex helpers (addresses,
    hosts) run on distinct values only. Every line keeps its fate as before.
    """

    stateful = True  # needs the lines before the day too (a message's client= and retries)

    def __init__(self) -> None:
        self.state = pl.DataFrame(
            schema={"queue_id": pl.String, "_m": pl.String, "client_ip": pl.String, "relay_host": pl.String}
        )

    def __call__(self, rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        return self.complete(self.prepare(rows))

    def prepare(self, rows: pl.DataFrame) -> dict:
        """Everything that needs no state from earlier batches (ingest runs it on two batches at
        once); `complete` then adds, batch by batch in order, what does."""
        prog = pl.col("prog")
        framed = rows.filter(pl.col("framed"))
        is_pf = prog.str.starts_with("postfix").fill_null(False)
        pf = framed.filter(is_pf).select(*BASE, "in_day", "prog", "msg")
        sl = slicer(pf)
        pf = heads(pf)
        marks = _marks(pf)
        day = pf.filter(pl.col("in_day"))
        parts: list[pl.DataFrame] = []
        fates = [
            unframed(rows.filter(pl.col("in_day"))),
            fates_of(framed.filter(pl.col("in_day") & ~is_pf & ~is_pop(prog)), "ignored"),
        ]
        body = pl.col("body")

        fr = day.filter(pl.col("event") == "from")
        fr = fr.with_columns(
            _gt=body.str.find(">", literal=True),
            _s=body.str.find(", size=", literal=True),
            _n=body.str.find(", nrcpt=", literal=True),
        )
        fr = fr.with_columns(
            sender=pl.when(pl.col("_gt").is_not_null()).then(sl(body, 6, pl.col("_gt") - 6)),
            size=digits(sl(body, pl.col("_s") + 7, 20), pl.Int64),
            nrcpts=digits(sl(body, pl.col("_n") + 8, 11), pl.Int32),
        )
        fr = fr.with_columns(sender=addr(pl.col("sender")))
        bad = pl.col("size").is_null()
        fates.append(fates_of(fr.filter(bad), "malformed", "qmgr from= line without size="))
        fr = fr.filter(~bad).select(*BASE, "queue_id", "sender", "size", "nrcpts")

        to = _to_fields(day.filter(pl.col("event") == "to"))
        bad = pl.col("recipient").is_null() | pl.col("_status").is_null()
        fates.append(fates_of(to.filter(bad), "malformed", "to= line without status="))
        to = to.filter(~bad).with_columns(status=postfix_status(pl.col("_status"), pl.col("detail")))
        to = relays(to, "_relay")
        to = by_value(to, "prog", mailer=lambda p: p.str.extract(r"([^/]+)$", 1))
        parts.append(
            to.select(
                *BASE,
                "event",
                "queue_id",
                "recipient",
                "status",
                "mailer",
                "relay_host",
                "client_ip",
                "detail",
                rcpt_index=pl.lit(0, pl.Int32),
                recipient_domain=domain(pl.col("recipient")),
            )
        )

        rj = day.filter(pl.col("event") == "reject").with_columns(
            recipient=addr(body.str.extract(r"\bto=<([^>]*)>", 1)),
            sender=addr(body.str.extract(r"\bfrom=<([^>]*)>", 1)),
            _client=body.str.extract(r" from ([^\s\[]*\[[0-9A-Fa-f:.]+\])", 1),
            detail=pl.coalesce(body.str.extract(r": ([45]\d\d [^;]*)", 1), body),
        )
        rj = relays(rj, "_client")
        parts.append(
            rj.select(
                *BASE,
                "queue_id",
                "sender",
                "recipient",
                "detail",
                "client_ip",
                "relay_host",
                event=pl.lit("reject"),
                status=pl.when(user_unknown(pl.col("detail")))
                .then(pl.lit("user_unknown"))
                .otherwise(pl.lit("rejected")),
                recipient_domain=domain(pl.col("recipient")),
            )
        )

        ex = day.filter(pl.col("event") == "expired")
        parts.append(
            ex.select(
                *BASE,
                "event",
                "queue_id",
                sender=addr(body.str.extract(r"^from=<([^>]*)>", 1)),
                status=pl.lit("expired"),
            )
        )
        other = by_value(
            day.filter(pl.col("event").is_in(["dsn", "other"])), "prog", mailer=lambda p: p.str.extract(r"([^/]+)$", 1)
        )
        parts.append(other.select(*BASE, "event", "queue_id", "mailer", detail=body))

        pop_events, pop_fates = parse_pop(framed.filter(pl.col("in_day") & is_pop(prog)), BASE)
        parts.append(pop_events)
        fates.append(pop_fates)
        return {"marks": marks, "from": fr, "parts": parts, "fates": fates}

    def complete(self, prepared: dict) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(events, fates) of a prepared batch: its from= rows learn, from the queue state, whether
        they are new and which client sent them. Batches must come in file order."""
        fromrows = self._markers(prepared["marks"])
        fr = prepared["from"].join(fromrows, on=["line_no", "copy"], how="left", maintain_order="left")
        fr = fr.select(
            *BASE,
            "queue_id",
            "sender",
            "size",
            "nrcpts",
            "client_ip",
            "relay_host",
            event=pl.when(pl.col("_new")).then(pl.lit("from")).otherwise(pl.lit("requeue")),
        )
        return finish([fr, *prepared["parts"]]), concat_fates(prepared["fates"])

    def _markers(self, cur: pl.DataFrame) -> pl.DataFrame:
        """`_new` (a from= that is not a retry) and the message's client, per from= row
        (line_no, copy), from a batch's markers (`_marks`); updates the state kept for the next batch."""
        seed = self.state.select(
            pl.lit(-1, pl.Int64).alias("line_no"),
            pl.lit(0, pl.Int32).alias("copy"),
            "queue_id",
            "_m",
            _ip=pl.coalesce("client_ip", pl.lit("")),
            _host=pl.coalesce("relay_host", pl.lit("")),
        )
        allm = pl.concat([seed, cur.cast({"copy": pl.Int32})], how="vertical_relaxed")
        # grouped by queue id (a stable sort keeps each message's lines in order): the marker
        # before each one, and the client carried forward within the message
        allm = _by_queue_id(allm)
        qid = pl.col("queue_id")
        allm = allm.with_columns(
            _same=(qid == qid.shift(1)).fill_null(False), _last=(qid != qid.shift(-1)).fill_null(True)
        )
        same = pl.col("_same")
        allm = allm.with_columns(
            _prev=pl.when(same).then(pl.col("_m").shift(1)),
            _ip=pl.when(~same).then(pl.coalesce("_ip", pl.lit(_NONE))).otherwise("_ip").forward_fill(),
            _host=pl.when(~same).then(pl.coalesce("_host", pl.lit(_NONE))).otherwise("_host").forward_fill(),
        )
        allm = allm.with_columns(_ip=pl.col("_ip").replace(_NONE, None), _host=pl.col("_host").replace(_NONE, None))
        last = allm.filter(pl.col("_last"))
        self.state = detached(
            last.filter(pl.col("_m") != "R").select(
                "queue_id",
                "_m",
                client_ip=pl.col("_ip").replace("", None),
                relay_host=pl.col("_host").replace("", None),
            )
        )
        fromrows = allm.filter((pl.col("_m") == "F") & (pl.col("line_no") >= 0)).select(
            "line_no",
            "copy",
            _new=pl.col("_prev").is_null() | (pl.col("_prev") != "F"),
            client_ip=pl.col("_ip").replace("", None),
            relay_host=pl.col("_host").replace("", None),
        )
        return fromrows


def qid_hash(qid: pl.Series) -> pl.Series:
    return qid.hash()


def _by_queue_id(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with the rows of each queue id together, each id's rows in their order. Sorted by
    a hash of the id (a third of the cost of sorting the text); should two ids share a hash
    (their rows would then mix), by the id itself."""
    frame = frame.with_columns(_h=qid_hash(frame["queue_id"])).sort("_h", maintain_order=True)
    h, qid = pl.col("_h"), pl.col("queue_id")
    if frame.select(((h == h.shift(1)) & (qid != qid.shift(1))).any()).item():
        frame = frame.sort("queue_id", maintain_order=True)
    return frame.drop("_h")


def _marks(pf: pl.DataFrame) -> pl.DataFrame:
    """The marker lines of a batch (client=, pickup, cleanup, from=, removed) with their queue id,
    marker letter and, for client=, the client's address and name ("" for none)."""
    mk = pf.filter(pl.col("event").is_in(list(_MARKERS)) & pl.col("queue_id").is_not_null()).select(
        "line_no", "copy", "queue_id", "event", "body"
    )
    ev = pl.col("event")
    client, none = ev == "client", ev.is_in(["pickup", "removed"])
    mk = afters(mk, "body", {"_client": "client="}).with_columns(_client=pl.when(client).then(pl.col("_client")))
    mk = relays(mk, "_client", host="_host", ip="_ip")
    return mk.select(
        "line_no",
        "copy",
        "queue_id",
        _m=ev.replace_strict(_MARKERS, return_dtype=pl.String),
        _ip=pl.when(none).then(pl.lit("")).when(client).then(pl.coalesce("_ip", pl.lit(""))),
        _host=pl.when(none).then(pl.lit("")).when(client).then(pl.coalesce("_host", pl.lit(""))),
    )


_TO_RECIPIENT = r"^to=<?([^,>]*)>?,"  # what kernels.postfix_to reads (postfix_to_reference)


def postfix_to_reference(body: pl.Series) -> pl.DataFrame:
    """recipient (before addr()), relay, status and detail of to= bodies, by the finds, slices and
    regex that kernels.postfix_to replaced: its specification (tests/test_kernels.py holds the
    kernel to it). The recipient between "to=<" and ">,", else by _TO_RECIPIENT; the relay after
    ", relay=" up to its comma; the word after ", status=" when it is [a-z-]+; as detail the
    parenthesised reply after that word when it ends the line."""
    b, sl = pl.col("body"), bslice
    df = pl.DataFrame({"body": body}, schema={"body": pl.String}).with_columns(
        _gt=b.str.find(">,", literal=True),
        _r=b.str.find(", relay=", literal=True),
        _st=b.str.find(", status=", literal=True),
    )
    df = df.with_columns(
        recipient=pl.when(b.str.starts_with("to=<") & pl.col("_gt").is_not_null()).then(sl(b, 4, pl.col("_gt") - 4)),
        _relay=sl(b, pl.col("_r") + 8),
        _after=sl(b, pl.col("_st") + 9),
    )
    rc = pl.col("recipient")
    odd = rc.is_null() | rc.str.contains(r"[,>]")
    df = df.with_columns(recipient=pl.when(odd).then(b.str.extract(_TO_RECIPIENT, 1)).otherwise(rc))
    after, relay = pl.col("_after"), pl.col("_relay")
    df = df.with_columns(
        relay=pl.when(pl.col("_r").is_not_null()).then(sl(relay, 0, relay.str.find(","))),
        _sp=after.str.find(" ", literal=True),
    )
    word = pl.when(pl.col("_st").is_not_null()).then(sl(after, 0, pl.col("_sp")))
    df = df.with_columns(
        status=pl.when(word.str.contains(r"^[a-z-]+$")).then(word),
        # compared as bytes, and the detail cut only where it is there: a byte offset after the
        # space may fall inside a character that is not ASCII (the kernel was right there)
        _ok=after.cast(pl.Binary).bin.slice(pl.col("_sp"), 2).eq(b" (") & after.str.ends_with(")"),
    )
    ok = pl.when(pl.col("_ok") & pl.col("status").is_not_null())
    detail = sl(ok.then(after), pl.col("_sp") + 2, ok.then(after.str.len_bytes().cast(pl.Int64) - pl.col("_sp") - 3))
    return df.select("recipient", "relay", "status", detail=ok.then(detail))


def _to_fields(to: pl.DataFrame) -> pl.DataFrame:
    """recipient, _relay, _status and detail of to= rows, by one compiled pass (kernels.postfix_to):
    the recipient by _TO_RECIPIENT, the relay up to its comma, the status word after ", status="
    when it is [a-z-]+, and as detail the parenthesised reply after it when that ends the line."""
    found = kernels.postfix_to(to["body"])
    return to.with_columns(
        recipient=addr(found["recipient"]), _relay=found["relay"], _status=found["status"], detail=found["detail"]
    )


def parse_postfix(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One batch parsed with fresh state (tests, one-off use); ingest uses a PostfixParser."""
    return PostfixParser()(rows)
