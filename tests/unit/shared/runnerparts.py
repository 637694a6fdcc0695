"""A runner on in-memory fakes for the runner's unit tests (``tests/fakes.py``, ManualClock)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from dmzwatch.shared.clock import ManualClock
from dmzwatch.shared.health import Health
from dmzwatch.shared.messages import Article
from dmzwatch.shared.metrics import StageMetrics
from dmzwatch.shared.runner import ConsumerDefinition, Handler, Runner, RunnerOptions
from tests.fakes import FakeConsumer, FakeProducer

IN, OUT, DLQ = "t.in", "t.out", "t.deadletter"
STAGE = "test"


@dataclass
class RunnerParts:
    runner: Runner[Article]
    consumer: FakeConsumer
    producer: FakeProducer
    clock: ManualClock
    health: Health
    registry: CollectorRegistry = field(repr=False)


def count(registry: CollectorRegistry, outcome: str) -> float:
    """``dmzwatch_messages_total`` of the stage for ``outcome`` (0 when never counted)."""
    labels = {"stage": STAGE, "outcome": outcome}
    return registry.get_sample_value("dmzwatch_messages_total", labels) or 0


def build_runner(
    handler: Handler[Article],
    consumer: FakeConsumer | None = None,
    options: RunnerOptions | None = None,
) -> RunnerParts:
    """A runner of ``handler`` reading ``IN`` from ``consumer`` (default: a new FakeConsumer)."""
    consumer = consumer if consumer is not None else FakeConsumer()
    producer, registry, clock = FakeProducer(), CollectorRegistry(), ManualClock()
    health = Health(clock)
    runner = Runner(
        ConsumerDefinition(STAGE, (IN,), Article, handler),
        consumer,
        producer,
        deadletter_topic=DLQ,
        metrics=StageMetrics(STAGE, registry),
        health=health,
        clock=clock,
        options=options or RunnerOptions(),
    )
    return RunnerParts(runner, consumer, producer, clock, health, registry)
