"""WebSub with two poller replicas on real Redis and a small hub on loopback.

Both replicas publish one callback URL, as behind one Service; here it reaches replica A, while
replica B holds the feed's lease, polls it and subscribes. The hub verifies B's request against
A, and pushes to A: A answers from the shared store and publishes the new entry, once. The
subscription store's contract (keys, expiry, atomic updates) is checked on the same Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import orjson
import pytest
import redis

from dmzwatch.poller.leases import FeedOwnership, RedisFeedLeases
from dmzwatch.poller.ssrf import AddressPolicy
from dmzwatch.poller.websub_store import RedisSubscriptionStore, Subscription
from dmzwatch.shared.broker import free_port
from dmzwatch.shared.clock import SystemClock
from dmzwatch.shared.errors import RetryableError
from tests.fakes import FakeProducer
from tests.websubhub import (
    Hub,
    HubbedPoller,
    feed_body,
    serving_hub,
    start_hubbed_poller,
    wait_for,
)

LOOPBACK = AddressPolicy.from_entries(["127.0.0.1"])


@pytest.fixture
def hub() -> Iterator[Hub]:
    with serving_hub() as hub:
        yield hub


def titles(replica: HubbedPoller) -> list[str]:
    assert isinstance(replica.producer, FakeProducer)
    return [orjson.loads(v or b"")["title"] for v in replica.producer.on("raw")]


def test_a_replica_that_did_not_subscribe_verifies_and_publishes_a_push(
    hub: Hub, redis_client: redis.Redis, key_prefix: str
) -> None:
    a_port = free_port()
    public = f"http://127.0.0.1:{a_port}/websub"  # the Service's URL: it reaches replica A
    store = RedisSubscriptionStore(redis_client, key_prefix)
    started: list[HubbedPoller] = []

    def start(name: str, port: int) -> HubbedPoller:
        ownership = FeedOwnership(
            RedisFeedLeases(redis_client, key_prefix, name), SystemClock(), grace_seconds=0.2
        )
        replica = start_hubbed_poller(
            hub,
            FakeProducer(),
            "raw",
            port,
            callback_base=public,
            store=store,
            replica_id=name,
            ownership=ownership,
        )
        started.append(replica)
        return replica

    try:
        b = start("b", free_port())
        wait_for(lambda: "hubbed" in b.ownership.owned(), "replica B never won the feed")
        a = start("a", a_port)
        # B polled and subscribed; the hub's verification went to A, which answered.
        assert hub.verified.wait(timeout=20), f"not verified: {hub.verifications}"
        assert hub.verifications == [200]
        assert a.sample("dmzwatch_poller_websub_verifications_total", outcome="confirmed") == 1
        assert b.sample("dmzwatch_poller_websub_verifications_total", outcome="confirmed") == 0
        wait_for(
            lambda: b.sample("dmzwatch_poller_websub_subscriptions", state="active") == 1,
            "replica B never saw its subscription active",
        )
        assert a.sample("dmzwatch_poller_websub_subscriptions", state="active") == 0
        assert titles(b) == ["Pushed story 1", "Pushed story 2"] and titles(a) == []

        hub.feed = feed_body(hub.base, 3, 1, 2)
        answer = hub.push(hub.feed)
        assert answer.status_code == 200
        assert a.sample("dmzwatch_poller_websub_pushes_total", outcome="ok") == 1
        published = titles(a) + titles(b)
        assert published.count("Pushed story 3") == 1 and "Pushed story 3" in titles(a)
        # A had not sent the feed before: it republishes the entries B sent (dedup drops them).
        assert sorted(titles(a)) == ["Pushed story 1", "Pushed story 2", "Pushed story 3"]
        # One poll (by B), one subscription (by B), nothing subscribed by A.
        time.sleep(0.3)
        assert hub.fetches == 1 and len(hub.requests) == 1
        (sub,) = store.for_feeds(["hubbed"]).values()
        assert sub.owner == "b" and sub.state == "active" and sub.verified
        assert hub.requests[0]["hub.callback"] == f"{public}/{sub.callback_id}"
    finally:
        for replica in started:
            replica.stop()


def test_store_keys_share_one_cluster_slot_and_expire(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    store = RedisSubscriptionStore(redis_client, key_prefix)
    sub = Subscription("f1", "https://hub/", "https://t/", "tok1", "s3cret", owner="a")
    assert store.put(sub, keep_seconds=120) is None
    keys = sorted(k.decode() for k in redis_client.scan_iter(match=key_prefix + "*"))
    assert keys == [f"{key_prefix}{{websub}}:feed:f1", f"{key_prefix}{{websub}}:sub:tok1"]
    assert all(100 < redis_client.ttl(k) <= 120 for k in keys)
    assert store.get("tok1") == sub  # every field round-trips, the secret included


def test_store_round_trips_replaces_and_removes(redis_client: redis.Redis, key_prefix: str) -> None:
    store = RedisSubscriptionStore(redis_client, key_prefix)
    one = Subscription("f", "https://hub/", "https://t/", "t1", "s1")
    active = replace(
        one,
        state="active",
        requested_at=1.5,
        expires_at=1e9 + 0.25,
        renew_at=8e8,
        renewing=True,
        verified=True,
        failures=3,
        owner_since=1234.5,
    )
    store.put(one, 60)
    assert store.update("t1", lambda s: active, 60) == active
    assert store.for_feeds(["f", "g"]) == {"f": active}
    two = Subscription("f", "https://hub2/", "https://t/", "t2", "s2")
    assert store.put(two, 60) == active
    assert store.get("t1") is None and store.update("t1", lambda s: s, 60) is None
    assert store.update("t2", lambda s: None, 60) == two
    with pytest.raises(ValueError, match="token"):
        store.update("t2", lambda s: replace(s, callback_id="t3"), 60)
    store.remove("t2")
    assert store.for_feeds(["f"]) == {} and store.get("t2") is None


def test_concurrent_updates_from_replicas_are_not_lost(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    stores = [RedisSubscriptionStore(redis_client, key_prefix, attempts=1000) for _ in range(4)]
    stores[0].put(Subscription("f", "https://hub/", "https://t/", "t1", "s1"), 60)

    def bump(store: RedisSubscriptionStore) -> None:
        for _ in range(25):
            store.update("t1", lambda s: replace(s, failures=s.failures + 1), 60)

    threads = [threading.Thread(target=bump, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    current = stores[0].get("t1")
    assert current is not None and current.failures == 100


def test_a_redis_outage_is_a_retryable_error() -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    store = RedisSubscriptionStore(dead, "x:")
    with pytest.raises(RetryableError, match="redis unavailable"):
        store.get("t")
    with pytest.raises(RetryableError, match="redis unavailable"):
        store.update("t", lambda s: s, 60)
