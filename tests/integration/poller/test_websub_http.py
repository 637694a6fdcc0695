"""The WebSub HTTP parts over loopback: the callback server's limits and routes, and the hub
client's outcomes (SSRF guard, refusals, transport errors)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from prometheus_client import CollectorRegistry

from dmzwatch.poller.metrics import WebSubMetrics
from dmzwatch.poller.ssrf import AddressPolicy
from dmzwatch.poller.websub import HubClient, HubReply, PushSink, SinkOutcome, WebSubSubscriber
from dmzwatch.poller.websub_discovery import Advert
from dmzwatch.poller.websub_http import CallbackServer, HttpHubClient
from dmzwatch.shared.clock import ManualClock

LOOPBACK = AddressPolicy.from_entries(["127.0.0.1"])
TOPIC = "https://news.example/feed"


class NoHub(HubClient):
    def request(self, hub: str, form: Mapping[str, str]) -> HubReply:
        return HubReply(True, "accepted", 202)


class Sink(PushSink):
    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def receive(self, feed_id: str, body: bytes, content_type: str | None) -> SinkOutcome:
        self.bodies.append(body)
        return "ok"


@pytest.fixture
def callback() -> Iterator[tuple[WebSubSubscriber, str, Sink]]:
    subscriber = WebSubSubscriber(
        callback_base="http://127.0.0.1/websub",
        hub_client=NoHub(),
        metrics=WebSubMetrics(CollectorRegistry()),
        clock=ManualClock(),
    )
    sink = Sink()
    subscriber.attach(sink)
    server = CallbackServer(subscriber, "127.0.0.1", 0, max_body_bytes=1000).start()
    yield subscriber, f"http://127.0.0.1:{server.port}", sink
    server.stop()


def test_the_callback_server_answers_verification_on_any_prefix(
    callback: tuple[WebSubSubscriber, str, Sink],
) -> None:
    subscriber, base, _ = callback
    subscriber.advertised("f", Advert("https://hub.example/", TOPIC))
    subscriber.tick()
    sub = subscriber.subscription("f")
    assert sub is not None
    query = {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.challenge": "abc"}
    answer = httpx.get(f"{base}/behind/a/proxy/{sub.callback_id}", params=query)
    assert (answer.status_code, answer.text) == (200, "abc")
    assert httpx.get(f"{base}/websub/unknown", params=query).status_code == 404


def test_the_callback_server_refuses_bodies_without_length_or_too_large(
    callback: tuple[WebSubSubscriber, str, Sink],
) -> None:
    _, base, sink = callback
    too_large = httpx.post(f"{base}/websub/x", content=b"x" * 1001)
    assert too_large.status_code == 413

    def chunks() -> Iterator[bytes]:
        yield b"abc"

    chunked = httpx.post(f"{base}/websub/x", content=chunks())
    assert chunked.status_code == 411
    assert httpx.post(f"{base}/websub/x", content=b"<rss/>").status_code == 410
    assert sink.bodies == []


class Refuser(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = b"topic not allowed\n" + b"x" * 100_000
        self.send_response(403)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def refusing_hub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuser)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hub"
    server.shutdown()
    server.server_close()


def test_hub_requests_go_through_the_ssrf_guard(refusing_hub: str) -> None:
    client = HttpHubClient(timeout_seconds=5)  # no allow-list: loopback is refused
    reply = client.request(refusing_hub, {"hub.mode": "subscribe"})
    client.close()
    assert reply.outcome == "blocked" and not reply.accepted
    assert reply.error is not None and "127.0.0.1" in reply.error
    metadata = HttpHubClient(timeout_seconds=5, address_policy=LOOPBACK)
    assert metadata.request("http://169.254.169.254/hub", {}).outcome == "blocked"
    assert metadata.request("file:///etc/passwd", {}).outcome == "blocked"
    metadata.close()


def test_a_refusing_hub_is_reported_with_the_start_of_its_answer(refusing_hub: str) -> None:
    client = HttpHubClient(timeout_seconds=5, address_policy=LOOPBACK)
    reply = client.request(refusing_hub, {"hub.mode": "subscribe"})
    client.close()
    assert (reply.accepted, reply.outcome, reply.status_code) == (False, "rejected", 403)
    assert reply.error is not None and "topic not allowed" in reply.error
    assert len(reply.error) < 1000


def test_a_hub_that_is_not_listening_is_an_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = HttpHubClient(timeout_seconds=5, address_policy=LOOPBACK)
    reply = client.request(f"http://127.0.0.1:{port}/hub", {})
    client.close()
    assert reply.outcome == "error" and not reply.accepted
