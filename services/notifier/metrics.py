"""Notifier metrics, declared once (the runner's standard ones are in ``dmzwatch.shared.metrics``).

Labels are bounded: ``channel`` is ``slack`` or ``webhook``; ``subscription`` is a name from the
subscriptions file (configuration, like the poller's feed ids); outcomes and reasons are the
fixed sets below. Never a URL or an alert id.

- ``dmzwatch_notifier_alerts_total{category}``: alerts received.
- ``dmzwatch_notifier_scheduled_total{channel,subscription,mode}``: deliveries recorded durably
  (``immediate`` or ``digest``); the Kafka record is committed only after this.
- ``dmzwatch_notifier_deliveries_total{channel,subscription,outcome}``: ``delivered`` (the
  receiver answered 2xx), ``duplicate`` (scheduled or made before: skipped), ``deadlettered``
  (given up on). A digest counts once.
- ``dmzwatch_notifier_retries_total{channel,subscription,reason}``: failed attempts that will be
  tried again; ``reason`` is ``network``, ``timeout``, ``server_error`` or ``rate_limited``.
- ``dmzwatch_notifier_request_seconds{channel}``: duration of each HTTP attempt, any outcome.
- ``dmzwatch_notifier_delivery_latency_seconds{channel,mode}``: from scheduling to the 2xx,
  retries and digest windows included.
- ``dmzwatch_notifier_deadletters_total{channel,subscription,reason}``: deliveries sent to the
  dead-letter topic; ``reason`` is ``exhausted`` (retry budget spent) or ``rejected`` (a 4xx
  other than 408/429: retrying cannot help).
- ``dmzwatch_notifier_queue_items{subscription}``: items waiting (digest windows count once).
- ``dmzwatch_notifier_subscriptions``: subscriptions in force.
- ``dmzwatch_notifier_subscription_reloads_total{outcome}``: ``ok`` or ``error`` (kept the old).
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from dmzwatch.shared.metrics import PROCESSING_BUCKETS

DELIVERY_OUTCOMES = ("delivered", "duplicate", "deadlettered")
RETRY_REASONS = ("network", "timeout", "server_error", "rate_limited")
DEADLETTER_REASONS = ("exhausted", "rejected")
RELOAD_OUTCOMES = ("ok", "error")
DELIVERY_MODES = ("immediate", "digest")
# Scheduling to delivery: sub-second when immediate, up to a day for digests and long retries.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 21600, 86400)


class NotifierMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.alerts = Counter(
            "dmzwatch_notifier_alerts_total",
            "Alerts received by category.",
            ["category"],
            registry=registry,
        )
        self.scheduled = Counter(
            "dmzwatch_notifier_scheduled_total",
            "Deliveries recorded durably, by mode (immediate, digest).",
            ["channel", "subscription", "mode"],
            registry=registry,
        )
        self.deliveries = Counter(
            "dmzwatch_notifier_deliveries_total",
            "Deliveries by channel and outcome (delivered, duplicate, deadlettered).",
            ["channel", "subscription", "outcome"],
            registry=registry,
        )
        self.retries = Counter(
            "dmzwatch_notifier_retries_total",
            "Failed delivery attempts that will be retried, by reason.",
            ["channel", "subscription", "reason"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "dmzwatch_notifier_request_seconds",
            "Duration of each delivery attempt (one HTTP request), any outcome.",
            ["channel"],
            buckets=PROCESSING_BUCKETS,
            registry=registry,
        )
        self.latency = Histogram(
            "dmzwatch_notifier_delivery_latency_seconds",
            "From scheduling a delivery to the receiver's 2xx, retries and digest waits included.",
            ["channel", "mode"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.deadletters = Counter(
            "dmzwatch_notifier_deadletters_total",
            "Deliveries given up on and sent to the dead-letter topic, by reason.",
            ["channel", "subscription", "reason"],
            registry=registry,
        )
        self.queue = Gauge(
            "dmzwatch_notifier_queue_items",
            "Delivery items waiting per subscription (a digest window counts once).",
            ["subscription"],
            registry=registry,
        )
        self.subscriptions = Gauge(
            "dmzwatch_notifier_subscriptions", "Subscriptions in force.", registry=registry
        )
        self.reloads = Counter(
            "dmzwatch_notifier_subscription_reloads_total",
            "Subscription file reloads by outcome (ok, error: the previous ones stay).",
            ["outcome"],
            registry=registry,
        )
        for outcome in RELOAD_OUTCOMES:  # at zero, so dashboards see them before any reload
            self.reloads.labels(outcome)

    def declare(self, channel: str, subscription: str) -> None:
        """Create a subscription's series at zero, so dashboards see them before any event."""
        for outcome in DELIVERY_OUTCOMES:
            self.deliveries.labels(channel, subscription, outcome)
        for reason in RETRY_REASONS:
            self.retries.labels(channel, subscription, reason)
        for reason in DEADLETTER_REASONS:
            self.deadletters.labels(channel, subscription, reason)
        self.request_seconds.labels(channel)
        for mode in DELIVERY_MODES:
            self.latency.labels(channel, mode)
        self.queue.labels(subscription)

    def forget(self, channel: str, subscription: str) -> None:
        """Drop a removed subscription's gauge (counters stay: they are history)."""
        with contextlib.suppress(KeyError):
            self.queue.remove(subscription)
