"""Checks of a site config's values, each error one line naming the file and the key."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A site config that cannot be used; the message names the file and key."""


_INTERVAL = re.compile(r"^(\d+)\s*(s|m|min|h)$")
_RUN_AT = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_interval(text: str) -> timedelta:
    m = _INTERVAL.match(text.strip())
    if not m:
        raise ValueError(f"interval {text!r} is not like '10m', '1h' or '300s'")
    n, unit = int(m.group(1)), m.group(2)
    td = {"s": timedelta(seconds=n), "m": timedelta(minutes=n), "min": timedelta(minutes=n), "h": timedelta(hours=n)}[
        unit
    ]
    if td < timedelta(minutes=1) or timedelta(days=1) % td:
        raise ValueError(f"interval {text!r} must be at least 1 minute and divide a day evenly")
    return td


def parse_duration(text: str) -> timedelta:
    """'30s', '5m', '2h' as a timedelta (retry delays)."""
    m = _INTERVAL.match(text.strip())
    if not m:
        raise ValueError(f"duration {text!r} is not like '30s', '5m' or '1h'")
    n, unit = int(m.group(1)), m.group(2)
    return {"s": timedelta(seconds=n), "m": timedelta(minutes=n), "min": timedelta(minutes=n), "h": timedelta(hours=n)}[
        unit
    ]


def _get(table: dict[str, Any], key: str, where: str, kind: type, default: Any = ...) -> Any:
    if key not in table:
        if default is ...:
            raise ConfigError(f"{where}: missing key '{key}'")
        return default
    value = table[key]
    if kind is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: key '{key}' must be a list of strings")
        return tuple(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: key '{key}' must be a {kind.__name__}, got {value!r}")
    return value


def _path_key(table: dict[str, Any], key: str, where: str, base: Path) -> str | None:
    value = _get(table, key, where, str, None)
    if value is None:
        return None
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else base / p)


def _choice(table: dict[str, Any], key: str, where: str, allowed: tuple[str, ...]) -> str:
    value = _get(table, key, where, str, allowed[0])
    if value not in allowed:
        raise ConfigError(f"{where}: key '{key}' must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _day_key(table: dict[str, Any], key: str, where: str) -> date | None:
    value = table.get(key)
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value  # TOML dates (start = 2002-02-16) arrive as dates
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(f"{where}: key '{key}' must be a date like 2002-02-16, got {value!r}")


def _duration_key(table: dict[str, Any], key: str, where: str, default: timedelta) -> timedelta:
    if key not in table:
        return default
    try:
        return parse_duration(_get(table, key, where, str))
    except ValueError as e:
        raise ConfigError(f"{where}: key '{key}': {e}") from None


def _number(table: dict[str, Any], key: str, where: str, kind: type, default: Any) -> Any:
    value = table.get(key, default)
    whole = isinstance(value, int | float) and float(value).is_integer()
    if not isinstance(value, int | float) or isinstance(value, bool) or (kind is int and not whole):
        raise ConfigError(f"{where}: key '{key}' must be a{'n integer' if kind is int else ' number'}")
    if value < 0:
        raise ConfigError(f"{where}: key '{key}' must not be negative")
    return kind(value)


def _networks(nets: tuple[str, ...], where: str) -> tuple[str, ...]:
    import ipaddress

    for n in nets:
        try:
            ipaddress.ip_network(n, strict=False)
        except ValueError:
            raise ConfigError(f"{where}: key 'local_networks': {n!r} is not a network like 10.1.0.0/16") from None
    return nets
