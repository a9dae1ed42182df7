"""A real SSH/SFTP server on 127.0.0.1 (asyncssh, in the test process) for the sftp source tests.

Its host key goes into a known_hosts file the client is pointed at; it accepts one client key
and one password. `cut_after` makes it drop the connection once that many bytes of file data
have been served, once per value set (a network cut mid-file).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import asyncssh

USER, PASSWORD = "logs", "s3cret"


class LoopbackSFTPServer:
    def __init__(self, root: Path, workdir: Path):
        self.root, self.port = Path(root), None
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        workdir.mkdir(parents=True, exist_ok=True)
        self.client_key_file = workdir / "id_ed25519"
        self.client_key.write_private_key(str(self.client_key_file))
        self.client_key_file.chmod(0o600)
        self.known_hosts = workdir / "known_hosts"
        self.cut_after: int | None = None
        self.bytes_served = 0
        self.cuts = 0
        self.logins = 0
        self._loop, self._ready = asyncio.new_event_loop(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self):
        outer = self
        client_pub = self.client_key.convert_to_public()

        class _Server(asyncssh.SSHServer):
            def begin_auth(self, username):
                return True

            def password_auth_supported(self):
                return True

            def validate_password(self, username, password):
                return (username, password) == (USER, PASSWORD)

            def public_key_auth_supported(self):
                return True

            def validate_public_key(self, username, key):
                return username == USER and key.public_data == client_pub.public_data

            def auth_completed(self):
                outer.logins += 1

        class _SFTP(asyncssh.SFTPServer):
            def read(self, file_obj, offset, size):
                data = super().read(file_obj, offset, size)
                outer.bytes_served += len(data)
                if outer.cut_after is not None and outer.bytes_served > outer.cut_after:
                    outer.cut_after = None
                    outer.cuts += 1
                    self.connection.abort()
                return data

        self._server = await asyncssh.create_server(
            _Server,
            "127.0.0.1",
            0,
            server_host_keys=[self.host_key],
            sftp_factory=lambda chan: _SFTP(chan, chroot=str(self.root).encode()),
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def __enter__(self):
        self._thread.start()
        assert self._ready.wait(10)
        pub = self.host_key.export_public_key().decode().split()[:2]
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {' '.join(pub)}\n")
        return self

    def __exit__(self, *exc):
        async def _stop():
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def host_key_line(self) -> str:
        return " ".join(self.host_key.export_public_key().decode().split()[:2])

    def url(self, path: str, user: str = USER) -> str:
        return f"sftp://{user}@127.0.0.1:{self.port}{path}"
