"""Delivery against real HTTP receivers on 127.0.0.1, with the Redis outbox (and Kafka dead
letters on the Tansu broker): Slack blocks, signatures, retries, Retry-After, dead letters,
isolation of a hanging receiver, digests across a restart, metrics, ``notify test``."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from kafka import KafkaConsumer
from prometheus_client import CollectorRegistry

from chaos.receivers import Receiver, Reply
from dmzwatch.cli import main as cli_main
from dmzwatch.notifier.deadletters import DeadLetterSink, KafkaDeadLetters, MemoryDeadLetters
from dmzwatch.notifier.dispatcher import Dispatcher
from dmzwatch.notifier.handler import NotifierHandler
from dmzwatch.notifier.metrics import NotifierMetrics
from dmzwatch.notifier.policy import RetryPolicy
from dmzwatch.notifier.redis_outbox import RedisOutbox
from dmzwatch.notifier.routes import Route, make_channel
from dmzwatch.notifier.worker import DestinationWorker, WorkerOptions
from dmzwatch.shared.broker import free_port
from dmzwatch.shared.clock import Clock, ManualClock, SystemClock
from dmzwatch.shared.kafka import TopicSpec, create_topics, make_producer
from dmzwatch.shared.runner import Context
from dmzwatch.shared.settings import CommonSettings
from tests.notifier_support import SECRET, make_alert, subscription

CTX = Context("dmzwatch.alerts.purge", 0, 7, "s1", 0)
POLICY = RetryPolicy(attempts=4, initial_seconds=1, max_seconds=8, retry_after_max_seconds=60)


class Rig:
    """Handler + one worker on the Redis outbox, stepped by hand on a manual clock."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        name: str,
        clock: Clock | None = None,
        deadletters: DeadLetterSink | None = None,
        **fields: Any,
    ) -> None:
        self.clock = clock or ManualClock(datetime.now(UTC))  # signatures carry real-ish time
        self.sub = subscription(name, **fields)
        self.route = Route(self.sub, make_channel(self.sub, {}, self.clock, 5.0))
        self.outbox = RedisOutbox(client, prefix)
        self.registry = CollectorRegistry()
        self.metrics = NotifierMetrics(self.registry)
        self.letters = deadletters or MemoryDeadLetters()
        self.handler = NotifierHandler(lambda: [self.route], self.outbox, self.metrics, self.clock)
        self.worker = DestinationWorker(
            self.route,
            self.outbox,
            self.letters,
            self.metrics,
            self.clock,
            WorkerOptions(policy=POLICY, lease_seconds=30, idle_poll_seconds=3600),
            random.Random(3),
        )

    def drain(self, max_steps: int = 100) -> None:
        assert isinstance(self.clock, ManualClock)
        for _ in range(max_steps):
            wait = self.worker.run_once()
            if self.outbox.depth(self.sub.name) == 0:
                return
            self.clock.advance(wait)
        raise AssertionError("queue never drained")

    def value(self, metric: str, **labels: str) -> float:
        return self.registry.get_sample_value(metric, labels) or 0.0


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make(*replies: Reply, **kw: Any) -> Receiver:
        made.append(Receiver(*replies, **kw))
        return made[-1]

    yield make
    for receiver in made:
        receiver.stop()


def test_slack_messages_have_the_intended_block_structure(redis_client, key_prefix, receivers):
    slack = receivers()
    rig = Rig(redis_client, key_prefix, "slack", slack={"url": slack.url})
    rig.handler.handle(make_alert(title="Purge of <generals> & co", status="corroborated"), CTX)
    rig.drain()
    [request] = slack.answered()
    body = request.json()
    assert body["text"] == "Purge (corroborated): Purge of <generals> & co"
    assert body["unfurl_links"] is False
    blocks = body["blocks"]
    assert [b["type"] for b in blocks] == [
        "header",
        "section",
        "section",
        "section",
        "context",
        "context",
    ]
    assert blocks[0]["text"] == {
        "type": "plain_text",
        "text": "Purge alert · corroborated",
        "emoji": True,
    }
    assert blocks[1]["text"]["text"] == (
        "*<https://korea-wire.example/a/1|Purge of &lt;generals&gt; &amp; co>*"
    )
    fields = [f["text"].split("\n")[0] for f in blocks[2]["fields"]]
    assert fields == ["*Category*", "*Score*", "*Outlets*", "*Status*"]
    assert blocks[2]["fields"][1]["text"] == "*Score*\n0.90"
    assert "korea-wire.example, seoul-daily.example (2)" in blocks[2]["fields"][2]["text"]
    assert blocks[3]["text"]["text"].startswith("> _He was executed by firing squad")
    assert blocks[4]["elements"][0]["text"] == (
        "People: Kim Jong Un · Places: Pyongyang · Organisations: KPA"
    )
    assert request.headers["x-dmzwatch-delivery-id"].startswith("msg_")


