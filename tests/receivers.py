"""Real HTTP receivers on 127.0.0.1 for the notifier's tests.

A :class:`Receiver` answers each request with the next scripted :class:`Reply` (then the
default), verifies Standard Webhooks signatures with the ``standardwebhooks`` library when it
has a secret (a bad signature gets 401, as a real receiver would answer), and records every
request. A reply may *hold* the request: the receiver then waits, and if the client goes away
meanwhile (killed, timed out) it records the request as abandoned and answers nothing, which
is exactly when a sender must not consider the delivery made.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hold_seconds: float = 0.0


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float  # time.monotonic()
    stamp: Any = None  # the test's clock at arrival, when the receiver has one
    verified: bool | None = None  # None: no secret to verify with
    status: int | None = None  # None: the client went away before an answer
    abandoned: bool = False

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str | None:
        return self.headers.get("webhook-id")


class Receiver:
    def __init__(
        self,
        *replies: Reply,
        secret: str | None = None,
        default: Reply = Reply(200),
        stamp: Callable[[], Any] | None = None,
    ) -> None:
        self.requests: list[Request] = []
        self.script = list(replies)
        self.default = default
        self.release = threading.Event()  # ends every hold at once
        self._lock = threading.Lock()
        self._verifier = Webhook(secret) if secret else None
        self._stamp = stamp
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def answered(self, status: int = 200) -> list[Request]:
        """Requests that got ``status`` (default: the accepted deliveries)."""
        with self._lock:
            return [r for r in self.requests if r.status == status]

    def wait_for(self, count: int, timeout: float = 20.0, status: int | None = 200) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                done = [r for r in self.requests if status is None or r.status == status]
            if len(done) >= count:
                return
            time.sleep(0.02)
        raise AssertionError(f"{self.url}: {len(done)} of {count} requests after {timeout}s")

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def _handle(self, http: BaseHTTPRequestHandler) -> None:
        length = int(http.headers.get("Content-Length", "0"))
        body = http.rfile.read(length)
        headers = {k.lower(): v for k, v in http.headers.items()}
        request = Request(http.path, headers, body, time.monotonic())
        if self._stamp is not None:
            request.stamp = self._stamp()
        with self._lock:
            reply = self.script.pop(0) if self.script else self.default
            self.requests.append(request)
        if self._verifier is not None:
            try:
                self._verifier.verify(body, headers, json_parse=False)
                request.verified = True
            except WebhookVerificationError:
                request.verified = False
                reply = Reply(401)
        if reply.hold_seconds and self._client_left(http, reply.hold_seconds):
            request.abandoned = True
            http.close_connection = True
            return
        http.send_response(reply.status)
        for name, value in reply.headers.items():
            http.send_header(name, value)
        http.send_header("Content-Length", "2")
        http.end_headers()
        http.wfile.write(b"ok")
        request.status = reply.status

    def _client_left(self, http: BaseHTTPRequestHandler, hold: float) -> bool:
        """Hold up to ``hold`` seconds; True as soon as the client closes its end."""
        deadline = time.monotonic() + hold
        sock = http.connection
        while time.monotonic() < deadline and not self.release.is_set():
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:
                try:
                    if sock.recv(1, socket.MSG_PEEK) == b"":
                        return True
                except OSError:
                    return True
        return False
