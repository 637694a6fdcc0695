"""HTTP/1.1 GETs over kept-alive connections: h11 for the protocol, an ``httpcore`` network
backend (the SSRF guard and the deadline, :mod:`~dmzwatch.poller.ssrf` and
:mod:`~dmzwatch.poller.safety`) for every connection.

This is the part of httpx the fetcher used, without the layers it did not need (about a tenth
of the CPU time per request, which bounds how many feeds one poller checks a second):

- one :class:`Connections` per fetcher, thread-safe; idle connections are kept per origin
  (scheme, host, port) for ``keepalive_seconds`` and reused, unless the server closed them;
- a request that fails on a *reused* connection before any byte of a response came back is
  sent once more on a new one (the server closed it while it was idle);
- every failure is an ``httpcore`` exception (``ConnectError`` and its
  :class:`~dmzwatch.poller.ssrf.BlockedAddress`, ``*Timeout``, ``ReadError``,
  ``RemoteProtocolError``, ...), as it was through httpx;
- the body is handed over as it arrives, still content-encoded: decoding is the caller's,
  bounded (:class:`~dmzwatch.poller.safety.BoundedInflater`).
"""

from __future__ import annotations

import contextlib
import ssl
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import h11
import httpcore

from dmzwatch.shared.clock import Clock

_READ = 65536
# As httpcore: a status line and headers larger than this are refused.
MAX_HEAD_BYTES = 100 * 1024

Origin = tuple[str, str, int]


@dataclass(slots=True)
class _Connection:
    origin: Origin
    stream: httpcore.NetworkStream
    protocol: h11.Connection = field(
        default_factory=lambda: h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
    )
    idle_since: float = 0.0