def test_slack_digests_list_every_alert_of_the_window(redis_client, key_prefix, receivers):
    slack = receivers()
    rig = Rig(
        redis_client,
        key_prefix,
        "slackd",
        slack={"url": slack.url},
        mode="digest",
        digest_minutes=5,
    )
    for i in range(3):
        rig.handler.handle(make_alert(f"id-{i}", title=f"Story {i}"), CTX)
    rig.drain()
    [request] = slack.answered()
    blocks = request.json()["blocks"]
    assert blocks[0]["text"]["text"] == "dmzwatch digest · 3 alerts"
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert len(sections) == 3 and all("purge · score 0.90" in s for s in sections)
    assert sum(b["type"] == "divider" for b in blocks) == 3


def test_the_receiver_verifies_every_signature_and_500_500_200_is_one_delivery(
    redis_client, key_prefix, receivers
):
    hook = receivers(Reply(500), Reply(500), Reply(200), secret=SECRET)
    rig = Rig(redis_client, key_prefix, "signed", webhook={"url": hook.url, "secret": SECRET})
    rig.handler.handle(make_alert(), CTX)
    rig.drain()
    rig.handler.handle(make_alert(), CTX)  # Kafka re-delivers the record: nothing new
    rig.drain()
    assert [r.status for r in hook.requests] == [500, 500, 200]
    assert all(r.verified for r in hook.requests)
    assert len({r.webhook_id for r in hook.requests}) == 1  # stable across retries
    assert len({r.headers["webhook-signature"] for r in hook.requests}) >= 1
    [ok] = hook.answered()
    assert (
        ok.json()["id"] == "id-1" and ok.headers["content-type"] == "application/cloudevents+json"
    )
    labels = {"channel": "webhook", "subscription": "signed"}
    assert rig.value("dmzwatch_notifier_deliveries_total", **labels, outcome="delivered") == 1
    assert rig.value("dmzwatch_notifier_deliveries_total", **labels, outcome="duplicate") == 1
    assert rig.value("dmzwatch_notifier_retries_total", **labels, reason="server_error") == 2
    assert rig.value("dmzwatch_notifier_request_seconds_count", channel="webhook") == 3
    latency = {"channel": "webhook", "mode": "immediate"}
    assert rig.value("dmzwatch_notifier_delivery_latency_seconds_count", **latency) == 1
    assert rig.value("dmzwatch_notifier_delivery_latency_seconds_sum", **latency) >= 1.0


def test_a_wrong_signing_key_is_refused_by_the_receiver(redis_client, key_prefix, receivers):
    hook = receivers(secret=SECRET)
    other = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="
    rig = Rig(redis_client, key_prefix, "wrongkey", webhook={"url": hook.url, "secret": other})
    rig.handler.handle(make_alert(), CTX)
    rig.drain()
    assert [r.verified for r in hook.requests] == [False] and hook.requests[0].status == 401
    assert "(rejected)" in rig.letters.letters[0][1].error  # type: ignore[attr-defined]


def test_a_429_with_retry_after_2_is_honoured_on_the_injected_clock(
    redis_client, key_prefix, receivers
):
    clock = ManualClock(datetime.now(UTC))
    hook = receivers(
        Reply(429, {"Retry-After": "2"}), secret=SECRET, stamp=lambda: clock.now().timestamp()
    )
    rig = Rig(
        redis_client, key_prefix, "limited", clock, webhook={"url": hook.url, "secret": SECRET}
    )
    rig.handler.handle(make_alert("first"), CTX)
    rig.worker.run_once()  # answered 429
    rig.handler.handle(make_alert("second"), CTX)
    waits = []
    while rig.outbox.depth("limited"):
        waits.append(rig.worker.run_once())
        rig.clock.advance(waits[-1])
    first, *later = hook.requests
    assert first.status == 429 and [r.status for r in later] == [200, 200]
    assert all(r.stamp - first.stamp >= 2.0 for r in later)  # not one request before 2 s
    assert min(r.stamp for r in later) - first.stamp < 2.1  # and not much later either
    assert all(r.verified for r in hook.requests)
    labels = {"channel": "webhook", "subscription": "limited", "reason": "rate_limited"}
    assert rig.value("dmzwatch_notifier_retries_total", **labels) == 1


def test_an_always_down_receiver_ends_in_a_dead_letter_after_the_budget(
    redis_client, key_prefix, bootstrap_servers, run_id
):
    settings = CommonSettings(
        kafka_bootstrap_servers=bootstrap_servers, topic_prefix=f"nd-{run_id}"
    )
    topic = settings.topics().deadletter
    create_topics(settings, [TopicSpec(topic, partitions=1)])
    sink = KafkaDeadLetters(topic, lambda: make_producer(settings, "it-notifier"))
    down = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    rig = Rig(redis_client, key_prefix, "down", deadletters=sink, webhook={"url": down})
    try:
        rig.handler.handle(make_alert(), CTX)
        rig.drain()
    finally:
        sink.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        auto_offset_reset="earliest",
        group_id=None,
        consumer_timeout_ms=3000,
    )
    letters = [json.loads(r.value) for r in consumer]
    consumer.close()
    [letter] = letters
    assert letter["stage"] == "notifier" and letter["key"] == "s1"
    assert letter["error"].startswith("delivery to down gave up (exhausted) after 4 attempt(s)")
    assert "ConnectError" in letter["error"] and "/hook" not in letter["error"]
    assert json.loads(letter["value_text"])["id"] == "id-1" and letter["offset"] == 7
    labels = {"channel": "webhook", "subscription": "down"}
    assert rig.value("dmzwatch_notifier_deadletters_total", **labels, reason="exhausted") == 1
    assert rig.value("dmzwatch_notifier_deliveries_total", **labels, outcome="deadlettered") == 1
    assert rig.value("dmzwatch_notifier_retries_total", **labels, reason="network") == 3
    assert rig.outbox.state("down", "id-1", 1) == "dead"


