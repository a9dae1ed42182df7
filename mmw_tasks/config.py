"""Site configuration: a TOML file (contract section 3) read into frozen dataclasses.

Every error names the file and the key, so `mmw` can exit 2 with a one-line reason.
"""

from __future__ import annotations

import posixpath
import re
import tomllib
import zoneinfo
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

DNS_FORMATS = ("iplog", "bind", "dnsmasq", "unbound")
MAIL_FORMATS = ("sendmail", "postfix", "exim")


class ConfigError(ValueError):
    """A site config that cannot be used; the message names the file and key."""


@dataclass(frozen=True)
class Thresholds:
    """Detection knobs, all overridable in [thresholds]; docs/detection.md explains each one.
    Defaults suit a site of a few hundred to a few thousand messages a day."""

    # abnormal intervals (the papers' Figure 1)
    peak_z: float = 4.0  # robust z-score (level/spread from history, else the day) for an abnormal interval
    min_peak_from: int = 20  # an abnormal interval needs at least this many from= (or to=) lines
    min_share: float = 0.3  # a host/sender explains a peak when it holds this share of its N_SMTP
    align_max_lag: int = 3  # lags (intervals) tried when lining Dq peaks up with N_SMTP peaks
    # baselines from the lake's history
    baseline_days: int = 28  # trailing days read for the per-time-of-day baselines
    baseline_min_days: int = 3  # fewer days of the same kind (weekday/weekend): within-day statistics
    baseline_window_bins: int = 2  # neighbouring bins pooled on each side of a time of day
    # bursts of one host (or, for localhost and servers, one sender)
    host_min_messages: int = 10  # messages from one host in one interval that make it a burst
    host_min_recipients: int = 40  # recipients from one host in one interval that make it a burst
    host_min_unknown: int = 8  # "User unknown" from one local host in one interval that make it a burst
    burst_gap_minutes: int = 30  # quiet time that separates two bursts of one host
    # classification (docs/detection.md lists the points each piece of evidence carries)
    suspect_score: float = 0.5  # worm score at which a local host is an mmw_suspect
    min_user_unknown: int = 3  # "User unknown" rejections before their share counts as evidence
    unknown_ratio: float = 0.06  # share of refused recipients that is suspicious
    unknown_ratio_high: float = 0.12  # ... and that is typical of a worm's guessed addresses
    forged_min_senders: int = 5  # distinct sender addresses from one host that suggest forging
    forged_sender_ratio: float = 0.2  # ... when they are at least this share of its messages
    constant_size_share: float = 0.8  # share of messages within 2% of the median size: one attachment
    sustained_minutes: int = 60  # a burst going on this long at a steady rate
    repeat_ratio: float = 1.3  # recipient attempts per distinct recipient: a harvest mailed again
    list_fanout: int = 20  # recipients per message above which a few messages are a list/alias
    new_rate_factor: float = 5.0  # peak rate this many times the host's highest in history: new behaviour
    regular_min_days: int = 2  # earlier days with a burst of the same host at the same time
    regular_window_minutes: int = 60  # how close "this time of day" is (whole hours either side)
    # every host judged (docs/detection.md, "Every host's day")
    windows_minutes: tuple[int, ...] = (30, 60, 180)  # sliding windows each entity is judged over, and its day
    attachment_bytes: int = 20000  # a message at least this large carries an attachment
    relay_min_senders: int = 10  # distinct senders of our domains in a day that make a local host look like a relay
    relay_min_days: int = 3  # ... on this many of the trailing days: judged per sender, as a relay
    min_messages: int = 5  # messages and refused sessions a window needs before it is scored at all
    steady_minutes: int = 120  # slow, steady mail this long: a program that sleeps between messages
    sustained_share: float = 0.8  # share of a sustained stretch's intervals with mail in them
    novel_min_recipients: int = 15  # recipients never mailed in the trailing weeks that count ...
    novel_share: float = 0.8  # ... when they are this share of the window's new recipients
    mx_lookups_min: int = 20  # MX questions from one of our machines in a window: its own SMTP engine
    span_min_messages: int = 2  # a suspect's stretch: its intervals with this many messages in its flagged windows
    notable_score: float = 0.3  # a score at which an entity is reported even without a burst
    burst_rank: int = 50  # on a large site, an interval busier than the busiest N entities' peaks ...
    burst_share: float = 0.002  # ... or this share of the day's entities, makes a burst (host_min_messages at least)
    # outbreak-wide signals
    deferred_min: int = 30  # deferrals to one domain in a day before it can be a surge
    deferred_share: float = 0.5  # ... and this share of the deliveries to it deferred
    deferred_factor: float = 5.0  # ... and this many times its usual (median) daily deferrals
    deferred_early_messages: int = 4  # a surge's first flag: this many messages deferred to it ...
    deferred_early_minutes: int = 30  # ... within this long, and none delivered to it meanwhile
    dns_excess_z: float = 6.0  # robust z of the normalised Dq residual with no sender to explain it
    dns_excess_ratio: float = 0.5  # ... and the excess at least this share of the model's prediction
    dns_excess_min: int = 100  # ... and at least this many queries in the interval
    dns_min_intervals: int = 2  # ... in at least this many intervals
    dns_client_min: int = 100  # queries in one interval from one non-mail-server client to look at it
    dns_client_factor: float = 10.0  # ... and this many times its usual rate (median or history)


