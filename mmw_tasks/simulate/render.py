"""Line rendering that depends on the logging style: timestamps, tags, restart and repeat lines.

Styles:
  "2002"   BSD/RFC 3164 year-less local stamps (`Feb  6 14:30:01`), sysklogd 1.4.1 on the DNS
           server (restart line at rotation, `-- MARK --`), Solaris syslogd on the mail server,
           identical consecutive lines collapsed into `last message repeated N times`.
  "modern" the same site and traffic run by today's software: Postfix 3.x + Dovecot 2.x on the
           mail server, BIND 9.16 logging its queries through syslog on the DNS server, rsyslog
           writing RFC 3339 stamps (`RSYSLOG_FileFormat`: `2002-02-16T14:30:01.123456+09:00`),
           repeat reduction off (every copy is written), no MARK lines, logrotate with
           dateext + compress + delaycompress (`mail.log-20020216.gz`), rsyslogd's HUP line at
           the top of each new `syslog` (mail.log holds the mail facility only).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

STYLES = ("2002", "modern")
_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
_HMS: list[str] = []


def hms_table() -> list[str]:
    """'HH:MM:SS' for every second of a day (built once)."""
    if not _HMS:
        ms = [f":{m:02d}:{s:02d}" for m in range(60) for s in range(60)]
        _HMS.extend([hh + x for hh in (f"{h:02d}" for h in range(24)) for x in ms])
    return _HMS


def fmt_delay(sec: float) -> str:
    """sendmail's pintvl(): HH:MM:SS, or D+HH:MM:SS once a day has passed."""
    s = int(sec)
    if s < 86400:
        return _HMS[s] if s >= 0 else _HMS[0]
    return f"{s // 86400}+{_HMS[s % 86400]}"


class Style:
    """Everything the writer needs to turn (time, body) into a line of a given style."""

    def __init__(self, name: str, origin: date, n_days: int, tz: str):
        if name not in STYLES:
            raise ValueError(f"unknown style {name!r}; expected one of {', '.join(STYLES)}")
        self.name = name
        self.bsd = name == "2002"
        self.repeats = self.bsd  # collapse retransmitted identical lines into a repeat line
        self.marks = self.bsd
        self.sendmail_tag = "sendmail" if self.bsd else "sm-mta"
        # the software of each host: (mta, pop server, dns server)
        self.mta, self.pop, self.dns = ("sendmail", "qpopper", "iplog") if self.bsd else ("postfix", "dovecot", "bind")
        self.hms = hms_table()
        z = ZoneInfo(tz)
        self.day_prefix: list[str] = []
        self.day_offset: list[str] = []
        for i in range(n_days):
            d = origin + timedelta(days=i)
            if self.bsd:
                self.day_prefix.append(f"{_MONTHS[d.month - 1]} {d.day:2d} ")
            else:
                self.day_prefix.append(f"{d.isoformat()}T")
            off = datetime(d.year, d.month, d.day, 12, tzinfo=z).strftime("%z")
            self.day_offset.append(f"{off[:3]}:{off[3:]}")

    def stamp(self, t: float) -> str:
        sec = int(t)
        d, s = divmod(sec, 86400)
        if self.bsd:
            return self.day_prefix[d] + self.hms[s]
        return f"{self.day_prefix[d]}{self.hms[s]}.{int((t - sec) * 1e6):06d}{self.day_offset[d]}"

    def restart_body(self, host: str) -> str | None:
        """The line syslogd writes first into a freshly rotated file (after logrotate's HUP)."""
        if not self.bsd:
            if host != "ns":  # mail.log gets the mail facility only; rsyslogd logs to syslog
                return None
            return (
                'rsyslogd: [origin software="rsyslogd" swVersion="8.2102.0" x-pid="811" '
                'x-info="https://www.rsyslog.com"] rsyslogd was HUPed'
            )
        if host == "ns":
            return "syslogd 1.4.1: restart."
        return None  # Solaris newsyslog: syslogd is HUPed but writes nothing


# What a line counts as in truth.json (the writer tallies these per 10-minute bin).
K_OTHER, K_DQ, K_FROM, K_SENT, K_DEFERRED, K_TO_OTHER, K_POP, K_USER_UNKNOWN = range(8)
COUNTERS = ("dq", "n_from", "n_sent", "n_deferred", "n_to_other", "n_pop", "n_user_unknown")  # kinds 1..7
