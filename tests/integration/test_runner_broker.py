"""The runner against the real broker: at-least-once commits and dead letters."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence

from kafka import KafkaConsumer, KafkaProducer
from prometheus_client import CollectorRegistry

from dmzwatch.shared.clock import SystemClock
from dmzwatch.shared.health import Health
from dmzwatch.shared.kafka import TopicSpec, create_topics, make_consumer, make_producer
from dmzwatch.shared.messages import Article, encode
from dmzwatch.shared.metrics import StageMetrics
from dmzwatch.shared.runner import (
    ConsumerDefinition,
    Context,
    Handler,
    Output,
    Runner,
    RunnerOptions,
)
from dmzwatch.shared.settings import CommonSettings
from tests.conftest import make_article


class Copy(Handler[Article]):
    def __init__(self, out: str) -> None:
        self.out = out

    def handle(self, message: Article, context: Context) -> Sequence[Output]:
        return [Output(self.out, message.article_id, message)]


def read_all(bootstrap: str, topic: str, expected: int, timeout: float = 20.0) -> list[bytes]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=500,
    )
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(values) < expected and time.monotonic() < deadline:
        values.extend(r.value for r in consumer)
    consumer.close()
    return values


def test_runner_copies_dead_letters_poison_and_commits(bootstrap_servers: str, run_id: str) -> None:
    settings = CommonSettings(
        kafka_bootstrap_servers=bootstrap_servers,
        topic_prefix=f"it-{run_id}",
        consumer_group_prefix=f"it-{run_id}",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    topics = settings.topics()
    inp, out = topics.articles_raw, topics.articles_unique
    create_topics(settings, [TopicSpec(t, partitions=3) for t in topics.all()])
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers)
    for i in range(20):
        producer.send(inp, key=f"a{i}".encode(), value=encode(make_article(article_id=f"a{i}")))
    producer.send(inp, key=b"poison", value=b'{"schema_version": 99}')
    producer.flush()

    registry = CollectorRegistry()
    runner = Runner(
        ConsumerDefinition("copy", (inp,), Article, Copy(out)),
        make_consumer(settings, "copy", (inp,)),
        make_producer(settings, "it"),
        deadletter_topic=topics.deadletter,
        metrics=StageMetrics("copy", registry),
        health=Health(SystemClock()),
        clock=SystemClock(),
        options=RunnerOptions(poll_timeout_ms=100),
    )
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        copied = read_all(bootstrap_servers, out, 20)
        letters = [json.loads(v) for v in read_all(bootstrap_servers, topics.deadletter, 1)]
    finally:
        runner.stop()
        thread.join(30)
    assert sorted(json.loads(v)["article_id"] for v in copied) == sorted(f"a{i}" for i in range(20))
    assert len(letters) == 1 and letters[0]["key"] == "poison" and letters[0]["stage"] == "copy"

    # Everything was committed: a new member of the group gets nothing more.
    again = make_consumer(settings, "copy", (inp,))
    leftover = []
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        for records in again.poll(timeout_ms=200).values():
            leftover.extend(records)
    again.close()
    assert leftover == []