def test_a_hanging_receiver_does_not_delay_delivery_to_the_others(
    redis_client, key_prefix, receivers
):
    hang = receivers(default=Reply(200, hold_seconds=30))
    fast = [receivers() for _ in range(3)]
    clock = SystemClock()
    registry = CollectorRegistry()
    metrics = NotifierMetrics(registry)
    outbox = RedisOutbox(redis_client, key_prefix)
    dispatcher = Dispatcher(
        outbox, MemoryDeadLetters(), metrics, clock, WorkerOptions(policy=POLICY, lease_seconds=30)
    )
    subs = [subscription("hang", webhook={"url": hang.url})]
    subs += [subscription(f"fast{i}", webhook={"url": r.url}) for i, r in enumerate(fast)]
    dispatcher.apply(tuple(Route(s, make_channel(s, {}, clock, 20.0)) for s in subs))
    handler = NotifierHandler(dispatcher.routes, outbox, metrics, clock, wake=dispatcher.wake)
    try:
        started = time.monotonic()
        for i in range(3):
            handler.handle(make_alert(f"id-{i}"), CTX)
        for receiver in fast:
            receiver.wait_for(3, timeout=5)
        elapsed = time.monotonic() - started
        assert elapsed < 2.0, f"fast receivers waited {elapsed:.1f}s"
        assert len(hang.requests) == 1 and hang.requests[0].status is None  # still held
    finally:
        hang.release.set()
        dispatcher.stop(5)


def test_digest_state_survives_a_restart_and_each_window_is_one_message(
    redis_client, key_prefix, receivers
):
    hook = receivers(secret=SECRET)
    clock = ManualClock(datetime.now(UTC))
    fields = {"webhook": {"url": hook.url, "secret": SECRET}, "mode": "digest"}
    before = Rig(redis_client, key_prefix, "digest", clock, **fields, digest_minutes=1)
    for i in range(3):
        before.handler.handle(make_alert(f"w1-{i}"), CTX)
    before.handler.handle(make_alert("w1-0"), CTX)  # a re-delivery: still three
    # The notifier restarts: a new process with nothing in memory, same Redis.
    after = Rig(redis_client, key_prefix, "digest", clock, **fields, digest_minutes=1)
    after.clock.advance(61)
    after.handler.handle(make_alert("w2-0"), CTX)  # lands in the next window
    after.drain()
    assert [r.status for r in hook.requests] == [200, 200] and all(
        r.verified for r in hook.requests
    )
    batches = [r.json() for r in hook.requests]
    assert [sorted(e["id"] for e in b) for b in batches] == [["w1-0", "w1-1", "w1-2"], ["w2-0"]]
    assert hook.requests[0].headers["content-type"] == "application/cloudevents-batch+json"
    latency = {"channel": "webhook", "mode": "digest"}
    assert after.value("dmzwatch_notifier_delivery_latency_seconds_count", **latency) == 2


def test_notify_test_sends_a_sample_to_a_destination(tmp_path, monkeypatch, receivers, capsys):
    hook, slack = receivers(secret=SECRET), receivers()
    down = f"http://127.0.0.1:{free_port()}/x"
    (tmp_path / "subs.yaml").write_text(
        "subscriptions:\n"
        f"  - {{name: hook, webhook: {{url: '{hook.url}', secret_env: HOOK_SECRET}}}}\n"
        f"  - {{name: chat, slack: {{url_file: {tmp_path / 'slack-url'}}}}}\n"
        f"  - {{name: down, webhook: {{url: '{down}'}}}}\n"
    )
    (tmp_path / "slack-url").write_text(slack.url + "\n")
    monkeypatch.setenv("DMZWATCH_SUBSCRIPTIONS_FILE", str(tmp_path / "subs.yaml"))
    monkeypatch.setenv("HOOK_SECRET", SECRET)

    def run(name: str) -> tuple[int, dict]:
        code = cli_main(["notify", "test", name])
        return code, json.loads(capsys.readouterr().out)

    code, out = run("hook")
    assert code == 0 and out["delivered"] is True and out["channel"] == "webhook"
    assert hook.requests[0].verified and "test" in hook.requests[0].json()["data"]["title"]
    code, out = run("chat")
    assert code == 0 and slack.requests[0].json()["blocks"][0]["type"] == "header"
    code, out = run("down")
    assert code == 1 and out["reason"] == "network" and "/x" not in out["error"]
    code, out = run("nobody")
    assert code == 2 and "known: chat, down, hook" in out["error"]
