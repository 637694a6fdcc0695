"""The poll loop: fetch the feeds that are due, publish their new entries, wait for the next one.

Per feed, the poller remembers (:class:`FeedMemory`) its validators, a digest of the last body,
the ids of the entries in it and whether its GUIDs can be trusted. That memory advances only
after every article of the fetch was acknowledged by the broker: otherwise a crash or a broker
outage after a 200 would turn the next fetch into a 304 (or an "unchanged" body, or entries
taken as already sent) and lose the entries.

- A 200 whose body is byte-identical to the last one (a server ignoring validators) is counted
  as ``unchanged`` and not parsed.
- Only entries not in the feed's previous document are published; when *every* entry of a
  feed polled before is new, items were probably missed: ``feed_overflow``.
- Fetches run in a thread pool, at most ``per_host_limit`` at a time per host, while this
  thread parses and publishes what has arrived.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TypeVar

import structlog
from kafka.errors import KafkaError
from prometheus_client import Counter, Gauge

from dmzwatch.poller.feeds import FeedConfig
from dmzwatch.poller.fetch import FeedFetcher, FetchResult, Validators
from dmzwatch.poller.freshness import freshness_seconds
from dmzwatch.poller.hosts import HostLimiter, interleave_by_host
from dmzwatch.poller.leases import FeedOwnership
from dmzwatch.poller.metrics import PollerMetrics
from dmzwatch.poller.normalise import guids_repeat, to_article
from dmzwatch.poller.parse import ParsedFeed, parse_feed
from dmzwatch.poller.schedule import Schedule
from dmzwatch.poller.websub_contract import FeedSubscriptions, PushSink, SinkOutcome
from dmzwatch.shared.clock import Clock
from dmzwatch.shared.health import Health
from dmzwatch.shared.messages import Article, encode
from dmzwatch.shared.metrics import StageMetrics
from dmzwatch.shared.runner import FutureLike, ProducerPort

log = structlog.get_logger(__name__)
_Metric = TypeVar("_Metric", Counter, Gauge)


@dataclass
class PollReport:
    """What one poll did: feeds fetched, articles published, per-feed errors and signals."""

    fetched: int = 0
    articles: int = 0
    not_modified: int = 0
    unchanged: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    overflows: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FeedMemory:
    """What the poller keeps of a feed between polls (replaced only after broker acks).

    ``entry_ids`` are the article ids of the last parsed document; ``newest`` the Unix time of
    its newest entry; ``ttl_minutes`` its ``<ttl>``, reused while the body is unchanged.
    """

    validators: Validators = field(default_factory=Validators)
    body_digest: bytes | None = None
    entry_ids: frozenset[str] = frozenset()
    newest: float | None = None
    ttl_minutes: int | None = None
    guids_trusted: bool = True


@dataclass(frozen=True, slots=True)
class _Handled:
    """One fetch, handled: what was sent, and what to remember once it is acknowledged."""

    feed: FeedConfig
    result: FetchResult
    outcome: str
    futures: tuple[FutureLike, ...]
    memory: FeedMemory
    published: tuple[datetime, ...]
    floor_seconds: float | None


class PollerSource(PushSink):
    """Polls ``feeds`` with ``fetcher`` and publishes articles to ``topic`` until stopped.

    ``per_host_limit`` bounds the fetches in flight per host; ``parser`` turns a body, its URL
    and content type into a ParsedFeed (the benchmark swaps in feedparser's path).
    """

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
        per_host_limit: int = 2,
        parser: Callable[[bytes, str, str | None], ParsedFeed] = parse_feed,
        ownership: FeedOwnership | None = None,
        subscriptions: FeedSubscriptions | None = None,
    ) -> None:
        self._feeds = tuple(feeds)
        # WebSub: pushes arrive on server threads; a feed's lock keeps a push and a poll of the
        # same feed from both reading its memory before either has written it.
        self._subscriptions = subscriptions
        self._by_id = {f.id: f for f in self._feeds}
        self._feed_locks = {f.id: threading.Lock() for f in self._feeds}
        self._ownership = ownership
        self._fetcher = fetcher
        self._producer = producer
        self._topic = topic
        self._schedule = schedule
        self._metrics = metrics
        self._stage = stage_metrics
        self._health = health
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="fetch")
        self._hosts = HostLimiter(per_host_limit)
        self._parse = parser
        self._flush_timeout = flush_timeout_seconds
        self._memory: dict[str, FeedMemory] = {}
        self._stopping = threading.Event()
        # Per-feed metric children, looked up once (feeds come from configuration: bounded).
        self._children: dict[tuple[int, str], Counter | Gauge] = {}

    def stop(self) -> None:
        self._stopping.set()

    def memory(self, feed_id: str) -> FeedMemory:
        """What is remembered of a feed (empty before its first acknowledged poll)."""
        return self._memory.get(feed_id, FeedMemory())

    def run(self) -> None:
        log.info("poller_started", feeds=len(self._feeds))
        self._health.set("broker", True)
        try:
            while not self._stopping.is_set():
                self._health.beat()
                if self.poll_due() is not None:
                    continue
                wait = self._next_wake() - self._clock.monotonic()
                self._clock.sleep(max(0.0, min(wait, 0.5)))
        finally:
            self.close()

    def poll_due(self) -> PollReport | None:
        """One turn of the loop: poll the feeds due now (with ``ownership``, only those whose
        lease this replica wins, moved afterwards to their next due time); None when none."""
        due = self._schedule.due(self._clock.monotonic())
        if self._subscriptions is not None:
            # Feeds that just lost their push subscription are polled now, not at the slow
            # safety interval they were scheduled at.
            lost = self._subscriptions.take_fallbacks() - {f.id for f in due}
            due += [self._by_id[i] for i in sorted(lost) if i in self._by_id]
        ownership = self._ownership
        if ownership is None:
            return self.poll(due) if due else None
        due = ownership.select(due, self._schedule.interval)
        for feed in due:
            inherited = ownership.take_inherited(feed.id)
            if inherited is not None:
                # Newly won: another replica may have fetched it since, so anything remembered
                # here is stale; its validators came with the lease.
                self._memory[feed.id] = FeedMemory(validators=inherited)
        if not due:
            ownership.beat()
            return None
        report = self.poll(due)
        ownership.settled(
            {f.id: (self._schedule.due_at(f.id), self.memory(f.id).validators) for f in due}
        )
        return report

    def _next_wake(self) -> float:
        """Monotonic time of the next feed due (and, when shared, not deferred by a lease)."""
        ownership = self._ownership
        if ownership is None:
            return self._schedule.next_due()
        return min(
            (max(self._schedule.due_at(f.id), ownership.not_before(f.id)) for f in self._feeds),
            default=float("inf"),
        )

    def poll_all(self) -> PollReport:
        """Fetch every feed now, whatever its schedule (``dmzwatch demo``)."""
        return self.poll(self._feeds)

    def poll(self, feeds: Iterable[FeedConfig]) -> PollReport:
        """Fetch ``feeds`` concurrently, publish their new entries, settle once acknowledged."""
        ordered = interleave_by_host(feeds, lambda f: f.url)
        jobs = {self._pool.submit(self._fetch, feed): (n, feed) for n, feed in enumerate(ordered)}
        report = PollReport(fetched=len(jobs))
        handled: list[tuple[int, _Handled]] = []
        held: list[threading.Lock] = []
        try:
            # Handled as they arrive, so parsing never waits behind a slow fetch; the report
            # and the settling keep the submission order.
            for job in as_completed(jobs):
                n, feed = jobs[job]
                result = job.result()
                lock = self._feed_locks.get(feed.id)
                if lock is not None and lock not in held:
                    lock.acquire()
                    held.append(lock)
                item = self._handle(feed, result, report)
                if item is not None:
                    handled.append((n, item))
            handled.sort(key=lambda pair: pair[0])
            position = {feed.id: n for n, feed in jobs.values()}
            report.errors = dict(sorted(report.errors.items(), key=lambda e: position[e[0]]))
            report.overflows.sort(key=position.__getitem__)
            self._settle([item for _, item in handled], report)
        finally:
            for lock in held:
                lock.release()
        return report

    def _fetch(self, feed: FeedConfig) -> FetchResult:
        with self._hosts.slot(feed.url):
            return self._fetcher.fetch(feed.url, self.memory(feed.id).validators)

    def _handle(self, feed: FeedConfig, result: FetchResult, report: PollReport) -> _Handled | None:
        """Count one fetch and send its new articles; None when it failed (already recorded)."""
        self._metrics.fetch_seconds.observe(result.seconds)
        self._metrics.bytes.inc(result.bytes_read)
        memory = self.memory(feed.id)
        if memory.validators != result.validators:
            memory = replace(memory, validators=result.validators)
        now = self._clock.now()
        if result.outcome == "not_modified":
            report.not_modified += 1
            return self._quiet(feed, result, "not_modified", memory, now)
        if result.outcome != "ok" or result.body is None:
            self._metrics.fetches[result.outcome].inc()
            self._record_failure(feed, result.error or result.outcome, result.retry_after, report)
            return None
        digest = hashlib.blake2b(result.body, digest_size=16).digest()
        if digest == memory.body_digest:
            report.unchanged += 1
            return self._quiet(feed, result, "unchanged", memory, now)
        self._metrics.fetches["ok"].inc()
        if self._subscriptions is not None:
            self._subscriptions.observe(feed.id, result)
        parsed = self._parse(result.body, result.url, result.content_type)
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
        return self._publish(feed, result, parsed, replace(memory, body_digest=digest), report)

    def _quiet(
        self, feed: FeedConfig, result: FetchResult, outcome: str, memory: FeedMemory, now: datetime
    ) -> _Handled:
        """A fetch with nothing new to parse (304, or the same body again)."""
        self._metrics.fetches[outcome].inc()
        floor = freshness_seconds(result.headers, now, memory.ttl_minutes)
        return _Handled(feed, result, outcome, (), memory, (), floor)

    def _publish(
        self,
        feed: FeedConfig,
        result: FetchResult,
        parsed: ParsedFeed,
        memory: FeedMemory,
        report: PollReport,
    ) -> _Handled:
        fetched_at = self._clock.now()
        articles, fresh, trusted = self._articles(feed, parsed, memory, fetched_at)
        ids = frozenset(a.article_id for a in articles)
        if memory.entry_ids and ids and not ids & memory.entry_ids:
            self._child(self._metrics.overflows, feed.id).inc()
            report.overflows.append(feed.id)
            log.warning("feed_overflow", feed_id=feed.id, entries=len(ids))
        futures = tuple(
            self._producer.send(self._topic, value=encode(a), key=a.article_id.encode())
            for a in fresh
        )
        newest = _newest(articles, fresh, fetched_at, memory.newest)
        remembered = replace(
            memory,
            entry_ids=ids,
            newest=newest,
            ttl_minutes=parsed.ttl_minutes,
            guids_trusted=trusted,
        )
        published = tuple(e.published for e in parsed.entries if e.published is not None)
        floor = freshness_seconds(result.headers, fetched_at, parsed.ttl_minutes)
        return _Handled(feed, result, "ok", futures, remembered, published, floor)

    def _articles(
        self, feed: FeedConfig, parsed: ParsedFeed, memory: FeedMemory, fetched_at: datetime
    ) -> tuple[list[Article], list[Article], bool]:
        """The document's articles, those not in the feed's memory, and whether GUIDs are
        trusted (the same for a poll and a push)."""
        trusted = memory.guids_trusted and not guids_repeat(parsed.entries)
        if memory.guids_trusted and not trusted:
            log.warning("feed_guids_repeat", feed_id=feed.id, fallback="link or content hash")
        articles: list[Article] = []
        for entry in parsed.entries:
            article = to_article(feed, entry, fetched_at, trust_guid=trusted)
            if article is not None:
                articles.append(article)
        fresh = [a for a in articles if a.article_id not in memory.entry_ids]
        return articles, fresh, trusted

    def receive(self, feed_id: str, body: bytes, content_type: str | None) -> SinkOutcome:
        """Publish the new entries of a document a WebSub hub pushed for ``feed_id``, as a poll
        would: same parse, same articles, only entries not already sent, memory advanced only
        once the broker acknowledged (a ``KafkaError`` is raised otherwise). A push may carry
        only the new entries, so their ids are added to the remembered ones; the feed's next
        poll replaces them with its document's. Validators and the schedule are untouched."""
        feed = self._by_id[feed_id]
        with self._feed_locks[feed_id]:
            parsed = self._parse(body, feed.url, content_type)
            self._metrics.entries.inc(len(parsed.entries))
            if parsed.error is not None:
                self._metrics.parse_errors.inc()
                log.warning(
                    "push_parse_error",
                    feed_id=feed_id,
                    error=parsed.error,
                    recovered_entries=len(parsed.entries),
                )
                if not parsed.entries:
                    return "parse_error"
            memory = self.memory(feed_id)
            fetched_at = self._clock.now()
            articles, fresh, trusted = self._articles(feed, parsed, memory, fetched_at)
            futures = [
                self._producer.send(self._topic, value=encode(a), key=a.article_id.encode())
                for a in fresh
            ]
            self._producer.flush(timeout=self._flush_timeout)
            for future in futures:
                future.get(timeout=self._flush_timeout)
            self._memory[feed_id] = replace(
                memory,
                entry_ids=memory.entry_ids | {a.article_id for a in articles},
                newest=_newest(articles, fresh, fetched_at, memory.newest),
                guids_trusted=trusted,
            )
        self._stage.produced.inc(len(futures))
        log.info("feed_pushed", feed_id=feed_id, entries=len(articles), articles=len(futures))
        return "ok"

    def _settle(self, handled: list[_Handled], report: PollReport) -> None:
        """Wait for acknowledgements; only then advance memory and schedules."""
        now = self._clock.monotonic()
        try:
            self._producer.flush(timeout=self._flush_timeout)
            for item in handled:
                for future in item.futures:
                    future.get(timeout=self._flush_timeout)
        except KafkaError as exc:
            self._health.set("broker", False, f"produce failed: {exc!r}")
            log.warning("publish_failed", error=repr(exc), feeds=len(handled))
            for item in handled:
                if item.futures:
                    self._record_failure(item.feed, f"publish failed: {exc!r}", None, report)
            handled = [item for item in handled if not item.futures]
        else:
            self._health.set("broker", True)
        for item in handled:
            self._advance(item, now, report)

    def _advance(self, item: _Handled, now: float, report: PollReport) -> None:
        feed = item.feed
        self._memory[feed.id] = item.memory
        floor = item.floor_seconds
        if self._subscriptions is not None:
            # While hubs push a feed, polls are only a safety net.
            push_floor = self._subscriptions.poll_floor(feed.id)
            if push_floor is not None:
                floor = max(floor or 0.0, push_floor)
        delay = self._schedule.succeeded(
            feed.id, now, published=item.published, not_before_seconds=floor
        )
        metrics = self._metrics
        self._child(metrics.last_success, feed.id).set(self._clock.now().timestamp())
        self._child(metrics.failures, feed.id).set(0)
        self._child(metrics.retry_delay, feed.id).set(0)
        self._child(metrics.interval, feed.id).set(self._schedule.interval(feed.id))
        if item.memory.newest is not None:
            self._child(metrics.newest_entry, feed.id).set(item.memory.newest)
        self._stage.produced.inc(len(item.futures))
        report.articles += len(item.futures)
        log.info(
            "feed_polled",
            feed_id=feed.id,
            outcome=item.outcome,
            articles=len(item.futures),
            seconds=round(item.result.seconds, 3),
            next_in_seconds=round(delay, 1),
        )

    def _record_failure(
        self, feed: FeedConfig, error: str, retry_after: float | None, report: PollReport
    ) -> None:
        delay = self._schedule.failed(feed.id, self._clock.monotonic(), retry_after)
        self._child(self._metrics.failures, feed.id).set(self._schedule.failures(feed.id))
        self._child(self._metrics.retry_delay, feed.id).set(delay)
        report.errors[feed.id] = error
        log.warning("feed_failed", feed_id=feed.id, error=error, retry_in_seconds=round(delay, 1))

    def _child(self, metric: _Metric, feed_id: str) -> _Metric:
        """``metric.labels(feed_id)``, created on first use as before and then reused."""
        key = (id(metric), feed_id)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(feed_id)
        return child  # type: ignore[return-value] # keyed by the metric it came from

    def close(self) -> None:
        if self._ownership is not None:
            self._ownership.close()
        self._pool.shutdown(wait=True)
        try:
            self._producer.flush(timeout=self._flush_timeout)
        except KafkaError as exc:
            log.error("final_flush_failed", error=repr(exc))


def _newest(
    articles: Sequence[Article], fresh: Sequence[Article], seen_at: datetime, before: float | None
) -> float | None:
    """Unix time of the feed's newest entry: the latest publication date not in the future,
    or the first-seen time of a new undated entry; never earlier than what was known."""
    limit = seen_at.timestamp()
    times = [min(a.published_at.timestamp(), limit) for a in articles if a.published_at]
    if any(a.published_at is None for a in fresh):
        times.append(limit)
    if before is not None:
        times.append(before)
    return max(times) if times else None
