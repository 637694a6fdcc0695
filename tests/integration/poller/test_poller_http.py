"""PollerSource with the real HttpFeedFetcher against HTTP servers on 127.0.0.1 (started here):
conditional GET, a server ignoring validators, Cache-Control, and the per-host limit."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import CollectorRegistry

from dmzwatch.poller.feeds import FeedConfig
from dmzwatch.poller.fetch import HttpFeedFetcher
from dmzwatch.poller.metrics import PollerMetrics
from dmzwatch.poller.schedule import Schedule
from dmzwatch.poller.service import PollerSource
from dmzwatch.poller.ssrf import AddressPolicy
from dmzwatch.shared.clock import SystemClock
from dmzwatch.shared.health import Health
from dmzwatch.shared.metrics import StageMetrics
from tests.fakes import FakeProducer

BODY = b"""<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>L</title>
<item><title>One</title><link>https://news.example/1</link><guid>g1</guid></item>
<item><title>Two</title><link>https://news.example/2</link><guid>g2</guid></item>
</channel></rss>"""


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.in_flight += 1
            self.server.peak = max(self.server.peak, self.server.in_flight)
        time.sleep(0.05 if self.path.startswith("/slow") else 0)
        with self.server.lock:
            self.server.in_flight -= 1
        if self.path.startswith("/etag") and self.headers.get("If-None-Match") == '"v1"':
            self.send_response(304)
            self.send_header("ETag", '"v1"')
            self.send_header("Cache-Control", "max-age=900")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(BODY)))
        if self.path.startswith("/etag"):
            self.send_header("ETag", '"v1"')
            self.send_header("Cache-Control", "max-age=900")
        self.end_headers()
        self.wfile.write(BODY)


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def poller(
    feeds: tuple[FeedConfig, ...], registry: CollectorRegistry, schedule: Schedule | None = None
) -> PollerSource:
    clock = SystemClock()
    return PollerSource(
        feeds=feeds,
        fetcher=HttpFeedFetcher(address_policy=AddressPolicy.from_entries(["127.0.0.1"])),
        producer=FakeProducer(),
        topic="articles.raw",
        schedule=schedule or Schedule(feeds),
        metrics=PollerMetrics(registry),
        stage_metrics=StageMetrics("poller", registry),
        health=Health(clock),
        clock=clock,
    )


def test_conditional_get_then_unchanged_body_then_cache_floor(server: Server) -> None:
    feeds = (
        FeedConfig(id="etag", url=server.url("/etag/feed.xml")),
        FeedConfig(id="plain", url=server.url("/plain/feed.xml")),
    )
    registry = CollectorRegistry()
    schedule = Schedule(feeds)
    source = poller(feeds, registry, schedule)
    try:
        first = source.poll_all()
        assert first.articles == 4 and not first.errors
        before = time.monotonic()
        second = source.poll_all()
        assert (second.not_modified, second.unchanged, second.articles) == (1, 1, 0)
        outcome = "dmzwatch_poller_fetches_total"
        assert registry.get_sample_value(outcome, {"outcome": "unchanged"}) == 1
        assert registry.get_sample_value(outcome, {"outcome": "not_modified"}) == 1
        # Cache-Control: max-age=900 on the 304 keeps the feed from being fetched for 15 min.
        assert schedule.due_at("etag") >= before + 899
        assert schedule.due_at("plain") < before + 301
    finally:
        source.close()


def test_per_host_limit_holds_against_a_real_server(server: Server) -> None:
    feeds = tuple(FeedConfig(id=f"s{n}", url=server.url(f"/slow/{n}.xml")) for n in range(8))
    source = poller(feeds, CollectorRegistry())
    try:
        report = source.poll_all()
    finally:
        source.close()
    assert report.articles == 16 and not report.errors
    assert server.peak == 2
