"""Poller replicas sharing one feed list through leases, on one manual clock: each feed is
fetched exactly once per interval, the feeds spread over the replicas, and a dead replica's
feeds are taken over within one interval, with its validators.

:class:`Fleet` is re-used by ``tests/integration/poller/test_leases_redis.py`` on Redis.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise

import pytest
from prometheus_client import CollectorRegistry

from dmzwatch.poller.feeds import FeedConfig
from dmzwatch.poller.fetch import FeedFetcher, FetchResult, Validators
from dmzwatch.poller.leases import FeedLeases, FeedOwnership, MemoryFeedLeases, MemoryLeaseStore
from dmzwatch.poller.metrics import PollerMetrics
from dmzwatch.poller.schedule import Schedule
from dmzwatch.poller.service import PollerSource
from dmzwatch.shared.clock import ManualClock
from dmzwatch.shared.health import Health
from dmzwatch.shared.metrics import StageMetrics
from tests.fakes import FakeProducer

INTERVAL = 300.0
GRACE = 5.0
ALIVE = 30.0
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# One undated item: the interval does not adapt, so the expected fetch times are exact.
BODY = (
    b'<rss version="2.0"><channel><title>t</title><item><title>Only story</title>'
    b"<link>https://news.example/only</link></item></channel></rss>"
)


@dataclass(frozen=True)
class Fetch:
    replica: str
    feed_id: str
    at: float
    validators: Validators


@dataclass
class FleetFetcher(FeedFetcher):
    """Records every fetch; answers 304 to a conditional request, else 200 with an ETag."""

    replica: str
    clock: ManualClock
    log: list[Fetch]
    lock: threading.Lock

    def fetch(self, url: str, validators: Validators) -> FetchResult:
        feed_id = url.rsplit("/", 1)[1]
        with self.lock:
            self.log.append(Fetch(self.replica, feed_id, self.clock.monotonic(), validators))
        mine = Validators(etag=f'"etag-{feed_id}"')
        if validators.etag:
            return FetchResult("not_modified", url, 304, None, None, mine, None, 0.0, 0, None, {})
        return FetchResult(
            "ok", url, 200, BODY, "application/rss+xml", mine, None, 0.0, len(BODY), None, {}
        )


@dataclass
class Fleet:
    """Poller replicas on one clock; ``step`` runs one loop turn of each live replica."""

    feeds: tuple[FeedConfig, ...]
    clock: ManualClock = field(default_factory=lambda: ManualClock(START))
    log: list[Fetch] = field(default_factory=list)
    sources: dict[str, PollerSource] = field(default_factory=dict)
    registries: dict[str, CollectorRegistry] = field(default_factory=dict)
    dead: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, leases: FeedLeases) -> None:
        name = leases.replica_id
        registry = CollectorRegistry()
        metrics = PollerMetrics(registry)
        self.registries[name] = registry
        self.sources[name] = PollerSource(
            feeds=self.feeds,
            fetcher=FleetFetcher(name, self.clock, self.log, self.lock),
            producer=FakeProducer(),
            topic="articles.raw",
            schedule=Schedule(self.feeds),
            metrics=metrics,
            stage_metrics=StageMetrics("poller", registry),
            health=Health(self.clock),
            clock=self.clock,
            concurrency=4,
            ownership=FeedOwnership(
                leases,
                self.clock,
                metrics=metrics,
                alive_seconds=ALIVE,
                grace_seconds=GRACE,
            ),
        )

    def run_until(self, until: float, step: float = 1.0) -> None:
        while self.clock.monotonic() < until:
            for name, source in self.sources.items():
                if name not in self.dead:
                    source.poll_due()
            self.clock.advance(step)

    def kill(self, name: str) -> None:
        """The replica stops without a word (its leases and heartbeat just end)."""
        self.dead.add(name)

    def close(self) -> None:
        for source in self.sources.values():
            source.close()

    def sample(self, replica: str, name: str, **labels: str) -> float | None:
        return self.registries[replica].get_sample_value(name, labels)

    def times(self) -> dict[str, list[float]]:
        by_feed: dict[str, list[float]] = {f.id: [] for f in self.feeds}
        for fetch in self.log:
            by_feed[fetch.feed_id].append(fetch.at)
        return by_feed

    def assert_once_per_interval(self, windows: int) -> None:
        """Every feed fetched exactly once in each interval window, never twice in an
        interval, and (after its first fetch) always conditionally with the ETag it gave."""
        for feed_id, times in self.times().items():
            assert all(b - a >= INTERVAL for a, b in pairwise(times)), (
                feed_id,
                times,
            )
            counts = Counter(int(t // INTERVAL) for t in times)
            assert [counts[w] for w in range(windows)] == [1] * windows, (feed_id, times)
        for fetch in self.log:
            first = min(self.times()[fetch.feed_id])
            expected = Validators() if fetch.at == first else Validators(f'"etag-{fetch.feed_id}"')
            assert fetch.validators == expected, fetch


def feeds(n: int) -> tuple[FeedConfig, ...]:
    return tuple(
        FeedConfig(
            id=f"f{i:03d}", url=f"https://host{i % 7}.example/f{i:03d}", interval_seconds=300
        )
        for i in range(n)
    )


def memory_fleet(n_feeds: int, names: tuple[str, ...]) -> Fleet:
    fleet = Fleet(feeds(n_feeds))
    store = MemoryLeaseStore()
    for name in names:
        fleet.add(MemoryFeedLeases(name, store))
    return fleet


def test_two_replicas_fetch_each_of_100_feeds_exactly_once_per_interval() -> None:
    fleet = memory_fleet(100, ("a", "b"))
    try:
        fleet.run_until(4 * INTERVAL)
        fleet.assert_once_per_interval(windows=4)
        # From the second interval on (once both have announced themselves) they share.
        late = Counter(f.replica for f in fleet.log if f.at >= INTERVAL)
        assert late["a"] + late["b"] == 300
        assert 90 <= late["a"] <= 210, late
        owned = [fleet.sample(r, "dmzwatch_poller_feeds_owned") for r in ("a", "b")]
        assert sum(o or 0 for o in owned) == 100
        assert all(o and o > 25 for o in owned), owned
        assert (fleet.sample("a", "dmzwatch_poller_lease_claims_total", outcome="lost") or 0) > 0
        assert fleet.sample("b", "dmzwatch_poller_replicas") == 2
    finally:
        fleet.close()


@pytest.mark.parametrize(
    "death",
    [
        pytest.param(2 * INTERVAL + 10, id="long-dead-by-its-due-time"),
        pytest.param(3 * INTERVAL - 1, id="dies-just-before-its-due-time"),
    ],
)
def test_the_survivor_takes_over_a_dead_replicas_feeds_within_one_interval(death: float) -> None:
    fleet = memory_fleet(100, ("a", "b"))
    try:
        fleet.run_until(death)
        owned_by_b = {f.feed_id for f in fleet.log if f.replica == "b" and f.at >= INTERVAL}
        assert len(owned_by_b) > 25
        fleet.kill("b")
        fleet.run_until(6 * INTERVAL)
        # No feed fetched twice in an interval, none skipped for more than the grace.
        for feed_id, times in fleet.times().items():
            gaps = [b - a for a, b in pairwise(times)]
            assert all(INTERVAL <= gap <= INTERVAL + GRACE for gap in gaps), (feed_id, times)
            assert times[-1] >= 5 * INTERVAL
        after = [f for f in fleet.log if f.at >= death]
        assert {f.replica for f in after} == {"a"}
        assert {f.feed_id for f in after} == {f.id for f in fleet.feeds}
        # The takeover was polite: b's ETags came with its leases.
        taken = [f for f in after if f.feed_id in owned_by_b]
        assert taken
        assert all(f.validators == Validators(f'"etag-{f.feed_id}"') for f in taken)
        assert fleet.sample("a", "dmzwatch_poller_feeds_owned") == 100
    finally:
        fleet.close()


def test_a_replica_joining_later_gets_its_share_without_double_fetches() -> None:
    fleet = memory_fleet(60, ("a",))
    try:
        fleet.run_until(INTERVAL + 50)
        store = fleet.sources["a"]._ownership.leases.store  # type: ignore[union-attr]
        fleet.add(MemoryFeedLeases("b", store))
        fleet.run_until(4 * INTERVAL)
        fleet.assert_once_per_interval(windows=4)
        assert Counter(f.replica for f in fleet.log if f.at >= 2 * INTERVAL)["b"] > 20
    finally:
        fleet.close()


class FlakyLeases(MemoryFeedLeases):
    """Leases whose store is unreachable while ``down`` is set."""

    down = False

    def claim(self, wanted, now):  # type: ignore[no-untyped-def]
        from dmzwatch.shared.errors import RetryableError

        if self.down:
            raise RetryableError("redis unavailable: test")
        return super().claim(wanted, now)


def test_while_the_lease_store_is_down_nothing_is_fetched_then_polling_resumes() -> None:
    fleet = Fleet(feeds(10))
    leases = FlakyLeases("a")
    fleet.add(leases)
    try:
        leases.down = True
        fleet.run_until(20)
        assert fleet.log == []
        leases.down = False
        fleet.run_until(40)
        assert sorted({f.feed_id for f in fleet.log}) == [f.id for f in fleet.feeds]
        assert all(20 <= f.at <= 26 for f in fleet.log)  # retried within retry_seconds (5)
    finally:
        fleet.close()
