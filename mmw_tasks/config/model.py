"""The site config's shape: one frozen dataclass per TOML table (contract section 3), with its
defaults; config/reader.py fills them from the file, config/checks.py checks each value."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

DNS_FORMATS = ("iplog", "bind", "dnsmasq", "unbound")
MAIL_FORMATS = ("sendmail", "postfix", "exim")


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
    few_user_unknown: int = 2  # ... or this many in a slow trickle to addresses never mailed (few_user_unknown)
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
    novel_min_recipients: int = 10  # recipients never mailed in the trailing weeks that count ...
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
    # gaps in a server's log (mmw_tasks/report/gaps.py)
    gap_hours: float = 3.0  # a stretch of the day this long with no line from a server is a hole ...
    gap_min_minutes: int = 30  # ... and a gap (the day is partial) when, at its rate of the same length of
    # time on either side, this many of the hole's minutes would have had a line


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
    on_bad_file: str = "fail"  # an unreadable file (damaged, no permission, not a log): "fail" the day or "skip" it
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
