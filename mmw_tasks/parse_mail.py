"""Mail-server lines (sendmail 8.x, qpopper) to `mail_events` rows, vectorised with polars.

Input: framed lines of one day (see syslog.frame_lines), with `prog` and `msg`.
Output: the events, and for every line its fate: parsed, ignored (not ours) or malformed.
Cheap literal tests pick each line's kind first; each kind then gets one regex pass over its rows only.
"""

from __future__ import annotations

import polars as pl

SENDMAIL_PROGS = ["sendmail", "sm-mta", "sm-msp-queue", "sm-acceptingconnections"]
POP_PROGS = ["popper", "qpopper", "in.qpopper"]

EVENT_SCHEMA = {
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

_QID = r"^(?:([A-Za-z0-9]{7,20})(?:\[\d+\])?: )?(.*)$"
_ADDR_REJECT = r"^<?([^>\s]*)>?\.\.\. (.*)$"
_IP_IN_RELAY = r"\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]"


def _addr(expr: pl.Expr) -> pl.Expr:
    return expr.str.strip_chars().str.strip_chars("<>").str.to_lowercase()


def _domain(expr: pl.Expr) -> pl.Expr:
    return expr.str.extract(r"@([^@>\s\"]+)$", 1).str.strip_suffix(".")


def _relay_fields(relay: pl.Expr) -> list[pl.Expr]:
    return [
        relay.str.extract(_IP_IN_RELAY, 1).alias("client_ip"),
        relay.str.extract(r"^([^\s\[]+)", 1).str.strip_suffix(".").str.to_lowercase().alias("relay_host"),
    ]


def _status_of(stat: pl.Expr, dsn: pl.Expr) -> pl.Expr:
    s = stat.str.to_lowercase()
    return (pl.when(s.str.starts_with("sent")).then(pl.lit("sent"))
            .when(s.str.starts_with("deferred")).then(pl.lit("deferred"))
            .when(s.str.contains("user unknown", literal=True)
                  | s.str.contains("no such user", literal=True)).then(pl.lit("user_unknown"))
            .when(s.str.starts_with("queued") | s.str.starts_with("quarantined")).then(pl.lit("queued"))
            .when(s.is_not_null()).then(pl.lit("bounced"))
            .when(dsn.str.starts_with("2")).then(pl.lit("sent"))
            .when(dsn.str.starts_with("4")).then(pl.lit("deferred"))
            .when(dsn.str.starts_with("5")).then(pl.lit("bounced")))


def parse_mail(df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return (events, fates). `fates` has line_no, copy, fate, reason for every input row."""
    prog = pl.col("prog").str.to_lowercase()
    is_sm = prog.is_in(SENDMAIL_PROGS)
    is_pop = prog.is_in(POP_PROGS)
    df = df.with_columns(
        pl.when(~pl.col("framed")).then(pl.lit("malformed"))
        .when(is_sm).then(pl.lit("sendmail"))
        .when(is_pop).then(pl.lit("pop"))
        .otherwise(pl.lit("ignored")).alias("_src"))

    sm = df.filter(pl.col("_src") == "sendmail").with_columns(
        pl.col("msg").str.extract_groups(_QID).alias("_q")).with_columns(
        queue_id=pl.col("_q").struct.field("1"), body=pl.col("_q").struct.field("2")).drop("_q")
    body = pl.col("body")
    sm = sm.with_columns(
        pl.when(body.str.starts_with("from=")).then(pl.lit("from"))
        .when(body.str.starts_with("to=")).then(pl.lit("to"))
        .when(body.str.contains("... ", literal=True) & ~body.str.starts_with("ruleset="))
        .then(pl.lit("reject"))
        .when(body.str.starts_with("ruleset=") & body.str.contains(", reject=", literal=True))
        .then(pl.lit("ruleset_reject"))
        .otherwise(pl.lit("other")).alias("event"))

    base = ["ts", "server", "file", "line_no", "copy", "repeat"]
    parts: list[pl.DataFrame] = []
    fates: list[pl.DataFrame] = []

    def fate(frame: pl.DataFrame, fate_expr: pl.Expr, reason: pl.Expr | None = None) -> None:
        fates.append(frame.select("line_no", "copy", fate_expr.alias("fate"),
                                  (reason if reason is not None else pl.lit(None, pl.String)).alias("reason")))

    # from=: one accepted message
    fr = sm.filter(pl.col("event") == "from").with_columns(
        sender=_addr(body.str.extract(r"^from=(<[^>]*>|[^,]*)", 1)),
        size=body.str.extract(r", size=(\d+)", 1).cast(pl.Int64),
        nrcpts=body.str.extract(r", nrcpts=(\d+)", 1).cast(pl.Int32),
        _relay=body.str.extract(r", relay=([^,]*)", 1),
    ).with_columns(_relay_fields(pl.col("_relay")))
    bad = pl.col("size").is_null()
    fate(fr, pl.when(bad).then(pl.lit("malformed")).otherwise(pl.lit("parsed")),
         pl.when(bad).then(pl.lit("from= line without size=")))
    parts.append(fr.filter(~bad).select(*base, "event", "queue_id", "sender", "size", "nrcpts",
                                        "client_ip", "relay_host"))

    # to=: one delivery attempt, possibly for a comma-separated recipient list
    to = sm.filter(pl.col("event") == "to").with_columns(
        _rcpts=body.str.extract(r"^to=(.*?), (?:ctladdr|delay|xdelay|mailer|pri|relay|dsn|stat)=", 1),
        _stat=body.str.extract(r"(?:, ?|^)stat=(.*)$", 1),
        _dsn=body.str.extract(r", dsn=([\d.]+)", 1),
        mailer=body.str.extract(r", mailer=([^,]*)", 1),
        _relay=body.str.extract(r", relay=([^,]*)", 1),
    ).with_columns(_relay_fields(pl.col("_relay")))
    bad = pl.col("_rcpts").is_null()
    fate(to, pl.when(bad).then(pl.lit("malformed")).otherwise(pl.lit("parsed")),
         pl.when(bad).then(pl.lit("to= line truncated (no delay=/stat=)")))
    to = to.filter(~bad).with_columns(
        status=_status_of(pl.col("_stat"), pl.col("_dsn")),
        detail=pl.col("_stat"),
        recipient=pl.col("_rcpts").str.replace(r" \[more\]$", "").str.split(","),
    ).explode("recipient").with_columns(
        recipient=_addr(pl.col("recipient")),
        rcpt_index=pl.int_range(pl.len()).over("line_no", "copy").cast(pl.Int32),
    ).filter(pl.col("recipient") != "")
    parts.append(to.with_columns(recipient_domain=_domain(pl.col("recipient"))).select(
        *base, "event", "queue_id", "recipient", "recipient_domain", "rcpt_index", "status", "mailer",
        "client_ip", "relay_host", "detail"))

    # "<addr>... User unknown" and ruleset rejects: a refused recipient or client
    rj = sm.filter(pl.col("event") == "reject").with_columns(
        pl.col("body").str.extract_groups(_ADDR_REJECT).alias("_r")).with_columns(
        recipient=_addr(pl.col("_r").struct.field("1")), detail=pl.col("_r").struct.field("2"))
    rr = sm.filter(pl.col("event") == "ruleset_reject").with_columns(
        recipient=_addr(body.str.extract(r"arg1=([^,]*)", 1)),
        detail=body.str.extract(r", reject=(.*)$", 1),
        _relay=body.str.extract(r", relay=([^,]*)", 1),
    ).with_columns(_relay_fields(pl.col("_relay")), event=pl.lit("reject"))
    for frame in (rj, rr):
        d = pl.col("detail").str.to_lowercase()
        frame = frame.with_columns(
            status=pl.when(d.str.contains("user unknown", literal=True)
                           | d.str.contains("no such user", literal=True))
            .then(pl.lit("user_unknown")).otherwise(pl.lit("rejected")),
            recipient_domain=_domain(pl.col("recipient")))
        if "client_ip" not in frame.columns:
            frame = frame.with_columns(client_ip=pl.lit(None, pl.String), relay_host=pl.lit(None, pl.String))
        fate(frame, pl.lit("parsed"))
        parts.append(frame.select(*base, "event", "queue_id", "recipient", "recipient_domain", "status",
                                  "client_ip", "relay_host", "detail"))

    other = sm.filter(pl.col("event") == "other").with_columns(detail=pl.col("body"))
    fate(other, pl.lit("parsed"))
    parts.append(other.select(*base, "event", "queue_id", "detail"))

    # qpopper: POP3 logins (NP of the model); other popper lines are kept as 'other'
    pop = df.filter(pl.col("_src") == "pop").with_columns(
        pl.col("msg").str.extract_groups(r'POP login by user "([^"]*)" at \(([^)]*)\) (\S+)').alias("_p"))
    login = pop.filter(pl.col("_p").struct.field("1").is_not_null()).with_columns(
        event=pl.lit("pop_login"), user=pl.col("_p").struct.field("1").str.to_lowercase(),
        relay_host=pl.col("_p").struct.field("2").str.to_lowercase(), client_ip=pl.col("_p").struct.field("3"))
    fate(login, pl.lit("parsed"))
    parts.append(login.select(*base, "event", "user", "relay_host", "client_ip"))
    pop_other = pop.filter(pl.col("_p").struct.field("1").is_null()).with_columns(
        event=pl.lit("pop_other"), detail=pl.col("msg"))
    fate(pop_other, pl.lit("parsed"))
    parts.append(pop_other.select(*base, "event", "detail"))

    rest = df.filter(pl.col("_src").is_in(["ignored", "malformed"]))
    fate(rest, pl.col("_src"), pl.when(pl.col("_src") == "malformed").then(pl.lit("no syslog header")))

    events = pl.concat([p.drop("copy") for p in parts], how="diagonal_relaxed")
    events = events.select([pl.col(c).cast(t) if c in events.columns else pl.lit(None, t).alias(c)
                            for c, t in EVENT_SCHEMA.items()])
    return events.sort("ts", "line_no"), pl.concat(fates).sort("line_no", "copy")
