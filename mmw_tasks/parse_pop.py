"""POP3/IMAP logins (N_pop of the model) from the mail server's log: qpopper, Dovecot 1.x/2.x,
Courier, UW imapd. Each successful login is one `pop_login` event (IMAP too); failed logins and
other lines of these programs are `pop_other` (kept, not counted).

Used by every mail parser (sendmail, Postfix, Exim) for the lines that are not the MTA's.
"""

from __future__ import annotations

import polars as pl

from mmw_tasks import kernels
from mmw_tasks.parse_util import fates_of

QPOPPER_PROGS = ["popper", "qpopper", "in.qpopper", "ipop3d"]
DOVECOT_PROGS = ["dovecot", "Info", "imap-login", "pop3-login", "dovecot-auth", "auth", "auth-worker"]
COURIER_PROGS = ["pop3d", "pop3d-ssl", "imapd", "imapd-ssl", "courierpop3login", "courier-imapd",
                 "courier-pop3d", "couriertcpd"]
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
_KINDS = {1: "qpopper", 2: "dovecot", 3: "courier", 4: "uw"}


def parse_pop(rows: pl.DataFrame, base: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(events, fates) of POP/IMAP rows: `pop_login` (user, client_ip, relay_host, mailer = the
    service) for each successful login, `pop_other` for the other lines of these programs.

    One compiled pass gives each line's kind and the fields of the common qpopper and Dovecot
    forms (f1, f2, f3); the full patterns read only the lines it left, each kind's on its own
    rows (the others are masked to null, so no pattern is applied to another kind's line)."""
    msg, prog, k = pl.col("msg"), pl.col("prog"), pl.col("_k")
    found = kernels.pop_logins(rows["msg"])
    rows = rows.select(*base, "msg", "prog").with_columns(
        _k=found["kind"].replace_strict(_KINDS, default=None, return_dtype=pl.String),
        _f1=found["f1"], _f2=found["f2"], _f3=found["f3"])
    fields = ("_f1", "_f2", "_f3")
    q1, q2, q3 = (pl.when(k == "qpopper").then(pl.col(f)) for f in fields)  # user, host, address
    d1, d2, d3 = (pl.when(k == "dovecot").then(pl.col(f)) for f in fields)  # service, user, address
    user, ip, host, service = [q1, d2], [q3, d3], [q2], [d1]
    # the full patterns, each on the rows of its kind the kernel did not read (most batches: none)
    kinds, fast = found["kind"].to_numpy(), found["f1"].is_not_null().to_numpy()
    full = {"_qs": (_QPOPPER, ((kinds == 1) & ~fast).any(), {"1": user, "2": host, "3": ip}),
            "_ds": (_DOVECOT, ((kinds == 2) & ~fast).any(), {"1": service, "2": user, "3": ip}),
            "_c": (_COURIER, (kinds == 3).any(), {"1": user, "2": ip}),
            "_u": (_UW, (kinds == 4).any(), {"1": user, "2": host, "3": ip})}
    kind_of = {"_qs": "qpopper", "_ds": "dovecot", "_c": "courier", "_u": "uw"}
    for col, (pattern, needed, groups) in full.items():
        if needed:
            rows = rows.with_columns(pl.when((k == kind_of[col]) & pl.col("_f1").is_null()).then(msg)
                                     .str.extract_groups(pattern).alias(col))
            for group, into in groups.items():
                into.append(pl.col(col).struct.field(group))
    imap_or_pop3 = pl.when(prog.str.contains("imap", literal=True)).then(pl.lit("imap")).otherwise(pl.lit("pop3"))
    rows = rows.with_columns(
        user=pl.coalesce(user), client_ip=pl.coalesce(ip), relay_host=pl.coalesce(host),
        mailer=pl.when(k == "qpopper").then(pl.lit("pop3")).when(k == "dovecot")
        .then(pl.coalesce(service)).when(k.is_not_null()).then(imap_or_pop3))
    bad = k.is_not_null() & pl.col("user").is_null()
    events = rows.filter(~bad).select(
        *base, event=pl.when(k.is_null()).then(pl.lit("pop_other")).otherwise(pl.lit("pop_login")),
        user=pl.col("user").str.to_lowercase(), client_ip=pl.col("client_ip").str.strip_prefix("::ffff:"),
        relay_host=pl.col("relay_host").str.to_lowercase(), mailer=pl.col("mailer"),
        detail=pl.when(k.is_null()).then(msg))
    return events, fates_of(rows.filter(bad), "malformed", "login line not understood")
