"""Latency from raw publish to alert publish at 1,000 articles/s offered (issue 9).

dedup, classifier and notifier run as processes. After a warm-up, articles of the replay mix
are produced to ``articles.raw`` at ``RATE`` per second for ``SECONDS`` seconds with the
producer settings a poller uses (``make_producer``); each alert-worthy one is timed from its
raw record's timestamp (set at send) to its alert record's timestamp (set by the classifier's
producer at send), one clock. The notifier's resident size under this load is reported too.
"""

from __future__ import annotations

import contextlib
import statistics
import time

import orjson

from bench.articles import ArticleFactory, encoded
from bench.figures import Figure
from bench.stack import BenchStack, Broker, read_topic, wait_until
from dmzwatch.shared.kafka import make_producer
from dmzwatch.shared.settings import CommonSettings

RATE = 1000
SECONDS = 10
TICK = 0.01
MB = 1024 * 1024


def measure(bootstrap_servers: str) -> tuple[list[float], float, dict[str, int]]:
    """(latencies in s, rate offered, peak RSS per service)."""
    with BenchStack(bootstrap_servers, "latency") as stack:
        stack.create_topics()
        services = [stack.start(s) for s in ("dedup", "classifier", "notifier")]
        stack.wait_ready(services)
        dedup, classifier, _ = services
        stack.sample_memory()
        factory = ArticleFactory(seed=31, run="latency")
        producer = make_producer(
            CommonSettings(kafka_bootstrap_servers=bootstrap_servers), "bench-latency"
        )
        raw = stack.catalogue.articles_raw
        warm = encoded(factory.mix(200))
        for key, value in warm:
            producer.send(raw, value=value, key=key)
        producer.flush()
        wait_until(
            lambda: dedup.counter("dmzwatch_messages_total", outcome="in") >= len(warm),
            60,
            "latency: warm-up",
            services,
        )
        articles = factory.mix(RATE * SECONDS)
        records = encoded(articles)
        sent: dict[str, int] = {}
        per_tick = int(RATE * TICK)
        started = time.monotonic()
        for i in range(0, len(records), per_tick):
            time.sleep(max(0.0, started + (i // per_tick) * TICK - time.monotonic()))
            for article, (key, value) in zip(
                articles[i : i + per_tick], records[i : i + per_tick], strict=True
            ):
                at = int(time.time() * 1000)
                producer.send(raw, value=value, key=key, timestamp_ms=at)
                sent.setdefault(article.article_id, at)
        producer.flush()
        rate = len(records) / (time.monotonic() - started)
        producer.close()
        total = len(records) + len(warm)
        with contextlib.suppress(TimeoutError):
            wait_until(
                lambda: (
                    dedup.counter("dmzwatch_messages_total", outcome="in") >= total
                    and classifier.counter("dmzwatch_messages_total", outcome="in")
                    >= dedup.counter("dmzwatch_messages_total", outcome="out")
                ),
                120,
                "latency: drain",
                services,
            )
        latencies: list[float] = []
        for topic in stack.catalogue.alerts:
            for record in read_topic(bootstrap_servers, topic, stack.partitions):
                data = orjson.loads(record.value)["data"]
                at = sent.get(data["article_id"])
                if at is not None and data["version"] == 1:
                    latencies.append((record.timestamp_ms - at) / 1000)
        peaks = {s.name.rsplit("-", 1)[0]: s.peak_rss for s in services}
        return latencies, rate, peaks


def figures() -> list[Figure]:
    with Broker() as servers:
        latencies, rate, peaks = measure(servers)
    note = f"{len(latencies)} alerts; {rate:,.0f} articles/s offered for {SECONDS}s"
    out: list[Figure] = []
    if latencies:
        cuts = statistics.quantiles(latencies, n=100, method="inclusive")
        out += [
            Figure("latency_raw_to_alert_p50_ms", cuts[49] * 1000, "ms", note=note),
            Figure(
                "latency_raw_to_alert_p99_ms",
                cuts[98] * 1000,
                "ms",
                100,
                higher_is_better=False,
                note=note,
            ),
        ]
    else:
        out.append(Figure("latency_raw_to_alert_p99_ms", float("inf"), "ms", 100, False, note))
    out.append(
        Figure("memory_notifier_load_mb", peaks.get("notifier", 0) / MB, "MB", note="RSS peak")
    )
    return out
