"""The poller with WebSub: a poll finds the hub, pushes publish only new entries exactly like a
poll, a subscribed feed is polled at the safety interval, and a lost subscription is polled at
once. In-memory fetcher, hub and producer on a manual clock."""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import orjson
import pytest
from prometheus_client import CollectorRegistry

from dmzwatch.poller.feeds import FeedConfig
from dmzwatch.poller.fetch import FeedFetcher, FetchResult, Validators
from dmzwatch.poller.metrics import PollerMetrics, WebSubMetrics
from dmzwatch.poller.parse import ParsedFeed, parse_feed
from dmzwatch.poller.schedule import IntervalPolicy, Schedule
from dmzwatch.poller.service import PollerSource
from dmzwatch.poller.websub import HubClient, HubReply, WebSubPolicy, WebSubSubscriber
from dmzwatch.shared.clock import ManualClock
from dmzwatch.shared.health import Health
from dmzwatch.shared.messages import Article
from dmzwatch.shared.metrics import StageMetrics
from tests.fakes import FakeProducer

TOPIC = "articles.raw"
URL = "https://news.example/rss"
HUB = "https://hub.example/"
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FEED = FeedConfig(id="f", url=URL, interval_seconds=300)
OTHER = FeedConfig(id="g", url="https://other.example/rss", interval_seconds=300)


def rss(*numbers: int, hub: bool = True) -> bytes:
    items = "".join(
        f"<item><title>Story {n}</title><link>https://news.example/{n}</link>"
        f'<guid isPermaLink="false">g{n}</guid>'
        f"<pubDate>{format_datetime(START - timedelta(minutes=10 * n))}</pubDate></item>"
        for n in numbers
    )
    hub_xml = f'<atom:link rel="hub" href="{HUB}"/><atom:link rel="self" href="{URL}"/>'
    return (
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>t</title>'
        f"{hub_xml if hub else ''}{items}</channel></rss>"
    ).encode()


@dataclass
class Fetcher(FeedFetcher):
    bodies: dict[str, bytes]
    fetched: list[str] = field(default_factory=list)

    def fetch(self, url: str, validators: Validators) -> FetchResult:
        self.fetched.append(url)
        body = self.bodies[url]
        return FetchResult(
            "ok", url, 200, body, "application/rss+xml", validators, None, 0.01, len(body), None, {}
        )


@dataclass
class Hub(HubClient):
    requests: list[dict[str, str]] = field(default_factory=list)

    def request(self, hub: str, form: Mapping[str, str]) -> HubReply:
        self.requests.append(dict(form))
        return HubReply(True, "accepted", 202)


@dataclass
class Rig:
    source: PollerSource
    subscriber: WebSubSubscriber
    fetcher: Fetcher
    hub: Hub
    producer: FakeProducer
    schedule: Schedule
    clock: ManualClock
    registry: CollectorRegistry

    def titles(self) -> list[str]:
        return [orjson.loads(v or b"")["title"] for v in self.producer.on(TOPIC)]

    def subscribe(self) -> None:
        """Poll (finding the hub), send the request, and verify it as the hub would."""
        self.source.poll_due()
        self.subscriber.tick()
        form = self.hub.requests[-1]
        callback = form["hub.callback"].rsplit("/", 1)[-1]
        query = {"hub.mode": "subscribe", "hub.topic": form["hub.topic"], "hub.challenge": "c"}
        assert self.subscriber.verify(callback, query).body == b"c"

    def push(self, body: bytes) -> int:
        sub = self.subscriber.subscription("f")
        assert sub is not None
        signature = "sha1=" + hmac.new(sub.secret.encode(), body, "sha1").hexdigest()
        headers = {"x-hub-signature": signature, "content-type": "application/rss+xml"}
        return self.subscriber.push(sub.callback_id, body, headers).status


def rig(
    feeds: tuple[FeedConfig, ...] = (FEED,),
    body: bytes | None = None,
    parser: Callable[[bytes, str, str | None], ParsedFeed] = parse_feed,
) -> Rig:
    clock = ManualClock(START)
    registry = CollectorRegistry()
    producer = FakeProducer()
    fetcher = Fetcher({f.url: body or rss(1, 2) for f in feeds})
    schedule = Schedule(feeds, policy=IntervalPolicy(adaptive=False))
    hub = Hub()
    subscriber = WebSubSubscriber(
        callback_base="https://poller.example/websub",
        hub_client=hub,
        metrics=WebSubMetrics(registry),
        clock=clock,
        policy=WebSubPolicy(lease_seconds=1000, safety_interval_seconds=3600),
    )
    source = PollerSource(
        feeds=feeds,
        fetcher=fetcher,
        producer=producer,
        topic=TOPIC,
        schedule=schedule,
        metrics=PollerMetrics(registry),
        stage_metrics=StageMetrics("poller", registry),
        health=Health(clock),
        clock=clock,
        subscriptions=subscriber,
        parser=parser,
    )
    subscriber.attach(source)
    return Rig(source, subscriber, fetcher, hub, producer, schedule, clock, registry)


