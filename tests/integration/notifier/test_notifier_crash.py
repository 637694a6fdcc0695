"""Kill -9 the notifier process mid-delivery and restart it: no alert lost, none doubled.

A real ``python -m dmzwatch notifier`` on Tansu and Redis, two signed webhook receivers on
127.0.0.1. The slow one holds the first request it gets; while it does, the process is killed.
The receiver sees the client vanish and never answers, so that delivery was not made; the
restarted notifier makes it (same ``webhook-id``) once the dead worker's lease has run out,
and delivers everything else exactly once, including alerts sent while it was down.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from functools import partial
from pathlib import Path

import redis
from kafka import KafkaProducer

from bench import stack
from chaos.receivers import Receiver, Reply
from dmzwatch.notifier.redis_outbox import RedisOutbox
from dmzwatch.shared.broker import free_port
from dmzwatch.shared.kafka import TopicSpec, create_topics
from dmzwatch.shared.messages import encode
from dmzwatch.shared.settings import CommonSettings
from tests.conftest import REDIS_URL
from tests.notifier_support import SECRET, make_alert

TIMEOUT_SECONDS = 5  # per request; the lease (6 s) must outlive it


def metric(port: int, name: str, **labels: str) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return 0.0
    want = {f'{k}="{v}"' for k, v in labels.items()}
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{"):
            head, _, value = line.rpartition(" ")
            if want <= set(head[len(name) + 1 : -1].split(",")):
                total += float(value)
    return total


wait_until = partial(stack.wait_until, interval=0.05)


def test_sigkill_mid_delivery_then_restart_loses_none_and_doubles_none(
    tmp_path: Path, bootstrap_servers: str, redis_client: redis.Redis, key_prefix: str, run_id: str
) -> None:
    prefix = f"crash-{run_id}"
    settings = CommonSettings(kafka_bootstrap_servers=bootstrap_servers, topic_prefix=prefix)
    topics = settings.topics()
    create_topics(
        settings, [TopicSpec(t, partitions=2) for t in (*topics.alerts, topics.deadletter)]
    )
    slow = Receiver(Reply(200, hold_seconds=60), secret=SECRET)  # holds its first request
    fast = Receiver(secret=SECRET)
    (tmp_path / "subs.yaml").write_text(
        "subscriptions:\n"
        f"  - {{name: slow, webhook: {{url: '{slow.url}', secret_env: HOOK_SECRET}}}}\n"
        f"  - {{name: fast, webhook: {{url: '{fast.url}', secret_env: HOOK_SECRET}}}}\n"
    )
    port = free_port()
    env = {
        **os.environ,
        "HOOK_SECRET": SECRET,
        "DMZWATCH_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        "DMZWATCH_REDIS_URL": REDIS_URL,
        "DMZWATCH_TOPIC_PREFIX": prefix,
        "DMZWATCH_CONSUMER_GROUP_PREFIX": prefix,
        "DMZWATCH_REDIS_KEY_PREFIX": key_prefix,
        "DMZWATCH_SUBSCRIPTIONS_FILE": str(tmp_path / "subs.yaml"),
        "DMZWATCH_NOTIFIER_PORT": str(port),
        "DMZWATCH_WEBHOOK_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
        "DMZWATCH_DELIVERY_LEASE_SECONDS": str(TIMEOUT_SECONDS + 1),
        "DMZWATCH_SESSION_TIMEOUT_MS": "6000",
        "DMZWATCH_HEARTBEAT_INTERVAL_MS": "1000",
    }
    log_path = tmp_path / "notifier.log"

    def start() -> subprocess.Popen[bytes]:
        with open(log_path, "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "dmzwatch", "notifier"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    producer = KafkaProducer(bootstrap_servers=bootstrap_servers)

    def send(*ids: str) -> None:
        for alert_id in ids:
            alert = make_alert(alert_id)
            producer.send(topics.alert("purge"), key=alert.subject.encode(), value=encode(alert))
        producer.flush()

    first_batch = [f"before-{i}" for i in range(5)]
    process = start()
    try:
        send(*first_batch)
        # The slow receiver holds its first request; the fast one gets everything meanwhile.
        wait_until(lambda: len(slow.requests) == 1, 60, "the slow receiver's first request")
        fast.wait_for(5, timeout=TIMEOUT_SECONDS - 2)
        wait_until(
            lambda: (
                metric(
                    port,
                    "dmzwatch_notifier_deliveries_total",
                    subscription="fast",
                    outcome="delivered",
                )
                == 5
            ),
            2,
            "the fast deliveries to be recorded",
        )
        assert slow.requests[0].status is None, "still held when the process dies"
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        wait_until(lambda: slow.requests[0].abandoned, 5, "the receiver to see the client go")

        send("while-down-0", "while-down-1")  # the notifier is down: these wait in Kafka
        process = start()
        everything = [*first_batch, "while-down-0", "while-down-1"]
        slow.wait_for(len(everything), timeout=60)
        fast.wait_for(len(everything), timeout=60)
        time.sleep(TIMEOUT_SECONDS + 2)  # a lease's worth: anything doubled would show by now
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
        producer.close()
        slow.stop()
        fast.stop()

    for receiver in (slow, fast):
        accepted = Counter(r.json()["id"] for r in receiver.answered())
        assert sorted(accepted) == sorted(everything), "none lost"
        assert set(accepted.values()) == {1}, f"none doubled: {accepted}"
        assert all(r.verified for r in receiver.requests)
    assert len(fast.requests) == len(everything), "the fast receiver never saw a repeat"
    [abandoned] = [r for r in slow.requests if r.abandoned]
    retried = [r for r in slow.answered() if r.json()["id"] == abandoned.json()["id"]]
    assert [r.webhook_id for r in retried] == [abandoned.webhook_id], "same webhook-id on retry"
    outbox = RedisOutbox(redis_client, key_prefix)
    for name in ("slow", "fast"):
        assert outbox.depth(name) == 0
        assert {outbox.state(name, i, 1) for i in everything} == {"delivered"}
    log = log_path.read_text()
    assert SECRET not in log and SECRET.removeprefix("whsec_") not in log
