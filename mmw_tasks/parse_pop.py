"""POP3/IMAP logins (N_pop of the model) from the mail server's log: qpopper, Dovecot 1.x/2.x,
Courier, UW imapd. Each successful login is one `pop_login` event (IMAP too); failed logins and
other lines of these programs are `pop_other` (kept, not counted).

Used by every mail parser (sendmail, Postfix, Exim) for the lines that are not the MTA's.
"""

from __future__ import annotations

import polars as pl

from mmw_tasks.parse_util import fates_of, finish, slicer

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


_IP_HEAD = r"^([0-9A-Fa-f:.]+)"


def _qpopper_fast(q: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(logins read by finds and slices, rows left for the regex) of qpopper login lines."""
    msg, r = pl.col("msg"), pl.col("_r")
    sl = slicer(q)
    q = q.with_columns(_r=sl(msg, msg.str.find('POP login by user "', literal=True) + 19))
    q = q.with_columns(_e=r.str.find('" at (', literal=True))
    q = q.with_columns(user=sl(r, 0, pl.col("_e")), _r=sl(r, pl.col("_e") + 6))
    q = q.with_columns(_p=r.str.find(") ", literal=True))
    q = q.with_columns(relay_host=sl(r, 0, pl.col("_p")), client_ip=sl(r, pl.col("_p") + 2).str.extract(_IP_HEAD, 1))
    ok = (pl.col("user").is_not_null() & pl.col("client_ip").is_not_null() & pl.col("_p").is_not_null()
          & ~pl.col("user").str.contains('"', literal=True) & ~pl.col("relay_host").str.contains(")", literal=True))
    q = q.with_columns(_ok=ok.fill_null(False))
    return q.filter("_ok"), q.filter(~pl.col("_ok")).select(q.columns[:q.columns.index("msg") + 1])


def _dovecot_fast(d: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(logins read by finds and slices, rows left for the regex) of Dovecot login lines that
    begin "<service>-login: Login: user=<...>"."""
    msg, r = pl.col("msg"), pl.col("_r")
    sl = slicer(d)
    d = d.with_columns(_s=msg.str.find("-login: Login: user=<", literal=True))
    d = d.with_columns(mailer=sl(msg, 0, pl.col("_s")), _r=sl(msg, pl.col("_s") + 21))
    d = d.with_columns(_g=r.str.find(">", literal=True))
    d = d.with_columns(user=sl(r, 0, pl.col("_g")), _r=sl(r, pl.col("_g")))
    d = d.with_columns(client_ip=sl(r, r.str.find("rip=", literal=True) + 4).str.extract(_IP_HEAD, 1))
    ok = (pl.col("mailer").is_in(["pop3", "imap", "managesieve", "submission"]) & pl.col("user").is_not_null()
          & pl.col("client_ip").is_not_null())
    d = d.with_columns(_ok=ok.fill_null(False))
    return d.filter("_ok"), d.filter(~pl.col("_ok")).select(d.columns[:d.columns.index("msg") + 1])


def parse_pop(rows: pl.DataFrame, base: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(events, fates) of POP/IMAP rows: `pop_login` (user, client_ip, relay_host, mailer = the
    service) for each successful login, `pop_other` for the other lines of these programs."""
    msg, prog = pl.col("msg"), pl.col("prog")
    kind = (pl.when(msg.str.contains("POP login by user", literal=True)).then(pl.lit("qpopper"))
            .when(msg.str.contains("-login: ", literal=True) & msg.str.contains("Login: user=", literal=True))
            .then(pl.lit("dovecot"))
            .when(msg.str.starts_with("LOGIN, ")).then(pl.lit("courier"))
            .when(msg.str.starts_with("Login user=") | msg.str.starts_with("Authenticated user="))
            .then(pl.lit("uw")))
    rows = rows.with_columns(_k=kind)
    g = pl.col("g").struct
    parts = []
    fast, q = _qpopper_fast(rows.filter(pl.col("_k") == "qpopper").select(*base, "msg"))
    parts.append(fast.select(*base, "user", "relay_host", "client_ip", mailer=pl.lit("pop3")))
    q = q.with_columns(g=msg.str.extract_groups(_QPOPPER))
    parts.append(q.select(*base, user=g.field("1"), relay_host=g.field("2"), client_ip=g.field("3"),
                          mailer=pl.lit("pop3")))
    fast, d = _dovecot_fast(rows.filter(pl.col("_k") == "dovecot").select(*base, "msg"))
    parts.append(fast.select(*base, "user", "client_ip", "mailer"))
    d = d.with_columns(g=msg.str.extract_groups(_DOVECOT))
    parts.append(d.select(*base, user=g.field("2"), client_ip=g.field("3"), mailer=g.field("1")))
    c = rows.filter(pl.col("_k") == "courier").with_columns(g=msg.str.extract_groups(_COURIER))
    parts.append(c.select(*base, user=g.field("1"), client_ip=g.field("2"),
                          mailer=pl.when(prog.str.contains("imap", literal=True)).then(pl.lit("imap"))
                          .otherwise(pl.lit("pop3"))))
    u = rows.filter(pl.col("_k") == "uw").with_columns(g=msg.str.extract_groups(_UW))
    parts.append(u.select(*base, user=g.field("1"), relay_host=g.field("2"), client_ip=g.field("3"),
                          mailer=pl.when(prog.str.contains("imap", literal=True)).then(pl.lit("imap"))
                          .otherwise(pl.lit("pop3"))))
    cols = {"user": pl.String, "relay_host": pl.String, "client_ip": pl.String, "mailer": pl.String}
    logins = pl.concat([p.with_columns([pl.lit(None, t).alias(c) for c, t in cols.items() if c not in p.columns])
                        .select(*base, *cols) for p in parts])
    bad = logins.filter(pl.col("user").is_null())
    logins = logins.filter(pl.col("user").is_not_null()).with_columns(
        event=pl.lit("pop_login"),
        user=pl.col("user").str.to_lowercase(),
        client_ip=pl.col("client_ip").str.strip_prefix("::ffff:"),
        relay_host=pl.col("relay_host").str.to_lowercase())
    other = rows.filter(pl.col("_k").is_null()).select(*base, event=pl.lit("pop_other"), detail=msg)
    return finish([logins, other]), fates_of(bad, "malformed", "login line not understood")
