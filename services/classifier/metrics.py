"""Classifier metrics (the runner's standard ones are in ``dmzwatch.shared.metrics``).

- ``dmzwatch_classifier_decisions_total{label}``: decisions by label (``none`` when no label
  fired); label values come from the taxonomy, so they are bounded.
- ``dmzwatch_alerts_total{category}``: alerts produced.
- ``dmzwatch_alerts_suppressed_total{category}``: a later copy of an already-alerted story.
- ``dmzwatch_alerts_corroborated_total{category}``: corroboration updates (version 2) produced.
- ``dmzwatch_fetch_to_alert_seconds`` / ``dmzwatch_publish_to_alert_seconds``: see shared metrics.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from dmzwatch.shared.metrics import AlertLatencyMetrics


class ClassifierMetrics:
    def __init__(self, categories: tuple[str, ...], registry: CollectorRegistry) -> None:
        decisions = Counter(
            "dmzwatch_classifier_decisions_total",
            "Decisions by label; 'none' when no label fired.",
            ["label"],
            registry=registry,
        )
        self.decisions = {label: decisions.labels(label) for label in (*categories, "none")}
        alerts = Counter(
            "dmzwatch_alerts_total", "Alerts produced by category.", ["category"], registry=registry
        )
        self.alerts = {c: alerts.labels(c) for c in categories}
        suppressed = Counter(
            "dmzwatch_alerts_suppressed_total",
            "Alerts not raised because the story already alerted for the category.",
            ["category"],
            registry=registry,
        )
        self.suppressed = {c: suppressed.labels(c) for c in categories}
        corroborated = Counter(
            "dmzwatch_alerts_corroborated_total",
            "Corroboration updates produced: a story alerted on reached enough outlets.",
            ["category"],
            registry=registry,
        )
        self.corroborated = {c: corroborated.labels(c) for c in categories}
        self.latency = AlertLatencyMetrics(registry)
        for c in categories:  # at zero, so rate() sees the first alert of a category
            self.latency.from_fetch.labels(c)
            self.latency.from_publish.labels(c)
