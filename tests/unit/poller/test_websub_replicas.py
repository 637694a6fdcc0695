"""WebSub with several poller replicas sharing one subscription store, on a manual clock: any
replica answers the hub's verification and pushes; only the feed's lease holder subscribes and
renews, and a new holder takes over the existing subscription instead of subscribing again."""

from __future__ import annotations

import hmac
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import pytest
from prometheus_client import CollectorRegistry

from dmzwatch.poller.feeds import FeedConfig
from dmzwatch.poller.leases import FeedOwnership, MemoryFeedLeases, MemoryLeaseStore
from dmzwatch.poller.metrics import WebSubMetrics
from dmzwatch.poller.websub import (
    HubClient,
    HubReply,
    PushSink,
    SinkOutcome,
    WebSubPolicy,
    WebSubSubscriber,
)
from dmzwatch.poller.websub_discovery import Advert
from dmzwatch.poller.websub_store import MemorySubscriptionStore, Subscription
from dmzwatch.shared.clock import ManualClock

HUB = "https://hub.example/"
TOPIC = "https://news.example/feed.xml"
POLICY = WebSubPolicy(
    lease_seconds=1000,
    renew_fraction=0.8,
    verify_timeout_seconds=30,
    retry_initial_seconds=60,
    retry_max_seconds=600,
    safety_interval_seconds=3600,
)


@dataclass
class FakeHub(HubClient):
    reply: HubReply = field(default_factory=lambda: HubReply(True, "accepted", 202))
    requests: list[dict[str, str]] = field(default_factory=list)

    def request(self, hub: str, form: Mapping[str, str]) -> HubReply:
        self.requests.append(dict(form))
        return self.reply


@dataclass
class FakeSink(PushSink):
    received: list[tuple[str, bytes]] = field(default_factory=list)

    def receive(self, feed_id: str, body: bytes, content_type: str | None) -> SinkOutcome:
        self.received.append((feed_id, body))
        return "ok"


@dataclass
class Replica:
    subscriber: WebSubSubscriber
    hub: FakeHub
    sink: FakeSink
    registry: CollectorRegistry
    held: dict[str, float]

    def gauge(self, state: str) -> float | None:
        return self.registry.get_sample_value(
            "dmzwatch_poller_websub_subscriptions", {"state": state}
        )

    def counted(self, name: str, outcome: str) -> float | None:
        return self.registry.get_sample_value(name, {"outcome": outcome})


