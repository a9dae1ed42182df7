"""Site configuration: a TOML file (contract section 3) read into frozen dataclasses.

Every error names the file and the key, so `mmw` can exit 2 with a one-line reason.
"""

from __future__ import annotations

import re
import tomllib
import zoneinfo
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

DNS_FORMATS = ("iplog", "bind", "dnsmasq", "unbound")
MAIL_FORMATS = ("sendmail", "postfix", "exim")


class ConfigError(ValueError):
    """A site config that cannot be used; the message names the file and key."""


@dataclass(frozen=True)
class Thresholds:
    """Detection knobs; defaults suit a site of a few thousand messages a day."""

    peak_z: float = 4.0  # robust z-score (median/MAD) for an abnormal interval
    min_peak_from: int = 20  # an interval needs at least this many from= lines to be a peak
    min_share: float = 0.3  # a sender/host explains a peak when it holds this share of it
    min_user_unknown: int = 5  # "User unknown" rejections that make a burst suspect
    deferred_min: int = 30  # deferrals to one domain in a day before it is a surge
    dns_excess_z: float = 6.0  # residual Dq z-score with no sender to explain it


@dataclass(frozen=True)
class EmailSettings:
    """[report.email]: mail each daily report through an SMTP server. The password, if the server
    wants one, comes from the environment variable named by `password_env`, never from the file."""

    host: str
    sender: str  # the key is `from`
    to: tuple[str, ...]
    port: int = 25
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password_env: str | None = None
    subject_prefix: str = "[mmw]"
    timeout: float = 30.0


@dataclass(frozen=True)
class ReportSettings:
    """[report]: the daily report's history band and figures."""

    history_days: int = 28  # the trailing days whose coefficients make the band
    band_k: float = 4.0  # band half-width in scaled MADs (1.4826 * MAD ~ one standard deviation)
    band_floor: float = 0.02  # ... but never narrower than this share of the median
    min_history: int = 7  # fewer days of history than this: the band is shown, drift not alerted
    top_sources: int = 6  # senders or hosts drawn in figure 2
    raw_lines: int = 12  # raw log lines quoted per incident card
    email: EmailSettings | None = None


@dataclass(frozen=True)
class Server:
    name: str
    role: str  # "dns" | "mail"
    format: str
    source: str  # glob relative to the config file, absolute glob, or sftp:// URL
    mail_server_ips: tuple[str, ...] = ()
    connection_id: str | None = None  # Airflow connection for sftp sources
    known_hosts: str | None = None  # sftp: known_hosts file (default ~/.ssh/known_hosts)
    identity_file: str | None = None  # sftp on the CLI: private key file (else the SSH agent, ~/.ssh/id_*)