MISSING_SERVER_POLICIES = ("fail", "partial")
BAD_FILE_POLICIES = ("fail", "skip")


@dataclass(frozen=True)
class Schedule:
    """How Airflow runs the site's days ([schedule]); `mmw run` and `mmw backfill` ignore it."""

    run_at: str = "06:30"  # local time on the next morning, once every server has rotated its logs
    start: date | None = None  # first day the scheduler runs by itself (backfill older days)
    end: date | None = None  # last day it runs by itself (a retired site)
    catchup: bool = False  # true: days missed while the scheduler was down are run when it is back
    max_active_runs: int = 4  # days in flight at once (fetch and parse overlap; detection stays in order)
    fetch_retries: int = 4  # a server that cannot be fetched is tried this many more times
    fetch_retry_delay: timedelta = timedelta(minutes=5)  # doubled after each failed try ...
    fetch_max_retry_delay: timedelta = timedelta(hours=1)  # ... up to this
    # every other task's tries after the first (a Celery worker that dies takes its tasks with it:
    # without a retry, the scheduler fails them and the day; with one, another worker redoes them)
    retries: int = 0
    retry_delay: timedelta = timedelta(minutes=1)
    # how often the mmw_intraday DAG looks at the day so far; None (0 or "off" in the file): never
    intraday_every: timedelta | None = timedelta(minutes=10)


@dataclass(frozen=True)
class Notify:
    """Who hears about a failed run and a day with incidents ([notify]); empty means nobody."""

    email: tuple[str, ...] = ()
    email_from: str | None = None  # default: the SMTP connection's from_email
    smtp_conn_id: str = "smtp_default"
    webhook: str | None = None  # URL that gets a JSON POST
    webhook_conn_id: str | None = None  # or an Airflow connection holding that URL (keeps tokens out of git)
    on_failure: bool = True
    incident_kinds: tuple[str, ...] = ("mmw_suspect", "deferred_surge", "dns_anomaly")

    @property
    def enabled(self) -> bool:
        return bool(self.email or self.webhook or self.webhook_conn_id)


@dataclass(frozen=True)
class EmailSettings:
    """[report.email]: mail each daily report through an SMTP server. The password, if the server
    wants one, comes from the environment variable named by `password_env`, never from the file."""

    host: str  # the SMTP server
    sender: str  # the key is `from`
    to: tuple[str, ...]  # the key may also be a single address
    port: int = 25
    starttls: bool = False  # upgrade the plain connection with STARTTLS
    ssl: bool = False  # TLS from the start (SMTPS, usually port 465)
    username: str | None = None  # log in as this user (with the password from password_env)
    password_env: str | None = None  # the environment variable that holds the password
    subject_prefix: str = "[mmw]"
    timeout: float = 30.0  # seconds