class _Unanswered(Exception):
    """The connection failed before a response head came back (``cause`` says how)."""

    def __init__(self, cause: httpcore.NetworkError | httpcore.ProtocolError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class Response:
    """A response whose status and headers have arrived; the body follows from
    :meth:`iter_raw`. ``headers`` has lower-case names, repeated ones joined by ", "."""

    def __init__(
        self,
        owner: Connections,
        connection: _Connection,
        status_code: int,
        reason_phrase: str,
        headers: dict[str, str],
    ) -> None:
        self.status_code = status_code
        self.reason_phrase = reason_phrase
        self.headers = headers
        self._owner = owner
        self._connection: _Connection | None = connection
        self._complete = False

    def iter_raw(self) -> Iterator[bytes]:
        """Body bytes as they come (transfer coding removed, content coding kept)."""
        connection = self._connection
        if connection is None:
            return
        for event in self._owner.events(connection):
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._complete = True
                return

    def close(self) -> None:
        """Give the connection back for reuse when the exchange ended cleanly, else close it."""
        connection, self._connection = self._connection, None
        if connection is not None:
            self._owner.finished(connection, reusable=self._complete)


class Connections:
    """GET over HTTP/1.1 with keep-alive, through ``network`` (which does the address check and
    the deadline). ``connect_timeout`` bounds each connect and TLS handshake, ``read_timeout``
    each read and write; at most ``max_idle_per_origin`` idle connections are kept per origin,
    for ``keepalive_seconds``."""

    def __init__(
        self,
        network: httpcore.NetworkBackend,
        clock: Clock,
        *,
        ssl_context: ssl.SSLContext,
        connect_timeout: float,
        read_timeout: float,
        max_idle_per_origin: int = 8,
        keepalive_seconds: float = 30.0,
    ) -> None:
        self._network = network
        self._clock = clock
        self._ssl = ssl_context
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_idle = max_idle_per_origin
        self._keepalive = keepalive_seconds
        self._idle: dict[Origin, list[_Connection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def get(
        self, scheme: str, host: str, port: int, target: str, headers: Sequence[tuple[str, str]]
    ) -> Response:
        """Send ``GET target`` to the origin and wait for the response head."""
        origin = (scheme, host, port)
        default = 443 if scheme == "https" else 80
        name = f"[{host}]" if ":" in host else host  # an IPv6 literal
        authority = name if port == default else f"{name}:{port}"
        try:
            request = h11.Request(
                method="GET", target=target, headers=[("Host", authority), *headers]
            )
        except h11.LocalProtocolError as exc:
            raise httpcore.LocalProtocolError(f"cannot send this request: {exc}") from exc
        while True:
            connection, reused = self._connection(origin)
            try:
                return self._exchange(connection, request)
            except _Unanswered as exc:
                self._discard(connection)
                if not reused:
                    raise exc.cause from exc.cause.__cause__
                # The server had closed the idle connection: once more on a new one.
            except BaseException:
                self._discard(connection)
                raise

    def events(self, connection: _Connection) -> Iterator[h11.Event]:
        """The protocol events of ``connection``, reading from its stream when needed."""
        protocol = connection.protocol
        while True:
            try:
                event = protocol.next_event()
                if event is h11.NEED_DATA:
                    protocol.receive_data(connection.stream.read(_READ, self._read_timeout))
                    continue
            except h11.RemoteProtocolError as exc:
                raise httpcore.RemoteProtocolError(str(exc)) from exc
            if event is h11.PAUSED:
                raise httpcore.RemoteProtocolError("server sent data after the response")
            if isinstance(event, h11.ConnectionClosed):
                raise httpcore.RemoteProtocolError("server closed the connection mid-response")
            assert not isinstance(event, type)  # NEED_DATA and PAUSED are handled above
            yield event

    def finished(self, connection: _Connection, *, reusable: bool) -> None:
        """Pool ``connection`` if its exchange ended and both sides may go on; else close it."""
        protocol = connection.protocol
        if reusable and protocol.our_state is h11.DONE and protocol.their_state is h11.DONE:
            protocol.start_next_cycle()
            connection.idle_since = self._clock.monotonic()
            with self._lock:
                idle = self._idle.setdefault(connection.origin, [])
                if not self._closed and len(idle) < self._max_idle:
                    idle.append(connection)
                    return
        self._discard(connection)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle = [c for connections in self._idle.values() for c in connections]
            self._idle.clear()
        for connection in idle:
            self._discard(connection)

    def _connection(self, origin: Origin) -> tuple[_Connection, bool]:
        """An idle connection to ``origin`` still open, else a new one; and whether reused."""
        now = self._clock.monotonic()
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                connection = idle.pop() if idle else None
            if connection is None:
                break
            fresh = now - connection.idle_since < self._keepalive
            # Readable while idle: the server closed it (or sent junk), so it is not reused.
            if fresh and not connection.stream.get_extra_info("is_readable"):
                return connection, True
            self._discard(connection)
        scheme, host, port = origin
        stream = self._network.connect_tcp(host, port, timeout=self._connect_timeout)
        try:
            if scheme == "https":
                stream = stream.start_tls(self._ssl, host, timeout=self._connect_timeout)
        except BaseException:
            stream.close()
            raise
        return _Connection(origin, stream), False

    def _exchange(self, connection: _Connection, request: h11.Request) -> Response:
        protocol = connection.protocol
        data = protocol.send(request) + protocol.send(h11.EndOfMessage())
        answered = False
        try:
            connection.stream.write(data, self._read_timeout)
            for event in self.events(connection):
                answered = True
                if isinstance(event, h11.InformationalResponse):
                    continue  # 100 Continue and the like: the real response follows
                if isinstance(event, h11.Response):
                    return self._response(connection, event)
                raise httpcore.RemoteProtocolError(f"unexpected {type(event).__name__}")
        except (httpcore.ReadError, httpcore.WriteError, httpcore.RemoteProtocolError) as exc:
            if not answered:
                raise _Unanswered(exc) from exc
            raise
        raise httpcore.RemoteProtocolError("no response")

    def _response(self, connection: _Connection, event: h11.Response) -> Response:
        headers: dict[str, str] = {}
        for name, value in event.headers:
            key = name.decode("latin-1")  # h11 gives names lower-cased
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        reason = event.reason.decode("latin-1", errors="replace")
        return Response(self, connection, event.status_code, reason, headers)

    @staticmethod
    def _discard(connection: _Connection) -> None:
        with contextlib.suppress(OSError):
            connection.stream.close()
