"""POP3/IMAP logins (N_pop of the model) from the mail server's log: qpopper, Dovecot 1.x/2.x,
Courier, UW imapd. Each successful login is one `pop_login` event (IMAP too); failed logins and
other lines of these programs are `pop_other` (kept, not counted).

Used by every mail parser (sendmail, Postfix, Exim) for the lines that are not the MTA's.
"""

from __future__ import annotations

import polars as pl

from mmw_tasks.parse import kernels
from mmw_tasks.parse.fields import fates_of

QPOPPER_PROGS = ["popper", "qpopper", "in.qpopper", "ipop3d"]
DOVECOT_PROGS = ["dovecot", "Info", "imap-login", "pop3-login", "dovecot-auth", "auth", "auth-worker"]
COURIER_PROGS = [
    "pop3d",
    "pop3d-ssl",
    "imapd",
    "imapd-ssl",
    "courierpop3login",
    "courier-imapd",
    "courier-pop3d",
    "couriertcpd",
]
POP_PROGS = QPOPPER_PROGS + DOVECOT_PROGS + COURIER_PROGS

# qpopper: '(v4.0.9) POP login by user "nick" at (host) 74.125.46.35 [pop_log.c:244]'
_QPOPPER = r'POP login by user "([^"]*)" at \(([^)]*)\) ([0-9A-Fa-f:.]+)'
# Dovecot: 'imap-login: Login: user=<u>, method=PLAIN, rip=1.2.3.4, lip=...' (1.x: ::ffff: addresses)
_DOVECOT = r"(pop3|imap|managesieve|submission)-login: (?:Info: )?Login: user=<([^>]*)>.*?rip=([0-9A-Fa-f:.]+)"
# Courier: 'LOGIN, user=x, ip=[::ffff:1.2.3.4], port=[nnn]' ; UW: 'Login user=x host=name [ip]'
_COURIER = r"^LOGIN, user=([^,]*), ip=\[(?:::ffff:)?([0-9A-Fa-f:.]+)\]"
_UW = r"^(?:Login|Authenticated) user=(\S+) host=(\S*) ?\[([0-9A-Fa-f:.]+)\]"


def is_pop(prog: pl.Expr) -> pl.Expr:
    return prog.is_in(POP_PROGS).fill_null(False)


# The common qpopper and Dovecot forms, read by kernels.pop_logins (the same patterns as these
# anchored regexes: _QPOPPER_TAIL after 'POP login by user "', _DOVECOT_HEAD); a line it does not
# take goes through the full pattern of its kind above
_QPOPPER_TAIL = r'^([^"]*)" at \(([^)]*)\) ([0-9A-Fa-f:.]+)'
_DOVECOT_HEAD = r"^(pop3|imap|managesieve|submission)-login: Login: user=<([^>]*)>.*?rip=([0-9A-Fa-f:.]+)"
# kernel kinds: 1 qpopper, 2 Dovecot, 3 Courier, 4 UW, 0 not a login


def pop_logins_reference(msg: pl.Series) -> dict[str, pl.Series | bool]:
    """What kernels.pop_logins gives, by the polars expressions it replaced: its specification
    (tests/test_kernels.py holds the kernel to it). The kind by literal tests; the fields of the
    common forms by _QPOPPER_TAIL (after the first 'POP login by user "') and _DOVECOT_HEAD;
    `cased`: some user or host read has a capital or a character that is not ASCII; `mapped`:
    some address read begins "::ffff:"."""
    m = pl.col("msg")
    kind = (
        pl.when(m.str.contains("POP login by user", literal=True))
        .then(1)
        .when(m.str.contains("-login: ", literal=True) & m.str.contains("Login: user=", literal=True))
        .then(2)
        .when(m.str.starts_with("LOGIN, "))
        .then(3)
        .when(m.str.starts_with("Login user=") | m.str.starts_with("Authenticated user="))
        .then(4)
        .otherwise(0)
    )
    df = pl.DataFrame({"msg": msg}, schema={"msg": pl.String}).with_columns(kind=kind.cast(pl.UInt8))
    tail = m.str.splitn('POP login by user "', 2).struct.field("field_1")  # after the first
    q = pl.when(pl.col("kind") == 1).then(tail).str.extract_groups(_QPOPPER_TAIL).struct
    d = pl.when(pl.col("kind") == 2).then(m).str.extract_groups(_DOVECOT_HEAD).struct
    df = df.select("kind", *[pl.coalesce(q.field(str(i)), d.field(str(i))).alias(f"f{i}") for i in (1, 2, 3)])
    k, capital = pl.col("kind"), r"[A-Z]|[^\x00-\x7F]"
    user_or_host = pl.when(k == 1).then(pl.concat_str("f1", "f2")).when(k == 2).then(pl.col("f2"))
    flags = df.select(
        cased=user_or_host.str.contains(capital).any(), mapped=pl.col("f3").str.starts_with("::ffff:").any()
    ).row(0)
    return {**df.to_dict(), "cased": bool(flags[0]), "mapped": bool(flags[1])}


