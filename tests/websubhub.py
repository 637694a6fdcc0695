"""A small WebSub hub on loopback for the poller's WebSub tests, and a poller wired to it.

The hub serves one feed (``/feed.xml``, counting fetches), accepts subscribe requests on
``/hub`` (answered 202, then verified asynchronously, as most hubs do: a GET of the callback
with a challenge) and pushes signed, or forged, documents to the verified subscriber.
:func:`start_hubbed_poller` runs the poller's real fetcher, hub client and callback server on
that feed, in a thread.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import httpx
from prometheus_client import CollectorRegistry

from dmzwatch.poller.feeds import FeedConfig
from dmzwatch.poller.fetch import HttpFeedFetcher
from dmzwatch.poller.leases import FeedOwnership
from dmzwatch.poller.metrics import PollerMetrics, WebSubMetrics
from dmzwatch.poller.schedule import Schedule
from dmzwatch.poller.service import PollerSource
from dmzwatch.poller.ssrf import AddressPolicy
from dmzwatch.poller.websub import WebSubPolicy, WebSubSubscriber
from dmzwatch.poller.websub_http import CallbackServer, HttpHubClient, WebSubEndpoint
from dmzwatch.poller.websub_store import SubscriptionStore
from dmzwatch.shared.clock import SystemClock
from dmzwatch.shared.health import Health
from dmzwatch.shared.metrics import StageMetrics
from dmzwatch.shared.runner import ProducerPort

LOOPBACK = AddressPolicy.from_entries(["127.0.0.1"])
FEED_ID = "hubbed"


def feed_body(base: str, *numbers: int) -> bytes:
    """An RSS document naming the hub at ``base``, with items "Pushed story <n>"."""
    items = "".join(
        f"<item><title>Pushed story {n}</title><link>https://news.example/{n}</link>"
        f"<guid>https://news.example/{n}</guid><description>Body {n}</description></item>"
        for n in numbers
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>Hubbed</title>'
        f'<atom:link rel="hub" href="{base}/hub"/>'
        f'<atom:link rel="self" type="application/rss+xml" href="{base}/feed.xml"/>'
        f"{items}</channel></rss>"
    ).encode()


@dataclass
class Subscriber:
    callback: str
    topic: str
    secret: str
    lease: str
    verified: bool = False


@dataclass
class Hub:
    """State of the test hub; the HTTP side is :class:`HubHandler`."""

    base: str = ""
    feed: bytes = b""
    fetches: int = 0
    requests: list[dict[str, str]] = field(default_factory=list)  # subscribe forms, in order
    subscribers: list[Subscriber] = field(default_factory=list)
    verifications: list[int] = field(default_factory=list)  # status of each verification GET
    verified: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def verify(self, sub: Subscriber) -> None:
        """The hub's verification of intent: GET the callback with a challenge."""
        challenge = secrets.token_hex(8)
        params = {
            "hub.mode": "subscribe",
            "hub.topic": sub.topic,
            "hub.challenge": challenge,
            "hub.lease_seconds": sub.lease,
        }
        answer = httpx.get(sub.callback, params=params, timeout=10)
        with self.lock:
            self.verifications.append(answer.status_code)
        if answer.status_code == 200 and answer.text == challenge:
            sub.verified = True
            self.verified.set()

    def push(self, body: bytes, *, forge: bool = False) -> httpx.Response:
        """Content distribution to the first verified subscriber (a wrong key if ``forge``)."""
        sub = next(s for s in self.subscribers if s.verified)
        key = b"not-the-secret" if forge else sub.secret.encode()
        signature = "sha256=" + hmac.new(key, body, "sha256").hexdigest()
        headers = {
            "Content-Type": "application/rss+xml",
            "X-Hub-Signature": signature,
            "Link": f'<{self.base}/hub>; rel="hub", <{sub.topic}>; rel="self"',
        }
        return httpx.post(sub.callback, content=body, headers=headers, timeout=10)


class HubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), HubHandler)
        self.hub = Hub(base=f"http://127.0.0.1:{self.server_address[1]}")
        self.hub.feed = feed_body(self.hub.base, 1, 2)


class HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HubServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        hub = self.server.hub
        with hub.lock:
            hub.fetches += 1
        self._reply(200, hub.feed, "application/rss+xml")

    def do_POST(self) -> None:
        hub = self.server.hub
        length = int(self.headers.get("Content-Length", "0"))
        form = dict(parse_qsl(self.rfile.read(length).decode()))
        if self.path != "/hub" or form.get("hub.mode") != "subscribe":
            self._reply(400, b"bad request", "text/plain")
            return
        sub = Subscriber(
            form["hub.callback"], form["hub.topic"], form["hub.secret"], form["hub.lease_seconds"]
        )
        with hub.lock:
            hub.requests.append(form)
            hub.subscribers.append(sub)
        self._reply(202, b"", "text/plain")
        # Verified asynchronously, after the request was answered, as most hubs do.
        threading.Thread(target=hub.verify, args=(sub,), daemon=True).start()

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serving_hub() -> Iterator[Hub]:
    """A hub listening on a free loopback port until the block ends."""
    server = HubServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.hub
    finally:
        server.shutdown()
        server.server_close()


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 20) -> None:
    """Poll ``condition`` every 10 ms; fail with ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


@dataclass
class HubbedPoller:
    """A running poller of the hub's feed (see :func:`start_hubbed_poller`)."""

    source: PollerSource
    endpoint: WebSubEndpoint
    producer: ProducerPort
    registry: CollectorRegistry
    thread: threading.Thread
    ownership: FeedOwnership | None = None

    def sample(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)

    def stop(self) -> None:
        self.source.stop()
        self.thread.join(timeout=10)
        self.endpoint.stop()


def start_hubbed_poller(
    hub: Hub,
    producer: ProducerPort,
    topic: str,
    port: int,
    *,
    callback_base: str | None = None,
    store: SubscriptionStore | None = None,
    replica_id: str = "local",
    ownership: FeedOwnership | None = None,
) -> HubbedPoller:
    """Poll the hub's feed (``FEED_ID``, every 300 s) into ``topic``, WebSub callbacks on
    ``port``; ``callback_base`` (default: this port) is the URL the hub is given. With
    replicas, ``store``, ``replica_id`` and ``ownership`` are the shared subscriptions and
    this replica's name and feed leases."""
    clock = SystemClock()
    registry = CollectorRegistry()
    feed = FeedConfig(id=FEED_ID, url=f"{hub.base}/feed.xml", interval_seconds=300)
    subscriber = WebSubSubscriber(
        callback_base=callback_base or f"http://127.0.0.1:{port}/websub",
        hub_client=HttpHubClient(timeout_seconds=5, address_policy=LOOPBACK),
        metrics=WebSubMetrics(registry),
        clock=clock,
        policy=WebSubPolicy(lease_seconds=600),
        store=store,
        replica_id=replica_id,
        held=ownership.held if ownership is not None else None,
    )
    endpoint = WebSubEndpoint(
        subscriber, CallbackServer(subscriber, "127.0.0.1", port), tick_seconds=0.05
    )
    source = PollerSource(
        feeds=[feed],
        fetcher=HttpFeedFetcher(timeout_seconds=5, address_policy=LOOPBACK),
        producer=producer,
        topic=topic,
        schedule=Schedule((feed,)),
        metrics=PollerMetrics(registry),
        stage_metrics=StageMetrics("poller", registry),
        health=Health(clock),
        clock=clock,
        ownership=ownership,
        subscriptions=subscriber,
    )
    endpoint.start(source)
    thread = threading.Thread(target=source.run, daemon=True)
    thread.start()
    return HubbedPoller(source, endpoint, producer, registry, thread, ownership)
