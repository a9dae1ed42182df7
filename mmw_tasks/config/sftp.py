"""`source = "sftp://user@host:port/dir/glob"`: the URL taken apart, and checked."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

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
