"""What kind of machine a client address is: the server itself, a mail server or relay, one of
our machines, or an outside one (what decides whether there is something to unplug)."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

import polars as pl

from mmw_tasks.config import Site


def client_kind(ip: str | None, site: Site) -> str:
    """localhost, server (a mail server or configured relay), local (our network), remote, unknown."""
    return _client_kind(ip, site.mail_server_ips + site.relay_hosts, site.local_networks)


@lru_cache(maxsize=65536)
def _client_kind(ip: str | None, servers: tuple[str, ...], networks: tuple[str, ...]) -> str:
    if not ip:
        return "unknown"
    if ip in servers:
        return "server"
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return "unknown"
    if addr.is_loopback:
        return "localhost"
    if any(addr in ipaddress.ip_network(n, strict=False) for n in networks):
        return "local"
    return "remote"


def client_words(ip: str, site: Site) -> str:
    return {
        "local": "one of our machines",
        "remote": "an outside machine",
        "localhost": "the server itself",
        "server": "a server",
        "unknown": "unknown",
    }[client_kind(ip, site)]


KINDS = ("localhost", "server", "local", "remote", "unknown")
SPLIT_KINDS = ("localhost", "server", "unknown")  # their mail is judged per sender, not as one host


def kinds_of(ips: pl.Series, site: Site, relays: tuple[str, ...] = ()) -> pl.Series:
    """client_kind of every address in `ips` at once (`relays`: learnt relays, kind "server").
    IPv4 addresses are sorted into the site's networks by integer ranges; the few others (IPv6,
    garbage) one by one."""
    servers = tuple(site.mail_server_ips) + tuple(site.relay_hosts) + tuple(relays)
    v4 = [ipaddress.ip_network(n, strict=False) for n in site.local_networks]
    ranges = [(int(n.network_address), int(n.broadcast_address)) for n in v4 if n.version == 4]
    octets = ips.str.extract_groups(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$").struct.unnest()
    frame = pl.DataFrame({"ip": ips}).with_columns(
        octets.select(pl.all().cast(pl.Int64, strict=False)).to_struct("o").alias("o")
    )
    o = [pl.col("o").struct.field(f) for f in octets.columns]
    valid4 = pl.all_horizontal([(x.is_not_null()) & (x <= 255) for x in o])
    as_int = o[0] * 16777216 + o[1] * 65536 + o[2] * 256 + o[3]
    in_local = pl.any_horizontal([as_int.is_between(lo, hi) for lo, hi in ranges]) if ranges else pl.lit(False)
    kind = (
        pl.when(pl.col("ip").is_null() | (pl.col("ip") == ""))
        .then(pl.lit("unknown"))
        .when(pl.col("ip").is_in(list(servers)))
        .then(pl.lit("server"))
        .when(valid4 & (o[0] == 127))
        .then(pl.lit("localhost"))
        .when(valid4 & in_local)
        .then(pl.lit("local"))
        .when(valid4)
        .then(pl.lit("remote"))
    )
    out = frame.select(kind=kind)["kind"]
    slow = frame["ip"].filter(out.is_null())
    if slow.len():
        looked = {ip: _client_kind(ip, servers, site.local_networks) for ip in slow.unique().to_list()}
        out = pl.DataFrame({"ip": ips, "k": out}).select(
            pl.col("k").fill_null(pl.col("ip").replace_strict(looked, default="unknown", return_dtype=pl.String))
        )["k"]
    return out.alias("client_kind")
