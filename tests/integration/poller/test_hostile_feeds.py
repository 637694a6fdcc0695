"""Hostile feeds over loopback HTTP, driven through the real poll loop (issue 4, Done-when).

Each case polls one hostile feed beside a good one with :class:`PollerSource`, a real
:class:`HttpFeedFetcher` and a fake producer, and pins: a clear per-feed error in the log, the
fetch counted by outcome, under 1 s and under 100 MB, and the good feed's articles published.

No packet leaves loopback. The fetcher's allow-list opens exactly the test server's host and
port (``127.0.0.1:<port>``), so a canary listening on another loopback port is as refused as
any private address; its accept queue is checked after every test. Every real ``connect`` is
seen by a spy that refuses anything but loopback, and ``getaddrinfo`` reads numeric hosts
only, so not even a DNS query goes out; names resolve through a stub.
"""

from __future__ import annotations

import resource
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from dmzwatch.poller.feeds import FeedConfig
from dmzwatch.poller.fetch import HttpFeedFetcher
from dmzwatch.poller.metrics import PollerMetrics
from dmzwatch.poller.schedule import Schedule
from dmzwatch.poller.service import PollerSource
from dmzwatch.poller.ssrf import AddressPolicy, IPAddress
from dmzwatch.shared.clock import SystemClock
from dmzwatch.shared.health import Health
from dmzwatch.shared.metrics import StageMetrics
from tests.fakes import FakeProducer
from tests.scripted_http import ScriptedHandler

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "feeds"
MiB = 1024 * 1024
DEADLINE_SECONDS = 0.5
MAX_BYTES = 10 * MiB  # the production default
GOOD = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Good</title>
<item><title>First good</title><link>https://good.example.org/1</link></item>
<item><title>Second good</title><link>https://good.example.org/2</link></item>
</channel></rss>"""


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def gzip_bomb(size: int) -> bytes:
    """gzip of ``size`` zero bytes (210 MB make 209 KB), built without holding them."""
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(MiB)
    return b"".join([*(z.compress(block) for _ in range(size // MiB)), z.flush()])


def quadratic_blowup() -> bytes:
    """160 KB: a 100 KB entity referenced 20,000 times (2 GB if expanded)."""
    refs = "&a;" * 20_000
    return (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "{"x" * 100_000}">]>'
        f'<rss version="2.0"><channel><title>q</title><item><title>{refs}</title>'
        "<link>https://q.example.org/1</link></item></channel></rss>"
    ).encode()


class HostileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, canary_port: int) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]
        self.stopping = threading.Event()
        xxe_http = fixture("xxe_http.xml").replace(b"CANARY_PORT", str(canary_port).encode())
        rss = "application/rss+xml"
        self.static: dict[str, tuple[str, bytes]] = {
            "/good": (rss, GOOD),
            "/billion-laughs": (rss, fixture("billion_laughs.xml")),
            "/quadratic": (rss, quadratic_blowup()),
            "/xxe-file": (rss, fixture("xxe_file.xml")),
            "/xxe-http": (rss, xxe_http),
            "/xxe-parameter": (rss, fixture("xxe_parameter_entity.xml")),
            "/truncated": (rss, fixture("truncated.xml")),
            "/empty": (rss, fixture("empty.xml")),
            "/html": ("text/html; charset=utf-8", fixture("html_page.html")),
            "/image": ("image/png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64),
            "/mislabelled": ("text/html", GOOD),
            "/unknown-encoding": (rss, fixture("unknown_encoding.xml")),
        }
        self.redirects = {
            "/to-canary": f"http://127.0.0.1:{canary_port}/feed.xml",
            "/to-metadata": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "/to-private": "http://10.0.0.1/feed.xml",
            "/to-nat64-metadata": "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
            "/to-mapped-canary": f"http://[::ffff:127.0.0.1]:{canary_port}/feed.xml",
            "/to-intranet-name": "http://intranet.example/feed.xml",
        }
        self.bomb = gzip_bomb(210 * MiB)

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the client hangs up on purpose (deadline, size cap)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


class Handler(ScriptedHandler):
    server: HostileServer

    def do_GET(self) -> None:
        if self.path in self.server.static:
            content_type, body = self.server.static[self.path]
            self.reply(200, body, Content_Type=content_type)
        elif self.path in self.server.redirects:
            self.reply(302, b"", Location=self.server.redirects[self.path])
        elif self.path == "/gzip-bomb":
            self.reply(
                200, self.server.bomb, Content_Type="application/rss+xml", Content_Encoding="gzip"
            )
        elif self.path == "/slow-headers":  # the whole response at 1 byte/s, status line first
            self.trickle(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n\r\n" + GOOD)
        elif self.path == "/slow-body":
            self.send_response(200)
            self.send_header("Content-Length", str(len(GOOD)))
            self.end_headers()
            self.trickle(GOOD)
        else:
            self.reply(404, b"not here")


@pytest.fixture(scope="module")
def canary() -> Iterator[socket.socket]:
    """A loopback listener nothing may reach: a completed connect would wait in its queue."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    yield listener
    listener.close()


