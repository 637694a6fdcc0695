"""WebSub end to end over loopback HTTP: the small test hub of ``tests.websubhub`` (it serves
the feed, accepts a subscription, verifies it against the poller's callback with a challenge,
then pushes signed and forged documents) and the poller with its real fetcher, hub client and
callback server.

The pushed entry reaches the producer (the in-memory one, and the real broker) before the hub's
POST is answered, with no poll in between; the forged push is acknowledged and dropped."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer

from dmzwatch.shared.broker import free_port
from dmzwatch.shared.kafka import TopicSpec, create_topics
from dmzwatch.shared.runner import ProducerPort
from dmzwatch.shared.settings import CommonSettings
from tests.fakes import FakeProducer
from tests.websubhub import Hub, feed_body, serving_hub, start_hubbed_poller, wait_for
from tests.websubhub import HubbedPoller as Poller


@pytest.fixture
def hub() -> Iterator[Hub]:
    with serving_hub() as hub:
        yield hub


@pytest.fixture
def start_poller(hub: Hub) -> Iterator[Callable[[ProducerPort, str], Poller]]:
    started: list[Poller] = []

    def start(producer: ProducerPort, topic: str) -> Poller:
        started.append(start_hubbed_poller(hub, producer, topic, free_port()))
        return started[-1]

    yield start
    for poller in started:
        poller.stop()


def subscribe_and_push(hub: Hub, poller: Poller) -> httpx.Response:
    """Wait for the first poll to lead to a verified subscription, then push one new entry."""
    assert hub.verified.wait(timeout=20), "the hub never verified a subscription"
    sub = hub.subscribers[0]
    assert sub.topic == f"{hub.base}/feed.xml" and sub.lease == "600"
    assert sub.callback.startswith("http://127.0.0.1:") and len(sub.secret) >= 32
    wait_for(
        lambda: poller.sample("dmzwatch_poller_websub_subscriptions", state="active") == 1,
        "the subscription never became active",
        10,
    )
    assert hub.fetches == 1
    hub.feed = feed_body(hub.base, 3, 1, 2)
    return hub.push(hub.feed)


def test_a_pushed_entry_is_published_before_the_push_is_answered_without_a_poll(
    hub: Hub, start_poller: Callable[[ProducerPort, str], Poller]
) -> None:
    producer = FakeProducer()
    poller = start_poller(producer, "raw")
    answer = subscribe_and_push(hub, poller)
    assert answer.status_code == 200
    titles = [orjson.loads(v or b"")["title"] for v in producer.on("raw")]
    assert titles == ["Pushed story 1", "Pushed story 2", "Pushed story 3"]
    assert hub.fetches == 1  # published by the push alone
    assert poller.sample("dmzwatch_poller_websub_pushes_total", outcome="ok") == 1
    assert poller.sample("dmzwatch_poller_websub_verifications_total", outcome="confirmed") == 1

    forged = hub.push(feed_body(hub.base, 4, 3, 1, 2), forge=True)
    assert forged.status_code == 202  # acknowledged, dropped
    assert len(producer.on("raw")) == 3
    assert poller.sample("dmzwatch_poller_websub_pushes_total", outcome="bad_signature") == 1


def test_a_pushed_entry_reaches_the_broker(
    hub: Hub,
    start_poller: Callable[[ProducerPort, str], Poller],
    bootstrap_servers: str,
    run_id: str,
) -> None:
    settings = CommonSettings(
        kafka_bootstrap_servers=bootstrap_servers, topic_prefix=f"ws-{run_id}"
    )
    topic = settings.topics().articles_raw
    create_topics(settings, [TopicSpec(topic, partitions=1)])
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=0)
    try:
        poller = start_poller(producer, topic)
        answer = subscribe_and_push(hub, poller)
        assert answer.status_code == 200
        assert hub.push(feed_body(hub.base, 9), forge=True).status_code == 202
    finally:
        producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=1000,
    )
    titles: list[str] = []
    deadline = time.monotonic() + 20
    while len(titles) < 3 and time.monotonic() < deadline:
        titles.extend(orjson.loads(r.value)["title"] for r in consumer)
    consumer.close()
    assert sorted(titles) == ["Pushed story 1", "Pushed story 2", "Pushed story 3"]
    assert hub.fetches == 1
