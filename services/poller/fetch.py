"""Fetching one feed over HTTP: conditional, bounded in time and size, never raising.

The seam is :class:`FeedFetcher`; :class:`HttpFeedFetcher` is the real one. Every network or
HTTP problem is a :class:`FetchResult` outcome with a message, never an exception, so the poll
loop has one path. Bounds that hostile servers cannot stretch:

- a total deadline per fetch, enforced inside the network layer on every connect, TLS handshake,
  read and write (a server sending one byte a second defeats per-read timeouts, and can do so
  in the headers as well as the body);
- a cap on the *decompressed* body, applied while inflating, so a gzip bomb stops at the cap;
- http and https only, on every redirect hop;
- only public addresses, checked on the resolved address of every connection, redirects
  included, unless an allow-list opens more (outcome ``blocked``).

The mechanisms are in :mod:`dmzwatch.poller.safety` and :mod:`dmzwatch.poller.ssrf`; HTTP/1.1
with keep-alive over them is :mod:`dmzwatch.poller.connections`.
"""

from __future__ import annotations

import re
import socket
import ssl
import typing
import zlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

import httpcore
import httpx

from dmzwatch.poller.connections import Connections, Response
from dmzwatch.poller.safety import BodyError, BodyTooLarge, BoundedInflater, DeadlineNetwork
from dmzwatch.poller.ssrf import AddressPolicy, BlockedAddress, GuardedNetwork, Resolver, resolve
from dmzwatch.shared.clock import Clock, SystemClock

FetchOutcome = Literal["ok", "not_modified", "error", "blocked", "too_large", "timeout"]
FETCH_OUTCOMES: tuple[FetchOutcome, ...] = typing.get_args(FetchOutcome)
DEFAULT_USER_AGENT = "dmzwatch/0.1 (+https://github.com/dmzwatch/dmzwatch)"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9,"
    " application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)
# An http(s) URL that httpx.URL would leave exactly as it is (lower-case scheme and host, no
# default or zero-led port, no fragment, only characters it does not escape): split here
# without its cost (tests/unit/poller/test_speed_parity_fetch.py checks the claim).
_PLAIN_URL = re.compile(
    r"(https?)://([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*)"
    r"(?::([1-9][0-9]{0,4}))?((?:/[A-Za-z0-9._~!$&'()*+,;=:@/%-]*)?(?:\?[A-Za-z0-9._~!$&'()*+,;=:@/?%-]*)?)\Z"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True)
class Target:
    """Where a GET goes: ``url`` as httpx normalises it, and its parts for the request."""

    url: str
    scheme: str
    host: str
    port: int
    path: str


def split_url(url: str) -> Target:
    """The :class:`Target` of ``url``; raises ``httpx.InvalidURL`` when it is not a URL.

    ``scheme`` may be anything (the caller refuses what is not http or https) and ``host``
    empty; ``host`` is IDNA-encoded and bare (no brackets for IPv6); ``path`` has the query.
    """
    plain = _PLAIN_URL.match(url)
    if plain is not None:
        scheme, host, port, path = plain.groups()
        number = int(port) if port else _DEFAULT_PORTS[scheme]
        if port is None or (number != _DEFAULT_PORTS[scheme] and number <= 65535):
            path = path if path.startswith("/") else "/" + path
            return Target(url, scheme, host, number, path)
    parsed = httpx.URL(url)
    port = parsed.port or _DEFAULT_PORTS.get(parsed.scheme, 0)
    raw_host = parsed.raw_host.decode("ascii")
    return Target(str(parsed), parsed.scheme, raw_host, port, parsed.raw_path.decode("ascii"))


@dataclass(frozen=True, slots=True)
class Validators:
    """Validators from the previous successful fetch, sent back for a conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one fetch did.

    ``url`` is the final URL after redirects; ``body`` is set only for ``ok`` (decompressed);
    ``validators`` are the ones to send next time (the old ones unless the server sent new);
    ``error`` is a message for people for every outcome but ``ok`` and ``not_modified``;
    ``bytes_read`` counts body bytes as they came over the wire (compressed);
    ``retry_after`` is the server's Retry-After in seconds (429, 503), else None;
    ``headers`` are the final response's headers, names lower-case (None when there was none).
    """

    outcome: FetchOutcome
    url: str
    status_code: int | None
    body: bytes | None
    content_type: str | None
    validators: Validators
    error: str | None
    seconds: float
    bytes_read: int
    retry_after: float | None
    headers: Mapping[str, str] | None = None


