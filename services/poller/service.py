"""The poll loop: fetch the feeds that are due, publish their entries, wait for the next one.

A feed's validators (ETag, Last-Modified) advance only after every article of the fetch was
acknowledged by the broker: otherwise a crash or a broker outage after a 200 would turn the next
fetch into a 304 and lose the entries.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import structlog
from kafka.errors import KafkaError

from dmzwatch.poller.feeds import FeedConfig
from dmzwatch.poller.fetch import FeedFetcher, FetchResult, Validators
from dmzwatch.poller.metrics import PollerMetrics
from dmzwatch.poller.normalise import to_article
from dmzwatch.poller.parse import parse_feed
from dmzwatch.poller.schedule import Schedule
from dmzwatch.shared.clock import Clock
from dmzwatch.shared.health import Health
from dmzwatch.shared.messages import encode
from dmzwatch.shared.metrics import StageMetrics
from dmzwatch.shared.runner import FutureLike, ProducerPort

log = structlog.get_logger(__name__)


@dataclass
class PollReport:
    """What one poll did, per feed."""

    fetched: int = 0
    articles: int = 0
    errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Fetched:
    feed: FeedConfig
    result: FetchResult


class PollerSource:
    """Polls ``feeds`` with ``fetcher`` and publishes articles to ``topic`` until stopped."""

    def __init__(
        self,
        *,
        feeds: Sequence[FeedConfig],
        fetcher: FeedFetcher,
        producer: ProducerPort,
        topic: str,
        schedule: Schedule,
        metrics: PollerMetrics,
        stage_metrics: StageMetrics,
        health: Health,
        clock: Clock,
        concurrency: int = 8,
        flush_timeout_seconds: float = 60.0,
    ) -> None:
        self._feeds = tuple(feeds)
        self._fetcher = fetcher
        self._producer = producer
        self._topic = topic
        self._schedule = schedule
        self._metrics = metrics
        self._stage = stage_metrics
        self._health = health
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="fetch")
        self._flush_timeout = flush_timeout_seconds
        self._validators: dict[str, Validators] = {}
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        log.info("poller_started", feeds=len(self._feeds))
        self._health.set("broker", True)
        try:
            while not self._stopping.is_set():
                self._health.beat()
                due = self._schedule.due(self._clock.monotonic())
                if due:
                    self.poll(due)
                    continue
                wait = self._schedule.next_due() - self._clock.monotonic()
                self._clock.sleep(max(0.0, min(wait, 0.5)))
        finally:
            self.close()

    def poll_all(self) -> PollReport:
        """Fetch every feed now, whatever its schedule (``dmzwatch demo``)."""
        return self.poll(self._feeds)

    def poll(self, feeds: Iterable[FeedConfig]) -> PollReport:
        jobs = [(feed, self._pool.submit(self._fetch, feed)) for feed in feeds]
        fetched = [_Fetched(feed, job.result()) for feed, job in jobs]
        report = PollReport(fetched=len(fetched))
        pending: list[tuple[_Fetched, list[FutureLike]]] = []
        for item in fetched:
            sent = self._publish(item, report)
            if sent is not None:
                pending.append((item, sent))
        self._settle(pending, report)
        return report

    def _fetch(self, feed: FeedConfig) -> FetchResult:
        return self._fetcher.fetch(feed.url, self._validators.get(feed.id, Validators()))

    def _publish(self, item: _Fetched, report: PollReport) -> list[FutureLike] | None:
        """Send the articles of one fetch; None when the fetch failed (already recorded)."""
        feed, result = item.feed, item.result
        self._metrics.fetches[result.outcome].inc()
        self._metrics.fetch_seconds.observe(result.seconds)
        self._metrics.bytes.inc(result.bytes_read)
        if result.outcome == "not_modified":
            return []
        if result.outcome != "ok" or result.body is None:
            self._record_failure(feed, result.error or result.outcome, result.retry_after, report)
            return None
        parsed = parse_feed(result.body, result.url, result.content_type)
        self._metrics.entries.inc(len(parsed.entries))
        if parsed.error is not None:
            self._metrics.parse_errors.inc()
            log.warning(
                "feed_parse_error",
                feed_id=feed.id,
                error=parsed.error,
                recovered_entries=len(parsed.entries),
            )
            if not parsed.entries:
                self._record_failure(feed, parsed.error, None, report)
                return None
        fetched_at = self._clock.now()
        futures: list[FutureLike] = []
        for entry in parsed.entries:
            article = to_article(feed, entry, fetched_at)
            if article is not None:
                futures.append(
                    self._producer.send(
                        self._topic, value=encode(article), key=article.article_id.encode()
                    )
                )
        return futures

    def _settle(self, pending: list[tuple[_Fetched, list[FutureLike]]], report: PollReport) -> None:
        """Wait for acknowledgements; only then advance validators and schedules."""
        now = self._clock.monotonic()
        try:
            self._producer.flush(timeout=self._flush_timeout)
            for _, futures in pending:
                for future in futures:
                    future.get(timeout=self._flush_timeout)
        except KafkaError as exc:
            self._health.set("broker", False, f"produce failed: {exc!r}")
            log.warning("publish_failed", error=repr(exc), feeds=len(pending))
            for item, _ in pending:
                self._record_failure(item.feed, f"publish failed: {exc!r}", None, report)
            return
        self._health.set("broker", True)
        for item, futures in pending:
            feed = item.feed
            self._validators[feed.id] = item.result.validators
            self._schedule.succeeded(feed.id, now)
            self._metrics.last_success.labels(feed.id).set(self._clock.now().timestamp())
            self._metrics.failures.labels(feed.id).set(0)
            self._stage.produced.inc(len(futures))
            report.articles += len(futures)
            log.info(
                "feed_polled",
                feed_id=feed.id,
                outcome=item.result.outcome,
                articles=len(futures),
                seconds=round(item.result.seconds, 3),
            )

    def _record_failure(
        self, feed: FeedConfig, error: str, retry_after: float | None, report: PollReport
    ) -> None:
        delay = self._schedule.failed(feed.id, self._clock.monotonic(), retry_after)
        self._metrics.failures.labels(feed.id).set(self._schedule.failures(feed.id))
        report.errors[feed.id] = error
        log.warning("feed_failed", feed_id=feed.id, error=error, retry_in_seconds=round(delay, 1))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        try:
            self._producer.flush(timeout=self._flush_timeout)
        except KafkaError as exc:
            log.error("final_flush_failed", error=repr(exc))
