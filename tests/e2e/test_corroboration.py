"""Five feeds carry one story: one `reported` alert, then one `corroborated` update (the four
services as processes, on Tansu and the real Redis, feeds over HTTP)."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import redis
from kafka import KafkaProducer

from bench.stack import wait_until
from dmzwatch.demo import WebhookReceiver
from dmzwatch.feedserver import FeedServer
from dmzwatch.shared.broker import free_port
from dmzwatch.shared.topics import TopicCatalogue
from dmzwatch.stack import SERVICES, LocalStack, StackConfig
from tests.conftest import REDIS_URL, REPO
from tests.e2e.test_pipeline import metric, read_topic
from tests.stories import BOILER_TAIL, DATELINES, STORIES

SCHEMA = json.loads((REPO / "shared/schemas/alert.schema.json").read_text())
STORY = STORIES[0]  # a vice premier executed: a purge
BODY = " ".join(STORY.lead + STORY.body)


def copies() -> list[tuple[str, str, str]]:
    """(outlet, title, text) of five outlets' versions of the story."""
    lead = STORY.lead
    return [
        ("korea-wire.example", STORY.title, BODY),
        ("peninsula-post.example", STORY.headlines[0], DATELINES[1] + BODY + BOILER_TAIL[0]),
        ("asia-desk.example", STORY.title + " - Asia Desk", " ".join(lead[:3])),
        ("daily-observer.example", STORY.headlines[1], " ".join((lead[0], lead[2], lead[1]))),
        ("seoul-times.example", "UPDATE 2-" + STORY.title, BODY + BOILER_TAIL[1]),
    ]


def rss(outlet: str, title: str, text: str, n: int) -> str:
    link = f"https://{outlet}/2026/05/04/vice-premier-executed?utm_source=rss&n={n}"
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>{outlet}</title><link>https://{outlet}/</link>
<description>news</description>
<item><title>{html.escape(title)}</title><link>{html.escape(link)}</link>
<guid isPermaLink="false">{outlet}:story:{n}</guid>
<pubDate>Mon, 04 May 2026 0{n}:00:00 +0000</pubDate>
<description>{html.escape(html.escape(text))}</description></item>
</channel></rss>
"""


@pytest.fixture
def five_feeds(
    tmp_path: Path, bootstrap_servers: str
) -> Iterator[tuple[LocalStack, WebhookReceiver]]:
    feeds_dir = tmp_path / "feeds"
    feeds_dir.mkdir()
    entries = []
    for n, (outlet, title, text) in enumerate(copies()):
        (feeds_dir / f"feed{n}.xml").write_text(rss(outlet, title, text, n))
        entries.append(
            f'  - id: feed{n}\n    url: "{{base}}/feed{n}.xml"\n    interval_seconds: 2\n'
        )
    (feeds_dir / "feeds.yaml").write_text("feeds:\n" + "".join(entries))
    server = FeedServer(feeds_dir, conditional=False).start()
    receiver = WebhookReceiver()
    (tmp_path / "subs.yaml").write_text(
        f"subscriptions:\n  - name: e2e-hook\n    webhook:\n      url: {receiver.url}\n"
    )
    run = f"corr{free_port()}"
    config = StackConfig(
        bootstrap_servers=bootstrap_servers,
        redis_url=REDIS_URL,
        topic_prefix=f"e2e-{run}",
        redis_key_prefix=f"dmzwatch-test:e2e-{run}:",
        feeds_file=server.render_feed_list(tmp_path / "feeds.yaml"),
        subscriptions_file=tmp_path / "subs.yaml",
        ports={s: free_port() for s in SERVICES},
        log_dir=tmp_path,
        log_format="json",
        session_timeout_ms=6000,
        extra_env={
            "DMZWATCH_CORROBORATION_SOURCES": "3",
            # The poller refuses loopback addresses unless allowed: our feed server is one.
            "DMZWATCH_FETCH_ALLOW_NETWORKS": server.base_url.removeprefix("http://"),
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
            log = tmp_path / f"{name}.log"
            if log.exists():
                print(f"--- {name} log ---\n" + "\n".join(log.read_text().splitlines()[-15:]))


def test_five_copies_make_one_reported_alert_then_one_corroborated_update(five_feeds) -> None:
    stack, receiver = five_feeds
    topics = TopicCatalogue(stack.config.topic_prefix)

    def purge_alerts() -> list[dict]:
        return [
            json.loads(v) for _, v in read_topic(stack.bootstrap_servers, topics.alert("purge"))
        ]

    wait_until(lambda: len(purge_alerts()) >= 2, timeout=90, what="the alert and its update")
    # The copies published again (as the next poll of every feed would): nothing may follow.
    raw = read_topic(stack.bootstrap_servers, topics.articles_raw)
    assert len(raw) >= 5
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap_servers)
    for key, value in raw:
        producer.send(topics.articles_raw, key=key.encode(), value=value)
    producer.flush()
    producer.close()
    wait_until(
        lambda: metric(stack, "dedup", "dmzwatch_dedup_duplicates_total") >= len(raw),
        what="the repeats dropped",
    )
    time.sleep(3)
    alerts = purge_alerts()
    assert [(a["data"]["version"], a["data"]["status"]) for a in alerts] == [
        (1, "reported"),
        (2, "corroborated"),
    ]
    first, update = alerts
    assert first["id"] == update["id"] and first["subject"] == update["subject"]
    assert update["data"]["corroboration"]["sources"] >= 3
    assert len(set(update["data"]["corroboration"]["outlets"])) >= 3
    for alert in alerts:
        jsonschema.validate(alert, SCHEMA)
    for category in ("summit", "defection"):
        assert read_topic(stack.bootstrap_servers, topics.alert(category), idle_ms=500) == []

    decisions = [json.loads(v) for _, v in read_topic(stack.bootstrap_servers, topics.decisions)]
    assert len(decisions) == 5 and len({d["story_id"] for d in decisions}) == 1
    wait_until(lambda: len(receiver.received) >= 2, what="both versions delivered")
    assert sorted(r["data"]["version"] for r in receiver.received) == [1, 2]
    assert metric(stack, "classifier", "dmzwatch_alerts_corroborated_total") == 1
    joined = metric(stack, "dedup", "dmzwatch_dedup_stories_total", match="near")
    assert joined + metric(stack, "dedup", "dmzwatch_dedup_stories_total", match="exact") == 4
