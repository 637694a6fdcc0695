import json
from collections.abc import Sequence

import pytest
from kafka.structs import TopicPartition
from prometheus_client import CollectorRegistry

from dmzwatch.shared.errors import InvalidMessage, RetryableError
from dmzwatch.shared.health import Health
from dmzwatch.shared.messages import Article, encode
from dmzwatch.shared.runner import Context, Handler, Output, Runner
from tests.conftest import make_article
from tests.fakes import FakeConsumer, FakeProducer
from tests.unit.shared.runnerparts import DLQ, IN, OUT, build_runner, count

TP = TopicPartition(IN, 0)


class Echo(Handler[Article]):
    """Copies each article to OUT; scripted failures by title."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.down = 0  # raise RetryableError this many times
        self.closed = False

    def handle(self, message: Article, context: Context) -> Sequence[Output]:
        self.calls.append(message.title)
        if message.title == "poison":
            raise InvalidMessage("cannot handle poison")
        if message.title == "bug":
            raise KeyError("a bug met by one message")
        if message.title == "needs-redis" and self.down:
            self.down -= 1
            raise RetryableError("redis down")
        return [Output(OUT, message.article_id, message)]

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def parts() -> tuple[FakeConsumer, FakeProducer, Echo, Runner[Article], CollectorRegistry, Health]:
    handler = Echo()
    built = build_runner(handler)
    return built.consumer, built.producer, handler, built.runner, built.registry, built.health


def test_outputs_are_produced_then_offsets_committed(parts) -> None:
    consumer, producer, _, runner, registry, _ = parts
    for i in range(3):
        consumer.append(IN, encode(make_article(article_id=f"a{i}", title=f"t{i}")))
    runner.run_once()
    assert len(producer.on(OUT)) == 3
    assert consumer.committed[TP] == 3
    assert count(registry, "in") == 3 and count(registry, "out") == 3


def test_undecodable_message_is_dead_lettered_and_the_stage_goes_on(parts) -> None:
    consumer, producer, handler, runner, registry, _ = parts
    consumer.append(IN, b"\xff not json", key=b"k1")
    consumer.append(IN, encode(make_article(title="fine")))
    runner.run_once()
    [letter] = [json.loads(v) for v in producer.on(DLQ)]
    assert letter["stage"] == "test" and letter["key"] == "k1" and letter["offset"] == 0
    assert letter["value_text"] is None and letter["value_base64"]
    assert "not a valid Article" in letter["error"]
    assert handler.calls == ["fine"] and consumer.committed[TP] == 2
    assert count(registry, "deadlettered") == 1


@pytest.mark.parametrize("title", ["poison", "bug"])
def test_invalid_and_unexpected_failures_dead_letter_one_message(parts, title: str) -> None:
    consumer, producer, _, runner, _, _ = parts
    consumer.append(IN, encode(make_article(article_id="x", title=title)))
    consumer.append(IN, encode(make_article(article_id="y", title="after")))
    runner.run_once()
    [letter] = [json.loads(v) for v in producer.on(DLQ)]
    assert letter["error_type"] in ("InvalidMessage", "KeyError")
    assert json.loads(letter["value_text"])["article_id"] == "x"
    assert len(producer.on(OUT)) == 1 and consumer.committed[TP] == 2


def test_retryable_failure_rewinds_without_committing_and_recovers(parts) -> None:
    consumer, producer, handler, runner, registry, health = parts
    handler.down = 2
    consumer.append(IN, encode(make_article(article_id="a0", title="first")))
    consumer.append(IN, encode(make_article(article_id="a1", title="needs-redis")))
    consumer.append(IN, encode(make_article(article_id="a2", title="last")))
    runner.run_once()
    assert consumer.committed[TP] == 1  # only what was handled before the failure
    assert health.ready()[0] is False
    runner.run_once()
    assert consumer.committed[TP] == 1
    runner.run_once()
    assert consumer.committed[TP] == 3
    assert [t for t in handler.calls] == [
        "first",
        "needs-redis",
        "needs-redis",
        "needs-redis",
        "last",
    ]
    assert len(producer.on(OUT)) == 3 and not producer.on(DLQ)
    assert health.ready()[0] is True
    assert count(registry, "retried") == 2


def test_unacknowledged_outputs_mean_no_commit_and_a_redo(parts) -> None:
    consumer, producer, handler, runner, _, health = parts
    consumer.append(IN, encode(make_article(article_id="a0", title="t0")))
    producer.fail_next = 1
    runner.run_once()
    assert TP not in consumer.committed
    assert health.ready()[1]["broker"].startswith("produce failed")
    runner.run_once()
    assert consumer.committed[TP] == 1 and handler.calls == ["t0", "t0"]


def test_stop_finishes_and_closes_everything(parts) -> None:
    consumer, producer, handler, runner, _, _ = parts
    consumer.append(IN, encode(make_article()))
    runner.stop()
    runner.run()
    assert consumer.closed and producer.closed and handler.closed


def test_lag_gauge_follows_the_high_water_mark(parts) -> None:
    consumer, _, _, runner, registry, _ = parts
    for i in range(5):
        consumer.append(IN, encode(make_article(article_id=f"a{i}")))
    runner._options = type(runner._options)(max_records=2)
    runner.run_once()
    lag = registry.get_sample_value(
        "dmzwatch_consumer_lag_messages", {"stage": "test", "topic": IN, "partition": "0"}
    )
    assert lag == 3
