"""Poller metrics (the stage's message counters are the shared ``dmzwatch_messages_total``).

- ``dmzwatch_poller_fetches_total{outcome}``: ok, not_modified, error, blocked, too_large,
  timeout.
- ``dmzwatch_poller_fetch_seconds``: duration of one fetch.
- ``dmzwatch_poller_fetched_bytes_total``: body bytes read.
- ``dmzwatch_poller_entries_total``: entries parsed from fetched feeds.
- ``dmzwatch_poller_parse_errors_total``: feeds whose body could not be parsed cleanly.
- ``dmzwatch_poller_last_success_timestamp_seconds{feed_id}``: when each feed last fetched ok.
- ``dmzwatch_poller_feed_failures{feed_id}``: consecutive failures of each feed (0 when fine).
``feed_id`` values come from the feed list, so they are bounded.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

FETCH_OUTCOMES = ("ok", "not_modified", "error", "blocked", "too_large", "timeout")


class PollerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        fetches = Counter(
            "dmzwatch_poller_fetches_total",
            "Feed fetches by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.fetches = {o: fetches.labels(o) for o in FETCH_OUTCOMES}
        self.fetch_seconds = Histogram(
            "dmzwatch_poller_fetch_seconds",
            "Duration of one feed fetch.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.bytes = Counter(
            "dmzwatch_poller_fetched_bytes_total", "Feed body bytes read.", registry=registry
        )
        self.entries = Counter(
            "dmzwatch_poller_entries_total", "Entries parsed from feeds.", registry=registry
        )
        self.parse_errors = Counter(
            "dmzwatch_poller_parse_errors_total",
            "Feeds whose body could not be parsed cleanly.",
            registry=registry,
        )
        self.last_success = Gauge(
            "dmzwatch_poller_last_success_timestamp_seconds",
            "Unix time of each feed's last successful fetch.",
            ["feed_id"],
            registry=registry,
        )
        self.failures = Gauge(
            "dmzwatch_poller_feed_failures",
            "Consecutive failed fetches of each feed.",
            ["feed_id"],
            registry=registry,
        )
