"""Real receivers on 127.0.0.1 for notification tests: a webhook (HTTP) and a mail server (SMTP)."""

from __future__ import annotations

import json
import socket
import threading
import time
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookSink:
    """Collects the JSON bodies POSTed to it; `status` is what it answers."""

    def __init__(self, status: int = 200):
        self.received: list[dict] = []
        self.status = status
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.received.append({"path": self.path, **json.loads(body)})
                self.send_response(sink.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, pred, timeout: float = 30.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hits = [m for m in list(self.received) if pred(m)]
            if hits:
                return hits
            time.sleep(0.5)
        return []


class SmtpSink:
    """An aiosmtpd server that keeps every message it is sent."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        sink = self
        self.messages = []

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                sink.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
                return "250 OK"

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self):
        self._controller.start()
        return self

    def __exit__(self, *exc):
        self._controller.stop()

    def conn_uri(self, from_email: str = "mmw@example.ac.jp") -> str:
        return (
            f"smtp://127.0.0.1:{self.port}?disable_tls=true&disable_ssl=true&retry_limit=0"
            f"&from_email={from_email.replace('@', '%40')}"
        )
