"""Site configuration: a TOML file (contract section 3) read into frozen dataclasses.

model.py holds the dataclasses and their defaults, reader.py reads the file into them, checks.py
checks each value (every error one line naming the file and the key), sftp.py takes sftp://
sources apart. Everything is importable from here, as it always was.
"""

from mmw_tasks.config.checks import MIN_MEMORY, ConfigError, parse_duration, parse_interval, parse_size
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
from mmw_tasks.config.reader import load_site, report_settings, site_from_dict
from mmw_tasks.config.sftp import SFTP_URL, SftpSource, parse_sftp_url

__all__ = [
    "BAD_FILE_POLICIES",
    "DNS_FORMATS",
    "MAIL_FORMATS",
    "MIN_MEMORY",
    "MISSING_SERVER_POLICIES",
    "SFTP_URL",
    "ConfigError",
    "EmailSettings",
    "Notify",
    "ReportSettings",
    "Schedule",
    "Server",
    "SftpSource",
    "Site",
    "Thresholds",
    "load_site",
    "parse_duration",
    "parse_interval",
    "parse_size",
    "parse_sftp_url",
    "report_settings",
    "site_from_dict",
]
