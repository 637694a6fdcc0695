"""A small TCP fault proxy (toxiproxy cannot be installed here): threads, one port, one target.

Between the services and the broker or Redis it can

- add ``latency`` seconds before every chunk it forwards (both directions);
- ``drop_replies(count, after)``: forward requests but swallow ``count`` server-to-client chunks
  after letting ``after`` through (a reply lost on the way back, while the request was applied);
- ``cut()`` every open connection (both ends see a reset/EOF);
- ``block()``: cut and stop listening, so new connections are refused, until ``unblock()``.

Counters (``accepted``, ``replies``, ``dropped``) let tests check that a fault really happened.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time

CHUNK = 65536


class FaultProxy:
    """Listens on ``127.0.0.1:port`` (0: a free one) and forwards to ``target``."""

    def __init__(self, target_host: str, target_port: int, port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.latency = 0.0
        self.accepted = 0
        self.dropped = 0
        self.replies = 0  # server-to-client chunks forwarded
        self._lock = threading.Lock()
        self._drop_after = 0
        self._drop_count = 0
        self._conns: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._closed = False
        self.port = port
        self._listen()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- faults -------------------------------------------------------------------------------

    def drop_replies(self, count: int = 1, after: int = 0) -> None:
        """Swallow the next ``count`` server-to-client chunks, after ``after`` pass through."""
        with self._lock:
            self._drop_after, self._drop_count = after, count

    def cut(self) -> None:
        """Reset every open connection (the listener stays up)."""
        with self._lock:
            conns, self._conns = self._conns, set()
        for sock in conns:
            _close(sock, reset=True)

    def block(self) -> None:
        """Refuse new connections and cut the open ones, until :meth:`unblock`."""
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            _close(listener)
        self.cut()

    def unblock(self) -> None:
        with self._lock:
            if self._listener is not None:
                return
        self._listen()

    def heal(self) -> None:
        """No fault at all: no latency, nothing dropped, listening."""
        self.latency = 0.0
        self.drop_replies(0)
        self.unblock()

    def close(self) -> None:
        self._closed = True
        self.block()

    # -- plumbing ----------------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for _ in range(100):  # the port may linger briefly after block()
            try:
                listener.bind(("127.0.0.1", self.port))
                break
            except OSError:
                time.sleep(0.05)
        else:
            listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by block()
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                _close(client, reset=True)
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._listener is not listener:
                    _close(client, reset=True)
                    _close(server)
                    return
                self.accepted += 1
                self._conns.update((client, server))
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _should_drop(self) -> bool:
        with self._lock:
            self.replies += 1
            if self._drop_count <= 0:
                return False
            if self._drop_after > 0:
                self._drop_after -= 1
                return False
            self._drop_count -= 1
            self.dropped += 1
            return True

    def _pump(self, source: socket.socket, sink: socket.socket, reply: bool) -> None:
        try:
            while True:
                data = source.recv(CHUNK)
                if not data:
                    break
                if self.latency:
                    time.sleep(self.latency)
                if reply and self._should_drop():
                    continue
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(source)
                self._conns.discard(sink)
            _close(source)
            _close(sink)


def _close(sock: socket.socket, reset: bool = False) -> None:
    with contextlib.suppress(OSError):
        if reset:  # RST instead of FIN: what a crashed peer or a dropped route looks like
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
