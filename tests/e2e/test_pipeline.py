"""The four services as separate processes, on Tansu and the real Redis, feeds over HTTP."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import yaml
from kafka import KafkaConsumer, KafkaProducer

from bench.stack import wait_until
from dmzwatch.demo import WebhookReceiver
from dmzwatch.feedserver import FeedServer
from dmzwatch.shared.broker import free_port
from dmzwatch.shared.messages import encode
from dmzwatch.shared.topics import TopicCatalogue
from dmzwatch.stack import SERVICES, LocalStack, StackConfig
from tests.conftest import REDIS_URL, REPO, make_article

SCHEMA = json.loads((REPO / "shared/schemas/alert.schema.json").read_text())
EXPECTED = yaml.safe_load((REPO / "cli/demo_feeds/expected.yaml").read_text())
POLL_SECONDS = 2


def read_topic(bootstrap: str, topic: str, idle_ms: int = 1500) -> list[tuple[str, bytes]]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=idle_ms,
    )
    out = [(r.key.decode() if r.key else "", r.value) for r in consumer]
    consumer.close()
    return out


def metric(stack: LocalStack, service: str, name: str, **labels: str) -> float:
    with urllib.request.urlopen(stack.url(service, "/metrics"), timeout=5) as resp:
        text = resp.read().decode()
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + ("{" if labels else "")) or line.startswith(name + " "):
            head, _, value = line.rpartition(" ")
            got = head[len(name) :].strip("{}")
            if all(part in got.split(",") for part in want.split(",") if part):
                total += float(value)
    return total


@pytest.fixture(scope="module")
def pipeline(
    tmp_path_factory: pytest.TempPathFactory, bootstrap_servers: str
) -> Iterator[tuple[LocalStack, WebhookReceiver]]:
    import uuid

    import redis

    tmp = tmp_path_factory.mktemp("e2e")
    run = uuid.uuid4().hex[:8]
    server = FeedServer(conditional=False).start()  # every poll gets the whole feed again
    feeds = yaml.safe_load(server.render_feed_list(tmp / "feeds.yaml").read_text())
    for feed in feeds["feeds"]:
        feed["interval_seconds"] = POLL_SECONDS
    (tmp / "feeds.yaml").write_text(yaml.safe_dump(feeds))
    receiver = WebhookReceiver()
    (tmp / "subs.yaml").write_text(
        f"subscriptions:\n  - name: e2e-hook\n    webhook:\n      url: {receiver.url}\n"
    )
    config = StackConfig(
        bootstrap_servers=bootstrap_servers,
        redis_url=REDIS_URL,
        topic_prefix=f"e2e-{run}",
        redis_key_prefix=f"dmzwatch-test:e2e-{run}:",
        feeds_file=tmp / "feeds.yaml",
        subscriptions_file=tmp / "subs.yaml",
        ports={s: free_port() for s in SERVICES},
        log_dir=tmp,
        log_format="json",
        session_timeout_ms=6000,
        # The poller's SSRF guard refuses loopback: open exactly the feed server's port.
        extra_env={
            "DMZWATCH_FETCH_ALLOW_NETWORKS": server.base_url.removeprefix("http://"),
            # Keep polling every POLL_SECONDS: the demo entries are days apart, and adaptation
            # would otherwise stretch the interval towards a day.
            "DMZWATCH_MIN_INTERVAL_SECONDS": str(POLL_SECONDS),
            "DMZWATCH_MAX_INTERVAL_SECONDS": str(POLL_SECONDS),
        },
    )
    stack = LocalStack(config)
    try:
        stack.start()
        stack.wait_ready(60)
        yield stack, receiver
    finally:
        stack.stop()
        server.stop()
        receiver.stop()
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=config.redis_key_prefix + "*"))
        if keys:
            client.delete(*keys)
        for name in SERVICES:
            log = tmp / f"{name}.log"
            if log.exists():
                print(
                    f"--- {name} log (tail) ---\n" + "\n".join(log.read_text().splitlines()[-15:])
                )


def test_every_article_gets_one_decision_and_alerts_fire_once(pipeline) -> None:
    stack, receiver = pipeline
    topics = TopicCatalogue(stack.config.topic_prefix)
    n_feeds = len(yaml.safe_load(Path(stack.feeds_file).read_text())["feeds"])
    # At least three polls of every feed: the later ones bring the same documents again.
    wait_until(
        lambda: (
            sum(
                metric(stack, "poller", "dmzwatch_poller_fetches_total", outcome=outcome)
                for outcome in ("ok", "unchanged", "not_modified")
            )
            >= 3 * n_feeds
        ),
        what="three polls of every feed",
    )
    raw = read_topic(stack.bootstrap_servers, topics.articles_raw)
    raw_ids = {json.loads(v)["article_id"] for _, v in raw}
    # The poller publishes only entries new since the feed's previous document; the
    # tracking-parameter copy of an article (same canonical URL, other feed) is dedup's to drop.
    assert len(raw) == len(raw_ids) + 1, "each entry published once; one copy for dedup"

    def decided() -> list[dict]:
        return [json.loads(v) for _, v in read_topic(stack.bootstrap_servers, topics.decisions)]

    wait_until(
        lambda: {d["article_id"] for d in decided()} >= raw_ids, what="a decision per article"
    )
    time.sleep(2 * POLL_SECONDS)  # more polls: they must add nothing
    decisions = decided()
    ids = [d["article_id"] for d in decisions]
    assert sorted(ids) == sorted(raw_ids), "exactly one decision per distinct raw article"

    alerts = []
    for category in topics.categories:
        for key, value in read_topic(stack.bootstrap_servers, topics.alert(category)):
            body = json.loads(value)
            jsonschema.validate(body, SCHEMA)
            assert body["data"]["category"] == category and body["subject"] == key
            alerts.append(body)
    assert len({a["id"] for a in alerts}) == len(alerts), "no alert twice"
    got = sorted((a["data"]["category"], a["data"]["url"]) for a in alerts)
    expected = sorted((e["label"], e["link"]) for e in EXPECTED["alerts"])
    assert [c for c, _ in got] == [c for c, _ in expected]
    # Subscribers got each alert exactly once.
    wait_until(lambda: len(receiver.received) >= len(alerts), what="webhook deliveries")
    assert sorted(r["id"] for r in receiver.received) == sorted(a["id"] for a in alerts)

    for service, stage in [
        ("poller", "poller"),
        ("dedup", "dedup"),
        ("classifier", "classifier"),
        ("notifier", "notifier"),
    ]:
        direction = "out" if service == "poller" else "in"
        assert (
            metric(stack, service, "dmzwatch_messages_total", stage=stage, outcome=direction) > 0
        ), service
    assert metric(stack, "dedup", "dmzwatch_dedup_duplicates_total") > 0
    assert metric(stack, "classifier", "dmzwatch_alerts_total") == len(alerts)


def test_poison_on_every_input_topic_is_dead_lettered_and_stages_go_on(pipeline) -> None:
    stack, _ = pipeline
    topics = TopicCatalogue(stack.config.topic_prefix)
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap_servers)
    poison = {
        topics.articles_raw: "dedup",
        topics.articles_unique: "classifier",
        topics.alert("purge"): "notifier",
    }
    for topic in poison:
        producer.send(
            topic, key=b"poison-" + topic.encode(), value=b'{"schema_version": 999, "x": '
        )
    # A good article after the poison must still get through.
    fresh = make_article(
        article_id="u-after-poison",
        url="https://after.example/1",
        guid=None,
        title="Unrelated local weather report",
        summary="Rain expected tomorrow.",
    )
    producer.send(topics.articles_raw, key=b"u-after-poison", value=encode(fresh))
    producer.flush()

    def letters() -> dict[str, dict]:
        found = {}
        for _, value in read_topic(stack.bootstrap_servers, topics.deadletter):
            body = json.loads(value)
            if (body["key"] or "").startswith("poison-"):
                found[body["stage"]] = body
        return found

    wait_until(
        lambda: set(letters()) == set(poison.values()), what="a dead letter from every stage"
    )
    for body in letters().values():
        assert body["error_type"] == "InvalidMessage" and body["value_text"].startswith(
            '{"schema_version": 999'
        )
    wait_until(
        lambda: any(
            json.loads(v)["article_id"] == "u-after-poison"
            for _, v in read_topic(stack.bootstrap_servers, topics.decisions)
        ),
        what="the article after the poison",
    )
    for service in ("dedup", "classifier", "notifier"):
        assert (
            metric(stack, service, "dmzwatch_messages_total", stage=service, outcome="deadlettered")
            >= 1
        )


def test_sigterm_drains_commits_and_exits_cleanly(pipeline) -> None:
    """SIGTERM: finish the batch, flush, commit, leave the group, exit 0; a restart resumes."""
    stack, _ = pipeline
    topics = TopicCatalogue(stack.config.topic_prefix)
    for name in ("dedup", "classifier", "notifier"):
        assert stack.stop_service(name) == 0, f"{name} did not exit cleanly on SIGTERM"
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap_servers)
    late = make_article(
        article_id="u-while-down",
        url="https://late.example/1",
        guid=None,
        title="Harvest festival opens in a river town",
        summary="Crowds came.",
    )
    producer.send(topics.articles_raw, key=b"u-while-down", value=encode(late))
    producer.flush()
    for name in ("dedup", "classifier", "notifier"):
        stack.start_service(name)
    stack.wait_ready(60)

    def decisions() -> list[str]:
        return [
            json.loads(v)["article_id"]
            for _, v in read_topic(stack.bootstrap_servers, topics.decisions)
        ]

    wait_until(
        lambda: "u-while-down" in decisions(), what="the article sent while stages were down"
    )
    ids = decisions()
    assert len(ids) == len(set(ids)), "the restart re-processed nothing already committed"
