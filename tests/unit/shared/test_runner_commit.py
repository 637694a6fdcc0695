"""A refused commit (any Kafka error) is counted, logged, marks not ready and backs off."""

from collections.abc import Mapping

import pytest
from kafka.errors import (
    CommitFailedError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RebalanceInProgressError,
)
from kafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import CollectorRegistry

from dmzwatch.shared.clock import ManualClock
from dmzwatch.shared.health import Health
from dmzwatch.shared.messages import Article, encode
from dmzwatch.shared.runner import Runner, RunnerOptions
from tests.conftest import make_article
from tests.fakes import FakeConsumer
from tests.unit.shared.runnerparts import IN, build_runner
from tests.unit.shared.test_runner import TP, Echo


class RefusingConsumer(FakeConsumer):
    """Raises ``errors`` from ``commit`` one by one, then commits normally."""

    def __init__(self, errors: list[KafkaError]) -> None:
        super().__init__()
        self.errors = errors

    def commit(self, offsets: Mapping[TopicPartition, OffsetAndMetadata]) -> None:
        if self.errors:
            raise self.errors.pop(0)
        super().commit(offsets)


def build(
    errors: list[KafkaError],
) -> tuple[RefusingConsumer, Runner[Article], ManualClock, Health, CollectorRegistry]:
    consumer = RefusingConsumer(errors)
    options = RunnerOptions(backoff_initial_seconds=1.0, backoff_max_seconds=8.0)
    built = build_runner(Echo(), consumer, options)
    return consumer, built.runner, built.clock, built.health, built.registry


def failures(registry: CollectorRegistry) -> float:
    return registry.get_sample_value("dmzwatch_commit_failures_total", {"stage": "test"}) or 0


@pytest.mark.parametrize(
    "error",
    [
        CommitFailedError("rebalanced"),
        RebalanceInProgressError(),
        KafkaConnectionError("connection lost"),
        KafkaTimeoutError("commit timed out"),
        NodeNotReadyError("coordinator not ready"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_refused_commit_is_counted_and_backed_off_then_a_later_commit_covers_it(
    error: KafkaError,
) -> None:
    consumer, runner, clock, health, registry = build([error])
    consumer.append(IN, encode(make_article(article_id="a0", title="t0")))
    started = clock.monotonic()
    runner.run_once()  # must not raise
    assert TP not in consumer.committed
    assert failures(registry) == 1
    ready, reasons = health.ready()
    assert ready is False and reasons["broker"].startswith("commit failed")
    assert clock.monotonic() - started >= 1.0  # backed off before the next poll

    consumer.append(IN, encode(make_article(article_id="a1", title="t1")))
    runner.run_once()
    assert consumer.committed[TP] == 2  # the later commit covers the uncommitted record
    assert failures(registry) == 1
    assert health.ready()[0] is True


def test_consecutive_refusals_back_off_longer() -> None:
    consumer, runner, clock, _, registry = build(
        [KafkaConnectionError("down"), KafkaConnectionError("still down")]
    )
    pauses = []
    for i in range(2):
        consumer.append(IN, encode(make_article(article_id=f"a{i}", title=f"t{i}")))
        started = clock.monotonic()
        runner.run_once()
        pauses.append(clock.monotonic() - started)
    assert failures(registry) == 2
    assert pauses[1] > pauses[0] >= 1.0
