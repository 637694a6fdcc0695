"""WebSub over HTTP: the callback server hubs call, and the client that asks hubs to subscribe.

- :class:`CallbackServer` serves ``GET`` (verification of intent) and ``POST`` (content
  distribution) on any path whose last segment is a callback token, from a daemon thread
  (stdlib ``ThreadingHTTPServer``, like the health server: two routes do not need a
  framework). Bodies need a ``Content-Length`` and are capped; each connection has a socket
  timeout so a slow sender holds one thread for a bounded time.
- :class:`HttpHubClient` POSTs subscription requests with httpx through the same SSRF guard as
  feed fetches (:class:`~dmzwatch.poller.ssrf.GuardedNetwork` with the poller's allow-list) and
  a total deadline per request; redirects are not followed.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import httpcore
import httpx
import structlog

from dmzwatch.poller.fetch import DEFAULT_USER_AGENT
from dmzwatch.poller.safety import DeadlineNetwork
from dmzwatch.poller.ssrf import AddressPolicy, BlockedAddress, GuardedNetwork, Resolver, resolve
from dmzwatch.poller.websub import Answer, HubClient, HubReply, PushSink, WebSubSubscriber
from dmzwatch.shared.clock import Clock, SystemClock

log = structlog.get_logger(__name__)


class CallbackServer:
    """Serves ``subscriber``'s callbacks on ``host:port`` (port 0: any free port)."""

    def __init__(
        self,
        subscriber: WebSubSubscriber,
        host: str,
        port: int,
        *,
        max_body_bytes: int = 10 * 1024 * 1024,
        socket_timeout_seconds: float = 10.0,
    ) -> None:
        handler = _handler_class(subscriber, max_body_bytes, socket_timeout_seconds)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="websub-callback", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> CallbackServer:
        self._thread.start()
        log.info("websub_callback_listening", port=self.port)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_class(
    subscriber: WebSubSubscriber, max_body_bytes: int, socket_timeout: float
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = socket_timeout
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            self._answer(subscriber.verify(_token(parts.path), query))

        def do_POST(self) -> None:
            length = self.headers.get("Content-Length", "")
            if not length.isdigit():
                self.close_connection = True
                self._answer(Answer(411, b"Content-Length required\n"))
                return
            if int(length) > max_body_bytes:
                self.close_connection = True  # the body is not read
                self._answer(Answer(413, b"too large\n"))
                log.warning("websub_push_too_large", bytes=int(length))
                return
            body = self.rfile.read(int(length))
            headers = {name.lower(): value for name, value in self.headers.items()}
            token = _token(urlsplit(self.path).path)
            self._answer(subscriber.push(token, body, headers))

        def _answer(self, answer: Answer) -> None:
            self.send_response(answer.status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format: str, *args: object) -> None:
            return  # outcomes are logged and counted by the subscriber

    return Handler


def _token(path: str) -> str:
    """The callback token: the last path segment (a proxy may add or strip a prefix)."""
    return path.rstrip("/").rsplit("/", 1)[-1]


class WebSubEndpoint:
    """The running parts of WebSub: the subscriber, its callback server and the thread that
    sends and renews subscriptions every ``tick_seconds``. ``start(sink)`` once the poller
    exists; ``stop`` at shutdown."""

    def __init__(
        self, subscriber: WebSubSubscriber, server: CallbackServer, tick_seconds: float = 1.0
    ) -> None:
        self.subscriber = subscriber
        self.server = server
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=subscriber.maintain,
            args=(self._stopping, tick_seconds),
            name="websub-leases",
            daemon=True,
        )

    def start(self, sink: PushSink) -> WebSubEndpoint:
        self.subscriber.attach(sink)
        self.server.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.server.stop()
        if self._thread.is_alive():
            self._thread.join(timeout=15)
        self.subscriber.close()


class HttpHubClient(HubClient):
    """:class:`HubClient` over HTTP with httpx; connections only to addresses ``address_policy``
    permits (default: public unicast), each request bounded by ``timeout_seconds`` in total."""

    def __init__(
        self,
        *,
        timeout_seconds: float = 10.0,
        address_policy: AddressPolicy | None = None,
        resolver: Resolver = resolve,
        clock: Clock | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> None:
        self._timeout = timeout_seconds
        self._clock = clock or SystemClock()
        guarded = GuardedNetwork(
            httpcore.SyncBackend(),
            address_policy or AddressPolicy(),
            resolver=resolver,
            clock=self._clock,
        )
        self._network = DeadlineNetwork(guarded, self._clock)
        ssl_context = httpx.create_ssl_context()
        transport = httpx.HTTPTransport(verify=ssl_context)
        # As in HttpFeedFetcher: httpx has no public way to give httpcore a network backend.
        transport._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context, max_connections=10, network_backend=self._network
        )
        self._client = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(timeout_seconds),
            headers={"User-Agent": user_agent},
            follow_redirects=False,
        )

    def request(self, hub: str, form: Mapping[str, str]) -> HubReply:
        try:
            target = httpx.URL(hub)
        except httpx.InvalidURL as exc:
            return HubReply(False, "error", error=f"invalid hub URL: {exc}")
        if target.scheme not in ("http", "https") or not target.host:
            return HubReply(False, "blocked", error=f"only http(s) hubs are used: {hub!r}")
        with self._network.deadline(self._clock.monotonic() + self._timeout):
            try:
                with self._client.stream("POST", target, data=dict(form)) as response:
                    if response.is_success:
                        return HubReply(True, "accepted", response.status_code)
                    said = _head(response)
            except httpx.ConnectError as exc:
                blocked = _blocked(exc)
                if blocked is not None:
                    return HubReply(False, "blocked", error=str(blocked))
                return HubReply(False, "error", error=f"cannot connect: {exc}")
            except httpx.HTTPError as exc:
                return HubReply(False, "error", error=f"{type(exc).__name__}: {exc}")
        message = f"HTTP {response.status_code} {response.reason_phrase}: {said}".rstrip(": ")
        return HubReply(False, "rejected", response.status_code, message)

    def close(self) -> None:
        self._client.close()


def _blocked(exc: BaseException) -> BlockedAddress | None:
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, BlockedAddress):
        cause = cause.__cause__ or cause.__context__
    return cause


def _head(response: httpx.Response, limit: int = 512) -> str:
    """The start of a refusal's body, for the log (a hub's error page is not read whole)."""
    data = b""
    for chunk in response.iter_bytes(limit):
        data += chunk
        if len(data) >= limit:
            break
    return data[:limit].decode("utf-8", "replace").strip().replace("\n", " ")
