"""Read a site TOML file (contract section 3) into the dataclasses of config/model.py.

Every error names the file and the key, so `mmw` can exit 2 with a one-line reason.
"""

from __future__ import annotations

import tomllib
import zoneinfo
from dataclasses import fields
from pathlib import Path
from typing import Any

from mmw_tasks.config.checks import (
    _RUN_AT,
    ConfigError,
    _choice,
    _day_key,
    _duration_key,
    _get,
    _networks,
    _number,
    _path_key,
    parse_interval,
)
from mmw_tasks.config.model import (
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
            try:
                parse_sftp_url(source)
            except ValueError as e:
                raise ConfigError(f"{sw}: key 'source': {e}") from None
        servers.append(
            Server(
                name=name,
                role=role,
                format=fmt,
                source=source,
                mail_server_ips=ips,
                connection_id=_get(s, "connection_id", sw, str, None),
                known_hosts=_path_key(s, "known_hosts", sw, base),
                identity_file=_path_key(s, "identity_file", sw, base),
            )
        )
    if not any(s.role == "mail" for s in servers):
        raise ConfigError(f'{path}: no [[servers]] with role = "mail"')

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
        on_missing_server=_choice(site, "on_missing_server", w, MISSING_SERVER_POLICIES),
        schedule=_schedule(raw, path),
        notify=_notify(raw, path),
        bulk_hosts=_get(allow, "bulk_hosts", f"{path}: [allow]", tuple, ()),
        relay_hosts=_get(allow, "relay_hosts", f"{path}: [allow]", tuple, ()),
        local_networks=_networks(_get(site, "local_networks", w, tuple, Site.local_networks), w),
    )


def _table(raw: dict[str, Any], name: str, path: Path, known: type[Schedule] | type[Notify]) -> dict[str, Any]:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{name}] must be a table")
    names = {f.name for f in fields(known)}
    for key in table:
        if key not in names:
            raise ConfigError(f"{path}: [{name}] unknown key '{key}'")
    return table


def _schedule(raw: dict[str, Any], path: Path) -> Schedule:
    t = _table(raw, "schedule", path, Schedule)
    w, d = f"{path}: [schedule]", Schedule()
    run_at = _get(t, "run_at", w, str, d.run_at)
    if not _RUN_AT.match(run_at):
        raise ConfigError(f"{w}: key 'run_at' must be a local time like '06:30', got {run_at!r}")
    start, end = _day_key(t, "start", w), _day_key(t, "end", w)
    if start and end and end < start:
        raise ConfigError(f"{w}: key 'end' ({end}) is before 'start' ({start})")
    sched = Schedule(
        run_at=run_at,
        start=start,
        end=end,
        catchup=_get(t, "catchup", w, bool, d.catchup),
        max_active_runs=_get(t, "max_active_runs", w, int, d.max_active_runs),
        fetch_retries=_get(t, "fetch_retries", w, int, d.fetch_retries),
        fetch_retry_delay=_duration_key(t, "fetch_retry_delay", w, d.fetch_retry_delay),
        fetch_max_retry_delay=_duration_key(t, "fetch_max_retry_delay", w, d.fetch_max_retry_delay),
    )
    if sched.max_active_runs < 1 or sched.fetch_retries < 0:
        raise ConfigError(f"{w}: keys 'max_active_runs' (>= 1) and 'fetch_retries' (>= 0) are out of range")
    return sched


def _notify(raw: dict[str, Any], path: Path) -> Notify:
    t = _table(raw, "notify", path, Notify)
    w, d = f"{path}: [notify]", Notify()
    email = _get(t, "email", w, tuple, ()) if not isinstance(t.get("email"), str) else (t["email"],)
    webhook = _get(t, "webhook", w, str, None)
    if webhook is not None and not webhook.startswith(("http://", "https://")):
        raise ConfigError(f"{w}: key 'webhook' must be an http(s) URL, got {webhook!r}")
    return Notify(
        email=email,
        email_from=_get(t, "email_from", w, str, None),
        smtp_conn_id=_get(t, "smtp_conn_id", w, str, d.smtp_conn_id),
        webhook=webhook,
        webhook_conn_id=_get(t, "webhook_conn_id", w, str, None),
        on_failure=_get(t, "on_failure", w, bool, d.on_failure),
        incident_kinds=_get(t, "incident_kinds", w, tuple, d.incident_kinds),
    )


def report_settings(raw: Any, path: Path) -> ReportSettings:
    """[report] and [report.email]; unknown keys are errors (a typo must not silently disable mail)."""
    w = f"{path}: [report]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{w} must be a table")
    d = ReportSettings()
    for key in raw:
        if key != "email" and not hasattr(d, key):
            raise ConfigError(f"{w}: unknown key '{key}'")
    nums = {
        k: _number(raw, k, w, type(getattr(d, k)), getattr(d, k))
        for k in ("history_days", "band_k", "band_floor", "min_history", "top_sources", "raw_lines")
    }
    email = raw.get("email")
    if email is not None:
        we = f"{path}: [report.email]"
        if not isinstance(email, dict):
            raise ConfigError(f"{we} must be a table")
        if "password" in email:
            raise ConfigError(
                f"{we}: key 'password' is not allowed: put the password in an environment "
                "variable and name it with 'password_env'"
            )
        known = {
            "host",
            "port",
            "from",
            "to",
            "starttls",
            "ssl",
            "username",
            "password_env",
            "subject_prefix",
            "timeout",
        }
        for key in email:
            if key not in known:
                raise ConfigError(f"{we}: unknown key '{key}'")
        to = email.get("to")
        to = (to,) if isinstance(to, str) else _get(email, "to", we, tuple)
        if not to:
            raise ConfigError(f"{we}: key 'to' needs at least one address")
        email = EmailSettings(
            host=_get(email, "host", we, str),
            sender=_get(email, "from", we, str),
            to=to,
            port=_number(email, "port", we, int, 25),
            starttls=_get(email, "starttls", we, bool, False),
            ssl=_get(email, "ssl", we, bool, False),
            username=_get(email, "username", we, str, None),
            password_env=_get(email, "password_env", we, str, None),
            subject_prefix=_get(email, "subject_prefix", we, str, "[mmw]"),
            timeout=_number(email, "timeout", we, float, 30.0),
        )
    return ReportSettings(**nums, email=email)
