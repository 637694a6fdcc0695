"""PollerSource with an in-memory fetcher and producer on a manual clock: unchanged bodies,
new-entry-only publishing, overflow, stale-feed gauge, GUID fallback, per-host limit, and
memory that advances only after broker acks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import orjson
import pytest
import structlog
from prometheus_client import CollectorRegistry

from dmzwatch.poller.feeds import FeedConfig
from dmzwatch.poller.fetch import FeedFetcher, FetchResult, Validators
from dmzwatch.poller.metrics import PollerMetrics
from dmzwatch.poller.parse import ParsedFeed, parse_feed
from dmzwatch.poller.schedule import Schedule
from dmzwatch.poller.service import PollerSource
from dmzwatch.shared.clock import ManualClock
from dmzwatch.shared.health import Health
from dmzwatch.shared.metrics import StageMetrics
from tests.fakes import FakeProducer

TOPIC = "articles.raw"
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def rss(*items: tuple[str, str | None, datetime | None], ttl: int | None = None) -> bytes:
    """An RSS body of (guid, link, date) items titled by their guid."""
    parts = []
    for guid, link, when in items:
        link_xml = f"<link>{link}</link>" if link else ""
        date_xml = f"<pubDate>{format_datetime(when)}</pubDate>" if when else ""
        parts.append(
            f'<item><title>Story {guid}</title>{link_xml}<guid isPermaLink="false">{guid}</guid>'
            f"{date_xml}<description>Text of {guid}</description></item>"
        )
    ttl_xml = f"<ttl>{ttl}</ttl>" if ttl else ""
    channel = f"<title>t</title>{ttl_xml}{''.join(parts)}"
    return f'<rss version="2.0"><channel>{channel}</channel></rss>'.encode()


def story(n: int, minutes_ago: float = 0) -> tuple[str, str, datetime]:
    return (f"g{n}", f"https://news.example/{n}", START - timedelta(minutes=minutes_ago + n))


@dataclass
class ScriptedFetcher(FeedFetcher):
    """Answers each URL with the next scripted response (the last one repeats)."""

    responses: dict[str, list[Callable[[Validators], FetchResult]]] = field(default_factory=dict)
    seen_validators: list[Validators] = field(default_factory=list)

    def fetch(self, url: str, validators: Validators) -> FetchResult:
        self.seen_validators.append(validators)
        script = self.responses[url]
        answer = script.pop(0) if len(script) > 1 else script[0]
        return answer(validators)


def ok(body: bytes, etag: str | None = None, headers: dict[str, str] | None = None) -> Callable:
    def answer(_: Validators) -> FetchResult:
        return FetchResult(
            "ok",
            URL,
            200,
            body,
            "application/rss+xml",
            Validators(etag),
            None,
            0.01,
            len(body),
            None,
            headers or {},
        )

    return answer


def not_modified(validators: Validators) -> FetchResult:
    return FetchResult("not_modified", URL, 304, None, None, validators, None, 0.01, 0, None, {})


def error(retry_after: float | None = None) -> Callable:
    def answer(validators: Validators) -> FetchResult:
        return FetchResult(
            "error", URL, 503, None, None, validators, "HTTP 503", 0.01, 0, retry_after, {}
        )

    return answer


URL = "https://news.example/rss"
FEED = FeedConfig(id="f", url=URL, interval_seconds=300)


@dataclass
class Rig:
    source: PollerSource
    producer: FakeProducer
    fetcher: ScriptedFetcher
    schedule: Schedule
    registry: CollectorRegistry
    clock: ManualClock
    parses: list[str]

    def sample(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)

    def published_guids(self) -> list[str]:
        return [orjson.loads(v)["guid"] for v in self.producer.on(TOPIC)]


def rig(*script: Callable, feeds: tuple[FeedConfig, ...] = (FEED,), **options: object) -> Rig:
    clock = ManualClock(START)
    registry = CollectorRegistry()
    producer = FakeProducer()
    fetcher = ScriptedFetcher({f.url: list(script) for f in feeds})
    schedule = Schedule(feeds)
    parses: list[str] = []

    def counting_parse(body: bytes, url: str, content_type: str | None) -> ParsedFeed:
        parses.append(url)
        return parse_feed(body, url, content_type)

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
        parser=counting_parse,
        **options,  # type: ignore[arg-type]
    )
    return Rig(source, producer, fetcher, schedule, registry, clock, parses)


def test_only_entries_new_since_the_last_poll_are_published() -> None:
    r = rig(ok(rss(story(1), story(2))), ok(rss(story(3), story(1), story(2))))
    assert r.source.poll_all().articles == 2
    report = r.source.poll_all()
    assert report.articles == 1 and r.published_guids() == ["g1", "g2", "g3"]
    assert report.overflows == []


def test_an_unchanged_body_is_not_parsed_again_and_is_counted() -> None:
    body = rss(story(1))
    r = rig(ok(body), ok(body))
    r.source.poll_all()
    report = r.source.poll_all()
    assert report.unchanged == 1 and report.articles == 0
    assert len(r.parses) == 1
    assert r.sample("dmzwatch_poller_fetches_total", outcome="unchanged") == 1
    assert r.sample("dmzwatch_poller_fetches_total", outcome="ok") == 1


def test_not_modified_sends_the_validators_and_publishes_nothing() -> None:
    r = rig(ok(rss(story(1)), etag='"v1"'), not_modified)
    r.source.poll_all()
    report = r.source.poll_all()
    assert report.not_modified == 1 and report.articles == 0
    assert r.fetcher.seen_validators[-1] == Validators('"v1"')
    assert r.sample("dmzwatch_poller_fetches_total", outcome="not_modified") == 1


def test_memory_advances_only_after_the_broker_acknowledged() -> None:
    r = rig(ok(rss(story(1)), etag='"v1"'), ok(rss(story(1)), etag='"v1"'))
    r.producer.fail_next = 1
    report = r.source.poll_all()
    assert "f" in report.errors and r.schedule.failures("f") == 1
    assert r.source.memory("f").validators == Validators()  # not advanced
    report = r.source.poll_all()  # same body again: not "unchanged", not "already sent"
    assert report.articles == 1 and report.unchanged == 0
    assert r.fetcher.seen_validators == [Validators(), Validators()]
    assert r.source.memory("f").validators == Validators('"v1"')


def test_every_entry_new_on_a_feed_polled_before_is_an_overflow(
    capsys: pytest.CaptureFixture[str],
) -> None:
    r = rig(ok(rss(story(1), story(2))), ok(rss(story(3), story(4))))
    assert r.source.poll_all().overflows == []  # the first poll is not an overflow
    assert r.source.poll_all().overflows == ["f"]
    assert r.sample("dmzwatch_poller_overflows_total", feed_id="f") == 1
    assert "feed_overflow" in capsys.readouterr().out


def test_newest_entry_gauge_ignores_future_dates_and_uses_first_seen_for_undated() -> None:
    future = ("g9", "https://news.example/9", START + timedelta(days=3))
    r = rig(ok(rss(story(1, minutes_ago=90))), ok(rss(future, story(1, minutes_ago=90))))
    r.source.poll_all()
    newest = r.sample("dmzwatch_poller_newest_entry_timestamp_seconds", feed_id="f")
    assert newest == (START - timedelta(minutes=91)).timestamp()
    r.clock.advance(600)
    r.source.poll_all()
    newest = r.sample("dmzwatch_poller_newest_entry_timestamp_seconds", feed_id="f")
    assert newest == r.clock.now().timestamp()  # clamped to now, not three days ahead
    undated = rig(ok(rss(("u1", "https://news.example/u1", None))))
    undated.source.poll_all()
    seen = undated.sample("dmzwatch_poller_newest_entry_timestamp_seconds", feed_id="f")
    assert seen == START.timestamp()


def test_undated_entries_keep_no_publication_date_and_carry_the_first_seen_time() -> None:
    r = rig(ok(rss(("u1", "https://news.example/u1", None))))
    r.source.poll_all()
    (value,) = r.producer.on(TOPIC)
    article = orjson.loads(value)
    assert article["published_at"] is None
    assert article["fetched_at"].startswith("2026-03-01T12:00:00")


def test_a_feed_repeating_guids_falls_back_to_links_from_then_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    same = [("dup", f"https://news.example/{n}", START) for n in range(3)]
    later = rss(("dup", "https://news.example/9", START), ("x", "https://news.example/8", START))
    r = rig(ok(rss(*same)), ok(later))
    assert r.source.poll_all().articles == 3
    assert r.published_guids() == [f"https://news.example/{n}" for n in range(3)]
    assert "feed_guids_repeat" in capsys.readouterr().out
    r.source.poll_all()  # this document repeats nothing, but the feed stays untrusted
    assert r.published_guids()[3:] == ["https://news.example/9", "https://news.example/8"]


def test_cache_headers_and_ttl_set_a_floor_on_the_next_fetch() -> None:
    r = rig(ok(rss(story(1)), headers={"cache-control": "max-age=3600"}))
    r.source.poll_all()
    assert r.schedule.due_at("f") == r.clock.monotonic() + 3600
    r = rig(ok(rss(story(1), ttl=45)))
    r.source.poll_all()
    assert r.schedule.due_at("f") == r.clock.monotonic() + 45 * 60


def test_interval_adapts_to_the_publish_rate_of_parsed_entries() -> None:
    hourly = [(f"g{n}", f"https://news.example/{n}", START - timedelta(hours=n)) for n in range(8)]
    r = rig(ok(rss(*hourly)))
    r.source.poll_all()
    assert 300 < r.schedule.interval("f") < 3600
    assert r.sample("dmzwatch_poller_feed_interval_seconds", feed_id="f") == r.schedule.interval(
        "f"
    )


def test_retry_after_of_a_failing_feed_is_honoured() -> None:
    r = rig(error(retry_after=1800))
    report = r.source.poll_all()
    assert report.errors == {"f": "HTTP 503"}
    assert r.schedule.due_at("f") >= r.clock.monotonic() + 1800
    assert r.sample("dmzwatch_poller_feed_failures", feed_id="f") == 1


class SlowFetcher(FeedFetcher):
    """Holds each fetch briefly and records how many run at once per host."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._lock = threading.Lock()
        self.running: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    def fetch(self, url: str, validators: Validators) -> FetchResult:
        host = url.split("/")[2]
        with self._lock:
            self.running[host] = self.running.get(host, 0) + 1
            self.peak[host] = max(self.peak.get(host, 0), self.running[host])
        time.sleep(0.02)
        with self._lock:
            self.running[host] -= 1
        return ok(self._body)(validators)


def test_fetches_per_host_are_limited_while_other_hosts_proceed() -> None:
    feeds = tuple(
        FeedConfig(id=f"{host}-{n}", url=f"https://{host}.example/{n}.xml")
        for host in ("a", "b", "c")
        for n in range(6)
    )
    fetcher = SlowFetcher(rss(story(1)))
    clock = ManualClock(START)
    registry = CollectorRegistry()
    source = PollerSource(
        feeds=feeds,
        fetcher=fetcher,
        producer=FakeProducer(),
        topic=TOPIC,
        schedule=Schedule(feeds),
        metrics=PollerMetrics(registry),
        stage_metrics=StageMetrics("poller", registry),
        health=Health(clock),
        clock=clock,
        concurrency=8,
    )
    report = source.poll_all()
    source.close()
    assert report.fetched == 18 and not report.errors
    assert max(fetcher.peak.values()) == 2
    assert set(fetcher.peak) == {"a.example", "b.example", "c.example"}


@pytest.fixture(autouse=True)
def _structlog_to_stdout() -> None:
    structlog.reset_defaults()