def parse_pop(rows: pl.DataFrame, base: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(events, fates) of POP/IMAP rows: `pop_login` (user, client_ip, relay_host, mailer = the
    service) for each successful login, `pop_other` for the other lines of these programs.

    One compiled pass gives each line's kind and the fields of the common qpopper and Dovecot
    forms; the full patterns read only the login lines it left, on their own rows."""
    found = kernels.pop_logins(rows["msg"])
    kinds, read = found["kind"].to_numpy(), found["f1"].is_not_null().to_numpy()
    k, f1, f2 = pl.col("_k"), pl.col("_f1"), pl.col("_f2")
    rows = rows.select(*base, "msg", "prog").with_columns(
        _k=found["kind"], _f1=found["f1"], _f2=found["f2"], client_ip=found["f3"]
    )
    # qpopper's fields are user, host, address; Dovecot's service, user, address
    rows = rows.with_columns(
        user=pl.when(k == 2).then(f2).otherwise(f1),
        relay_host=pl.when(k == 1).then(f2),
        _service=pl.when(k == 2).then(f1),
    ).drop("_f1", "_f2")
    full = (kinds >= 3) | ((kinds > 0) & ~read)  # Courier, UW, and the forms the kernel does not read
    if full.any():
        mask = pl.Series(full)
        rows = pl.concat([rows.filter(~mask), _full_patterns(rows.filter(mask))])
    imap_or_pop3 = (
        pl.when(pl.col("prog").str.contains("imap", literal=True)).then(pl.lit("imap")).otherwise(pl.lit("pop3"))
    )
    bad = (k != 0) & pl.col("user").is_null()
    user, host, ip = pl.col("user"), pl.col("relay_host"), pl.col("client_ip")
    if found["cased"] or full.any():  # (else lower-casing would change nothing)
        user, host = user.str.to_lowercase(), host.str.to_lowercase()
    if found["mapped"] or full.any():
        ip = ip.str.strip_prefix("::ffff:")
    events = rows.filter(~bad).select(
        *base,
        event=pl.when(k == 0).then(pl.lit("pop_other")).otherwise(pl.lit("pop_login")),
        user=user,
        client_ip=ip,
        relay_host=host,
        mailer=pl.when(k == 1)
        .then(pl.lit("pop3"))
        .when(k == 2)
        .then(pl.col("_service"))
        .when(k != 0)
        .then(imap_or_pop3),
        detail=pl.when(k == 0).then(pl.col("msg")),
    )
    return events, fates_of(rows.filter(bad), "malformed", "login line not understood")


def _full_patterns(rows: pl.DataFrame) -> pl.DataFrame:
    """user, relay_host, client_ip and _service of login rows by the full pattern of their kind."""
    k, msg = pl.col("_k"), pl.col("msg")
    fields = {
        1: (_QPOPPER, {"user": "1", "relay_host": "2", "client_ip": "3"}),
        2: (_DOVECOT, {"_service": "1", "user": "2", "client_ip": "3"}),
        3: (_COURIER, {"user": "1", "client_ip": "2"}),
        4: (_UW, {"user": "1", "relay_host": "2", "client_ip": "3"}),
    }
    rows = rows.with_columns(
        [
            pl.when(k == kind).then(msg).str.extract_groups(pattern).alias(f"_g{kind}")
            for kind, (pattern, _) in fields.items()
        ]
    )
    cols = ("user", "relay_host", "client_ip", "_service")
    return rows.with_columns(
        [
            pl.coalesce(
                [pl.col(f"_g{kind}").struct.field(groups[c]) for kind, (_, groups) in fields.items() if c in groups]
                + [pl.lit(None, pl.String)]
            ).alias(c)
            for c in cols
        ]
    ).drop([f"_g{kind}" for kind in fields])
