"""Poller metrics (the stage's message counters are the shared ``dmzwatch_messages_total``).

- ``dmzwatch_poller_fetches_total{outcome}``: ok, not_modified, unchanged (a 200 whose body
  is byte-identical to the last one: the server ignored the validators; not parsed), error,
  blocked, too_large, timeout.
- ``dmzwatch_poller_fetch_seconds``: duration of one fetch.
- ``dmzwatch_poller_fetched_bytes_total``: body bytes read.
- ``dmzwatch_poller_entries_total``: entries parsed from fetched feeds.
- ``dmzwatch_poller_parse_errors_total``: feeds whose body could not be parsed cleanly.
- ``dmzwatch_poller_last_success_timestamp_seconds{feed_id}``: when each feed last fetched ok.
- ``dmzwatch_poller_feed_failures{feed_id}``: consecutive failures of each feed (0 when fine).
- ``dmzwatch_poller_feed_retry_delay_seconds{feed_id}``: the delay before a failing feed's
  next attempt, as its backoff (or the server's ``Retry-After``) chose it; 0 when fine.
- ``dmzwatch_poller_newest_entry_timestamp_seconds{feed_id}``: publication time of the feed's
  newest entry (first-seen time for undated ones; future dates count as now). A stale feed is
  ``time() - dmzwatch_poller_newest_entry_timestamp_seconds > N``.
- ``dmzwatch_poller_overflows_total{feed_id}``: polls in which every entry was new on a feed
  polled before: items were probably missed between polls (logged as ``feed_overflow``).
- ``dmzwatch_poller_feed_interval_seconds{feed_id}``: each feed's adapted polling interval.
- ``dmzwatch_poller_lease_claims_total{outcome}``: feed lease claims by this replica, ``won``
  or ``lost`` (another replica holds the feed this interval, or took it over).
- ``dmzwatch_poller_feeds_owned``: feeds whose lease this replica holds.
- ``dmzwatch_poller_replicas``: poller replicas alive, as this replica last saw them.
- ``dmzwatch_poller_websub_subscriptions{state}``: WebSub subscriptions this replica owns (renews;
  summed over replicas: all) by state (requesting, pending, active, denied, failed, expired; see
  :mod:`~dmzwatch.poller.websub`). Pushes and verifications count where the hub's request landed.
- ``dmzwatch_poller_websub_pushes_total{outcome}``: content pushed by hubs: ok, bad_signature
  (dropped), unknown_topic (no verified subscription: answered 410), parse_error,
  publish_failed (broker did not ack: answered 503 so the hub retries).
- ``dmzwatch_poller_websub_verifications_total{outcome}``: hub verification requests: confirmed,
  denied, rejected (unknown callback, topic or mode: answered 404).
- ``dmzwatch_poller_websub_requests_total{outcome}``: subscribe requests sent to hubs: accepted,
  rejected (non-2xx), blocked (SSRF guard), error.
- ``dmzwatch_poller_websub_push_seconds``: from a verified push's body read to its new entries
  acknowledged by the broker.
``feed_id`` values come from the feed list, so they are bounded.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

FETCH_OUTCOMES = ("ok", "not_modified", "unchanged", "error", "blocked", "too_large", "timeout")


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
        self.retry_delay = Gauge(
            "dmzwatch_poller_feed_retry_delay_seconds",
            "Delay before each failing feed's next attempt (backoff or Retry-After); 0 when fine.",
            ["feed_id"],
            registry=registry,
        )
        self.newest_entry = Gauge(
            "dmzwatch_poller_newest_entry_timestamp_seconds",
            "Unix time of the newest entry of each feed (first-seen time when undated).",
            ["feed_id"],
            registry=registry,
        )
        self.overflows = Counter(
            "dmzwatch_poller_overflows_total",
            "Polls in which every entry was new: items were probably missed.",
            ["feed_id"],
            registry=registry,
        )
        self.interval = Gauge(
            "dmzwatch_poller_feed_interval_seconds",
            "Adapted polling interval of each feed.",
            ["feed_id"],
            registry=registry,
        )
        lease_claims = Counter(
            "dmzwatch_poller_lease_claims_total",
            "Feed lease claims of this replica by outcome (won, lost).",
            ["outcome"],
            registry=registry,
        )
        self.lease_claims = lease_claims
        for outcome in ("won", "lost"):
            lease_claims.labels(outcome)
        self.feeds_owned = Gauge(
            "dmzwatch_poller_feeds_owned",
            "Feeds whose lease this replica holds.",
            registry=registry,
        )
        self.replicas = Gauge(
            "dmzwatch_poller_replicas", "Poller replicas alive, as last seen.", registry=registry
        )


WEBSUB_STATES = ("requesting", "pending", "active", "denied", "failed", "expired")
WEBSUB_PUSH_OUTCOMES = ("ok", "bad_signature", "unknown_topic", "parse_error", "publish_failed")
WEBSUB_VERIFICATION_OUTCOMES = ("confirmed", "denied", "rejected")
WEBSUB_REQUEST_OUTCOMES = ("accepted", "rejected", "blocked", "error")


class WebSubMetrics:
    """The WebSub subscriber's metrics (see the module docstring); labels pre-created."""

    def __init__(self, registry: CollectorRegistry) -> None:
        subscriptions = Gauge(
            "dmzwatch_poller_websub_subscriptions",
            "WebSub subscriptions by state.",
            ["state"],
            registry=registry,
        )
        self.subscriptions = {s: subscriptions.labels(s) for s in WEBSUB_STATES}
        pushes = Counter(
            "dmzwatch_poller_websub_pushes_total",
            "Content distribution requests from WebSub hubs by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.pushes = {o: pushes.labels(o) for o in WEBSUB_PUSH_OUTCOMES}
        verifications = Counter(
            "dmzwatch_poller_websub_verifications_total",
            "Verification requests from WebSub hubs by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.verifications = {o: verifications.labels(o) for o in WEBSUB_VERIFICATION_OUTCOMES}
        requests = Counter(
            "dmzwatch_poller_websub_requests_total",
            "Subscribe requests sent to WebSub hubs by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.requests = {o: requests.labels(o) for o in WEBSUB_REQUEST_OUTCOMES}
        self.push_seconds = Histogram(
            "dmzwatch_poller_websub_push_seconds",
            "From a verified WebSub push to its entries acknowledged by the broker.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
