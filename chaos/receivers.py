"""Real HTTP receivers on 127.0.0.1 that record every request and can misbehave.

A :class:`Receiver` answers each request with the next scripted :class:`Reply` (then
``default``), verifies Standard Webhooks signatures with the ``standardwebhooks`` library when it
has a secret (a bad signature gets 401, as a real receiver would answer), and records every
request. A reply may *hold* the request: the receiver then waits, and if the client goes away
meanwhile (killed, timed out) it records the request as abandoned and answers nothing, which
is exactly when a sender must not consider the delivery made. :meth:`Receiver.close_port` makes
it *gone* (connection refused) until :meth:`Receiver.open_port` binds the same port again.

:class:`AlertReceiver` is the chaos run's Slack or webhook receiver: it switches between the
modes ``ok`` (200), ``slow`` (200 after ``slow_seconds``), ``fail`` (500) and ``gone``, and keys
each accepted delivery by alert id and version (from the JSON body of a webhook, from the context
line of a Slack message), so the same key accepted twice is a duplicated notification.

The notifier's tests use the same classes.
"""

from __future__ import annotations

import json
import re
import select
import socket
import threading
import time
from collections import Counter
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
        path: str = "/hook",
    ) -> None:
        self.requests: list[Request] = []
        self.script = list(replies)
        self.default = default
        self.release = threading.Event()  # ends every hold at once
        self._path = path
        self._lock = threading.Lock()
        self._verifier = Webhook(secret) if secret else None
        self._stamp = stamp
        self._port = 0
        self._server: ThreadingHTTPServer | None = None
        self.open_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}{self._path}"

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

    def open_port(self) -> None:
        """Listen (again: on the same port, once the OS lets it go); no-op if listening."""
        if self._server is not None:
            return
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        for _ in range(100):
            try:
                server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"port {self._port} stays taken")
        server.daemon_threads = True
        self._port = int(server.server_address[1])
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def close_port(self) -> None:
        """Stop listening: senders get connection refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def stop(self) -> None:
        self.release.set()
        self.close_port()

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
        try:
            http.send_response(reply.status)
            for name, value in reply.headers.items():
                http.send_header(name, value)
            http.send_header("Content-Length", "2")
            http.end_headers()
            http.wfile.write(b"ok")
        except OSError:
            request.abandoned = True  # the client went away before the answer
            return
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


_SLACK_ID = re.compile(r"v(\d+) · `([^`]+)`")


class AlertReceiver(Receiver):
    """A chaos run's Slack (``kind="slack"``) or webhook receiver, switched between modes."""

    def __init__(self, name: str, kind: str, slow_seconds: float = 2.0) -> None:
        super().__init__(path=f"/{kind}")
        self.name = name
        self.kind = kind
        self.mode = "ok"
        self.slow_seconds = slow_seconds

    def set_mode(self, mode: str) -> None:
        if mode == "gone":
            self.close_port()
        else:
            self.default = {
                "ok": Reply(200),
                "slow": Reply(200, hold_seconds=self.slow_seconds),
                "fail": Reply(500),
            }[mode]
            self.open_port()
        self.mode = mode

    @property
    def delivered(self) -> list[tuple[str, int]]:
        """(alert id, version) of each accepted delivery, in order."""
        keys = (self._key(r.body) for r in self.answered(200))
        return [key for key in keys if key is not None]

    def keys(self) -> Counter[tuple[str, int]]:
        return Counter(self.delivered)

    def _key(self, body: bytes) -> tuple[str, int] | None:
        if self.kind == "webhook":
            alert = json.loads(body)
            return str(alert["id"]), int(alert["data"]["version"])
        found = _SLACK_ID.search(json.dumps(json.loads(body), ensure_ascii=False))
        return (found.group(2), int(found.group(1))) if found else None
