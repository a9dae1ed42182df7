"""Read a site TOML file (contract section 3) into the dataclasses of config/model.py.

Every key is checked: an unknown one anywhere is an error with the closest known key, addresses
and networks are parsed, numbers have ranges (config/schema.py), server names are plain names.
Every error is one line naming the file, the line and the key (config/checks.py), so `mmw` can
exit 2 with it.
"""

from __future__ import annotations

import difflib
import tomllib
import zoneinfo
from dataclasses import fields
from pathlib import Path
from typing import Any

from mmw_tasks.config import schema
from mmw_tasks.config.checks import MIN_MEMORY, REQUIRED, ConfigError, Table, line_of, parse_interval
from mmw_tasks.config.model import (
    BAD_FILE_POLICIES,
    DNS_FORMATS,
    MAIL_FORMATS,
    MISSING_SERVER_POLICIES,
    EmailSettings,
    Notify,
    ReportSettings,
    Schedule,
    Server,
    Site,
    Thresholds,
)
from mmw_tasks.config.sftp import parse_sftp_url


def load_site(path: str | Path) -> Site:
    """Read and validate a site TOML file."""
    path = Path(path).resolve()
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the config file: {getattr(e, 'strerror', None) or e}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    return site_from_dict(raw, path, text)


def site_from_dict(raw: dict[str, Any], path: Path, text: str | None = None) -> Site:
    """The Site of a parsed TOML document; `text`, the file as written, lets errors give lines."""
    if text is None:
        try:
            text = Path(path).read_text()
        except (OSError, UnicodeDecodeError):
            text = ""
    base = path.parent
    for name in raw:
        if name not in schema.TABLES:
            raise _unknown_table(path, text, name)
    if "site" not in raw:
        raise ConfigError(f"{path}: missing table [site]")
    site = Table.of(path, text, "site", raw["site"])
    site.only(schema.SITE_KEYS)
    tz_name = site.text_key("timezone")
    try:
        zoneinfo.ZoneInfo(tz_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise site.error("timezone", f"is not a known time zone: {tz_name!r}") from None
    interval_text = site.text_key("interval", "10m")
    try:
        interval = parse_interval(interval_text)
    except ValueError as e:
        raise site.error("interval", f"is not usable: {e}") from None
    lake = Path(site.text_key("lake", "data_lake")).expanduser()
    domains = site.strings("local_domains")
    for d in domains:
        if not schema.DOMAIN.match(d):
            raise site.error("local_domains", f"has {d!r}, which is not a mail domain like example.ac.jp")
    servers = _servers(raw, path, text, base)
    allow = Table.of(path, text, "allow", raw.get("allow", {}))
    allow.only(schema.ALLOW_KEYS)
    return Site(
        name=site.text_key("name"),
        timezone=tz_name,
        lake=lake if lake.is_absolute() else (base / lake),
        local_domains=tuple(d.lower().rstrip(".") for d in domains),
        interval=interval,
        servers=servers,
        base_dir=base,
        config_path=path,
        thresholds=_thresholds(Table.of(path, text, "thresholds", raw.get("thresholds", {}))),
        mailing_lists=tuple(a.lower() for a in allow.strings("mailing_lists", ())),
        bulk_senders=tuple(a.lower() for a in allow.strings("bulk_senders", ())),
        report=report_settings(raw.get("report", {}), path, text),
        on_missing_server=site.choice("on_missing_server", MISSING_SERVER_POLICIES),
        on_bad_file=site.choice("on_bad_file", BAD_FILE_POLICIES),
        schedule=_schedule(Table.of(path, text, "schedule", raw.get("schedule", {}))),
        notify=_notify(Table.of(path, text, "notify", raw.get("notify", {}))),
        bulk_hosts=allow.addresses("bulk_hosts"),
        relay_hosts=allow.addresses("relay_hosts"),
        local_networks=site.networks("local_networks", Site.local_networks),
        memory_limit=site.size("memory_limit", Site.memory_limit, MIN_MEMORY),
    )


def _unknown_table(path: Path, text: str, name: str) -> ConfigError:
    close = difflib.get_close_matches(name, schema.TABLES, n=1, cutoff=0.6)
    hint = f"did you mean [{close[0]}]?" if close else f"the tables are {', '.join(schema.TABLES)}"
    line = line_of(text, "", None, name)
    return ConfigError(f"{path}{f':{line}' if line else ''}: unknown table or key '{name}' ({hint})")


def _servers(raw: dict[str, Any], path: Path, text: str, base: Path) -> tuple[Server, ...]:
    listed = raw.get("servers")
    if not isinstance(listed, list) or not listed:
        raise ConfigError(f"{path}: at least one [[servers]] table is required")
    servers: list[Server] = []
    for i, data in enumerate(listed):
        s = Table.of(path, text, "servers", data, i)
        name = s.text_key("name")
        if not schema.SERVER_NAME.match(name):
            raise s.error(
                "name",
                f"must be a plain name of letters, digits, '.', '_' and '-' (it names files in the lake), got {name!r}",
            )
        s.label = f"[[servers]] '{name}'"
        s.only(schema.SERVER_KEYS)
        if any(x.name.lower() == name.lower() for x in servers):
            raise s.error("name", "repeats another server's name (names differ in more than case)")
        role = s.text_key("role")
        if role not in ("dns", "mail"):
            raise s.error("role", f"must be 'dns' or 'mail', got {role!r}")
        fmt = s.text_key("format")
        allowed = DNS_FORMATS if role == "dns" else MAIL_FORMATS
        if fmt not in allowed:
            raise s.error("format", f"must be one of {', '.join(allowed)} for role {role}, got {fmt!r}")
        ips = s.addresses("mail_server_ips")
        if role == "dns" and not ips:
            raise s.error(None, "missing key 'mail_server_ips' (required for a dns server: the clients that make Dq)")
        source = s.text_key("source")
        if source.startswith("sftp://"):
            try:
                parse_sftp_url(source)
            except ValueError as e:
                raise s.error("source", f"is not usable: {e}") from None
        servers.append(
            Server(
                name=name,
                role=role,
                format=fmt,
                source=source,
                mail_server_ips=ips,
                connection_id=s.text_key("connection_id", None),
                known_hosts=s.path_key("known_hosts", base),
                identity_file=s.path_key("identity_file", base),
            )
        )
    if not any(s.role == "mail" for s in servers):
        raise ConfigError(f'{path}: no [[servers]] with role = "mail"')
    return tuple(servers)


def _thresholds(t: Table) -> Thresholds:
    t.only(schema.THRESHOLD_KEYS)
    d = Thresholds()
    values: dict[str, Any] = {}
    for key in t.data:
        if key == "windows_minutes":
            values[key] = _windows(t, key)
            continue
        default = getattr(d, key)
        values[key] = t.number(key, default, type(default), schema.THRESHOLD_RANGES[key])
    th = Thresholds(**values)
    for lo, hi in (("unknown_ratio", "unknown_ratio_high"), ("baseline_min_days", "baseline_days")):
        if getattr(th, lo) > getattr(th, hi):
            raise t.error(lo if lo in t.data else hi, f"({getattr(th, lo)}) must not exceed '{hi}' ({getattr(th, hi)})")
    return th


def _windows(t: Table, key: str) -> tuple[int, ...]:
    v = t.data[key]
    r = schema.WINDOW_MINUTES
    if (
        not isinstance(v, list)
        or not v
        or not all(isinstance(x, int) and not isinstance(x, bool) and r.holds(x) for x in v)
    ):
        raise t.error(key, f"must be a list of whole minutes, each {r.text()}, got {v!r}")
    return tuple(sorted(set(v)))


def _schedule(t: Table) -> Schedule:
    t.only(schema.SCHEDULE_KEYS)
    d = Schedule()
    run_at = t.text_key("run_at", d.run_at)
    if not schema.RUN_AT.match(run_at):
        raise t.error("run_at", f"must be a local time like '06:30', got {run_at!r}")
    start, end = t.day("start"), t.day("end")
    if start and end and end < start:
        raise t.error("end", f"({end}) is before 'start' ({start})")
    r = schema.SCHEDULE_RANGES
    return Schedule(
        run_at=run_at,
        start=start,
        end=end,
        catchup=t.boolean("catchup", d.catchup),
        max_active_runs=t.number("max_active_runs", d.max_active_runs, int, r["max_active_runs"]),
        fetch_retries=t.number("fetch_retries", d.fetch_retries, int, r["fetch_retries"]),
        fetch_retry_delay=t.duration("fetch_retry_delay", d.fetch_retry_delay),
        fetch_max_retry_delay=t.duration("fetch_max_retry_delay", d.fetch_max_retry_delay),
        retries=t.number("retries", d.retries, int, r["retries"]),
        retry_delay=t.duration("retry_delay", d.retry_delay),
        intraday_every=t.every("intraday_every", d.intraday_every),
    )


def _notify(t: Table) -> Notify:
    t.only(schema.NOTIFY_KEYS)
    d = Notify()
    webhook = t.text_key("webhook", None)
    if webhook is not None and not webhook.startswith(("http://", "https://")):
        raise t.error("webhook", f"must be an http(s) URL, got {webhook!r}")
    kinds = t.strings("incident_kinds", d.incident_kinds)
    for k in kinds:
        if k not in schema.INCIDENT_KINDS:
            raise t.error("incident_kinds", f"has {k!r}, which is none of {', '.join(schema.INCIDENT_KINDS)}")
    return Notify(
        email=t.strings("email", (), one=True),
        email_from=t.text_key("email_from", None),
        smtp_conn_id=t.text_key("smtp_conn_id", d.smtp_conn_id),
        webhook=webhook,
        webhook_conn_id=t.text_key("webhook_conn_id", None),
        on_failure=t.boolean("on_failure", d.on_failure),
        incident_kinds=kinds,
    )


def report_settings(raw: Any, path: Path, text: str = "") -> ReportSettings:
    """[report] and [report.email]; unknown keys are errors (a typo must not silently disable mail)."""
    t = Table.of(path, text, "report", raw)
    t.only(schema.REPORT_KEYS)
    d = ReportSettings()
    nums = {
        f.name: t.number(f.name, getattr(d, f.name), type(getattr(d, f.name)), schema.REPORT_RANGES[f.name])
        for f in fields(ReportSettings)
        if f.name in schema.REPORT_RANGES
    }
    if t.data.get("email") is None:
        return ReportSettings(**nums)
    e = Table.of(path, text, "report.email", t.data["email"])
    if "password" in e.data:
        raise e.error(
            "password",
            "is not allowed: put the password in an environment variable and name it with 'password_env'",
        )
    e.only(schema.EMAIL_KEYS)
    to = e.strings("to", REQUIRED, one=True)
    if not to:
        raise e.error("to", "needs at least one address")
    email = EmailSettings(
        host=e.text_key("host"),
        sender=e.text_key("from"),
        to=to,
        port=e.number("port", 25, int, schema.PORT),
        starttls=e.boolean("starttls", False),
        ssl=e.boolean("ssl", False),
        username=e.text_key("username", None),
        password_env=e.text_key("password_env", None),
        subject_prefix=e.text_key("subject_prefix", "[mmw]"),
        timeout=e.number("timeout", 30.0, float, schema.POSITIVE),
    )
    return ReportSettings(**nums, email=email)
