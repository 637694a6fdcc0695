"""Local Slack and webhook receivers that record every delivery and can misbehave.

``mode``: ``ok`` (200), ``slow`` (200 after ``slow_seconds``), ``fail`` (500), or ``gone`` (the
port is closed: connection refused). A delivery counts once it was answered 200; its key is the
alert id and version (from the JSON body of a webhook, from the context line of a Slack
message), so the same key answered twice by one receiver is a duplicated notification.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_SLACK_ID = re.compile(r"v(\d+) · `([^`]+)`")


class Receiver:
    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind  # "slack" or "webhook"
        self.mode = "ok"
        self.slow_seconds = 2.0
        self.delivered: list[tuple[str, int, float]] = []  # (alert id, version, monotonic)
        self.requests = 0
        self.refused = 0  # answered non-2xx
        self._lock = threading.Lock()
        self._port = 0
        self._server: ThreadingHTTPServer | None = None
        self._open()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/{self.kind}"

    def set_mode(self, mode: str) -> None:
        if mode == "gone" and self.mode != "gone":
            self._close()
        elif mode != "gone" and self.mode == "gone":
            self._open()
        self.mode = mode

    def keys(self) -> Counter[tuple[str, int]]:
        with self._lock:
            return Counter((alert_id, version) for alert_id, version, _ in self.delivered)

    def stop(self) -> None:
        self._close()

    def _open(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        for _ in range(100):  # the same port again after "gone"
            try:
                self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"{self.name}: port {self._port} stays taken")
        self._server.daemon_threads = True
        self._port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _key(self, body: bytes) -> tuple[str, int] | None:
        if self.kind == "webhook":
            alert = json.loads(body)
            return str(alert["id"]), int(alert["data"]["version"])
        found = _SLACK_ID.search(json.dumps(json.loads(body), ensure_ascii=False))
        return (found.group(2), int(found.group(1))) if found else None

    def _handle(self, http: BaseHTTPRequestHandler) -> None:
        body = http.rfile.read(int(http.headers.get("Content-Length", "0")))
        with self._lock:
            self.requests += 1
        mode = self.mode
        if mode == "slow":
            time.sleep(self.slow_seconds)
        status = 500 if mode == "fail" else 200
        try:
            http.send_response(status)
            http.send_header("Content-Length", "2")
            http.end_headers()
            http.wfile.write(b"ok")
        except OSError:
            return  # the sender went away before the answer: not delivered
        key = self._key(body) if status == 200 else None
        with self._lock:
            if status != 200:
                self.refused += 1
            elif key is not None:
                self.delivered.append((key[0], key[1], time.monotonic()))