@pytest.fixture(scope="module")
def server(canary: socket.socket) -> Iterator[HostileServer]:
    srv = HostileServer(canary.getsockname()[1])
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.stopping.set()
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def loopback_only(
    monkeypatch: pytest.MonkeyPatch, canary: socket.socket
) -> Iterator[list[tuple[str, int]]]:
    """Records every connect; refuses non-loopback ones and fails the test if there was any."""
    connects: list[tuple[str, int]] = []
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: tuple[str, int]) -> None:
        connects.append((address[0], address[1]))
        if not ip_address(address[0]).is_loopback:
            raise AssertionError(f"tried to connect to {address!r}")
        real_connect(self, address)

    def numeric_only(host: str, port: int | str | None, *args: int, **kwargs: int) -> object:
        kwargs["flags"] = kwargs.get("flags", 0) | socket.AI_NUMERICHOST
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", numeric_only)
    yield connects
    assert all(ip_address(host).is_loopback for host, _ in connects), connects
    with pytest.raises(BlockingIOError):
        canary.accept()[0].close()  # nothing is queued: nobody reached the canary


def stub_resolver(host: str, port: int) -> list[IPAddress]:
    """intranet.example points inside, as a hostile DNS answer would; nothing else resolves."""
    if host == "intranet.example":
        return [ip_address("10.0.0.1")]
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@dataclass(frozen=True)
class Polled:
    seconds: float
    peak_bytes: int
    rss_growth_bytes: int
    registry: CollectorRegistry
    logs: list[MutableMapping[str, Any]]
    articles: dict[str, list[dict[str, object]]]

    def fetches(self, outcome: str) -> float:
        value = self.registry.get_sample_value(
            "dmzwatch_poller_fetches_total", {"outcome": outcome}
        )
        return value or 0.0

    def parse_errors(self) -> float:
        return self.registry.get_sample_value("dmzwatch_poller_parse_errors_total") or 0.0

    def events(self, feed_id: str) -> dict[str, str]:
        return {
            str(e["event"]): str(e.get("error", ""))
            for e in self.logs
            if e.get("feed_id") == feed_id
        }


def poll_beside_a_good_feed(server: HostileServer, path: str) -> Polled:
    feeds = (
        FeedConfig(id="hostile", url=server.url(path)),
        FeedConfig(id="good", url=server.url("/good")),
    )
    registry = CollectorRegistry()
    clock = SystemClock()
    producer = FakeProducer()
    fetcher = HttpFeedFetcher(
        timeout_seconds=DEADLINE_SECONDS,
        max_bytes=MAX_BYTES,
        address_policy=AddressPolicy.from_entries([f"127.0.0.1:{server.port}"]),
        resolver=stub_resolver,
    )
    source = PollerSource(
        feeds=feeds,
        fetcher=fetcher,
        producer=producer,
        topic="raw",
        schedule=Schedule(feeds),
        metrics=PollerMetrics(registry),
        stage_metrics=StageMetrics("poller", registry),
        health=Health(clock),
        clock=clock,
        concurrency=2,
    )
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        with capture_logs() as logs:
            tracemalloc.start()
            started = time.perf_counter()
            source.poll(feeds)
            seconds = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    finally:
        source.close()
        fetcher.close()
    rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024
    articles: dict[str, list[dict[str, object]]] = {}
    for value in producer.on("raw"):
        article = orjson.loads(value or b"{}")
        articles.setdefault(article["feed_id"], []).append(article)
    print(f"\nhostile {path}: {seconds:.3f} s, peak {peak / MiB:.1f} MiB traced, "
          f"max RSS +{rss_growth / MiB:.1f} MiB")  # fmt: skip
    return Polled(seconds, peak, rss_growth, registry, logs, articles)


@dataclass(frozen=True)
class Case:
    path: str
    outcome: str  # the fetch outcome counted
    event: str  # the log event that carries the hostile feed's error
    error: str  # the start of that error ({canary} is the canary's port)
    parse_error: bool = False


