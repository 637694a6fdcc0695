"""The pipeline benchmarks' environment: a Tansu broker, topics and Redis keys of one run, and
service processes started exactly as in production (``dmzwatch dedup`` etc. with ``DMZWATCH_``
variables), each with its own port so that its metrics and resident size can be read.

Every run gets its own topic prefix, consumer groups and Redis key prefix; :meth:`BenchStack.
close` stops every process it started and deletes the run's Redis keys.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from dmzwatch.shared.broker import TansuBroker, free_port, stop_process
from dmzwatch.shared.kafka import TopicSpec, create_topics
from dmzwatch.shared.settings import CommonSettings
from dmzwatch.shared.topics import DEFAULT_PARTITIONS, TopicCatalogue

REDIS_URL = CommonSettings().redis_url.get_secret_value()
LOGS = Path(tempfile.gettempdir()) / "dmzwatch-bench-logs"


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from ``/proc/<pid>/status`` (0 once it has exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) * 1024 if found else 0


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far, from ``/proc/<pid>/stat`` (0 once gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Service:
    """One started process and what can be read from it."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    peak_rss: int = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss(self) -> int:
        value = rss_bytes(self.pid)
        self.peak_rss = max(self.peak_rss, value)
        return value

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as reply:
            return str(reply.read().decode())

    def counter(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels`` (0 when unreachable)."""
        try:
            text = self.metrics()
        except OSError:
            return 0.0
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            head, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
        return total

    def ready(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.port}/readyz"
            with urllib.request.urlopen(url, timeout=1) as reply:
                return bool(reply.status == 200)
        except OSError:
            return False

    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class BenchStack:
    """Topics, Redis prefix and processes of one benchmark run on ``bootstrap_servers``."""

    bootstrap_servers: str
    name: str = "run"
    partitions: int = DEFAULT_PARTITIONS
    extra_env: dict[str, str] = field(default_factory=dict)
    services: list[Service] = field(default_factory=list)

    def __post_init__(self) -> None:
        run = uuid.uuid4().hex[:8]
        self.prefix = f"bench-{self.name}-{run}"
        self.redis_prefix = f"dmzwatch-bench:{self.name}-{run}:"
        self.catalogue = TopicCatalogue(self.prefix)
        self._sampler: threading.Thread | None = None
        self._sampling = threading.Event()

    def create_topics(self, names: Iterable[str] | None = None) -> None:
        settings = CommonSettings(kafka_bootstrap_servers=self.bootstrap_servers)
        wanted = self.catalogue.all() if names is None else tuple(names)
        create_topics(settings, [TopicSpec(name, self.partitions) for name in wanted])

    def env(self, stage: str, port: int) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "DMZWATCH_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
                "DMZWATCH_REDIS_URL": REDIS_URL,
                "DMZWATCH_TOPIC_PREFIX": self.prefix,
                "DMZWATCH_REDIS_KEY_PREFIX": self.redis_prefix,
                "DMZWATCH_CONSUMER_GROUP_PREFIX": self.prefix,
                "DMZWATCH_LOG_LEVEL": "WARNING",
                "DMZWATCH_SESSION_TIMEOUT_MS": "6000",
                "DMZWATCH_HEARTBEAT_INTERVAL_MS": "1000",
                f"DMZWATCH_{stage.upper()}_PORT": str(port),
                "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
            }
        )
        env.update(self.extra_env)
        return env

    def start(
        self, stage: str, args: list[str] | None = None, env: dict[str, str] | None = None
    ) -> Service:
        """Start ``dmzwatch <stage>`` (or ``python <args>`` with the stage's environment)."""
        port = free_port()
        command = [sys.executable, *(args or ["-m", "dmzwatch", stage])]
        LOGS.mkdir(exist_ok=True)
        name = f"{stage}-{len(self.services)}"
        with open(LOGS / f"{self.prefix}-{name}.log", "ab") as out:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
                [*command, *(["--port", str(port)] if args else [])],
                env={**self.env(stage, port), **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        service = Service(name, process, port)
        self.services.append(service)
        return service

    def wait_ready(self, services: Iterable[Service], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for service in services:
            while not service.ready():
                if not service.alive():
                    raise RuntimeError(f"{service.name} exited with {service.process.returncode}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{service.name} not ready after {timeout}s")
                time.sleep(0.1)

    def sample_memory(self) -> None:
        """Sample every service's resident size every 0.2 s (peaks in ``Service.peak_rss``)."""

        def loop() -> None:
            while not self._sampling.wait(0.2):
                for service in list(self.services):
                    service.rss()

        self._sampler = threading.Thread(target=loop, daemon=True)
        self._sampler.start()

    def stop_service(self, service: Service, timeout: float = 20.0) -> None:
        stop_process(service.process, timeout)

    def close(self) -> None:
        self._sampling.set()
        for service in self.services:
            if service.alive():
                service.process.terminate()
        for service in self.services:
            self.stop_service(service)
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=self.redis_prefix + "*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
        client.close()

    def __enter__(self) -> BenchStack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def producer(bootstrap_servers: str, linger_ms: int = 20) -> KafkaProducer:
    """A producer for loading topics: large batches, acknowledged by the leader."""
    return KafkaProducer(
        bootstrap_servers=bootstrap_servers,
        linger_ms=linger_ms,
        batch_size=256 * 1024,
        max_request_size=4 * 1024 * 1024,
        acks=1,
    )


def produce_all(bootstrap_servers: str, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    """Produce every (key, value) to ``topic``; returns the seconds it took."""
    started = time.monotonic()
    client = producer(bootstrap_servers)
    for key, value in records:
        client.send(topic, value=value, key=key)
    client.flush(timeout=120)
    client.close()
    return time.monotonic() - started


@dataclass(frozen=True, slots=True)
class Record:
    key: bytes | None
    value: bytes
    timestamp_ms: int
    partition: int


def assign_from_start(
    consumer: KafkaConsumer, topic: str, partitions: int
) -> dict[TopicPartition, int]:
    """Assign ``consumer`` every partition of ``topic`` from its start; their end offsets."""
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    ends: dict[TopicPartition, int] = consumer.end_offsets(tps)
    return ends


def read_topic(bootstrap_servers: str, topic: str, partitions: int) -> Iterator[Record]:
    """Every record of ``topic`` from the start to the current end (no consumer group)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        fetch_max_bytes=16 * 1024 * 1024,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    try:
        ends = assign_from_start(consumer, topic, partitions)
        remaining = {tp for tp, end in ends.items() if end > 0}
        while remaining:
            for tp, records in consumer.poll(timeout_ms=500, max_records=5000).items():
                for r in records:
                    yield Record(r.key, r.value, r.timestamp, r.partition)
                if consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        consumer.close()


def wait_until(
    condition: Callable[[], bool],
    timeout: float = 60.0,
    what: str = "condition",
    services: Iterable[Service] = (),
    interval: float = 0.2,
) -> None:
    """Poll ``condition`` every ``interval`` seconds; raise if it is still false after
    ``timeout`` seconds or if one of ``services`` died."""
    deadline = time.monotonic() + timeout
    watched = list(services)
    while not condition():
        for service in watched:
            if not service.alive():
                raise RuntimeError(f"{service.name} exited with {service.process.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not done after {timeout:.0f}s")
        time.sleep(interval)


class Broker:
    """A Tansu broker for one benchmark module (its data lives in memory)."""

    def __init__(self) -> None:
        LOGS.mkdir(exist_ok=True)
        self._broker = TansuBroker(log_path=LOGS / "tansu.log")

    @property
    def pid(self) -> int | None:
        return self._broker.pid

    def __enter__(self) -> str:
        return self._broker.start().bootstrap_servers

    def __exit__(self, *exc: object) -> None:
        self._broker.stop()
