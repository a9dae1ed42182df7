"""An SFTP session that lists a server's rotated logs and downloads them whole and resumably.

Host keys are always verified against a known_hosts file (never accepted automatically).
Credentials come from the caller: an Airflow connection resolved in the DAG, or, on the CLI, the
usual SSH agent and key files. A password in the site config is refused (config.py).
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import io
import os
import posixpath
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import paramiko

from mmw_tasks.config import SftpSource

BLOCK = 1 << 20
RETRYABLE = (OSError, EOFError, paramiko.SSHException)


class SftpError(RuntimeError):
    """A pull that cannot be done; the message names the host and file."""


class CredentialsDict(TypedDict, total=False):
    """Credentials as plain data: what the DAG reads from a server's Airflow connection and hands
    to the fetch (never to XCom). Every key may be left out or None; the meaning is Credentials'."""

    username: str | None
    password: str | None
    key_file: str | None
    private_key: str | None
    passphrase: str | None
    host_key: str | None
    known_hosts: str | None
    allow_agent: bool
    look_for_keys: bool


@dataclass(frozen=True)
class Credentials:
    """What to log in with. Secrets never reach XCom, logs or the manifest."""

    username: str | None = None
    password: str | None = None
    key_file: str | None = None  # a private key file
    private_key: str | None = None  # PEM/OpenSSH text, e.g. an Airflow connection's `private_key` extra
    passphrase: str | None = None
    host_key: str | None = None  # "ssh-ed25519 AAAA...": trusted in addition to known_hosts
    known_hosts: str | None = None  # a known_hosts file (the server's own `known_hosts` key comes first)
    allow_agent: bool = True  # try the SSH agent's keys
    look_for_keys: bool = True  # try ~/.ssh/id_* keys

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, key_file={self.key_file!r}, ...)"

    @classmethod
    def from_dict(cls, d: CredentialsDict | None) -> Credentials:
        if not d:
            return cls()
        given: dict[str, Any] = {k: v for k, v in d.items() if k in cls.__dataclass_fields__ and v is not None}
        return cls(**given)


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    mtime: float

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)


def fingerprint(key: paramiko.PKey) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


class _Reject(paramiko.MissingHostKeyPolicy):
    def missing_host_key(self, client, hostname, key):
        raise SftpError(
            f"host key of {hostname} ({key.get_name()} {fingerprint(key)}) is not in the "
            f"known_hosts file; it is never accepted automatically"
        )


def _pkey(text: str, passphrase: str | None) -> paramiko.PKey:
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text), password=passphrase)
        except paramiko.SSHException:
            continue
    raise SftpError("private_key: not an ed25519, ECDSA or RSA private key")