REFUSED = "address, not in the allow-list"
CASES = [
    Case("/slow-headers", "timeout", "feed_failed", "timed out after 0.5 s"),
    Case("/slow-body", "timeout", "feed_failed", "timed out after 0.5 s"),
    Case("/gzip-bomb", "too_large", "feed_failed", "body is over the 10485760-byte limit"),
    Case(
        "/to-canary",
        "blocked",
        "feed_failed",
        "redirect to http://127.0.0.1:{canary}/feed.xml: refused to connect to 127.0.0.1 "
        "port {canary}: loopback " + REFUSED,
    ),
    Case(
        "/to-metadata",
        "blocked",
        "feed_failed",
        "redirect to http://169.254.169.254/latest/meta-data/iam/security-credentials/: "
        "refused to connect to 169.254.169.254 port 80: cloud metadata address, never allowed",
    ),
    Case(
        "/to-private",
        "blocked",
        "feed_failed",
        "redirect to http://10.0.0.1/feed.xml: refused to connect to 10.0.0.1 port 80: "
        "private (RFC 1918) " + REFUSED,
    ),
    Case(
        "/to-nat64-metadata",
        "blocked",
        "feed_failed",
        "redirect to http://[64:ff9b::a9fe:a9fe]/latest/meta-data/: refused to connect to "
        "64:ff9b::a9fe:a9fe port 80: NAT64-embedded cloud metadata address, never allowed",
    ),
    Case(
        "/to-mapped-canary",
        "blocked",
        "feed_failed",
        "redirect to http://[::ffff:127.0.0.1]:{canary}/feed.xml: refused to connect to "
        "::ffff:7f00:1 port {canary}: IPv4-mapped IPv6 " + REFUSED,
    ),
    Case(
        "/to-intranet-name",
        "blocked",
        "feed_failed",
        "redirect to http://intranet.example/feed.xml: refused to connect to "
        "intranet.example (10.0.0.1) port 80: private (RFC 1918) " + REFUSED,
    ),
    Case(
        "/billion-laughs",
        "ok",
        "feed_parse_error",
        "refused entity declarations (lol, lol1, lol2, lol3, lol4",
        parse_error=True,
    ),
    Case("/quadratic", "ok", "feed_parse_error", "refused entity declarations (a)", True),
    Case("/xxe-file", "ok", "feed_parse_error", "refused entity declarations (secret)", True),
    Case("/xxe-http", "ok", "feed_parse_error", "refused entity declarations (remote)", True),
    Case(
        "/xxe-parameter",
        "ok",
        "feed_parse_error",
        "refused entity declarations (%remote, %file)",
        parse_error=True,
    ),
    Case("/truncated", "ok", "feed_parse_error", "XML not well-formed at line 5", True),
    Case("/empty", "ok", "feed_failed", "empty body", parse_error=True),
    Case("/html", "ok", "feed_failed", "not a feed: looks like HTML", parse_error=True),
    Case("/image", "ok", "feed_failed", "bytes are not valid UTF-8", parse_error=True),
    Case(
        "/unknown-encoding",
        "ok",
        "feed_parse_error",
        "unknown encoding 'x-unknown-charset' declared; decoded as utf-8",
        parse_error=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.path.strip("/") for c in CASES])
def test_hostile_feed_gets_a_clear_error_and_the_poll_goes_on(
    server: HostileServer, canary: socket.socket, case: Case
) -> None:
    polled = poll_beside_a_good_feed(server, case.path)

    error = case.error.format(canary=canary.getsockname()[1])
    assert polled.events("hostile").get(case.event, "").startswith(error), polled.logs
    assert polled.fetches(case.outcome) == (2 if case.outcome == "ok" else 1)
    assert polled.parse_errors() == (1 if case.parse_error else 0)
    assert polled.seconds < 1.0
    assert polled.peak_bytes < 100 * MiB
    assert polled.rss_growth_bytes < 100 * MiB

    assert [a["title"] for a in polled.articles["good"]] == ["First good", "Second good"]
    assert "feed_polled" in polled.events("good")
    # What was recovered from the hostile feed holds nothing expanded or fetched.
    for article in polled.articles.get("hostile", []):
        assert len(orjson.dumps(article)) < 4096
        assert "root:" not in str(article)


def test_a_feed_with_the_wrong_content_type_is_still_read(server: HostileServer) -> None:
    # Publishers often serve RSS as text/html: the body, not the label, decides.
    polled = poll_beside_a_good_feed(server, "/mislabelled")
    assert [a["title"] for a in polled.articles["hostile"]] == ["First good", "Second good"]
    assert polled.events("hostile").keys() == {"feed_polled"}
    assert polled.parse_errors() == 0


def test_the_allow_list_opens_only_the_servers_own_port(
    server: HostileServer, loopback_only: list[tuple[str, int]]
) -> None:
    poll_beside_a_good_feed(server, "/to-canary")
    assert {port for _, port in loopback_only} == {server.port}
