"""Adaptive intervals, publisher floors (ttl, Cache-Control, Expires) and backoff, all on an
injected clock."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from dmzwatch.poller.feeds import FeedConfig
from dmzwatch.poller.freshness import freshness_seconds
from dmzwatch.poller.schedule import IntervalPolicy, Schedule, publish_gap_seconds
from dmzwatch.shared.clock import ManualClock

FEED = FeedConfig(id="f", url="https://news.example/rss", interval_seconds=300)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def every(minutes: float, count: int = 10) -> list[datetime]:
    return [NOW - timedelta(minutes=minutes * i) for i in range(count)]


def test_publish_gap_is_the_median_of_recent_gaps() -> None:
    dates = [*every(10, 10), NOW - timedelta(days=30)]  # one old outlier beyond the recent 10
    assert publish_gap_seconds(dates) == 600
    assert publish_gap_seconds([NOW, NOW]) is None  # one distinct time
    assert publish_gap_seconds([]) is None


def test_interval_moves_gradually_towards_the_publish_rate() -> None:
    clock = ManualClock()
    schedule = Schedule((FEED,))
    intervals = []
    for _ in range(8):
        schedule.succeeded("f", clock.monotonic(), published=every(60))
        intervals.append(schedule.interval("f"))
        clock.advance(schedule.interval("f"))
    assert intervals[0] == pytest.approx((300 * 3600) ** 0.5)  # halfway, geometrically
    assert intervals == sorted(intervals)
    assert intervals[-1] == pytest.approx(3600, rel=0.05)
    assert schedule.due_at("f") == pytest.approx(clock.monotonic() - intervals[-1] + 3600, rel=0.05)


@pytest.mark.parametrize(("minutes", "bound"), [(0.1, 60.0), (60 * 24 * 7, 86400.0)])
def test_interval_is_clamped_to_one_minute_and_one_day(minutes: float, bound: float) -> None:
    schedule = Schedule((FEED,))
    for _ in range(30):
        schedule.succeeded("f", 0.0, published=every(minutes))
    assert schedule.interval("f") == pytest.approx(bound)


def test_interval_stays_without_dates_or_when_adaptation_is_off() -> None:
    schedule = Schedule((FEED,))
    schedule.succeeded("f", 0.0)  # a 304: nothing parsed
    schedule.succeeded("f", 0.0, published=[NOW])  # a single date gives no gap
    assert schedule.interval("f") == 300
    fixed = Schedule((FEED,), policy=IntervalPolicy(adaptive=False))
    fixed.succeeded("f", 0.0, published=every(60))
    assert fixed.interval("f") == 300


def test_a_publisher_floor_delays_the_next_fetch_up_to_a_day() -> None:
    schedule = Schedule((FEED,))
    assert schedule.succeeded("f", 100.0, not_before_seconds=3600) == 3600
    assert schedule.due_at("f") == 3700
    assert schedule.succeeded("f", 0.0, not_before_seconds=10) == 300  # never sooner
    assert schedule.succeeded("f", 0.0, not_before_seconds=10**9) == 86400


def test_backoff_grows_with_jitter_resets_on_success_and_never_gives_up() -> None:
    clock = ManualClock()
    schedule = Schedule((FEED,), max_backoff_seconds=3600, rng=random.Random(5))
    delays = []
    for _ in range(20):
        delays.append(schedule.failed("f", clock.monotonic()))
        clock.advance(delays[-1])
        assert schedule.due(clock.monotonic()) == [FEED]  # due again, never dropped
    assert all(300 <= d <= 3600 for d in delays)
    assert len(set(delays)) > 10, "jittered"
    assert schedule.failures("f") == 20
    schedule.succeeded("f", clock.monotonic())
    assert schedule.failures("f") == 0
    assert schedule.due_at("f") == clock.monotonic() + 300


def test_retry_after_is_honoured_and_capped() -> None:
    schedule = Schedule((FEED,), max_backoff_seconds=7200, rng=random.Random(1))
    assert schedule.failed("f", 50.0, retry_after=5000) == 5000
    assert schedule.due_at("f") == 5050
    assert schedule.failed("f", 0.0, retry_after=10**7) == 7200


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="min_interval"):
        IntervalPolicy(min_interval_seconds=100, max_interval_seconds=10)
    with pytest.raises(ValueError, match="smoothing"):
        IntervalPolicy(smoothing=0)


@pytest.mark.parametrize(
    ("headers", "ttl", "expected"),
    [
        ({}, None, None),
        ({}, 30, 1800.0),
        ({"cache-control": "public, max-age=600"}, None, 600.0),
        ({"cache-control": "max-age=600", "age": "100"}, None, 500.0),
        ({"cache-control": 'max-age="900"'}, 5, 900.0),
        ({"cache-control": "max-age=60"}, 5, 300.0),  # the longer floor wins
        ({"cache-control": "no-cache, max-age=600"}, None, None),
        ({"cache-control": "max-age=soon"}, None, None),
        ({"expires": "Sun, 01 Mar 2026 13:00:00 GMT"}, None, 3600.0),
        (
            {"expires": "Sun, 01 Mar 2026 13:00:00 GMT", "date": "Sun, 01 Mar 2026 12:30:00 GMT"},
            None,
            1800.0,
        ),
        ({"expires": "Sun, 01 Mar 2026 13:00:00 GMT", "cache-control": "max-age=60"}, None, 60.0),
        ({"expires": "0"}, None, None),
        ({"expires": "Sat, 01 Mar 2025 13:00:00 GMT"}, None, 0.0),
    ],
)
def test_freshness_from_ttl_cache_control_and_expires(
    headers: dict[str, str], ttl: int | None, expected: float | None
) -> None:
    assert freshness_seconds(headers, NOW, ttl) == expected
