"""One replay through a two-stage chain, measured from the topics themselves.

The raw articles are produced to ``articles.raw`` before any stage starts. Then the stages start
as separate processes: the real ``dmzwatch dedup`` and ``dmzwatch classifier`` (``services``),
or pass-through stages of the same shape (``relay``, see ``bench/relay.py``), with one or more
replicas each in the same consumer group. The run is over when the first stage's group has
committed every raw article and the second's every article the first passed on (a batch is
committed only once its outputs are acknowledged), and every decision is on its topic.

Throughput is the raw article count over the time from the first record the first stage
produced to the last decision (both broker record timestamps, taken by the producers), so
interpreter start-up and the first group join are left out, the same way for both chains; they
are reported separately as ``startup_seconds``.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Literal

import redis
from kafka import KafkaAdminClient, KafkaConsumer

from bench.stack import (
    REDIS_URL,
    BenchStack,
    Service,
    assign_from_start,
    cpu_seconds,
    produce_all,
    read_topic,
    wait_until,
)

Chain = Literal["services", "relay"]


@dataclass(frozen=True, slots=True)
class ChainResult:
    articles: int
    seconds: float
    startup_seconds: float
    passed_on: int  # records the first stage produced (unique articles)
    decisions: int
    duplicate_decisions: int  # decisions of an article decided before
    peak_rss: dict[str, int]  # stage -> largest resident size of its replicas under load
    cpu: dict[str, float]  # process -> CPU seconds from spawn to the last commit (start-up in)

    @property
    def per_second(self) -> float:
        return self.articles / self.seconds

    def cpu_us_per_article(self) -> dict[str, float]:
        return {name: seconds * 1e6 / self.articles for name, seconds in self.cpu.items()}


def _first_timestamp(bootstrap_servers: str, topic: str, partitions: int) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    try:
        ends = assign_from_start(consumer, topic, partitions)
        waiting = {tp for tp, end in ends.items() if end > 0}
        first: list[int] = []
        while waiting:
            for tp, records in consumer.poll(timeout_ms=500, max_records=len(ends)).items():
                if tp in waiting and records:
                    first.append(records[0].timestamp)
                    waiting.discard(tp)
                    consumer.pause(tp)
        return min(first)
    finally:
        consumer.close()


def _stages(stack: BenchStack, chain: Chain, replicas: int) -> tuple[list[Service], list[Service]]:
    topics = stack.catalogue
    first: list[Service] = []
    second: list[Service] = []
    for _ in range(replicas):
        if chain == "services":
            first.append(stack.start("dedup"))
            second.append(stack.start("classifier"))
        else:
            for stage, source, target, into in (
                ("relay1", topics.articles_raw, topics.articles_unique, first),
                ("relay2", topics.articles_unique, topics.decisions, second),
            ):
                args = ["-m", "bench.relay", "--stage", stage, "--input", source]
                into.append(stack.start(stage, [*args, "--output", target]))
    return first, second


def _committed(admin: KafkaAdminClient, group: str) -> int:
    """Records of its input that ``group`` has committed (all partitions)."""
    offsets = admin.list_group_offsets({group: None}).get(group, {})
    return sum(max(0, o.offset) for o in offsets.values())


def _redis_cpu(client: redis.Redis) -> float:
    """CPU seconds the Redis server has used (all clients: the benchmark's are all there is)."""
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _count(services: list[Service], outcome: str) -> float:
    return sum(s.counter("dmzwatch_messages_total", outcome=outcome) for s in services)


def replay(
    bootstrap_servers: str,
    records: list[tuple[bytes, bytes]],
    chain: Chain,
    replicas: int = 1,
    timeout: float = 1200.0,
    env: dict[str, str] | None = None,
    broker_pid: int | None = None,
) -> ChainResult:
    """Replay ``records`` (key, value) through ``chain`` with ``replicas`` per stage (``env``:
    more ``DMZWATCH_`` settings for the stages; ``broker_pid``: count the broker's CPU too)."""
    with BenchStack(bootstrap_servers, name=f"{chain}{replicas}", extra_env=env or {}) as stack:
        stack.create_topics()
        produce_all(bootstrap_servers, stack.catalogue.articles_raw, records)
        redis_client = redis.Redis.from_url(REDIS_URL)
        redis_before = _redis_cpu(redis_client)
        broker_before = cpu_seconds(broker_pid) if broker_pid else 0.0
        spawned = time.time()
        first, second = _stages(stack, chain, replicas)
        stack.sample_memory()
        everyone = first + second
        n = len(records)
        topics = stack.catalogue
        stages = [s.name.rsplit("-", 1)[0] for s in (first[0], second[0])]
        groups = [f"{stack.prefix}-{stage}" for stage in stages]
        admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
        try:
            # Done when each stage has committed every record of its input: the runner commits
            # only once the batch's outputs are acknowledged, so nothing is still in hand (its
            # "in" counter counts a batch as soon as it is polled).
            wait_until(
                lambda: _committed(admin, groups[0]) >= n,
                timeout,
                f"{chain}: first stage",
                everyone,
            )
            passed_on = int(_count(first, "out"))
            wait_until(
                lambda: _committed(admin, groups[1]) >= passed_on,
                timeout,
                f"{chain}: second stage",
                everyone,
            )
        finally:
            admin.close()
        cpu: dict[str, float] = {}
        for service in everyone:
            stage = service.name.rsplit("-", 1)[0]
            cpu[stage] = cpu.get(stage, 0.0) + cpu_seconds(service.pid)
        cpu["redis"] = _redis_cpu(redis_client) - redis_before
        redis_client.close()
        if broker_pid:
            cpu["broker"] = cpu_seconds(broker_pid) - broker_before
        partitions = stack.partitions
        started = _first_timestamp(bootstrap_servers, topics.articles_unique, partitions)
        seen: Counter[bytes] = Counter()
        last = 0
        deadline = time.monotonic() + 30
        while True:
            seen.clear()
            for record in read_topic(bootstrap_servers, topics.decisions, partitions):
                seen[record.key or b""] += 1
                last = max(last, record.timestamp_ms)
            if sum(seen.values()) >= passed_on or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        peak: dict[str, int] = {}
        for service in everyone:
            stage = service.name.rsplit("-", 1)[0]
            peak[stage] = max(peak.get(stage, 0), service.peak_rss)
        result = ChainResult(
            articles=n,
            seconds=(last - started) / 1000,
            startup_seconds=started / 1000 - spawned,
            passed_on=passed_on,
            decisions=sum(seen.values()),
            duplicate_decisions=sum(seen.values()) - len(seen),
            peak_rss=peak,
            cpu=cpu,
        )
        print(
            f"  {chain} x{replicas}: {result.per_second:,.0f} articles/s over "
            f"{result.seconds:.1f}s (+{result.startup_seconds:.1f}s start-up), "
            f"{result.passed_on:,} passed on, {result.decisions:,} decisions",
            flush=True,
        )
        print(
            "    CPU per article: "
            + ", ".join(f"{k} {v:.0f} µs" for k, v in result.cpu_us_per_article().items()),
            flush=True,
        )
        return result
