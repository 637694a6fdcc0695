"""HttpFeedFetcher against a real HTTP server on 127.0.0.1 (started here; nothing else is
contacted): conditional GET, deadline, size cap, Retry-After, redirects, failures."""

from __future__ import annotations

import gzip
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from email.utils import formatdate
from http.server import ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from dmzwatch.poller.fetch import HttpFeedFetcher, Validators
from dmzwatch.poller.ssrf import AddressPolicy
from tests.scripted_http import ScriptedHandler

FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Local</title>
<item><title>One</title><link>/one</link></item></channel></rss>"""
ETAG = '"v1"'
LAST_MODIFIED = "Sun, 01 Mar 2026 10:00:00 GMT"
BOMB_BYTES = 50 * 1024 * 1024
LOOPBACK = AddressPolicy.from_entries(["127.0.0.1/32"])  # the SSRF guard refuses it by default


def gzip_of_zeros(size: int) -> bytes:
    """gzip of ``size`` zero bytes, made without holding them in memory."""
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    parts = [z.compress(block) for _ in range(size // len(block))]
    return b"".join([*parts, z.flush()])


class FeedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.stopping = threading.Event()
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.bomb = gzip_of_zeros(BOMB_BYTES)

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up on purpose (cap, deadline) are the point of these tests

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class Handler(ScriptedHandler):
    server: FeedServer

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        self.server.seen.append((path, dict(self.headers.items())))
        route: Callable[[], None] | None = getattr(
            self, "route_" + path.strip("/").split("/")[0].replace("-", "_"), None
        )
        if route is None:
            self.reply(404, b"not here")
        else:
            route()

    def route_feed(self) -> None:
        if self.headers.get("If-None-Match") == ETAG:
            self.reply(304, ETag=ETAG)
        else:
            self.reply(
                200,
                FEED,
                Content_Type="application/rss+xml",
                ETag=ETAG,
                Last_Modified=LAST_MODIFIED,
            )

    def route_dated(self) -> None:  # validators by date only
        if self.headers.get("If-Modified-Since") == LAST_MODIFIED:
            self.reply(304)
        else:
            self.reply(200, FEED, Last_Modified=LAST_MODIFIED)

    def route_gzipped(self) -> None:
        self.reply(200, gzip.compress(FEED * 50), Content_Encoding="gzip")

    def route_bomb(self) -> None:
        self.reply(
            200, self.server.bomb, Content_Type="application/rss+xml", Content_Encoding="gzip"
        )

    def route_huge(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(BOMB_BYTES))
        self.end_headers()
        self.close_connection = True

    def route_trickle_body(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "60")
        self.end_headers()
        self.trickle(b"<" * 60)

    def route_trickle_headers(self) -> None:
        self.trickle(b"HTTP/1.1 200 OK\r\nX-Slow: " + b"z" * 60)

    def route_ratelimited(self) -> None:
        self.reply(429, b"slow down", Retry_After="120")

    def route_unavailable(self) -> None:
        self.reply(503, b"later", Retry_After=formatdate(time.time() + 90, usegmt=True))

    def route_redirect(self) -> None:
        left = int(self.path.rsplit("/", 1)[-1])
        target = "/feed" if left <= 1 else f"/redirect/{left - 1}"
        self.reply(302, Location=target)

    def route_loop(self) -> None:
        self.reply(301, Location=self.server.url("/loop"))

    def route_to_ftp(self) -> None:
        self.reply(302, Location="ftp://127.0.0.1/feed")


@pytest.fixture(scope="module")
def server() -> Iterator[FeedServer]:
    srv = FeedServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.stopping.set()
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def fetcher() -> Iterator[HttpFeedFetcher]:
    with HttpFeedFetcher(timeout_seconds=5.0, max_bytes=1024 * 1024, address_policy=LOOPBACK) as f:
        yield f


def test_ok_fetch_returns_body_validators_and_user_agent(
    server: FeedServer, fetcher: HttpFeedFetcher
) -> None:
    result = fetcher.fetch(server.url("/feed"), Validators())
    assert result.outcome == "ok"
    assert result.status_code == 200
    assert result.body == FEED
    assert result.content_type == "application/rss+xml"
    assert result.validators == Validators(ETAG, LAST_MODIFIED)
    assert result.error is None
    assert result.bytes_read == len(FEED)
    assert server.seen[-1][1]["User-Agent"].startswith("dmzwatch/")


def test_conditional_get_returns_not_modified_with_validators(
    server: FeedServer, fetcher: HttpFeedFetcher
) -> None:
    first = fetcher.fetch(server.url("/feed"), Validators())
    second = fetcher.fetch(server.url("/feed"), first.validators)
    assert second.outcome == "not_modified"
    assert second.status_code == 304
    assert second.body is None
    assert second.validators == first.validators
    sent = server.seen[-1][1]
    assert sent["If-None-Match"] == ETAG
    assert sent["If-Modified-Since"] == LAST_MODIFIED


def test_conditional_get_by_last_modified_alone(
    server: FeedServer, fetcher: HttpFeedFetcher
) -> None:
    first = fetcher.fetch(server.url("/dated"), Validators())
    assert first.validators == Validators(None, LAST_MODIFIED)
    assert fetcher.fetch(server.url("/dated"), first.validators).outcome == "not_modified"


def test_gzip_body_is_decompressed_and_wire_bytes_counted(
    server: FeedServer, fetcher: HttpFeedFetcher
) -> None:
    result = fetcher.fetch(server.url("/gzipped"), Validators())
    assert result.outcome == "ok"
    assert result.body == FEED * 50
    assert result.bytes_read < len(FEED * 50)


def test_gzip_bomb_stops_at_the_size_cap(server: FeedServer, fetcher: HttpFeedFetcher) -> None:
    started = time.monotonic()
    tracemalloc.start()
    try:
        result = fetcher.fetch(server.url("/bomb"), Validators())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.outcome == "too_large"
    assert result.error == "body is over the 1048576-byte limit (decompressed)"
    assert result.body is None
    assert peak < 8 * 1024 * 1024  # the 50 MB were never inflated
    assert time.monotonic() - started < 1.0


def test_declared_length_over_the_cap_is_refused_unread(
    server: FeedServer, fetcher: HttpFeedFetcher
) -> None:
    result = fetcher.fetch(server.url("/huge"), Validators())
    assert result.outcome == "too_large"
    assert result.bytes_read == 0


@pytest.mark.parametrize("path", ["/trickle-body", "/trickle-headers"])
def test_trickling_server_is_cut_by_the_total_deadline(server: FeedServer, path: str) -> None:
    with HttpFeedFetcher(timeout_seconds=1.5, address_policy=LOOPBACK) as fetcher:
        result = fetcher.fetch(server.url(path), Validators())
    assert result.outcome == "timeout"
    assert result.error is not None
    assert result.error.startswith("timed out after 1.")
    assert 1.4 < result.seconds < 2.0


def test_one_threads_deadline_does_not_cut_another_threads_fetch(server: FeedServer) -> None:
    with HttpFeedFetcher(timeout_seconds=1.5, address_policy=LOOPBACK) as fetcher:
        slow: list[str] = []
        thread = threading.Thread(
            target=lambda: slow.append(
                fetcher.fetch(server.url("/trickle-body"), Validators()).outcome
            )
        )
        thread.start()
        fast = [fetcher.fetch(server.url("/feed"), Validators()).outcome for _ in range(5)]
        thread.join()
    assert fast == ["ok"] * 5
    assert slow == ["timeout"]


def test_concurrent_fetches_share_one_fetcher(server: FeedServer, fetcher: HttpFeedFetcher) -> None:
    results: list[str] = []
    lock = threading.Lock()

    def fetch() -> None:
        outcome = fetcher.fetch(server.url("/feed"), Validators()).outcome
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=fetch) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["ok"] * 16


def test_429_retry_after_seconds(server: FeedServer, fetcher: HttpFeedFetcher) -> None:
    result = fetcher.fetch(server.url("/ratelimited"), Validators(ETAG, None))
    assert result.outcome == "error"
    assert result.status_code == 429
    assert result.error == "HTTP 429 Too Many Requests"
    assert result.retry_after == 120.0
    assert result.validators == Validators(ETAG, None)  # kept for the next try


def test_503_retry_after_http_date(server: FeedServer, fetcher: HttpFeedFetcher) -> None:
    result = fetcher.fetch(server.url("/unavailable"), Validators())
    assert result.outcome == "error"
    assert result.error == "HTTP 503 Service Unavailable"
    assert result.retry_after is not None
    assert 85 <= result.retry_after <= 91


def test_redirects_are_followed_and_the_final_url_reported(
    server: FeedServer, fetcher: HttpFeedFetcher
) -> None:
    result = fetcher.fetch(server.url("/redirect/3"), Validators())
    assert result.outcome == "ok"
    assert result.url == server.url("/feed")
    assert result.body == FEED


def test_too_many_redirects_is_an_error(server: FeedServer, fetcher: HttpFeedFetcher) -> None:
    result = fetcher.fetch(server.url("/loop"), Validators())
    assert result.outcome == "error"
    assert result.error == "more than 5 redirects"
    assert result.status_code == 301


def test_redirect_to_another_scheme_is_blocked(
    server: FeedServer, fetcher: HttpFeedFetcher
) -> None:
    result = fetcher.fetch(server.url("/to-ftp"), Validators())
    assert result.outcome == "blocked"
    assert result.url == "ftp://127.0.0.1/feed"


def test_http_error_status_is_an_error(server: FeedServer, fetcher: HttpFeedFetcher) -> None:
    result = fetcher.fetch(server.url("/missing"), Validators())
    assert (result.outcome, result.status_code, result.error) == (
        "error",
        404,
        "HTTP 404 Not Found",
    )


def test_connection_refused_is_a_clear_error(fetcher: HttpFeedFetcher) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    result = fetcher.fetch(f"http://127.0.0.1:{port}/feed", Validators())
    assert result.outcome == "error"
    assert result.error == f"connection refused by 127.0.0.1:{port}"
    assert result.status_code is None
