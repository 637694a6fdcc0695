"""A stage whose dependency goes away reports not-ready on /readyz, logs why, and recovers by
itself when the dependency returns: the broker unreachable (connections refused by a fault
proxy that Tansu advertises), and Redis paused (SIGSTOP).

The dedup stage is the subject: it needs both. Each test ends by sending an article through
the recovered stage, so "recovered" means working again, not only answering the probe.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer

from chaos.proxy import FaultProxy
from chaos.redisserver import RedisServer
from dmzwatch.shared.broker import TansuBroker, free_port
from dmzwatch.shared.kafka import create_topics, load_topic_specs
from dmzwatch.shared.messages import encode
from dmzwatch.shared.settings import CommonSettings
from dmzwatch.shared.topics import TopicCatalogue
from tests.conftest import REPO, make_article


@dataclass
class Stage:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    broker: FaultProxy
    redis: RedisServer
    topics: TopicCatalogue

    def readyz(self) -> tuple[int, dict[str, object]]:
        url = f"http://127.0.0.1:{self.port}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def wait_readyz(self, ready: bool, timeout: float = 120.0) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        body: dict[str, object] = {}
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the stage exited"
            try:
                status, body = self.readyz()
            except OSError:
                status = 0
            if (status == 200) == ready and status:
                return body
            time.sleep(0.5)
        raise AssertionError(f"/readyz never became {'ready' if ready else 'not ready'}: {body}")

    def events(self) -> list[dict[str, object]]:
        out = []
        for line in self.log.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def send(self, article_id: str) -> None:
        producer = KafkaProducer(bootstrap_servers=self.broker.address)
        article = make_article(
            article_id=article_id,
            url=f"https://ready.example/{article_id}",
            guid=None,
            title=f"Ferry timetable {article_id} changes for the winter",
            summary=f"Crossings {article_id} move an hour earlier.",
        )
        producer.send(self.topics.articles_raw, key=article_id.encode(), value=encode(article))
        producer.flush(30)
        producer.close(5)

    def wait_unique(self, article_id: str, timeout: float = 180.0) -> None:
        consumer = KafkaConsumer(
            self.topics.articles_unique,
            bootstrap_servers=self.broker.address,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=1000,
        )
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                for record in consumer:
                    if record.key == article_id.encode():
                        return
            raise AssertionError(f"{article_id} never reached {self.topics.articles_unique}")
        finally:
            consumer.close()


@contextmanager
def started(tmp_path: Path, stage: str, extra_env: dict[str, str]) -> Iterator[Stage]:
    """``dmzwatch <stage>`` on a Tansu behind a fault proxy and a Redis of its own, ready."""
    redis = RedisServer(tmp_path, log=tmp_path / "redis.log")
    redis.start()
    broker_proxy = FaultProxy("127.0.0.1", free_port())
    tansu = TansuBroker(log_path=tmp_path / "tansu.log", advertised=broker_proxy.address)
    broker_proxy.target = ("127.0.0.1", tansu.port)
    tansu.start()
    prefix = f"ready-{uuid.uuid4().hex[:6]}"
    topics = TopicCatalogue(prefix)
    create_topics(
        CommonSettings(kafka_bootstrap_servers=broker_proxy.address),
        load_topic_specs(REPO / "deploy/kafka/topics.yaml", topics),
    )
    port = free_port()
    log = tmp_path / f"{stage}.log"
    env = dict(os.environ)
    env.update(
        {
            "DMZWATCH_KAFKA_BOOTSTRAP_SERVERS": broker_proxy.address,
            "DMZWATCH_REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
            "DMZWATCH_TOPIC_PREFIX": prefix,
            "DMZWATCH_CONSUMER_GROUP_PREFIX": prefix,
            "DMZWATCH_LOG_FORMAT": "json",
            "DMZWATCH_SESSION_TIMEOUT_MS": "6000",
            "DMZWATCH_HEARTBEAT_INTERVAL_MS": "1000",
            f"DMZWATCH_{stage.upper()}_PORT": str(port),
            **extra_env,
        }
    )
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "dmzwatch", stage], env=env, stdout=out, stderr=out
        )
    subject = Stage(process, port, log, broker_proxy, redis, topics)
    try:
        subject.wait_readyz(True)
        yield subject
    finally:
        redis.signal(signal.SIGCONT)
        broker_proxy.heal()
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        tansu.stop()
        redis.kill()
        broker_proxy.close()
        print(f"--- {stage} log (tail) ---\n" + "\n".join(log.read_text().splitlines()[-20:]))


@pytest.fixture
def dedup(tmp_path: Path) -> Iterator[Stage]:
    with started(tmp_path, "dedup", {}) as stage:
        yield stage


@pytest.fixture
def poller(tmp_path: Path) -> Iterator[Stage]:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds: []\n")
    with started(tmp_path, "poller", {"DMZWATCH_FEEDS_FILE": str(feeds)}) as stage:
        yield stage


def test_broker_unreachable_not_ready_logged_and_recovers(dedup: Stage) -> None:
    dedup.send("u-before-outage")
    dedup.wait_unique("u-before-outage")
    dedup.broker.block()  # refused: the broker (and the address it advertises) is unreachable
    body = dedup.wait_readyz(False, timeout=30)
    problems = body["problems"]
    assert isinstance(problems, dict) and "broker" in problems, body
    assert "unreachable" in str(problems["broker"])
    assert any(
        e["event"] == "probe_not_ready" and e.get("probe") == "broker" for e in dedup.events()
    ), "the log says why the stage is not ready"
    time.sleep(8)  # longer than the session timeout: the group has to be joined again
    assert dedup.process.poll() is None
    dedup.broker.unblock()
    dedup.wait_readyz(True)
    assert any(e["event"] == "probe_ready" and e.get("probe") == "broker" for e in dedup.events())
    dedup.send("u-after-outage")
    dedup.wait_unique("u-after-outage")


def test_redis_paused_not_ready_logged_and_recovers(dedup: Stage) -> None:
    dedup.send("u-before-pause")
    dedup.wait_unique("u-before-pause")
    dedup.redis.signal(signal.SIGSTOP)
    dedup.send("u-during-pause")  # the handler meets the paused Redis and retries
    body = dedup.wait_readyz(False, timeout=60)
    problems = body["problems"]
    assert isinstance(problems, dict) and "redis" in problems, body

    def explained() -> bool:
        events = dedup.events()
        return any(
            e["event"] == "probe_not_ready" and e.get("probe") == "redis" for e in events
        ) and any(
            e["event"] == "condition_not_ready" and e.get("condition") == "dependencies"
            for e in events
        )

    # redis-py gives up on a command after its retries (a few socket timeouts) before the
    # handler's RetryableError reaches the runner.
    deadline = time.monotonic() + 90
    while not explained():
        assert time.monotonic() < deadline, "the log does not say why the stage is stuck"
        time.sleep(0.5)
    time.sleep(5)
    dedup.redis.signal(signal.SIGCONT)
    dedup.wait_readyz(True)
    dedup.wait_unique("u-during-pause")  # the record held back during the pause went through
    dedup.send("u-after-pause")
    dedup.wait_unique("u-after-pause")


def test_poller_readyz_answers_within_one_timeout_while_redis_is_paused(poller: Stage) -> None:
    """The leases' Redis client retries; the probe has its own single-shot one (2 s timeout)."""
    poller.redis.signal(signal.SIGSTOP)
    deadline = time.monotonic() + 20
    while True:
        began = time.monotonic()
        status, body = poller.readyz()
        took = time.monotonic() - began
        assert took < 4.0, f"/readyz took {took:.1f}s"
        if status == 503:
            break
        assert time.monotonic() < deadline, f"still ready with Redis paused: {body}"
        time.sleep(0.2)
    assert "redis" in body["problems"], body  # type: ignore[operator]
    poller.redis.signal(signal.SIGCONT)
    poller.wait_readyz(True, timeout=60)
