import random

import pytest

from dmzwatch.poller.feeds import FeedConfig, load_feeds
from dmzwatch.poller.schedule import Schedule
from dmzwatch.shared.errors import ConfigurationError

FEED = FeedConfig(id="f", url="https://news.example/rss", interval_seconds=60)


def test_a_feed_is_due_at_start_then_after_its_interval() -> None:
    schedule = Schedule((FEED,))
    assert schedule.due(0) == [FEED]
    schedule.succeeded("f", 0)
    assert schedule.due(59) == [] and schedule.due(60) == [FEED]


def test_failures_back_off_exponentially_with_jitter_and_never_give_up() -> None:
    schedule = Schedule((FEED,), max_backoff_seconds=3600, rng=random.Random(7))
    delays = [schedule.failed("f", 0) for _ in range(12)]
    assert all(60 <= d <= 3600 for d in delays)
    assert max(delays[6:]) > 4 * 60, "the ceiling grows with consecutive failures"
    schedule.succeeded("f", 100)
    assert schedule.failures("f") == 0 and schedule.next_due() == 160


def test_retry_after_wins_when_longer_but_is_capped() -> None:
    schedule = Schedule((FEED,), max_backoff_seconds=600, rng=random.Random(1))
    assert schedule.failed("f", 0, retry_after=500) == 500
    assert schedule.failed("f", 0, retry_after=10**6) == 600


def test_feed_list_is_validated(tmp_path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds:\n  - {id: a, url: 'https://x.example/rss', tags: [k]}\n")
    [feed] = load_feeds(path)
    assert feed.interval_seconds == 300 and feed.tags == ("k",)
    path.write_text("feeds:\n  - {id: a, url: 'file:///etc/passwd'}\n")
    with pytest.raises(ConfigurationError, match="http"):
        load_feeds(path)
    path.write_text(
        "feeds:\n  - {id: a, url: 'https://x.example/1'}\n  - {id: a, url: 'https://x.example/2'}\n"
    )
    with pytest.raises(ConfigurationError, match="duplicate feed ids"):
        load_feeds(path)