@dataclass
class Fleet:
    clock: ManualClock
    store: MemorySubscriptionStore
    a: Replica
    b: Replica

    def sub(self) -> Subscription:
        found = self.store.for_feeds(["f"])
        assert set(found) == {"f"}
        return found["f"]

    def confirm(self, via: Replica, challenge: str = "c-1") -> int:
        query = {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.challenge": challenge}
        answer = via.subscriber.verify(self.sub().callback_id, query)
        assert answer.status != 200 or answer.body == challenge.encode()
        return answer.status

    def push(self, via: Replica, body: bytes) -> int:
        sub = self.sub()
        signature = "sha256=" + hmac.new(sub.secret.encode(), body, "sha256").hexdigest()
        headers = {"content-type": "application/rss+xml", "x-hub-signature": signature}
        return via.subscriber.push(sub.callback_id, body, headers).status

    def tick(self) -> None:
        self.a.subscriber.tick()
        self.b.subscriber.tick()

    def requests(self) -> list[dict[str, str]]:
        return self.a.hub.requests + self.b.hub.requests


def replica(name: str, clock: ManualClock, store: MemorySubscriptionStore) -> Replica:
    counter = itertools.count()
    hub, sink, registry = FakeHub(), FakeSink(), CollectorRegistry()
    held: dict[str, float] = {}
    subscriber = WebSubSubscriber(
        callback_base="https://poller.example/websub",
        hub_client=hub,
        metrics=WebSubMetrics(registry),
        clock=clock,
        policy=POLICY,
        token=lambda n: f"{name}-tok{next(counter)}-{n}",
        store=store,
        replica_id=name,
        held=lambda: dict(held),
    )
    subscriber.attach(sink)
    return Replica(subscriber, hub, sink, registry, held)


def fleet() -> Fleet:
    clock, store = ManualClock(), MemorySubscriptionStore()
    return Fleet(clock, store, replica("a", clock, store), replica("b", clock, store))


def subscribed_by_a() -> Fleet:
    """Replica A holds the feed's lease, saw its hub and sent the subscribe request."""
    f = fleet()
    f.a.held["f"] = 100.0
    f.a.subscriber.advertised("f", Advert(HUB, TOPIC))
    f.tick()
    assert len(f.a.hub.requests) == 1 and f.b.hub.requests == []
    assert f.sub().state == "pending" and f.sub().owner == "a"
    return f


def test_the_replica_that_did_not_subscribe_answers_the_verification() -> None:
    f = subscribed_by_a()
    assert f.confirm(via=f.b) == 200
    assert f.sub().state == "active" and f.sub().owner == "a"
    assert f.b.counted("dmzwatch_poller_websub_verifications_total", "confirmed") == 1
    # The owner learns it at its next tick: pushed, so polled only at the safety interval.
    f.tick()
    assert f.a.subscriber.poll_floor("f") == 3600
    assert f.a.gauge("active") == 1 and f.b.gauge("active") == 0
    assert f.b.subscriber.poll_floor("f") is None  # B does not poll the feed


def test_the_replica_that_did_not_subscribe_publishes_a_signed_push() -> None:
    f = subscribed_by_a()
    assert f.confirm(via=f.a) == 200
    body = b"<rss>new</rss>"
    assert f.push(via=f.b, body=body) == 200
    assert f.b.sink.received == [("f", body)] and f.a.sink.received == []
    assert f.b.counted("dmzwatch_poller_websub_pushes_total", "ok") == 1
    forged = {"content-type": "application/rss+xml", "x-hub-signature": "sha256=00"}
    assert f.b.subscriber.push(f.sub().callback_id, body, forged).status == 202
    assert len(f.b.sink.received) == 1


def test_an_unknown_or_unverified_callback_is_refused_by_every_replica() -> None:
    f = subscribed_by_a()
    query = {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.challenge": "x"}
    assert f.b.subscriber.verify("nobody", query).status == 404
    assert f.push(via=f.b, body=b"<rss/>") == 410  # not verified yet
    assert f.b.sink.received == []


def test_a_denial_received_by_another_replica_reaches_the_owner() -> None:
    f = subscribed_by_a()
    assert f.confirm(via=f.a) == 200
    denied = {"hub.mode": "denied", "hub.topic": TOPIC, "hub.reason": "no"}
    assert f.b.subscriber.verify(f.sub().callback_id, denied).status == 200
    assert f.b.subscriber.take_fallbacks() == set()
    f.tick()
    assert f.sub().state == "denied"
    assert f.a.subscriber.take_fallbacks() == {"f"}  # polled again by the lease holder
    assert f.a.subscriber.poll_floor("f") is None


def test_when_the_lease_moves_the_new_holder_renews_the_one_subscription() -> None:
    f = subscribed_by_a()
    first = f.a.hub.requests[0]
    assert f.confirm(via=f.b) == 200
    f.tick()
    # A's lease of the feed ends; B wins it.
    del f.a.held["f"]
    f.b.held["f"] = 200.0
    f.tick()
    assert f.sub().owner == "b" and f.sub().state == "active"
    assert f.b.gauge("active") == 1 and f.a.gauge("active") == 0
    assert f.b.subscriber.poll_floor("f") == 3600
    assert f.a.subscriber.take_fallbacks() == set()  # no unsubscribe, no re-poll by A
    # B's first poll sees the same hub: the subscription is kept, not requested again.
    f.b.subscriber.advertised("f", Advert(HUB, TOPIC))
    assert f.requests() == [first]
    f.clock.advance(799)
    f.tick()
    assert len(f.requests()) == 1
    f.clock.advance(1)
    f.tick()
    assert f.a.hub.requests == [first]
    assert len(f.b.hub.requests) == 1
    renewal = f.b.hub.requests[0]
    assert renewal["hub.callback"] == first["hub.callback"]
    assert renewal["hub.secret"] == first["hub.secret"]
    assert len(f.store.for_feeds(["f"])) == 1
    f.clock.advance(5)
    assert f.confirm(via=f.a) == 200  # the renewal verified through the other replica
    sub = f.sub()
    assert sub.owner == "b" and sub.expires_at == 805 + 1000


def test_a_stale_holder_does_not_take_the_subscription_back() -> None:
    f = subscribed_by_a()
    assert f.confirm(via=f.a) == 200
    # B won the lease after A; A has not noticed yet (it still lists the feed as held).
    f.b.held["f"] = 200.0
    f.tick()
    f.tick()
    assert f.sub().owner == "b"
    assert "f" not in f.a.subscriber.take_fallbacks()
    f.clock.advance(800)
    f.tick()
    f.tick()
    assert len(f.a.hub.requests) == 1 and len(f.b.hub.requests) == 1  # one renewal


def test_nobody_renews_while_nobody_holds_the_lease_then_the_next_holder_resubscribes() -> None:
    f = subscribed_by_a()
    assert f.confirm(via=f.a) == 200
    del f.a.held["f"]
    for _ in range(12):
        f.clock.advance(100)
        f.tick()
    assert len(f.requests()) == 1 and f.sub().state == "active"  # nobody looked at it
    f.b.held["f"] = 300.0
    f.tick()
    assert f.sub().owner == "b" and f.sub().state == "expired"
    assert f.b.subscriber.take_fallbacks() == {"f"}  # polled at once, not at the safety interval
    f.tick()
    assert f.sub().state == "pending" and len(f.b.hub.requests) == 1
    assert f.b.hub.requests[0]["hub.callback"] == f.a.hub.requests[0]["hub.callback"]


def test_a_changed_hub_seen_by_the_new_holder_replaces_the_subscription_everywhere() -> None:
    f = subscribed_by_a()
    old = f.sub()
    assert f.confirm(via=f.a) == 200
    del f.a.held["f"]
    f.b.held["f"] = 200.0
    f.b.subscriber.advertised("f", Advert("https://hub2.example/", TOPIC))
    new = f.sub()
    assert new.callback_id != old.callback_id and new.owner == "b"
    assert f.a.subscriber.push(old.callback_id, b"x", {}).status == 410
    f.tick()
    assert f.b.hub.requests[-1]["hub.callback"].endswith(new.callback_id)
    assert len(f.a.hub.requests) == 1


def test_the_memory_store_keeps_one_subscription_per_feed() -> None:
    store = MemorySubscriptionStore()
    one = Subscription("f", HUB, TOPIC, "t1", "s1")
    two = Subscription("f", HUB, TOPIC, "t2", "s2")
    assert store.put(one, 60) is None
    assert store.put(two, 60) == one
    assert store.get("t1") is None and store.for_feeds(["f", "g"]) == {"f": two}
    assert store.update("t1", lambda s: s, 60) is None
    with pytest.raises(ValueError, match="token"):
        store.update("t2", lambda s: replace(s, callback_id="t3"), 60)
    store.remove("t2")
    assert store.for_feeds(["f"]) == {}


def test_feed_ownership_reports_when_each_held_lease_was_won() -> None:
    clock = ManualClock()
    store = MemoryLeaseStore()
    feed = FeedConfig(id="f", url="https://news.example/f.xml", interval_seconds=300)
    a = FeedOwnership(MemoryFeedLeases("a", store), clock, grace_seconds=0)
    b = FeedOwnership(MemoryFeedLeases("b", store), clock, grace_seconds=0)
    won_at = clock.now().timestamp()
    assert a.select([feed], lambda _: 300.0) == [feed]
    assert a.held() == {"f": won_at}
    clock.advance(100)
    assert a.select([feed], lambda _: 300.0) == [feed]  # its own lease again: same since
    assert a.held() == {"f": won_at} and b.held() == {}
    clock.advance(400)  # a's lease ended without renewal (a stalled); b takes the feed
    assert b.select([feed], lambda _: 300.0) == [feed]
    assert b.held() == {"f": won_at + 500}
    assert a.select([feed], lambda _: 300.0) == []
    assert a.held() == {}