class FeedFetcher(ABC):
    """Fetches feed documents.

    ``fetch`` is called by the poller for each due feed, possibly from several threads at once.
    It returns a :class:`FetchResult` for every network, HTTP and body problem (outcomes
    ``error``, ``blocked``, ``too_large``, ``timeout``) and raises only on a bug. ``close`` is
    called once at shutdown, after the last ``fetch``.
    """

    @abstractmethod
    def fetch(self, url: str, validators: Validators) -> FetchResult: ...

    def close(self) -> None:  # noqa: B027 - optional hook; most fetchers hold nothing
        """Release connections."""


def parse_retry_after(
    value: str | None, now: datetime, server_date: str | None = None
) -> float | None:
    """Seconds to wait from a Retry-After value: delay-seconds or an HTTP-date.

    A date is measured from the response's own ``Date`` when it has one, so that a skewed
    server clock does not shift the wait; otherwise from ``now``. None when unreadable.
    """
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 and seconds != float("inf") else None
    when = _http_date(text)
    if when is None:
        return None
    reference = _http_date(server_date) if server_date else None
    return max(0.0, (when - (reference or now)).total_seconds())


def _http_date(text: str) -> datetime | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


class HttpFeedFetcher(FeedFetcher):
    """:class:`FeedFetcher` over HTTP/1.1 (:mod:`~dmzwatch.poller.connections`); thread-safe.

    ``timeout_seconds`` is the total deadline of one fetch, redirects and body included;
    ``connect_timeout_seconds`` bounds each connection attempt within it. ``max_bytes`` caps the
    decompressed body. Connections go only to addresses ``address_policy`` permits (default:
    public unicast addresses only), looked up with ``resolver``; ``network_backend`` (default:
    plain sockets) is what then connects, and the deadline and the address check wrap it.
    Connections are kept alive and reused per origin (at most ``max_idle_per_origin`` idle).
    """

    def __init__(
        self,
        *,
        timeout_seconds: float = 10.0,
        max_bytes: int = 10 * 1024 * 1024,
        user_agent: str = DEFAULT_USER_AGENT,
        max_redirects: int = 5,
        connect_timeout_seconds: float = 5.0,
        network_backend: httpcore.NetworkBackend | None = None,
        clock: Clock | None = None,
        address_policy: AddressPolicy | None = None,
        resolver: Resolver = resolve,
        max_idle_per_origin: int = 8,
    ) -> None:
        if timeout_seconds <= 0 or max_bytes <= 0 or max_redirects < 0:
            raise ValueError("timeout_seconds and max_bytes must be > 0, max_redirects >= 0")
        self._timeout = timeout_seconds
        self._max_bytes = max_bytes
        self._max_redirects = max_redirects
        self._clock = clock or SystemClock()
        guarded = GuardedNetwork(
            network_backend or httpcore.SyncBackend(),
            address_policy or AddressPolicy(),
            resolver=resolver,
            clock=self._clock,
        )
        self._network = DeadlineNetwork(guarded, self._clock)
        self._headers = (
            ("User-Agent", user_agent),
            ("Accept", ACCEPT),
            ("Accept-Encoding", "gzip, deflate"),
        )
        self._connections = Connections(
            self._network,
            self._clock,
            ssl_context=httpx.create_ssl_context(),
            connect_timeout=min(connect_timeout_seconds, timeout_seconds),
            read_timeout=timeout_seconds,
            max_idle_per_origin=max_idle_per_origin,
        )

    def close(self) -> None:
        self._connections.close()

    def __enter__(self) -> HttpFeedFetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def fetch(self, url: str, validators: Validators) -> FetchResult:
        started = self._clock.monotonic()
        headers = list(self._headers)
        if validators.etag:
            headers.append(("If-None-Match", validators.etag))
        if validators.last_modified:
            headers.append(("If-Modified-Since", validators.last_modified))
        base = FetchResult("error", url, None, None, None, validators, None, 0.0, 0, None)
        with self._network.deadline(started + self._timeout):
            result = self._follow(url, headers, base, started)
        return replace(result, seconds=self._clock.monotonic() - started)

    def _follow(
        self, url: str, headers: list[tuple[str, str]], base: FetchResult, started: float
    ) -> FetchResult:
        """GET ``url``, following redirects by hand so that each hop's scheme is checked; a
        failure is reported against the hop it happened on."""
        for hop in range(self._max_redirects + 1):
            if base.url != url:
                base = replace(base, url=url)
            try:
                target = split_url(url)
                if target.scheme not in ("http", "https") or not target.host:
                    message = f"only http(s) URLs are fetched: {url!r}"
                    return replace(base, outcome="blocked", error=message)
                if target.url != url:
                    base = replace(base, url=target.url)
                response = self._connections.get(
                    target.scheme, target.host, target.port, target.path, headers
                )
                try:
                    location = response.headers.get("location")
                    if response.status_code not in _REDIRECTS or not location:
                        return self._finish(response, base, started + self._timeout)
                    if hop == self._max_redirects:
                        message = f"more than {self._max_redirects} redirects"
                        return replace(base, status_code=response.status_code, error=message)
                    url = str(httpx.URL(target.url).join(location))
                finally:
                    response.close()
            except httpcore.TimeoutException as exc:
                waited = self._clock.monotonic() - started
                message = f"timed out after {waited:.1f} s ({exc or type(exc).__name__})"
                return replace(base, outcome="timeout", error=message)
            except httpcore.ConnectError as exc:
                blocked = _blocked_cause(exc)
                if blocked is None:
                    return replace(base, error=_connect_message(exc, url))
                # On a redirect hop the feed's own URL looks harmless: say where it led.
                message = str(blocked) if hop == 0 else f"redirect to {url}: {blocked}"
                return replace(base, outcome="blocked", error=message)
            except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
                return replace(base, error=f"{type(exc).__name__}: {exc}")
            except httpx.InvalidURL as exc:
                return replace(base, error=f"invalid URL {url!r}: {exc}")
        raise AssertionError("unreachable: the last hop returns")

    def _finish(self, response: Response, base: FetchResult, deadline: float) -> FetchResult:
        """The result of a final (non-redirect) response, reading its body if it has one."""
        headers = response.headers
        sent = base.validators
        if response.status_code == 304:
            # A 304 has no body; reading the empty one returns the connection to the pool
            # instead of closing it, so conditional GETs reuse connections.
            for _ in response.iter_raw():
                pass
            etag = headers.get("etag") or sent.etag
            last_modified = headers.get("last-modified") or sent.last_modified
            if etag != sent.etag or last_modified != sent.last_modified:
                sent = Validators(etag, last_modified)
            return FetchResult(
                "not_modified",
                base.url,
                304,
                None,
                headers.get("content-type"),
                sent,
                None,
                base.seconds,
                0,
                None,
                headers,
            )
        if not 200 <= response.status_code < 300:
            wait = parse_retry_after(
                headers.get("retry-after"), self._clock.now(), headers.get("date")
            )
            return replace(
                base,
                status_code=response.status_code,
                content_type=headers.get("content-type"),
                headers=headers,
                error=f"HTTP {response.status_code} {response.reason_phrase}".rstrip(),
                retry_after=wait,
            )
        # Built directly, not with dataclasses.replace (several times dearer, on every fetch).
        base = FetchResult(
            "error",
            base.url,
            response.status_code,
            None,
            headers.get("content-type"),
            Validators(headers.get("etag"), headers.get("last-modified")),
            None,
            base.seconds,
            0,
            None,
            headers,
        )
        length = headers.get("content-length", "")
        if (
            length.isdigit()
            and not headers.get("content-encoding")
            and int(length) > self._max_bytes
        ):
            message = f"body of {length} bytes is over the {self._max_bytes}-byte limit"
            return replace(base, outcome="too_large", error=message)
        body = bytearray()
        wire = 0
        try:
            inflater = BoundedInflater(headers.get("content-encoding", "").strip().lower())
            for chunk in response.iter_raw():
                wire += len(chunk)
                # Reads are bounded by the deadline already; this is a second line.
                if self._clock.monotonic() > deadline:
                    message = f"gave up after the {self._timeout:.1f} s deadline"
                    return replace(base, outcome="timeout", error=message, bytes_read=wire)
                body += inflater.feed(chunk, self._max_bytes - len(body))
            inflater.finish()
        except BodyTooLarge:
            message = f"body is over the {self._max_bytes}-byte limit (decompressed)"
            return replace(base, outcome="too_large", error=message, bytes_read=wire)
        except BodyError as exc:
            return replace(base, error=str(exc), bytes_read=wire)
        except zlib.error as exc:
            message = f"corrupt compressed body: {exc}"
            return replace(base, error=message, bytes_read=wire)
        return FetchResult(
            "ok",
            base.url,
            base.status_code,
            bytes(body),
            base.content_type,
            base.validators,
            None,
            base.seconds,
            wire,
            None,
            headers,
        )


def _blocked_cause(exc: BaseException) -> BlockedAddress | None:
    """The address refusal at the root of a connect error, if that is what it was."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, BlockedAddress):
        cause = cause.__cause__ or cause.__context__
    return cause


def _connect_message(exc: BaseException, url: str) -> str:
    """Why a connection failed, in words, from the OS error at the root of the chain."""
    target = httpx.URL(url)
    where = f"{target.host}:{target.port or (443 if target.scheme == 'https' else 80)}"
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return f"connection refused by {where}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake with {where} failed: {cause.reason or cause}"
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve host {target.host!r}: {cause.strerror or cause}"
        cause = cause.__cause__ or cause.__context__
    return f"cannot connect to {where}: {exc}"
