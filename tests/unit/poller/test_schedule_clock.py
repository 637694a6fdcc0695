"""The poll loop on a manual clock: when a failing feed is fetched again (backoff with jitter,
``Retry-After``), that success resets it to its interval, and that the next fetch is
conditional. Fetch times are read off the injected clock, one loop turn per second."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise

from prometheus_client import CollectorRegistry

from dmzwatch.poller.feeds import FeedConfig
from dmzwatch.poller.fetch import FeedFetcher, FetchResult, Validators
from dmzwatch.poller.metrics import PollerMetrics
from dmzwatch.poller.schedule import Schedule
from dmzwatch.poller.service import PollerSource
from dmzwatch.shared.clock import ManualClock
from dmzwatch.shared.health import Health
from dmzwatch.shared.metrics import StageMetrics
from tests.fakes import FakeProducer

URL = "https://slow.example/rss"
FEED = FeedConfig(id="f", url=URL, interval_seconds=300)
BODY = b'<rss version="2.0"><channel><title>t</title><item><title>a</title></item></channel></rss>'


@dataclass
class Timeline(FeedFetcher):
    """Answers with the scripted outcomes in turn (the last repeats), noting when and with
    which validators it was asked."""

    clock: ManualClock
    script: list[tuple[str, float | None]]
    asked: list[tuple[float, Validators]] = field(default_factory=list)

    def fetch(self, url: str, validators: Validators) -> FetchResult:
        self.asked.append((self.clock.monotonic(), validators))
        outcome, retry_after = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if outcome == "503":
            return FetchResult(
                "error", url, 503, None, None, validators, "HTTP 503", 0.0, 0, retry_after, {}
            )
        if validators.etag:
            return FetchResult("not_modified", url, 304, None, None, validators, None, 0, 0, None)
        mine = Validators(etag='"v1"')
        return FetchResult("ok", url, 200, BODY, "application/rss+xml", mine, None, 0, 1, None)


def run(script: list[tuple[str, float | None]], seconds: int, seed: int) -> Timeline:
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    fetcher = Timeline(clock, script)
    registry = CollectorRegistry()
    source = PollerSource(
        feeds=(FEED,),
        fetcher=fetcher,
        producer=FakeProducer(),
        topic="articles.raw",
        schedule=Schedule((FEED,), max_backoff_seconds=3600, rng=random.Random(seed)),
        metrics=PollerMetrics(registry),
        stage_metrics=StageMetrics("poller", registry),
        health=Health(clock),
        clock=clock,
    )
    try:
        for _ in range(seconds):
            source.poll_due()
            clock.advance(1)
    finally:
        source.close()
    return fetcher


def test_backoff_then_retry_after_then_back_to_the_interval_with_conditional_gets() -> None:
    for seed in range(5):  # jitter differs per seed; the bounds hold for every one
        fetcher = run([("503", None), ("503", 900.0), ("ok", None)], seconds=3000, seed=seed)
        times = [t for t, _ in fetcher.asked]
        assert times[0] == 0
        # First failure: at least the interval, at most twice it (full jitter).
        assert 300 <= times[1] - times[0] <= 601
        # Second failure with Retry-After 900: not before 900 s, within the backoff ceiling.
        assert 900 <= times[2] - times[1] <= 1201
        # Success resets to the interval; from then on every fetch is conditional (304).
        assert [b - a for a, b in pairwise(times[2:])] == [300.0] * (len(times) - 3)
        assert len(times) >= 5
        assert [v for _, v in fetcher.asked[3:]] == [Validators('"v1"')] * (len(times) - 3)
        assert fetcher.asked[2][1] == Validators()


def test_a_feed_failing_for_hours_is_retried_at_capped_intervals_forever() -> None:
    fetcher = run([("503", None)], seconds=6 * 3600, seed=1)
    times = [t for t, _ in fetcher.asked]
    gaps = [b - a for a, b in pairwise(times)]
    assert len(times) >= 6  # never given up
    assert all(300 <= gap <= 3601 for gap in gaps)  # capped by max_backoff_seconds
