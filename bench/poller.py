"""Poller figures (issue 4): one poller process against a loopback HTTP server of 1,000 feeds.

The server (``bench/feedserver.py``) runs in its own process. The poller is the real
:class:`PollerSource` with the real :class:`HttpFeedFetcher` (SSRF guard allowing 127.0.0.1),
publishing to an in-memory producer that acknowledges at once (the broker is not measured
here). Figures, all from the same run:

- new entries/s: a first poll of every feed, all ~20,000 entries new (median of 3);
- unchanged feeds/s: a second poll answered 304, and one of a server ignoring validators whose
  bodies are unchanged (hashed, not parsed);
- the same poller with feedparser as the parser on 200 of the feeds, and feedparser's default
  ``feedparser.parse(body)`` alone on the same bodies, for comparison;
- beside each poller rate, the same polls per CPU second of the poller process (every thread):
  on a machine shared with other work, wall-clock rates follow the load, this one much less.

Everything is on 127.0.0.1, one host, so the per-host limit is raised to the pool size here.
"""

from __future__ import annotations

import logging
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import feedparser
import structlog
from prometheus_client import CollectorRegistry

from bench.feedserver import feed_body
from bench.figures import Figure
from dmzwatch.poller.feeds import FeedConfig
from dmzwatch.poller.fetch import HttpFeedFetcher
from dmzwatch.poller.metrics import PollerMetrics
from dmzwatch.poller.parse import parse_feed
from dmzwatch.poller.schedule import Schedule
from dmzwatch.poller.service import PollerSource
from dmzwatch.poller.ssrf import AddressPolicy
from dmzwatch.shared.clock import SystemClock
from dmzwatch.shared.health import Health
from dmzwatch.shared.metrics import StageMetrics

FEEDS = 1000
ENTRIES = 20
SLOW_FEEDS = 200
RUNS = 3
CONCURRENCY = 8


class _Ack:
    def get(self, timeout: float | None = None) -> None:
        return None


class CountingProducer:
    """Acknowledges every send at once; counts messages and bytes."""

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None) -> _Ack:
        self.messages += 1
        self.bytes += len(value or b"")
        return _Ack()

    def flush(self, timeout: float | None = None) -> None:
        return None

    def close(self, timeout: float | None = None) -> None:
        return None


@contextmanager
def feed_server() -> Iterator[int]:
    server = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "bench.feedserver", str(FEEDS), str(ENTRIES)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        yield int(server.stdout.readline())
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=10)


def source(
    fetcher: HttpFeedFetcher, feeds: list[FeedConfig], **options: object
) -> tuple[PollerSource, CountingProducer]:
    clock = SystemClock()
    registry = CollectorRegistry()
    producer = CountingProducer()
    poller = PollerSource(
        feeds=feeds,
        fetcher=fetcher,
        producer=producer,
        topic="articles.raw",
        schedule=Schedule(tuple(feeds)),
        metrics=PollerMetrics(registry),
        stage_metrics=StageMetrics("poller", registry),
        health=Health(clock),
        clock=clock,
        concurrency=CONCURRENCY,
        per_host_limit=CONCURRENCY,
        **options,  # type: ignore[arg-type]
    )
    return poller, producer


def timed_poll(poller: PollerSource, cpu: list[float] | None = None) -> tuple[float, int, int]:
    """Seconds, articles published and feeds answered without a new body; appends the
    process's CPU seconds (every thread) to ``cpu`` when given."""
    started, started_cpu = time.perf_counter(), time.process_time()
    report = poller.poll_all()
    seconds = time.perf_counter() - started
    if cpu is not None:
        cpu.append(time.process_time() - started_cpu)
    _expect(not report.errors, str(report.errors))
    return seconds, report.articles, report.not_modified + report.unchanged


def _expect(condition: bool, message: str) -> None:
    """The run measured what it says it measured (every entry new, every feed unchanged)."""
    if not condition:
        raise RuntimeError(f"benchmark setup went wrong: {message}")


