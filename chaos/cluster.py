"""Everything the chaos run drives: a private Redis and Tansu (each behind a fault proxy), the
growing feeds, two receivers, the four services as processes (any number of replicas), and a
reader that follows the output topics.

Tansu advertises the broker proxy's address, so every Kafka connection (metadata, produce,
fetch, the group coordinator) goes through the proxy; the services reach Redis through the other
proxy. Tansu keeps its data in memory, so it is paused (SIGSTOP), never killed; Redis runs with
its append-only file (fsync always) in a temporary directory and may be killed and restarted.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from bench.stack import Service as BenchService
from chaos.feeds import GrowingFeeds
from chaos.proxy import FaultProxy
from chaos.receivers import AlertReceiver
from chaos.redisserver import RedisServer
from dmzwatch.shared.broker import TansuBroker, free_port, stop_process
from dmzwatch.shared.kafka import create_topics, load_topic_specs
from dmzwatch.shared.settings import CommonSettings
from dmzwatch.shared.topics import TopicCatalogue

REPO = Path(__file__).resolve().parent.parent
STAGES = ("poller", "dedup", "classifier", "notifier")
POLL_SECONDS = 2


@dataclass
class Service(BenchService):
    """One replica of a stage (``name`` is ``<stage>-<replica>``)."""

    stage: str = ""
    replica: int = 0

    def consumed(self) -> float:
        """Messages this replica has taken from its input so far (0 when it does not answer)."""
        return self.counter("dmzwatch_messages_total", outcome="in")


@dataclass
class Outputs:
    """What the reader has seen on the output topics so far."""

    decisions: Counter[str] = field(default_factory=Counter)  # article id -> copies
    alerts: Counter[tuple[str, int]] = field(default_factory=Counter)  # (id, version) -> copies
    deadletters: int = 0
    records: int = 0


class TopicReader:
    """Follows decisions, the alert topics and the dead-letter topic from the beginning."""

    def __init__(self, bootstrap: str, topics: TopicCatalogue) -> None:
        self._bootstrap = bootstrap
        self._topics = topics
        self.outputs = Outputs()
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-reader", daemon=True)

    def start(self) -> TopicReader:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(20)

    def snapshot(self) -> Outputs:
        if not self._thread.is_alive() and not self._stop.is_set():
            raise RuntimeError("the topic reader died (see the traceback above)")
        with self.lock:
            o = self.outputs
            return Outputs(Counter(o.decisions), Counter(o.alerts), o.deadletters, o.records)

    def _run(self) -> None:
        consumer = KafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=15_000,
            fetch_max_wait_ms=300,
            reconnect_backoff_max_ms=1000,
        )
        topics = [self._topics.decisions, self._topics.deadletter, *self._topics.alerts]
        partitions: list[TopicPartition] = []
        while not partitions and not self._stop.is_set():
            for topic in topics:
                for p in sorted(consumer.partitions_for_topic(topic) or ()):
                    partitions.append(TopicPartition(topic, p))
            if len({tp.topic for tp in partitions}) < len(topics):
                partitions = []
                time.sleep(0.5)
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        try:
            while not self._stop.is_set():
                try:
                    batch = consumer.poll(timeout_ms=300)
                except Exception:  # the reader rides out the same faults as the services
                    time.sleep(0.5)
                    continue
                with self.lock:
                    for tp, records in batch.items():
                        for record in records:
                            self._take(tp.topic, record.value)
        finally:
            consumer.close()

    def _take(self, topic: str, value: bytes | None) -> None:
        out = self.outputs
        out.records += 1
        if topic == self._topics.deadletter:
            out.deadletters += 1
            return
        try:
            body = json.loads(value or b"")
        except ValueError:
            return
        if topic == self._topics.decisions:
            out.decisions[str(body["article_id"])] += 1
        else:
            out.alerts[(str(body["id"]), int(body["data"]["version"]))] += 1


class Cluster:
    """Starts, faults and stops it all. ``work`` is a temporary directory for logs and data."""

    def __init__(self, work: Path, feed_period: float = 0.5) -> None:
        self.work = work
        self.prefix = "chaos"
        self.topics = TopicCatalogue(self.prefix)
        self.redis = RedisServer(work, log=work / "redis.log")
        self.redis_proxy: FaultProxy | None = None
        self.broker_proxy: FaultProxy | None = None
        self.tansu: TansuBroker | None = None
        self.feeds = GrowingFeeds(period=feed_period)
        self.receivers = (
            AlertReceiver("chaos-slack", "slack"),
            AlertReceiver("chaos-hook", "webhook"),
        )
        self.services: dict[str, list[Service]] = {stage: [] for stage in STAGES}
        self.reader: TopicReader | None = None
        self._feeds_file = work / "feeds.yaml"
        self._subscriptions_file = work / "subscriptions.yaml"

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> Cluster:
        self.redis.start()
        self.redis_proxy = FaultProxy("127.0.0.1", self.redis.port)
        self.broker_proxy = FaultProxy("127.0.0.1", free_port())  # target set once Tansu runs
        self.tansu = TansuBroker(
            log_path=self.work / "tansu.log", advertised=self.broker_proxy.address
        )
        self.broker_proxy.target = ("127.0.0.1", self.tansu.port)
        self.tansu.start()
        settings = CommonSettings(
            kafka_bootstrap_servers=self.broker_proxy.address, topic_prefix=self.prefix
        )
        create_topics(settings, load_topic_specs(REPO / "deploy/kafka/topics.yaml", self.topics))
        self._write_files()
        for stage in STAGES:
            self.start_service(stage)
        self.reader = TopicReader(self.broker_proxy.address, self.topics).start()
        self.wait_ready(90)
        self.feeds.start_growing()
        return self

    def stop(self) -> None:
        self.feeds.stop_growing()
        for services in self.services.values():
            for service in services:
                with contextlib.suppress(OSError):
                    service.process.send_signal(signal.SIGTERM)
        for services in self.services.values():
            for service in services:
                stop_process(service.process, 20)
        if self.reader is not None:
            self.reader.stop()
        if self.tansu is not None:
            self.tansu.stop()
        self.redis.kill()
        for proxy in (self.redis_proxy, self.broker_proxy):
            if proxy is not None:
                proxy.close()
        self.feeds.stop()
        for receiver in self.receivers:
            receiver.stop()

    def _write_files(self) -> None:
        feeds = [
            {"id": f, "url": self.feeds.url(f), "interval_seconds": POLL_SECONDS}
            for f in self.feeds.feed_ids
        ]
        self._feeds_file.write_text(json.dumps({"feeds": feeds}))
        slack, hook = self.receivers
        subscriptions = [
            {"name": slack.name, "slack": {"url": slack.url}},
            {"name": hook.name, "webhook": {"url": hook.url}},
        ]
        self._subscriptions_file.write_text(json.dumps({"subscriptions": subscriptions}))

    # -- services ----------------------------------------------------------------------------

    def env(self, stage: str, port: int) -> dict[str, str]:
        assert self.broker_proxy is not None
        assert self.redis_proxy is not None
        env = dict(os.environ)
        env.update(
            {
                "DMZWATCH_KAFKA_BOOTSTRAP_SERVERS": self.broker_proxy.address,
                "DMZWATCH_REDIS_URL": f"redis://{self.redis_proxy.address}/0",
                "DMZWATCH_TOPIC_PREFIX": self.prefix,
                "DMZWATCH_REDIS_KEY_PREFIX": "chaos:",
                "DMZWATCH_CONSUMER_GROUP_PREFIX": self.prefix,
                "DMZWATCH_LOG_FORMAT": "json",
                "DMZWATCH_SESSION_TIMEOUT_MS": "6000",
                "DMZWATCH_HEARTBEAT_INTERVAL_MS": "1000",
                "DMZWATCH_RETRY_BACKOFF_MAX_SECONDS": "4",
                f"DMZWATCH_{stage.upper()}_PORT": str(port),
                "DMZWATCH_FEEDS_FILE": str(self._feeds_file),
                "DMZWATCH_FETCH_ALLOW_NETWORKS": f"127.0.0.1:{self.feeds.port}",
                "DMZWATCH_MIN_INTERVAL_SECONDS": str(POLL_SECONDS),
                "DMZWATCH_MAX_INTERVAL_SECONDS": str(POLL_SECONDS),
                "DMZWATCH_MAX_BACKOFF_SECONDS": "4",
                "DMZWATCH_SUBSCRIPTIONS_FILE": str(self._subscriptions_file),
                "DMZWATCH_WEBHOOK_TIMEOUT_SECONDS": "5",
                "DMZWATCH_DELIVERY_LEASE_SECONDS": "12",
                "DMZWATCH_RETRY_INITIAL_SECONDS": "0.5",
                "DMZWATCH_RETRY_MAX_SECONDS": "4",
                "DMZWATCH_DELIVERY_ATTEMPTS": "30",
            }
        )
        return env

    def start_service(self, stage: str, replica: int | None = None) -> Service:
        """Start a replica of ``stage`` (the lowest free number unless given)."""
        running = {s.replica for s in self.services[stage]}
        if replica is None:
            replica = min(set(range(len(running) + 1)) - running)
        port = free_port()
        log = open(self.work / f"{stage}-{replica}.log", "ab")  # noqa: SIM115
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "dmzwatch", stage],
            env=self.env(stage, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.work,
        )
        log.close()
        service = Service(f"{stage}-{replica}", process, port, stage=stage, replica=replica)
        self.services[stage].append(service)
        return service

    def signal_service(self, service: Service, sig: int, wait: float = 30.0) -> int | None:
        """Send ``sig``; for SIGKILL/SIGTERM wait for the exit and forget the replica."""
        service.process.send_signal(sig)
        if sig not in (signal.SIGKILL, signal.SIGTERM):
            return None
        try:
            code = service.process.wait(wait)
        except subprocess.TimeoutExpired:
            service.process.kill()
            code = service.process.wait(5)
        self.services[service.stage].remove(service)
        return code

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            waiting = [s.name for ss in self.services.values() for s in ss if not s.ready()]
            dead = [s.name for ss in self.services.values() for s in ss if not s.alive()]
            if dead:
                raise RuntimeError(f"exited: {dead}; see {self.work}")
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout}s: {waiting}")
            time.sleep(0.3)

    def log(self, name: str) -> str:
        """The log of replica ``name`` (e.g. ``dedup-0``)."""
        path = self.work / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def dead_replicas(self) -> list[str]:
        """Names of replicas that died on their own (not killed by us)."""
        return [s.name for ss in self.services.values() for s in ss if not s.alive()]