def test_a_poll_that_finds_a_hub_leads_to_a_subscription() -> None:
    r = rig()
    r.source.poll_due()
    r.subscriber.tick()
    assert r.hub.requests[0]["hub.topic"] == URL
    assert r.titles() == ["Story 1", "Story 2"]


def test_a_push_publishes_only_entries_not_seen_like_a_poll() -> None:
    r = rig()
    r.subscribe()
    assert r.push(rss(3, 1, 2)) == 200
    assert r.titles() == ["Story 1", "Story 2", "Story 3"]
    published = [Article.model_validate_json(v or b"") for v in r.producer.on(TOPIC)]
    assert published[-1].url == "https://news.example/3" and published[-1].feed_id == "f"
    # The same document again, or a diff holding an entry already sent: nothing new.
    assert r.push(rss(3, 1, 2)) == 200
    assert r.push(rss(3)) == 200
    assert r.titles() == ["Story 1", "Story 2", "Story 3"]
    assert (
        r.registry.get_sample_value("dmzwatch_poller_websub_pushes_total", {"outcome": "ok"}) == 3
    )


def test_entries_pushed_are_not_published_again_by_the_next_poll() -> None:
    r = rig()
    r.subscribe()
    assert r.push(rss(3)) == 200  # a diff: only the new entry
    r.fetcher.bodies[URL] = rss(3, 1, 2)
    report = r.source.poll([FEED])
    assert report.articles == 0 and report.overflows == []
    assert r.titles() == ["Story 1", "Story 2", "Story 3"]


def test_a_push_the_broker_did_not_ack_is_not_remembered() -> None:
    r = rig()
    r.subscribe()
    r.producer.fail_next = 1
    assert r.push(rss(3, 1, 2)) == 503
    assert r.push(rss(3, 1, 2)) == 200
    assert r.titles() == ["Story 1", "Story 2", "Story 3"]


def test_an_unparsable_push_publishes_nothing() -> None:
    r = rig()
    r.subscribe()
    assert r.push(b"<html><body>oops</body></html>") == 202
    assert r.titles() == ["Story 1", "Story 2"]
    assert (
        r.registry.get_sample_value(
            "dmzwatch_poller_websub_pushes_total", {"outcome": "parse_error"}
        )
        == 1
    )


def test_a_subscribed_feed_is_polled_at_the_safety_interval() -> None:
    r = rig()
    r.subscribe()
    r.clock.advance(300)
    r.source.poll_due()  # the poll scheduled before the subscription was verified
    assert r.fetcher.fetched == [URL, URL]
    assert r.schedule.due_at("f") == pytest.approx(300 + 3600)


def test_a_lost_subscription_is_polled_at_once_then_at_the_normal_interval() -> None:
    r = rig()
    r.subscribe()
    r.clock.advance(300)
    r.source.poll_due()
    sub = r.subscriber.subscription("f")
    assert sub is not None
    denied = {"hub.mode": "denied", "hub.topic": URL, "hub.reason": "quota"}
    r.subscriber.verify(sub.callback_id, denied)
    r.clock.advance(1)
    assert r.source.poll_due() is not None  # not waiting out the safety interval
    assert len(r.fetcher.fetched) == 3
    assert r.schedule.due_at("f") == pytest.approx(301 + 300)


def test_a_feed_without_a_hub_is_only_polled() -> None:
    r = rig(body=rss(1, hub=False))
    r.source.poll_due()
    r.subscriber.tick()
    assert r.hub.requests == [] and r.subscriber.subscription("f") is None
    assert r.schedule.due_at("f") == pytest.approx(300)


def test_a_push_waits_for_a_poll_of_the_same_feed_and_nothing_is_published_twice() -> None:
    parsing = threading.Event()
    release = threading.Event()
    calls: list[str] = []

    def parser(body: bytes, url: str, content_type: str | None) -> ParsedFeed:
        calls.append(url)
        if len(calls) == 2:  # the poll after subscribing: hold it mid-parse
            parsing.set()
            release.wait(timeout=10)
        return parse_feed(body, url, content_type)

    r = rig(parser=parser)
    r.subscribe()
    r.fetcher.bodies[URL] = rss(3, 1, 2)
    poller = threading.Thread(target=lambda: r.source.poll([FEED]))
    poller.start()
    assert parsing.wait(timeout=10)
    results: list[int] = []
    pusher = threading.Thread(target=lambda: results.append(r.push(rss(3, 1, 2))))
    pusher.start()
    pusher.join(timeout=0.3)
    release.set()
    poller.join(timeout=10)
    pusher.join(timeout=10)
    assert results == [200]
    assert r.titles() == ["Story 1", "Story 2", "Story 3"]
