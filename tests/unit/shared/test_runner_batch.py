"""The runner with a BatchHandler: one call per poll, and per-message semantics kept."""

import json
from collections.abc import Sequence

import pytest
from kafka.structs import TopicPartition
from prometheus_client import CollectorRegistry

from dmzwatch.shared.errors import InvalidMessage, RetryableError
from dmzwatch.shared.messages import Article, encode
from dmzwatch.shared.runner import (
    BatchHandler,
    Context,
    Output,
    Result,
    Runner,
)
from tests.conftest import make_article
from tests.fakes import FakeConsumer, FakeProducer
from tests.unit.shared.runnerparts import DLQ, IN, OUT, build_runner, count

P0, P1 = TopicPartition(IN, 0), TopicPartition(IN, 1)


class Batched(BatchHandler[Article]):
    """Copies each article to OUT; scripted failures by title; records its calls."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.singles: list[str] = []
        self.down = 0  # the message titled needs-redis fails this many times
        self.batch_down = 0  # handle_batch raises RetryableError this many times
        self.broken = False  # handle_batch raises a bug

    def _one(self, message: Article) -> Sequence[Output]:
        if message.title == "poison":
            raise InvalidMessage("cannot handle poison")
        if message.title == "needs-redis" and self.down:
            self.down -= 1
            raise RetryableError("redis down")
        return [Output(OUT, message.article_id, message)]

    def handle(self, message: Article, context: Context) -> Sequence[Output]:
        self.singles.append(message.title)
        return self._one(message)

    def handle_batch(self, items: Sequence[tuple[Article, Context]]) -> Sequence[Result]:
        self.batches.append([m.title for m, _ in items])
        if self.batch_down:
            self.batch_down -= 1
            raise RetryableError("redis down for the whole batch")
        if self.broken:
            raise KeyError("a bug in the batch path")
        results: list[Result] = []
        for message, _ in items:
            try:
                results.append(self._one(message))
            except Exception as exc:
                results.append(exc)
        return results


@pytest.fixture
def parts() -> tuple[FakeConsumer, FakeProducer, Batched, Runner[Article], CollectorRegistry]:
    handler = Batched()
    built = build_runner(handler)
    return built.consumer, built.producer, handler, built.runner, built.registry


def add(consumer: FakeConsumer, title: str, partition: int = 0, n: int = 0) -> None:
    article = make_article(article_id=f"{title}-{partition}-{n}", title=title)
    consumer.append(IN, encode(article), partition=partition)


def test_one_call_per_poll_then_outputs_and_commits(parts) -> None:
    consumer, producer, handler, runner, registry = parts
    for i in range(3):
        add(consumer, f"t{i}", partition=i % 2)
    runner.run_once()
    assert len(handler.batches) == 1 and sorted(handler.batches[0]) == ["t0", "t1", "t2"]
    assert handler.singles == []
    assert len(producer.on(OUT)) == 3
    assert consumer.committed == {P0: 2, P1: 1}
    assert count(registry, "in") == 3 and count(registry, "out") == 3


def test_undecodable_and_invalid_messages_are_dead_lettered_alone(parts) -> None:
    consumer, producer, handler, runner, registry = parts
    consumer.append(IN, b"\xff not json", key=b"k1")
    add(consumer, "poison")
    add(consumer, "fine")
    runner.run_once()
    assert handler.batches == [["poison", "fine"]]
    letters = [json.loads(v) for v in producer.on(DLQ)]
    assert [letter["offset"] for letter in letters] == [0, 1]
    assert letters[1]["error_type"] == "InvalidMessage"
    assert len(producer.on(OUT)) == 1 and consumer.committed[P0] == 3
    assert count(registry, "deadlettered") == 2


def test_retryable_result_rewinds_its_partition_from_that_message(parts) -> None:
    consumer, producer, handler, runner, registry = parts
    handler.down = 1
    add(consumer, "first")
    add(consumer, "needs-redis")
    add(consumer, "last")
    add(consumer, "other", partition=1)
    runner.run_once()
    # the other partition and what came before the failure are done; the rest waits
    assert consumer.committed == {P0: 1, P1: 1}
    assert sorted(json.loads(v)["title"] for v in producer.on(OUT)) == ["first", "other"]
    assert count(registry, "retried") == 1
    runner.run_once()
    assert handler.batches[-1] == ["needs-redis", "last"]
    assert consumer.committed == {P0: 3, P1: 1}
    assert not producer.on(DLQ)


def test_retryable_batch_failure_commits_nothing_and_redoes_the_batch(parts) -> None:
    consumer, producer, handler, runner, _ = parts
    handler.batch_down = 1
    add(consumer, "a")
    add(consumer, "b", partition=1)
    runner.run_once()
    assert consumer.committed == {} and not producer.on(OUT)
    runner.run_once()
    assert consumer.committed == {P0: 1, P1: 1} and len(producer.on(OUT)) == 2


def test_a_bug_in_the_batch_path_falls_back_to_one_by_one(parts) -> None:
    consumer, producer, handler, runner, registry = parts
    handler.broken = True
    add(consumer, "fine")
    add(consumer, "poison")
    add(consumer, "after", partition=1)
    runner.run_once()
    assert sorted(handler.singles) == ["after", "fine", "poison"]
    [letter] = [json.loads(v) for v in producer.on(DLQ)]
    assert letter["error_type"] == "InvalidMessage"
    assert len(producer.on(OUT)) == 2 and consumer.committed == {P0: 2, P1: 1}
    assert count(registry, "in") == 3
