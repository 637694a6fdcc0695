"""WebSub figure (issues 4 and 9): push-to-publish latency.

A hub (here: this module, over loopback HTTP) POSTs a signed feed document to the poller's
callback server; the figure is the time from the hub starting that POST to the poller handing
the new entry to the producer, which acknowledges at once (the broker is not measured). The
poller is the real :class:`PollerSource` behind the real :class:`WebSubSubscriber` and
:class:`CallbackServer`; the subscription is made and verified over HTTP first. Each push is the
whole feed (20 entries) with one entry more than the last, on a new connection, as most hubs
send. Polling would see the same entry after half the feed's interval on average (2.5 minutes
at a 5-minute interval).
"""

from __future__ import annotations

import hmac
import logging
import socket
import statistics
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import structlog
from prometheus_client import CollectorRegistry

from bench.figures import Figure
from dmzwatch.poller.feeds import FeedConfig
from dmzwatch.poller.fetch import FeedFetcher, FetchResult, Validators
from dmzwatch.poller.metrics import PollerMetrics, WebSubMetrics
from dmzwatch.poller.schedule import Schedule
from dmzwatch.poller.service import PollerSource
from dmzwatch.poller.websub import HubClient, HubReply, WebSubSubscriber
from dmzwatch.poller.websub_discovery import Advert
from dmzwatch.poller.websub_http import CallbackServer
from dmzwatch.shared.clock import SystemClock
from dmzwatch.shared.health import Health
from dmzwatch.shared.metrics import StageMetrics

PUSHES = 300
ENTRIES = 20
TOPIC = "https://news.example/feed.xml"
HUB = "https://hub.example/"
START = datetime(2026, 1, 1, tzinfo=UTC)


class _Ack:
    def get(self, timeout: float | None = None) -> None:
        return None


class TimingProducer:
    """Acknowledges at once; remembers when each message was sent."""

    def __init__(self) -> None:
        self.sent_at: list[float] = []

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None) -> _Ack:
        self.sent_at.append(time.perf_counter())
        return _Ack()

    def flush(self, timeout: float | None = None) -> None:
        return None

    def close(self, timeout: float | None = None) -> None:
        return None


class NoFetch(FeedFetcher):
    def fetch(self, url: str, validators: Validators) -> FetchResult:
        raise AssertionError("the benchmark never polls")


class VerifyingHub(HubClient):
    """Accepts the request and verifies it over HTTP, as a synchronous hub does."""

    def request(self, hub: str, form: Mapping[str, str]) -> HubReply:
        query = {"hub.mode": "subscribe", "hub.topic": form["hub.topic"], "hub.challenge": "b"}
        answer = httpx.get(form["hub.callback"], params=query, timeout=10)
        return HubReply(answer.text == "b", "accepted" if answer.text == "b" else "rejected")


def document(newest: int) -> bytes:
    items = "".join(
        f"<item><title>Entry {n}</title><link>https://news.example/{n}</link>"
        f"<guid>https://news.example/{n}</guid>"
        f"<pubDate>{format_datetime(START + timedelta(minutes=n))}</pubDate>"
        f"<description>Text of entry {n}, a paragraph long enough to look like one.</description>"
        "</item>"
        for n in range(newest, max(0, newest - ENTRIES), -1)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Bench</title>'
        f"{items}</channel></rss>"
    ).encode()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def measure(pushes: int = PUSHES) -> list[float]:
    """Seconds from the start of each push to the send of its new entry."""
    clock = SystemClock()
    registry = CollectorRegistry()
    port = _free_port()
    subscriber = WebSubSubscriber(
        callback_base=f"http://127.0.0.1:{port}/websub",
        hub_client=VerifyingHub(),
        metrics=WebSubMetrics(registry),
        clock=clock,
    )
    server = CallbackServer(subscriber, "127.0.0.1", port)
    feed = FeedConfig(id="bench", url=TOPIC, interval_seconds=300)
    producer = TimingProducer()
    source = PollerSource(
        feeds=[feed],
        fetcher=NoFetch(),
        producer=producer,
        topic="raw",
        schedule=Schedule((feed,)),
        metrics=PollerMetrics(registry),
        stage_metrics=StageMetrics("poller", registry),
        health=Health(clock),
        clock=clock,
        subscriptions=subscriber,
    )
    subscriber.attach(source)
    server.start()
    latencies: list[float] = []
    # A new connection per push (no keep-alive), as most hubs deliver.
    hub = httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0))
    try:
        subscriber.advertised(feed.id, Advert(HUB, TOPIC))
        subscriber.tick()
        sub = subscriber.subscription(feed.id)
        if sub is None or sub.state != "active":
            raise RuntimeError("the benchmark subscription was not verified")
        callback = subscriber.callback_url(sub)
        # The first document: its 20 entries are new once; only later pushes are timed.
        _push(hub, callback, sub.secret, document(ENTRIES))
        for newest in range(ENTRIES + 1, ENTRIES + 1 + pushes):
            before = len(producer.sent_at)
            started = time.perf_counter()
            status = _push(hub, callback, sub.secret, document(newest))
            if status != 200 or len(producer.sent_at) != before + 1:
                raise RuntimeError(f"push {newest} did not publish exactly its new entry")
            latencies.append(producer.sent_at[-1] - started)
    finally:
        hub.close()
        server.stop()
        source.close()
    return latencies


def _push(hub: httpx.Client, callback: str, secret: str, body: bytes) -> int:
    signature = "sha256=" + hmac.new(secret.encode(), body, "sha256").hexdigest()
    headers = {"Content-Type": "application/rss+xml", "X-Hub-Signature": signature}
    return hub.post(callback, content=body, headers=headers).status_code


def figures() -> list[Figure]:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    latencies = sorted(measure())
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    setup = (
        f"{len(latencies)} signed pushes of a {ENTRIES}-entry RSS feed over loopback HTTP,"
        " one new entry each, new connection each; producer acks at once (broker not measured)"
    )
    return [
        Figure(
            "websub_push_to_publish_seconds_p50",
            p50,
            "s",
            1.0,
            higher_is_better=False,
            note=setup,
        ),
        Figure(
            "websub_push_to_publish_seconds_p99",
            p99,
            "s",
            1.0,
            higher_is_better=False,
            note="the same pushes, 99th percentile",
        ),
    ]


if __name__ == "__main__":
    from bench.figures import table

    print(table(figures()))
