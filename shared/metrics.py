"""The metrics every stage exports, declared once (after arroyo's ``utils/metric_defs``).

Names are ``dmzwatch_<what>_<unit>``; label values are bounded (stage names, outcomes, topics
from configuration, partitions) — never a URL or an article id. The registry is a parameter so
tests use a fresh one.

Catalogue:
- ``dmzwatch_messages_total{stage,outcome}``: messages a stage consumed (``in``), produced
  (``out``), failed on and retried (``retried``), dead-lettered (``deadlettered``).
- ``dmzwatch_processing_seconds{stage}``: handler time per message.
- ``dmzwatch_batch_commit_seconds{stage}``: time from the end of a batch to its commit, i.e.
  waiting for the broker to acknowledge the outputs.
- ``dmzwatch_consumer_lag_messages{stage,topic,partition}``: high-water mark minus position.
- ``dmzwatch_commit_failures_total{stage}``: commits refused (e.g. after a rebalance).
- ``dmzwatch_ready{stage}``: 1 when the stage reports ready on ``/readyz``.
- ``dmzwatch_build_info{version,stage}``: always 1; carries the version.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

# Per-message work is sub-millisecond to seconds (a webhook post); buckets cover both.
PROCESSING_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
)
# End-to-end latency: from fetch to alert is milliseconds to minutes.
FETCH_TO_ALERT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
# From the publisher's timestamp: minutes to days (feeds are polled, clocks differ).
PUBLISH_TO_ALERT_BUCKETS = (10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400, 259200)

OUTCOMES = ("in", "out", "retried", "deadlettered")


class StageMetrics:
    """The runner's standard metrics for one stage, pre-bound to the stage label."""

    def __init__(self, stage: str, registry: CollectorRegistry) -> None:
        self.stage = stage
        self.messages = Counter(
            "dmzwatch_messages_total",
            "Messages per stage by outcome (in, out, retried, deadlettered).",
            ["stage", "outcome"],
            registry=registry,
        )
        # Pre-bind children: label lookup per message is measurable at 10k msg/s.
        self.consumed = self.messages.labels(stage, "in")
        self.produced = self.messages.labels(stage, "out")
        self.retried = self.messages.labels(stage, "retried")
        self.deadlettered = self.messages.labels(stage, "deadlettered")
        self.processing = Histogram(
            "dmzwatch_processing_seconds",
            "Handler time per message.",
            ["stage"],
            buckets=PROCESSING_BUCKETS,
            registry=registry,
        ).labels(stage)
        self.commit_wait = Histogram(
            "dmzwatch_batch_commit_seconds",
            "Time from the end of a batch to its commit (waiting for broker acknowledgements).",
            ["stage"],
            buckets=PROCESSING_BUCKETS,
            registry=registry,
        ).labels(stage)
        self.lag = Gauge(
            "dmzwatch_consumer_lag_messages",
            "Consumer lag: high-water mark minus the position, per topic and partition.",
            ["stage", "topic", "partition"],
            registry=registry,
        )
        self.commit_failures = Counter(
            "dmzwatch_commit_failures_total",
            "Offset commits refused by the broker (e.g. after a rebalance).",
            ["stage"],
            registry=registry,
        ).labels(stage)
        self.ready = Gauge(
            "dmzwatch_ready", "1 when the stage is ready.", ["stage"], registry=registry
        ).labels(stage)
        for outcome in OUTCOMES:
            self.messages.labels(stage, outcome)


class ServiceInfo:
    """``dmzwatch_build_info``: one per process."""

    def __init__(self, stage: str, version: str, registry: CollectorRegistry) -> None:
        Info("dmzwatch_build", "Build information.", registry=registry).info(
            {"version": version, "stage": stage}
        )


class AlertLatencyMetrics:
    """End-to-end latency to an alert, observed where alerts are produced (the classifier)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.from_fetch = Histogram(
            "dmzwatch_fetch_to_alert_seconds",
            "Seconds from the poller fetching an article to its alert being produced.",
            ["category"],
            buckets=FETCH_TO_ALERT_BUCKETS,
            registry=registry,
        )
        self.from_publish = Histogram(
            "dmzwatch_publish_to_alert_seconds",
            "Seconds from the publisher's timestamp of an article to its alert being produced.",
            ["category"],
            buckets=PUBLISH_TO_ALERT_BUCKETS,
            registry=registry,
        )