@dataclass(frozen=True)
class Site:
    name: str
    timezone: str
    lake: Path
    local_domains: tuple[str, ...]
    interval: timedelta
    servers: tuple[Server, ...]
    base_dir: Path
    config_path: Path
    thresholds: Thresholds = field(default_factory=Thresholds)
    mailing_lists: tuple[str, ...] = ()  # allow-list of list senders
    bulk_senders: tuple[str, ...] = ()  # allow-list of known bulk senders
    report: ReportSettings = field(default_factory=ReportSettings)

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def interval_minutes(self) -> int:
        return int(self.interval.total_seconds() // 60)

    @property
    def mail_server_ips(self) -> tuple[str, ...]:
        ips: list[str] = []
        for s in self.servers:
            ips.extend(ip for ip in s.mail_server_ips if ip not in ips)
        return tuple(ips)

    def servers_by_role(self, role: str) -> tuple[Server, ...]:
        return tuple(s for s in self.servers if s.role == role)


_INTERVAL = re.compile(r"^(\d+)\s*(s|m|min|h)$")


def parse_interval(text: str) -> timedelta:
    m = _INTERVAL.match(text.strip())
    if not m:
        raise ValueError(f"interval {text!r} is not like '10m', '1h' or '300s'")
    n, unit = int(m.group(1)), m.group(2)
    td = {"s": timedelta(seconds=n), "m": timedelta(minutes=n), "min": timedelta(minutes=n),
          "h": timedelta(hours=n)}[unit]
    if td < timedelta(minutes=1) or timedelta(days=1) % td:
        raise ValueError(f"interval {text!r} must be at least 1 minute and divide a day evenly")
    return td


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


def load_site(path: str | Path) -> Site:
    """Read and validate a site TOML file."""
    path = Path(path).resolve()
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    return site_from_dict(raw, path)


def site_from_dict(raw: dict[str, Any], path: Path) -> Site:
    base = path.parent
    site = raw.get("site")
    if not isinstance(site, dict):
        raise ConfigError(f"{path}: missing table [site]")
    w = f"{path}: [site]"
    tz_name = _get(site, "timezone", w, str)
    try:
        zoneinfo.ZoneInfo(tz_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{w}: key 'timezone' is not a known time zone: {tz_name!r}") from None
    try:
        interval = parse_interval(_get(site, "interval", w, str, "10m"))
    except ValueError as e:
        raise ConfigError(f"{w}: key 'interval': {e}") from None
    lake = Path(_get(site, "lake", w, str, "data_lake"))
    th_raw = raw.get("thresholds", {})
    if not isinstance(th_raw, dict):
        raise ConfigError(f"{path}: [thresholds] must be a table")
    th_defaults = Thresholds()
    th_kwargs = {}
    for key, value in th_raw.items():
        if not hasattr(th_defaults, key):
            raise ConfigError(f"{path}: [thresholds] unknown key '{key}'")
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ConfigError(f"{path}: [thresholds] key '{key}' must be a number")
        th_kwargs[key] = type(getattr(th_defaults, key))(value)

    servers_raw = raw.get("servers")
    if not isinstance(servers_raw, list) or not servers_raw:
        raise ConfigError(f"{path}: at least one [[servers]] table is required")
    servers: list[Server] = []
    for i, s in enumerate(servers_raw):
        sw = f"{path}: [[servers]] #{i + 1}"
        name = _get(s, "name", sw, str)
        sw = f"{path}: [[servers]] '{name}'"
        role = _get(s, "role", sw, str)
        fmt = _get(s, "format", sw, str)
        if role not in ("dns", "mail"):
            raise ConfigError(f"{sw}: key 'role' must be 'dns' or 'mail', got {role!r}")
        allowed = DNS_FORMATS if role == "dns" else MAIL_FORMATS
        if fmt not in allowed:
            raise ConfigError(f"{sw}: key 'format' must be one of {', '.join(allowed)} for role {role}")
        ips = _get(s, "mail_server_ips", sw, tuple, ())
        if role == "dns" and not ips:
            raise ConfigError(f"{sw}: key 'mail_server_ips' is required for a dns server")
        if any(x.name == name for x in servers):
            raise ConfigError(f"{sw}: key 'name' repeats another server's name")
        source = _get(s, "source", sw, str)
        if source.startswith("sftp://"):
            from mmw_tasks.sftp import parse_sftp_url

            try:
                parse_sftp_url(source)
            except ValueError as e:
                raise ConfigError(f"{sw}: key 'source': {e}") from None
        servers.append(Server(name=name, role=role, format=fmt, source=source,
                              mail_server_ips=ips,
                              connection_id=_get(s, "connection_id", sw, str, None),
                              known_hosts=_path_key(s, "known_hosts", sw, base),
                              identity_file=_path_key(s, "identity_file", sw, base)))
    if not any(s.role == "mail" for s in servers):
        raise ConfigError(f"{path}: no [[servers]] with role = \"mail\"")

    allow = raw.get("allow", {})
    return Site(
        name=_get(site, "name", w, str),
        timezone=tz_name,
        lake=lake if lake.is_absolute() else (base / lake),
        local_domains=tuple(d.lower() for d in _get(site, "local_domains", w, tuple)),
        interval=interval,
        servers=tuple(servers),
        base_dir=base,
        config_path=path,
        thresholds=Thresholds(**th_kwargs),
        mailing_lists=tuple(a.lower() for a in _get(allow, "mailing_lists", f"{path}: [allow]", tuple, ())),
        bulk_senders=tuple(a.lower() for a in _get(allow, "bulk_senders", f"{path}: [allow]", tuple, ())),
        report=report_settings(raw.get("report", {}), path),
    )


def _number(table: dict[str, Any], key: str, where: str, kind: type, default: Any) -> Any:
    value = table.get(key, default)
    whole = isinstance(value, int | float) and float(value).is_integer()
    if not isinstance(value, int | float) or isinstance(value, bool) or (kind is int and not whole):
        raise ConfigError(f"{where}: key '{key}' must be a{'n integer' if kind is int else ' number'}")
    if value < 0:
        raise ConfigError(f"{where}: key '{key}' must not be negative")
    return kind(value)


def report_settings(raw: Any, path: Path) -> ReportSettings:
    """[report] and [report.email]; unknown keys are errors (a typo must not silently disable mail)."""
    w = f"{path}: [report]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{w} must be a table")
    d = ReportSettings()
    for key in raw:
        if key != "email" and not hasattr(d, key):
            raise ConfigError(f"{w}: unknown key '{key}'")
    nums = {k: _number(raw, k, w, type(getattr(d, k)), getattr(d, k))
            for k in ("history_days", "band_k", "band_floor", "min_history", "top_sources", "raw_lines")}
    email = raw.get("email")
    if email is not None:
        we = f"{path}: [report.email]"
        if not isinstance(email, dict):
            raise ConfigError(f"{we} must be a table")
        if "password" in email:
            raise ConfigError(f"{we}: key 'password' is not allowed: put the password in an environment "
                              "variable and name it with 'password_env'")
        known = {"host", "port", "from", "to", "starttls", "ssl", "username", "password_env",
                 "subject_prefix", "timeout"}
        for key in email:
            if key not in known:
                raise ConfigError(f"{we}: unknown key '{key}'")
        to = email.get("to")
        to = (to,) if isinstance(to, str) else _get(email, "to", we, tuple)
        if not to:
            raise ConfigError(f"{we}: key 'to' needs at least one address")
        email = EmailSettings(
            host=_get(email, "host", we, str), sender=_get(email, "from", we, str), to=to,
            port=_number(email, "port", we, int, 25),
            starttls=_get(email, "starttls", we, bool, False), ssl=_get(email, "ssl", we, bool, False),
            username=_get(email, "username", we, str, None),
            password_env=_get(email, "password_env", we, str, None),
            subject_prefix=_get(email, "subject_prefix", we, str, "[mmw]"),
            timeout=_number(email, "timeout", we, float, 30.0))
    return ReportSettings(**nums, email=email)
