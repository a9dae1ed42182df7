"""Checks of a site config's values. Every error is one line naming the file, the line where the
key is (when it can be found), the table and the key: `site.toml:9: [[servers]] '1mx': unknown
key 'knownhosts' (did you mean 'known_hosts'?)`."""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from mmw_tasks.config.schema import Range


class ConfigError(ValueError):
    """A site config that cannot be used; the message names the file and key."""


_INTERVAL = re.compile(r"^(\d+)\s*(s|m|min|h)$")
_UNITS = {"s": "seconds", "m": "minutes", "min": "minutes", "h": "hours"}
_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\s\"'-]+?)\s*\]\]?")
_KEY = re.compile(r"^\s*([A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')\s*=")
REQUIRED: Any = object()  # the default of a key that must be given
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_SIZE_UNITS |= {"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
MIN_MEMORY = 256 * 10**6  # below this DuckDB cannot run a day's aggregates at all


def parse_interval(text: str) -> timedelta:
    td = parse_duration(text, "interval")
    if td < timedelta(minutes=1) or timedelta(days=1) % td:
        raise ValueError(f"interval {text!r} must be at least 1 minute and divide a day evenly")
    return td


def parse_duration(text: str, what: str = "duration") -> timedelta:
    """'30s', '5m', '2h' as a timedelta (retry delays, the site's interval)."""
    m = _INTERVAL.match(text.strip())
    if not m:
        raise ValueError(f"{what} {text!r} is not like '30s', '10m' or '1h'")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


def parse_size(text: str) -> int:
    """'1GB', '1.5 GiB', '512MB' as bytes."""
    m = _SIZE.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a size like '1GB', '512MB' or '2GiB'")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


def line_of(text: str, table: str, index: int | None, key: str | None) -> int | None:
    """The 1-based line of `key` in `[table]` (the index-th `[[table]]`; table "" is the top level,
    where a key may also be a table's header), or of the table's header when the key is not on a
    line of its own (or `key` is None); None when neither is found."""
    current: tuple[str, int | None] = ("", None)
    counts: dict[str, int] = {}
    header = None
    for n, line in enumerate(text.splitlines(), 1):
        h = _HEADER.match(line)
        if h:
            name = re.sub(r"[\s\"']", "", h.group(2))
            if h.group(1) == "[[":
                counts[name] = counts.get(name, -1) + 1
            current = (name, counts[name] if h.group(1) == "[[" else None)
            if current == (table, index):
                header = n
            if table == "" and key is not None and name.split(".")[0] == key:
                return n
            continue
        k = _KEY.match(line)
        if key is not None and k and k.group(1).strip("\"'") == key and current == (table, index):
            return n
    return header


def key_error(path: Path, table: str, key: str, message: str) -> ConfigError:
    """An error about a key found good when read that turns out unusable (the lake): one line,
    as Table.error words it, reading the file again for the key's line."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        text = ""
    return Table(Path(path), text, table, {}).error(key, message)


@dataclass
class Table:
    """One table of a config file, `data` as TOML gave it, with what its errors point at."""

    path: Path
    text: str  # the whole file, to find a key's line
    name: str  # dotted TOML name: site, servers, report.email
    data: dict[str, Any]
    index: int | None = None  # the n-th (0-based) of an array of tables, [[servers]]
    label: str = ""  # as errors show it: [site], [[servers]] '1mx'

    def __post_init__(self) -> None:
        if not self.label:
            self.label = f"[[{self.name}]] #{self.index + 1}" if self.index is not None else f"[{self.name}]"

    @classmethod
    def of(cls, path: Path, text: str, name: str, data: Any, index: int | None = None) -> Table:
        """The table, or an error when the file has something else under its name."""
        where = Table(path, text, name, {}, index)
        if not isinstance(data, dict):
            raise where.error(None, "must be a table" if index is None else "must be a table ([[servers]])")
        return Table(path, text, name, data, index)

    def error(self, key: str | None, message: str) -> ConfigError:
        """`message` as one line: file and line, table, then `key 'x' ...` unless told otherwise."""
        line = line_of(self.text, self.name, self.index, key)
        head = f"{self.path}:{line}" if line else f"{self.path}"
        return ConfigError(f"{head}: {self.label}: " + (f"key '{key}' " if key else "") + message)

    def only(self, known: Iterable[str]) -> None:
        """Every key of the table is one of `known`; an unknown one (a typo that would silently
        do nothing) is an error, with the closest known key."""
        names = sorted(set(known))
        for key in self.data:
            if key in names:
                continue
            close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(names)}"
            line = line_of(self.text, self.name, self.index, key)
            head = f"{self.path}:{line}" if line else f"{self.path}"
            raise ConfigError(f"{head}: {self.label}: unknown key '{key}' ({hint})")

    def value(self, key: str, default: Any) -> Any:
        if key not in self.data:
            if default is REQUIRED:
                raise self.error(None, f"missing key '{key}'")
            return default
        return self.data[key]

    def text_key(self, key: str, default: Any = REQUIRED) -> Any:
        v = self.value(key, default)
        if key in self.data and not (isinstance(v, str) and v.strip()):
            raise self.error(key, f"must be a non-empty string, got {v!r}")
        return v

    def strings(self, key: str, default: Any = REQUIRED, one: bool = False) -> tuple[str, ...]:
        """A list of strings (`one`: or a single string, taken as a list of it)."""
        v = self.value(key, default)
        if key not in self.data:
            return tuple(v)
        if one and isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.error(key, "must be a list of strings")
        return tuple(v)

    def boolean(self, key: str, default: bool) -> bool:
        v = self.value(key, default)
        if not isinstance(v, bool):
            raise self.error(key, f"must be a bool (true or false), got {v!r}")
        return v

    def number(self, key: str, default: Any, kind: type, allowed: Range | None = None) -> Any:
        """An int (a whole number) or a float, within `allowed` when given."""
        v = self.value(key, default)
        if key not in self.data:
            return v
        whole = isinstance(v, int | float) and float(v).is_integer()
        if not isinstance(v, int | float) or isinstance(v, bool) or (kind is int and not whole):
            raise self.error(key, f"must be a{'n integer' if kind is int else ' number'}, got {v!r}")
        if allowed is not None and not allowed.holds(v):
            raise self.error(key, f"must be {allowed.text()}, got {v!r}")
        return kind(v)

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        v = self.value(key, allowed[0])
        if v not in allowed:
            raise self.error(key, f"must be one of {', '.join(allowed)}, got {v!r}")
        return v

    def day(self, key: str) -> date | None:
        v = self.data.get(key)
        if v is None or (isinstance(v, date) and not isinstance(v, datetime)):
            return v  # TOML dates (start = 2002-02-16) arrive as dates
        if isinstance(v, str):
            try:
                return date.fromisoformat(v)
            except ValueError:
                pass
        raise self.error(key, f"must be a date like 2002-02-16, got {v!r}")

    def duration(self, key: str, default: timedelta) -> timedelta:
        if key not in self.data:
            return default
        v = self.text_key(key)
        try:
            return parse_duration(v)
        except ValueError:
            raise self.error(key, f"must be a duration like '30s', '5m' or '1h', got {v!r}") from None

    def size(self, key: str, default: int, least: int) -> int:
        """A size in bytes written as '1GB', '512MB' or '2GiB', at least `least` bytes."""
        if key not in self.data:
            return default
        v = self.data[key]
        try:
            if not isinstance(v, str):
                raise ValueError
            size = parse_size(v)
        except ValueError:
            raise self.error(key, f"must be a size like '1GB', '512MB' or '2GiB', got {v!r}") from None
        if size < least:
            raise self.error(key, f"must be at least {least // 10**6}MB, got {v!r}")
        return size

    def every(self, key: str, default: timedelta | None) -> timedelta | None:
        """A period like '10m', at least a minute and less than a day; 0 or "off": never (None)."""
        if key not in self.data:
            return default
        v = self.data[key]
        if not isinstance(v, bool) and (v == 0 or v in ("0", "off")):
            return None
        usage = f"must be a period like '10m' (at least 1 minute, less than a day), or 0 or \"off\", got {v!r}"
        if not isinstance(v, str):
            raise self.error(key, usage)
        try:
            every = parse_duration(v)
        except ValueError:
            raise self.error(key, usage) from None
        if not timedelta(minutes=1) <= every < timedelta(days=1):
            raise self.error(key, usage)
        return every

    def path_key(self, key: str, base: Path) -> str | None:
        v = self.text_key(key, None)
        if v is None:
            return None
        p = Path(v).expanduser()
        return str(p if p.is_absolute() else base / p)

    def addresses(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        """IP addresses (10.1.0.25, 2001:db8::25), in the form the logs print them."""
        out = []
        for x in self.strings(key, default):
            try:
                out.append(str(ipaddress.ip_address(x.strip())))
            except ValueError:
                raise self.error(key, f"has {x!r}, which is not an IP address like 10.1.0.25") from None
        return tuple(out)

    def networks(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        """Networks (10.1.0.0/16) or single addresses; 10.1.2.3/16 is taken as 10.1.0.0/16."""
        out = []
        for x in self.strings(key, default):
            try:
                out.append(str(ipaddress.ip_network(x.strip(), strict=False)))
            except ValueError:
                raise self.error(key, f"has {x!r}, which is not a network like 10.1.0.0/16") from None
        return tuple(out)
