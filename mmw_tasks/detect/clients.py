"""What kind of machine a client address is: the server itself, a mail server or relay, one of
our machines, or an outside one (what decides whether there is something to unplug)."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

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
