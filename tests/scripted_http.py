"""A request handler base for test HTTP servers on 127.0.0.1 that misbehave on purpose."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler


class ScriptedHandler(BaseHTTPRequestHandler):
    """``reply`` sends a whole response; ``trickle`` sends one byte a second.

    The server must have a ``stopping`` :class:`threading.Event` so trickles end with the test.
    """

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def reply(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def trickle(self, data: bytes) -> None:
        """Send ``data`` one byte a second until done, the client leaves or the test ends."""
        stopping: threading.Event = self.server.stopping  # type: ignore[attr-defined]
        for i in range(len(data)):
            try:
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
            except OSError:
                return
            if stopping.wait(1.0):
                return
        self.close_connection = True
