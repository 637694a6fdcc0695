"""Notifier metrics (the runner's standard ones are in ``dmzwatch.shared.metrics``).

- ``dmzwatch_notifier_alerts_total{category}``: alerts received.
- ``dmzwatch_notifier_deliveries_total{channel,outcome}``: outcome is ``delivered``,
  ``duplicate`` (already delivered before, skipped), ``failed`` (gave up: dead-lettered).
- ``dmzwatch_notifier_retries_total{channel}``: delivery attempts after a failure.
- ``dmzwatch_notifier_delivery_seconds{channel}``: time of one successful delivery.
``channel`` is the subscription name: bounded by configuration.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from dmzwatch.shared.metrics import PROCESSING_BUCKETS

DELIVERY_OUTCOMES = ("delivered", "duplicate", "failed")


class NotifierMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.alerts = Counter(
            "dmzwatch_notifier_alerts_total",
            "Alerts received by category.",
            ["category"],
            registry=registry,
        )
        self.deliveries = Counter(
            "dmzwatch_notifier_deliveries_total",
            "Deliveries by channel and outcome (delivered, duplicate, failed).",
            ["channel", "outcome"],
            registry=registry,
        )
        self.retries = Counter(
            "dmzwatch_notifier_retries_total",
            "Delivery attempts after a failure.",
            ["channel"],
            registry=registry,
        )
        self.delivery_seconds = Histogram(
            "dmzwatch_notifier_delivery_seconds",
            "Time of one successful delivery.",
            ["channel"],
            buckets=PROCESSING_BUCKETS,
            registry=registry,
        )