class Session:
    """One SSH connection (re-opened after a cut) to one source."""

    def __init__(
        self,
        src: SftpSource,
        creds: Credentials,
        known_hosts: Path,
        timeout: float = 30.0,
        attempts: int = 4,
        backoff: float = 0.5,
    ):
        self.src, self.creds, self.known_hosts = src, creds, Path(known_hosts).expanduser()
        self.timeout, self.attempts, self.backoff = timeout, attempts, backoff
        self.client: paramiko.SSHClient | None = None
        self.sftp: paramiko.SFTPClient | None = None
        self.reconnects = 0

    def connect(self) -> paramiko.SFTPClient:
        if self.sftp is not None:
            return self.sftp
        client = paramiko.SSHClient()
        keys = client.get_host_keys()
        if self.known_hosts.is_file():
            keys.load(str(self.known_hosts))
        if self.creds.host_key:
            kind, b64 = self.creds.host_key.split()[:2]
            key = paramiko.PKey.from_type_string(kind, base64.b64decode(b64))
            keys.add(self.src.known_hosts_name, kind, key)
        if not keys.lookup(self.src.known_hosts_name) and not keys.lookup(self.src.host):
            raise SftpError(
                f"{self.src.where}: no host key for {self.src.known_hosts_name} in {self.known_hosts}; "
                f"host keys are never accepted automatically. Check the server's fingerprint, then add it, "
                f"e.g. ssh-keyscan -p {self.src.port} {self.src.host} >> {self.known_hosts}"
            )
        client.set_missing_host_key_policy(_Reject())
        c = self.creds
        pkey = _pkey(c.private_key, c.passphrase) if c.private_key else None
        try:
            client.connect(
                self.src.host,
                self.src.port,
                username=c.username or self.src.user,
                password=c.password,
                pkey=pkey,
                key_filename=c.key_file,
                passphrase=c.passphrase,
                allow_agent=c.allow_agent,
                look_for_keys=c.look_for_keys and not (pkey or c.key_file),
                timeout=self.timeout,
                banner_timeout=self.timeout,
                auth_timeout=self.timeout,
            )
        except paramiko.BadHostKeyException as e:
            client.close()
            raise SftpError(
                f"{self.src.where}: host key does not match {self.known_hosts} (got "
                f"{fingerprint(e.key)}); refusing to connect"
            ) from None
        except paramiko.AuthenticationException as e:
            client.close()
            raise SftpError(f"{self.src.where}: authentication failed ({e})") from None
        except SftpError:
            client.close()
            raise
        except paramiko.SSHException as e:
            client.close()
            if "No authentication methods" in str(e):
                raise SftpError(
                    f"{self.src.where}: authentication failed: no key, agent or password to "
                    f"offer (set identity_file, run an SSH agent, or give the server a "
                    f"connection_id in Airflow)"
                ) from None
            raise SftpError(f"{self.src.where}: cannot connect: {e}") from e
        except OSError as e:
            client.close()
            raise SftpError(f"{self.src.where}: cannot connect: {e}") from e
        self.client = client
        self.sftp = client.open_sftp()
        self.sftp.get_channel().settimeout(self.timeout)
        return self.sftp

    def close(self) -> None:
        for x in (self.sftp, self.client):
            try:
                if x is not None:
                    x.close()
            except Exception:
                pass
        self.sftp = self.client = None

    def _retry(self, what: str, fn):
        err: BaseException | None = None
        for attempt in range(self.attempts):
            try:
                return fn(self.connect())
            except SftpError:
                raise
            except (FileNotFoundError, PermissionError) as e:  # retrying will not help
                raise SftpError(f"{self.src.where}: {what}: {e}") from None
            except RETRYABLE as e:
                err = e
                self.close()
                self.reconnects += 1
                time.sleep(self.backoff * 2**attempt)
        raise SftpError(f"{self.src.where}: {what} failed after {self.attempts} attempts: {err!r}")

    def list(self) -> list[RemoteFile]:
        def run(sftp: paramiko.SFTPClient) -> list[RemoteFile]:
            out = []
            for a in sftp.listdir_attr(self.src.directory):
                if not fnmatch.fnmatchcase(a.filename, self.src.pattern):
                    continue
                path = posixpath.join(self.src.directory, a.filename)
                if a.st_mode is not None and stat.S_ISLNK(a.st_mode):
                    a = sftp.stat(path)
                if a.st_mode is None or stat.S_ISREG(a.st_mode):
                    out.append(RemoteFile(path, int(a.st_size), float(a.st_mtime)))
            return sorted(out, key=lambda f: (f.mtime, f.path))

        return self._retry(f"listing {self.src.url()}", run)

    def stat(self, path: str) -> RemoteFile:
        a = self._retry(f"stat {path}", lambda s: s.stat(path))
        return RemoteFile(path, int(a.st_size), float(a.st_mtime))

    def read_range(self, path: str, offset: int, n: int) -> bytes:
        def run(sftp):
            with sftp.open(path, "rb") as fh:
                fh.seek(offset)
                return fh.read(n)

        return self._retry(f"reading {path}", run)

    def download(self, rf: RemoteFile, tmp: Path) -> None:
        """Fill `tmp` with the first rf.size bytes of the remote file, resuming after any cut from
        what `tmp` already holds (it may start as a copy of an older snapshot of the same file)."""

        def run(sftp: paramiko.SFTPClient) -> None:
            have = tmp.stat().st_size if tmp.exists() else 0
            if have >= rf.size:
                return
            with sftp.open(rf.path, "rb") as fh, open(tmp, "ab") as out:
                fh.seek(have)
                fh.prefetch(rf.size)
                while have < rf.size:
                    block = fh.read(min(BLOCK, rf.size - have))
                    if not block:
                        raise EOFError(f"{rf.path} ended at byte {have}, listed as {rf.size}")
                    out.write(block)
                    have += len(block)
                out.flush()
                os.fsync(out.fileno())

        self._retry(f"pulling {rf.path} ({rf.size} bytes)", run)


def default_known_hosts() -> Path:
    return Path(os.path.expanduser("~/.ssh/known_hosts"))