def measure(port: int) -> dict[str, float]:
    def feeds(kind: str, count: int = FEEDS) -> list[FeedConfig]:
        return [
            FeedConfig(id=f"f{n}", url=f"http://127.0.0.1:{port}/{kind}/{n}.xml")
            for n in range(count)
        ]

    fetcher = HttpFeedFetcher(address_policy=AddressPolicy.from_entries(["127.0.0.1"]))
    new_rates, not_modified_rates, unchanged_rates = [], [], []
    new_cpu: list[float] = []
    not_modified_cpu: list[float] = []
    unchanged_cpu: list[float] = []
    try:
        for _ in range(RUNS):
            poller, _producer = source(fetcher, feeds("etag"))
            seconds, articles, _ = timed_poll(poller, new_cpu)
            _expect(articles == FEEDS * ENTRIES, f"{articles} articles")
            new_rates.append(articles / seconds)
            seconds, articles, quiet = timed_poll(poller, not_modified_cpu)
            _expect(articles == 0 and quiet == FEEDS, f"{articles} articles, {quiet} quiet")
            not_modified_rates.append(FEEDS / seconds)
            poller.close()
            poller, _producer = source(fetcher, feeds("plain"))
            timed_poll(poller)
            seconds, articles, quiet = timed_poll(poller, unchanged_cpu)
            _expect(articles == 0 and quiet == FEEDS, f"{articles} articles, {quiet} quiet")
            unchanged_rates.append(FEEDS / seconds)
            poller.close()
        slow_parser = partial(parse_feed, fast=False)
        poller, _producer = source(fetcher, feeds("etag", SLOW_FEEDS), parser=slow_parser)
        seconds, articles, _ = timed_poll(poller)
        poller.close()
    finally:
        fetcher.close()
    bodies = [feed_body(n, ENTRIES) for n in range(SLOW_FEEDS)]
    started = time.perf_counter()
    parsed = sum(len(feedparser.parse(body).entries) for body in bodies)
    default_rate = parsed / (time.perf_counter() - started)
    return {
        "new": statistics.median(new_rates),
        "new_cpu": FEEDS * ENTRIES / statistics.median(new_cpu),
        "not_modified": statistics.median(not_modified_rates),
        "not_modified_cpu": FEEDS / statistics.median(not_modified_cpu),
        "unchanged_cpu": FEEDS / statistics.median(unchanged_cpu),
        "unchanged": statistics.median(unchanged_rates),
        "feedparser_poller": articles / seconds,
        "feedparser_default": default_rate,
    }


def figures() -> list[Figure]:
    # The per-feed info log lines would otherwise be printed and measured.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with feed_server() as port:
        rates = measure(port)
    setup = f"1 process, {FEEDS} feeds x {ENTRIES} entries over loopback HTTP, median of {RUNS}"
    return [
        Figure("poller_new_entries_per_second", rates["new"], "entries/s", 5_000, note=setup),
        Figure(
            "poller_new_entries_per_cpu_second",
            rates["new_cpu"],
            "entries/s",
            note="the same polls per CPU second of the poller process (all threads): what one"
            " core gives when other work shares the machine",
        ),
        Figure(
            "poller_unchanged_feeds_per_second_304",
            rates["not_modified"],
            "feeds/s",
            1_000,
            note="second poll, every feed answers 304",
        ),
        Figure(
            "poller_unchanged_feeds_per_cpu_second_304",
            rates["not_modified_cpu"],
            "feeds/s",
            note="the same 304 polls per CPU second of the poller process (all threads)",
        ),
        Figure(
            "poller_unchanged_feeds_per_second_same_body",
            rates["unchanged"],
            "feeds/s",
            1_000,
            note="server ignores validators; bodies hashed, not parsed",
        ),
        Figure(
            "poller_unchanged_feeds_per_cpu_second_same_body",
            rates["unchanged_cpu"],
            "feeds/s",
            note="the same unchanged-body polls per CPU second of the poller process",
        ),
        Figure(
            "poller_feedparser_path_new_entries_per_second",
            rates["feedparser_poller"],
            "entries/s",
            note=f"same poller, parse_feed(fast=False), {SLOW_FEEDS} feeds",
        ),
        Figure(
            "feedparser_default_parse_entries_per_second",
            rates["feedparser_default"],
            "entries/s",
            note=f"feedparser.parse(body), default options, parse only, {SLOW_FEEDS} feeds",
        ),
    ]


if __name__ == "__main__":
    from bench.figures import table

    print(table(figures()))
