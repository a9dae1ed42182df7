"""DNS-server lines to `dns_queries` rows: iplog 2.2.3 (and its 2015 wording), BIND 8.3 and
9.2-9.20 query logs (syslog or file channel), dnsmasq `log-queries` (plain and `extra`), Unbound
`log-queries` (syslog or its own file).

A row is one query received; `client_ip` is who asked (Dq counts the mail servers' queries),
`qname`/`qtype` where the format has them. A server's other lines (iplog's TCP lines, BIND's
denials and zone loads, dnsmasq's forwarded/reply lines, Unbound's replies and statistics) are
its own but not queries: they are counted as ignored, like other programs' lines. A line that
looks like a query but cannot be read is malformed.
"""

from __future__ import annotations

import polars as pl

from mmw_tasks.parse.fields import Schema, concat_fates, fates_of, finish, of_day, slicer, unframed

QUERY_SCHEMA: Schema = {
    "ts": pl.Datetime("us", "UTC"),
    "server": pl.String,
    "file": pl.String,
    "line_no": pl.Int64,
    "repeat": pl.Boolean,
    "client_ip": pl.String,
    "client_port": pl.Int32,
    "client_name": pl.String,
    "qname": pl.String,
    "qtype": pl.String,
    "bytes": pl.Int32,
}

# "UDP: dgram to domain from 10.1.0.25:1053 (38 data bytes)", with -D "to ns:domain", resolved
# sources "mx.example.ac.jp (10.1.0.25):1053", and the 2015 fork's "UDP: to domain from ...".
_IPLOG_UDP = r"^UDP: (?:dgram )?to (?:\S+:)?(\S+|port \d+) from (.+?):(\d+) \((\d+) data bytes\)$"