@dataclass(frozen=True)
class ReportSettings:
    """[report]: the daily report's history band and figures."""

    history_days: int = 28  # the trailing days whose coefficients make the band
    band_k: float = 4.0  # band half-width in scaled MADs (1.4826 * MAD ~ one standard deviation)
    band_floor: float = 0.02  # ... but never narrower than this share of the median
    min_history: int = 7  # fewer days of history than this: the band is shown, drift not alerted
    top_sources: int = 6  # senders or hosts drawn in figure 2
    raw_lines: int = 12  # raw log lines quoted per incident card
    benign_lines: int = 20  # benign incidents listed one line each; the rest are counted in one table
    min_r2: float = 0.1  # a fit with a lower R² (or a negative coefficient) is unreliable: left out of the bands
    email: EmailSettings | None = None


@dataclass(frozen=True)
class Server:
    """One [[servers]] table: a server whose rotated logs are read."""

    name: str  # unique in the site; names its parts in the lake and its raw area
    role: str  # "dns" | "mail"
    format: str  # dns: iplog | bind | dnsmasq | unbound; mail: sendmail | postfix | exim
    source: str  # glob relative to the config file, absolute glob, or sftp:// URL
    mail_server_ips: tuple[str, ...] = ()  # dns: the clients whose queries make Dq
    connection_id: str | None = None  # Airflow connection for sftp sources
    known_hosts: str | None = None  # sftp: known_hosts file (default ~/.ssh/known_hosts)
    identity_file: str | None = None  # sftp on the CLI: private key file (else the SSH agent, ~/.ssh/id_*)


@dataclass(frozen=True)
class Site:
    """A site config (contract section 3), validated; load_site reads it."""

    name: str  # [site].name
    timezone: str  # [site].timezone: local time of year-less stamps, and of the day a report covers
    lake: Path  # [site].lake, made absolute (relative to the config file)
    local_domains: tuple[str, ...]  # lower case: mail to these is delivered locally (q)
    interval: timedelta  # [site].interval: bin width of the per-interval tables
    servers: tuple[Server, ...]  # in config order
    base_dir: Path  # the config file's folder: relative paths start here
    config_path: Path  # the config file, absolute
    thresholds: Thresholds = field(default_factory=Thresholds)
    mailing_lists: tuple[str, ...] = ()  # allow-list of list senders
    bulk_senders: tuple[str, ...] = ()  # allow-list of known bulk senders
    report: ReportSettings = field(default_factory=ReportSettings)
    on_missing_server: str = "fail"  # a server still missing after retries: "fail" the day or run "partial"
    on_bad_file: str = (
        "fail"  # a file that cannot be read (damaged, unreadable, not a log): "fail" the day or "skip" it
    )
    schedule: Schedule = field(default_factory=Schedule)
    notify: Notify = field(default_factory=Notify)
    bulk_hosts: tuple[str, ...] = ()  # allow-list of client IPs that mail in bulk (benign)
    relay_hosts: tuple[str, ...] = ()  # internal relays/servers: their bursts are split by sender
    local_networks: tuple[str, ...] = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
    memory_limit: int = 1 << 30  # [site].memory_limit, bytes: the budget of one stage's process (docs/speed.md)

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
        on_bad_file=_choice(site, "on_bad_file", w, BAD_FILE_POLICIES),
        schedule=_schedule(raw, path),
        notify=_notify(raw, path),
        bulk_hosts=_get(allow, "bulk_hosts", f"{path}: [allow]", tuple, ()),
        relay_hosts=_get(allow, "relay_hosts", f"{path}: [allow]", tuple, ()),
        local_networks=_networks(_get(site, "local_networks", w, tuple, Site.local_networks), w),
        memory_limit=_size_key(site, "memory_limit", w, Site.memory_limit),
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


