"""DNS-server lines to `dns_queries` rows (iplog 2.2.3 and its 2015 wording).

iplog logs every datagram that reaches the DNS host; a query is a UDP datagram to the
`domain` service (port 53). Other iplog lines (TCP, NTP, scans) are iplog's but not queries:
they are counted as ignored, like other programs' lines.
"""

from __future__ import annotations

import polars as pl

QUERY_SCHEMA = {
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


def parse_iplog(df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return (queries, fates) for framed lines of one DNS server and day."""
    is_iplog = pl.col("prog").str.to_lowercase() == "iplog"
    msg = pl.col("msg")
    udp = is_iplog & msg.str.starts_with("UDP: ")
    df = df.with_columns(
        pl.when(~pl.col("framed")).then(pl.lit("malformed"))
        .when(udp).then(pl.lit("udp"))
        .otherwise(pl.lit("ignored")).alias("_kind"))
    u = df.filter(pl.col("_kind") == "udp").with_columns(msg.str.extract_groups(_IPLOG_UDP).alias("_u"))
    f = pl.col("_u").struct
    u = u.with_columns(
        _svc=f.field("1"), _src=f.field("2"),
        client_port=f.field("3").cast(pl.Int32), bytes=f.field("4").cast(pl.Int32))
    src = pl.col("_src")
    u = u.with_columns(
        client_ip=pl.coalesce(src.str.extract(r"\(([0-9A-Fa-f:.]+)\)$", 1),
                              src.str.extract(r"^([0-9.]+|[0-9A-Fa-f:]+:[0-9A-Fa-f:]*)$", 1)),
        client_name=src.str.extract(r"^(\S+) \(", 1),
    )
    is_query = pl.col("_svc").is_in(["domain", "port 53"])
    truncated = pl.col("_svc").is_null() & msg.str.starts_with("UDP: dgram to domain")
    fates = pl.concat([
        u.select("line_no", "copy",
                 pl.when(truncated).then(pl.lit("malformed"))
                 .when(is_query).then(pl.lit("parsed")).otherwise(pl.lit("ignored")).alias("fate"),
                 pl.when(truncated).then(pl.lit("iplog UDP line truncated")).alias("reason")),
        df.filter(pl.col("_kind") != "udp").select(
            "line_no", "copy", pl.col("_kind").alias("fate"),
            pl.when(pl.col("_kind") == "malformed").then(pl.lit("no syslog header")).alias("reason")),
    ])
    queries = u.filter(is_query).select(
        [pl.col(c).cast(t) if c in u.columns else pl.lit(None, t).alias(c) for c, t in QUERY_SCHEMA.items()])
    return queries, fates.sort("line_no", "copy")
