"""What a site config may hold: the keys of each table and the range of each number.

The keys of a table are its dataclass's fields (config/model.py), so a knob added there is known
here; a key of no table is an error with the closest known one (config/checks.py, Table.only).
The ranges are those docs/detection.md's thresholds table shows; a test holds the two together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from mmw_tasks.config.model import Notify, ReportSettings, Schedule, Server, Site, Thresholds


@dataclass(frozen=True)
class Range:
    """The values a number may take: lo and hi inclusive unless `lo_open` (then lo excluded)."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False

    def holds(self, v: float) -> bool:
        above = self.lo is None or (v > self.lo if self.lo_open else v >= self.lo)
        return above and (self.hi is None or v <= self.hi)

    def text(self) -> str:
        """In an error: at least 1, greater than 0, 0 to 1, greater than 0 and at most 1."""
        return self._say("at least", "greater than", "at most", "to", "and")

    def doc(self) -> str:
        """In docs/detection.md: ≥ 1, > 0, 0 to 1, > 0 and ≤ 1."""
        return self._say("≥", ">", "≤", "to", "and")

    def _say(self, ge: str, gt: str, le: str, to: str, both: str) -> str:
        if self.lo is None:
            return "any" if self.hi is None else f"{le} {_n(self.hi)}"
        if self.hi is None:
            return f"{gt if self.lo_open else ge} {_n(self.lo)}"
        if self.lo_open:
            return f"{gt} {_n(self.lo)} {both} {le} {_n(self.hi)}"
        return f"{_n(self.lo)} {to} {_n(self.hi)}"


def _n(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


COUNT = Range(1)  # a number of things: lines, messages, days
ZERO_UP = Range(0)  # may be 0 (none)
POSITIVE = Range(0, lo_open=True)
SHARE = Range(0, 1)  # a share, 0 to 1
SOME_SHARE = Range(0, 1, lo_open=True)  # a share that must be above 0
FACTOR = Range(1)  # a ratio that makes sense from 1 up

# Every [thresholds] key's range (docs/detection.md, "Thresholds"). windows_minutes, a list, is
# checked apart: each window WINDOW_MINUTES, at least one.
THRESHOLD_RANGES: dict[str, Range] = {
    "peak_z": POSITIVE,
    "min_peak_from": COUNT,
    "min_share": SOME_SHARE,
    "align_max_lag": ZERO_UP,
    "baseline_days": COUNT,
    "baseline_min_days": COUNT,
    "baseline_window_bins": ZERO_UP,
    "host_min_messages": COUNT,
    "host_min_recipients": COUNT,
    "host_min_unknown": COUNT,
    "burst_gap_minutes": COUNT,
    "suspect_score": SOME_SHARE,
    "min_user_unknown": ZERO_UP,
    "few_user_unknown": ZERO_UP,
    "unknown_ratio": SHARE,
    "unknown_ratio_high": SHARE,
    "forged_min_senders": COUNT,
    "forged_sender_ratio": SHARE,
    "constant_size_share": SOME_SHARE,
    "sustained_minutes": COUNT,
    "repeat_ratio": FACTOR,
    "list_fanout": COUNT,
    "new_rate_factor": FACTOR,
    "regular_min_days": COUNT,
    "regular_window_minutes": ZERO_UP,
    "attachment_bytes": ZERO_UP,
    "relay_min_senders": COUNT,
    "relay_min_days": COUNT,
    "min_messages": COUNT,
    "steady_minutes": COUNT,
    "sustained_share": SHARE,
    "novel_min_recipients": COUNT,
    "novel_share": SHARE,
    "mx_lookups_min": COUNT,
    "span_min_messages": COUNT,
    "notable_score": SHARE,
    "burst_rank": COUNT,
    "burst_share": SHARE,
    "deferred_min": COUNT,
    "deferred_share": SHARE,
    "deferred_factor": FACTOR,
    "deferred_early_messages": COUNT,
    "deferred_early_minutes": COUNT,
    "dns_excess_z": POSITIVE,
    "dns_excess_ratio": ZERO_UP,
    "dns_excess_min": ZERO_UP,
    "dns_min_intervals": COUNT,
    "dns_client_min": COUNT,
    "dns_client_factor": FACTOR,
    "gap_hours": Range(0, 24, lo_open=True),
    "gap_min_minutes": COUNT,
}
WINDOW_MINUTES = Range(1, 1440)

REPORT_RANGES: dict[str, Range] = {
    "history_days": COUNT,
    "band_k": POSITIVE,
    "band_floor": SHARE,
    "min_history": ZERO_UP,
    "top_sources": ZERO_UP,
    "raw_lines": ZERO_UP,
    "benign_lines": ZERO_UP,
    "min_r2": SHARE,  # an R² threshold: 0 (every fit reliable unless a coefficient is negative) to 1
}
PORT = Range(1, 65535)
SCHEDULE_RANGES: dict[str, Range] = {"max_active_runs": COUNT, "fetch_retries": ZERO_UP, "retries": ZERO_UP}

TABLES = ("site", "servers", "thresholds", "allow", "report", "schedule", "notify")
# [site] holds the Site fields that no other table fills
SITE_KEYS = tuple(
    f.name
    for f in fields(Site)
    if f.name
    not in {
        "servers",
        "base_dir",
        "config_path",
        "thresholds",
        "report",
        "schedule",
        "notify",
        "mailing_lists",
        "bulk_senders",
        "bulk_hosts",
        "relay_hosts",
    }
)
SERVER_KEYS = tuple(f.name for f in fields(Server))
THRESHOLD_KEYS = tuple(f.name for f in fields(Thresholds))
ALLOW_KEYS = ("mailing_lists", "bulk_senders", "bulk_hosts", "relay_hosts")
REPORT_KEYS = tuple(f.name for f in fields(ReportSettings))
EMAIL_KEYS = ("host", "port", "from", "to", "starttls", "ssl", "username", "password_env", "subject_prefix", "timeout")
SCHEDULE_KEYS = tuple(f.name for f in fields(Schedule))
NOTIFY_KEYS = tuple(f.name for f in fields(Notify))

RUN_AT = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")  # [schedule] run_at: a local time, 06:30
INCIDENT_KINDS = ("mmw_suspect", "bulk_sender", "mailing_list", "deferred_surge", "dns_anomaly")
# a server's name names files and folders in the lake (<dataset>/day=.../<name>.parquet,
# raw/<name>/): a plain name, no path in it, not hidden
SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DOMAIN = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$")  # a mail domain: example.ac.jp
