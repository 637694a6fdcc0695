"""``dmzwatch_poller_feed_retry_delay_seconds{feed_id}``: the delay the schedule chose for a
failing feed's next attempt (backoff, or a longer Retry-After), per feed, back to 0 once the feed
is fetched again; on a manual clock, so the delay is exactly what the schedule holds."""

from __future__ import annotations

from dmzwatch.poller.feeds import FeedConfig
from tests.unit.poller.test_service_poll import FEED, Rig, error, ok, rig, rss, story

GAUGE = "dmzwatch_poller_feed_retry_delay_seconds"


def scheduled_delay(r: Rig, feed_id: str = "f") -> float:
    return r.schedule.due_at(feed_id) - r.clock.monotonic()


def test_a_failed_fetch_shows_the_delay_until_its_next_attempt() -> None:
    r = rig(error(), error(), error())
    delays = []
    for failures in (1, 2, 3):
        r.source.poll_all()
        assert r.sample("dmzwatch_poller_feed_failures", feed_id="f") == failures
        delay = r.sample(GAUGE, feed_id="f")
        assert delay is not None and delay == scheduled_delay(r)
        delays.append(delay)
    # Backoff never retries sooner than the feed's interval, and stays under the cap.
    assert all(FEED.interval_seconds <= d <= r.schedule.max_backoff_seconds for d in delays)


def test_a_longer_retry_after_is_what_the_gauge_shows() -> None:
    r = rig(error(retry_after=5000))
    r.source.poll_all()
    assert r.sample(GAUGE, feed_id="f") == scheduled_delay(r) >= 5000


def test_the_delay_returns_to_zero_once_the_feed_is_fetched_again() -> None:
    r = rig(error(), ok(rss(story(1))))
    r.source.poll_all()
    assert (r.sample(GAUGE, feed_id="f") or 0) > 0
    r.source.poll_all()
    assert r.sample(GAUGE, feed_id="f") == 0
    assert r.sample("dmzwatch_poller_feed_failures", feed_id="f") == 0


def test_a_publish_the_broker_did_not_acknowledge_backs_off_too() -> None:
    r = rig(ok(rss(story(1))))
    r.producer.fail_next = 1
    r.source.poll_all()
    assert r.sample(GAUGE, feed_id="f") == scheduled_delay(r) > 0


def test_each_feed_has_its_own_delay() -> None:
    healthy = FeedConfig(id="h", url="https://other.example/rss", interval_seconds=300)
    r = rig(error(retry_after=3000), feeds=(FEED, healthy))
    r.fetcher.responses[healthy.url] = [ok(rss(story(2)))]
    report = r.source.poll_all()
    assert set(report.errors) == {"f"}
    assert r.sample(GAUGE, feed_id="f") == scheduled_delay(r, "f") >= 3000
    assert r.sample(GAUGE, feed_id="h") == 0