def parse_iplog(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(queries, fates) for framed rows of one DNS server (see parse_util)."""
    rows = of_day(rows)
    msg = pl.col("msg")
    framed = rows.filter(pl.col("framed"))
    is_udp = ((pl.col("prog") == "iplog") & msg.str.starts_with("UDP: ")).fill_null(False)
    udp = framed.filter(is_udp).select("ts", "line_no", "repeat", "copy", "msg")
    fast, udp = _iplog_fast(udp)
    u = udp.with_columns(g=msg.str.extract_groups(_IPLOG_UDP))
    g = pl.col("g").struct
    u = u.with_columns(
        _svc=g.field("1"), _src=g.field("2"), client_port=g.field("3").cast(pl.Int32), bytes=g.field("4").cast(pl.Int32)
    )
    src = pl.col("_src")
    u = u.with_columns(
        client_ip=pl.coalesce(
            src.str.extract(r"\(([0-9A-Fa-f:.]+)\)$", 1), src.str.extract(r"^([0-9.]+|[0-9A-Fa-f:]+:[0-9A-Fa-f:]*)$", 1)
        ),
        client_name=src.str.extract(r"^(\S+) \(", 1),
    )
    is_query = pl.col("_svc").is_in(["domain", "port 53"])
    truncated = pl.col("_svc").is_null()
    fates = concat_fates(
        [
            unframed(rows),
            fates_of(framed.filter(~is_udp), "ignored"),
            fates_of(u.filter(truncated), "malformed", "iplog UDP line not understood"),
            fates_of(u.filter(~truncated & ~is_query), "ignored"),
        ]
    )
    return finish([fast, u.filter(is_query)], QUERY_SCHEMA), fates


_IPLOG_FAST = r"^(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}):(\d+) \((\d+) data bytes\)$"


def _iplog_fast(udp: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(queries, the rest): the common line "UDP: dgram to domain from 10.1.0.25:1053 (38 data
    bytes)", read by one short regex on what follows the fixed head; resolved names, IPv6 and
    other services go through the full regex."""
    msg = pl.col("msg")
    head = "UDP: dgram to domain from "
    sl = slicer(udp)
    u = udp.with_columns(_g=pl.when(msg.str.starts_with(head)).then(sl(msg, len(head))).str.extract_groups(_IPLOG_FAST))
    g = pl.col("_g").struct
    u = u.with_columns(
        client_ip=g.field("1"),
        client_port=g.field("2").cast(pl.Int32, strict=False),
        bytes=g.field("3").cast(pl.Int32, strict=False),
        client_name=pl.lit(None, pl.String),
    )
    u = u.with_columns(_ok=(pl.col("client_ip").is_not_null() & pl.col("bytes").is_not_null()).fill_null(False))
    return u.filter("_ok"), u.filter(~pl.col("_ok")).select(udp.columns)


# BIND 9.2-9.20: "client [@0x7f..] 1.2.3.4#53 [(name)]: [view v: ]query: name IN A +E(0)K (192.0.2.53)"
_BIND9 = (
    r"client (?:@0x[0-9a-fA-F]+ )?([0-9A-Fa-f:.]+)#(\d+)(?: \([^)]*\))?: (?:view [^:]*: )?"
    r"query: (\S+) (\S+) (\S+)"
)
# BIND 8.2/8.3: "XX+/1.2.3.4/name/TYPE[/CLASS]" (the + means RD set)
_BIND8 = r"^XX[ +]?/([0-9A-Fa-f:.]+)/([^/]*)/([^/\s]+)"


def parse_bind(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Query-log lines of BIND, whatever the version, channel or prefix (category, severity,
    a file-channel stamp re-wrapped by syslog)."""
    rows = of_day(rows)
    msg = pl.col("msg")
    # where ": query: " is, kept for the fast path; the test as a column, since an eager
    # expression used twice (filter, ~filter) is computed twice
    framed = rows.filter(pl.col("framed")).with_columns(_qi=msg.str.find(": query: ", literal=True))
    framed = framed.with_columns(
        _cand=(
            (pl.col("_qi").is_not_null() & msg.str.contains("client ", literal=True)) | msg.str.starts_with("XX")
        ).fill_null(False)
    )
    cand = pl.col("_cand")
    q = framed.filter(cand).select("ts", "line_no", "repeat", "copy", "msg", "_qi")
    fast, q = _bind_fast(q)
    q = q.with_columns(g9=msg.str.extract_groups(_BIND9), g8=msg.str.extract_groups(_BIND8))
    g9, g8 = pl.col("g9").struct, pl.col("g8").struct
    q = q.with_columns(
        client_ip=pl.coalesce(g9.field("1"), g8.field("1")),
        client_port=g9.field("2").cast(pl.Int32, strict=False),
        qname=pl.coalesce(g9.field("3"), g8.field("2")),
        qtype=pl.coalesce(g9.field("5"), g8.field("3")),
    )
    bad = pl.col("client_ip").is_null() | pl.col("qtype").is_null()
    fates = concat_fates(
        [
            unframed(rows),
            fates_of(framed.filter(~cand), "ignored"),
            fates_of(q.filter(bad), "malformed", "BIND query line not understood"),
        ]
    )
    return finish([fast, q.filter(~bad)], QUERY_SCHEMA), fates


def _bind_fast(q: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(queries, the rest): BIND 9's syslog line "client [@0x..] ip#port [(name)]: query: name
    CLASS TYPE flags (dest)" read with one find, a short regex on what comes before ": query: "
    and one split of what follows; anything else (category prefixes, views, BIND 8) goes
    through the regexes."""
    msg = pl.col("msg")
    sl = slicer(q)
    qi = pl.col("_qi")  # where ": query: " begins (parse_bind found it)
    q = q.with_columns(_h=sl(msg, 0, qi).str.extract_groups(_BIND9_HEAD), _t=sl(msg, qi + 9).str.splitn(" ", 4))
    h, t = pl.col("_h").struct, pl.col("_t").struct
    q = q.with_columns(
        client_ip=h.field("1"),
        client_port=h.field("2").cast(pl.Int32, strict=False),
        qname=t.field("field_0"),
        _class=t.field("field_1"),
        qtype=t.field("field_2"),
    )
    ok = (
        pl.col("client_ip").is_not_null()
        & pl.col("client_port").is_not_null()
        & (pl.col("qname") != "")
        & (pl.col("_class") != "")
        & pl.col("qtype").is_not_null()
        & (pl.col("qtype") != "")
    )
    q = q.with_columns(_ok=ok.fill_null(False))
    cols = ["ts", "line_no", "repeat", "copy", "msg"]
    return q.filter("_ok"), q.filter(~pl.col("_ok")).select(cols)


_BIND9_HEAD = r"^client (?:@0x[0-9a-fA-F]+ )?([0-9A-Fa-f:.]+)#(\d+)(?: \([^)]*\))?$"


# dnsmasq: "query[A] name from 1.2.3.4", extra: "21745 10.10.10.33/59490 query[A] name from 10.10.10.33"
_DNSMASQ = r"^(?:\d+ [0-9A-Fa-f:.]+/(\d+) )?(?:(?:TCP|UDP) )?query\[([^\]]+)\] (\S+) from ([0-9A-Fa-f:.]+)"


def parse_dnsmasq(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    rows = of_day(rows)
    msg = pl.col("msg")
    framed = rows.filter(pl.col("framed")).with_columns(  # a column: used twice, computed once
        _cand=((pl.col("prog") == "dnsmasq") & msg.str.contains("query[", literal=True)).fill_null(False)
    )
    cand = pl.col("_cand")
    q = framed.filter(cand).with_columns(g=msg.str.extract_groups(_DNSMASQ))
    g = pl.col("g").struct
    q = q.with_columns(
        client_port=g.field("1").cast(pl.Int32, strict=False),
        qtype=g.field("2").str.replace(r"^type=(\d+)$", "TYPE$1"),
        qname=g.field("3"),
        client_ip=g.field("4"),
    )
    bad = pl.col("client_ip").is_null()
    fates = concat_fates(
        [
            unframed(rows),
            fates_of(framed.filter(~cand), "ignored"),
            fates_of(q.filter(bad), "malformed", "dnsmasq query line not understood"),
        ]
    )
    return finish([q.filter(~bad)], QUERY_SCHEMA), fates


# Unbound: "[2541:0] info: 127.0.0.1 github.com. AAAA IN" (via syslog), or in its own file
# "unbound[7941:0] info: ..."; with log-tag-queryreply the level word is "query:".
_UNBOUND = (
    r"^(?:unbound)?\[\d+:\w+\] (?:info|query): ([0-9A-Fa-f:.]+) (\S+) (\S+) "
    r"(IN|CH|HS|NONE|ANY|CLASS\d+)$"
)


def parse_unbound(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    rows = of_day(rows)
    msg = pl.col("msg")
    framed = rows.filter(pl.col("framed"))
    ours = ((pl.col("prog") == "unbound") | msg.str.starts_with("unbound[")).fill_null(False)
    q = framed.filter(ours).with_columns(g=msg.str.extract_groups(_UNBOUND))
    g = pl.col("g").struct
    q = q.with_columns(client_ip=g.field("1"), qname=g.field("2").str.strip_suffix("."), qtype=g.field("3"))
    hit = pl.col("client_ip").is_not_null()
    fates = concat_fates(
        [unframed(rows), fates_of(framed.filter(~ours), "ignored"), fates_of(q.filter(~hit), "ignored")]
    )
    return finish([q.filter(hit)], QUERY_SCHEMA), fates