_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_SIZE_UNITS |= {"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
MIN_MEMORY = 256 * 10**6  # below this DuckDB cannot run a day's aggregates at all


def parse_size(text: str) -> int:
    """'1GB', '1.5 GiB', '512MB' as bytes."""
    m = _SIZE.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a size like '1GB', '512MB' or '2GiB'")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


def _size_key(table: dict[str, Any], key: str, where: str, default: int) -> int:
    if key not in table:
        return default
    try:
        size = parse_size(_get(table, key, where, str))
    except ValueError as e:
        raise ConfigError(f"{where}: key '{key}': {e}") from None
    if size < MIN_MEMORY:
        raise ConfigError(f"{where}: key '{key}' must be at least 256MB, got {table[key]!r}")
    return size


def _duration_key(table: dict[str, Any], key: str, where: str, default: timedelta) -> timedelta:
    if key not in table:
        return default
    try:
        return parse_duration(_get(table, key, where, str))
    except ValueError as e:
        raise ConfigError(f"{where}: key '{key}': {e}") from None


def _every_key(table: dict[str, Any], key: str, where: str, default: timedelta | None) -> timedelta | None:
    """A period like '10m' (at least a minute, less than a day), or 0 / "off" for never."""
    value = table.get(key, ...)
    if value is ...:
        return default
    if not isinstance(value, bool) and (value == 0 or value in ("0", "off")):
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}: key '{key}' must be a period like '10m', or 0 or \"off\", got {value!r}")
    try:
        every = parse_duration(value)
    except ValueError as e:
        raise ConfigError(f"{where}: key '{key}': {e}") from None
    if not timedelta(minutes=1) <= every < timedelta(days=1):
        raise ConfigError(f"{where}: key '{key}' must be at least 1 minute and less than a day, got {value!r}")
    return every


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
        retries=_get(t, "retries", w, int, d.retries),
        retry_delay=_duration_key(t, "retry_delay", w, d.retry_delay),
        intraday_every=_every_key(t, "intraday_every", w, d.intraday_every),
    )
    if sched.max_active_runs < 1 or sched.fetch_retries < 0 or sched.retries < 0:
        raise ConfigError(f"{w}: keys 'max_active_runs' (>= 1), 'fetch_retries' and 'retries' (>= 0) are out of range")
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
    nums = {
        k: _number(raw, k, w, type(getattr(d, k)), getattr(d, k))
        for k in (f.name for f in fields(ReportSettings) if f.name != "email")
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


def _networks(nets: tuple[str, ...], where: str) -> tuple[str, ...]:
    import ipaddress

    for n in nets:
        try:
            ipaddress.ip_network(n, strict=False)
        except ValueError:
            raise ConfigError(f"{where}: key 'local_networks': {n!r} is not a network like 10.1.0.0/16") from None
    return nets


# -- sftp:// sources --------------------------------------------------------------------------------
SFTP_URL = re.compile(
    r"^sftp://(?:(?P<user>[^@:/]+)(?::(?P<password>[^@/]*))?@)?"
    r"(?P<host>\[[^\]]+\]|[^:/\[\]]+)(?::(?P<port>\d+))?(?P<path>/.*)$"
)


@dataclass(frozen=True)
class SftpSource:
    """A server's `source = "sftp://user@host:port/dir/glob"`, taken apart."""

    user: str | None  # the login name, unless the credentials (an Airflow connection) give one
    host: str  # without the brackets of an IPv6 address
    port: int  # 22 unless the URL says
    directory: str  # the remote folder, absolute
    pattern: str  # a glob of file names in `directory`

    @property
    def where(self) -> str:
        return f"{self.user + '@' if self.user else ''}{self.host}:{self.port}"

    def url(self, name: str | None = None) -> str:
        return f"sftp://{self.where}{posixpath.join(self.directory, name or self.pattern)}"

    @property
    def known_hosts_name(self) -> str:
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


def parse_sftp_url(url: str) -> SftpSource:
    """`sftp://user@host:port/path/glob`; a password in the URL is refused (ValueError)."""
    m = SFTP_URL.match(url)
    if not m:
        raise ValueError(f"{url!r} is not like sftp://user@host:port/var/log/maillog*")
    if m.group("password") is not None:
        raise ValueError(
            "a password does not belong in the config file; use connection_id (Airflow) or an SSH key/agent (CLI)"
        )
    directory, pattern = posixpath.split(m.group("path"))
    if any(c in directory for c in "*?["):
        raise ValueError(f"{url!r}: only the file name may hold wildcards, not the directory")
    if not pattern:
        raise ValueError(f"{url!r}: the path must end in a file name or glob")
    return SftpSource(
        user=m.group("user"),
        host=m.group("host").strip("[]"),
        port=int(m.group("port") or 22),
        directory=directory or "/",
        pattern=pattern,
    )
