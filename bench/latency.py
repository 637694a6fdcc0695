"""Latency from raw publish to alert publish at 1,000 articles/s offered (issue 9).

dedup, classifier and notifier run as processes. After a warm-up, articles of the replay mix
are produced to ``articles.raw`` at ``RATE`` per second for ``SECONDS`` seconds with the
producer settings a poller uses (``make_producer``); each alert-worthy one is timed from its
raw record's timestamp (set at send) to its alert record's timestamp (set by the classifier's
producer at send), one clock. The same at ``LOW_RATE`` shows the latency below dedup's
capacity. The notifier's resident size under load is reported too.
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
LOW_RATE = 200  # below dedup's capacity on a loaded 2-core machine: what latency is there
SECONDS = 10
TICK = 0.01
MB = 1024 * 1024


def measure(bootstrap_servers: str, rate: int = RATE) -> tuple[list[float], float, dict[str, int]]:
    """(latencies in s, rate offered, peak RSS per service) at ``rate`` articles/s."""
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
        articles = factory.mix(rate * SECONDS)
        records = encoded(articles)
        sent: dict[str, int] = {}
        per_tick = max(1, int(rate * TICK))
        started = time.monotonic()
        for i in range(0, len(records), per_tick):
            time.sleep(max(0.0, started + i / rate - time.monotonic()))
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
    out: list[Figure] = []
    peaks: dict[str, int] = {}
    for rate in (RATE, LOW_RATE):
        with Broker() as servers:
            latencies, offered, peaks = measure(servers, rate)
        suffix = "" if rate == RATE else f"_at_{rate}"
        limit = 100 if rate == RATE else None
        note = f"{len(latencies)} alerts; {offered:,.0f} articles/s offered for {SECONDS}s"
        if not latencies:
            out.append(Figure(f"latency_raw_to_alert_p99_ms{suffix}", float("inf"), "ms", limit))
            continue
        cuts = statistics.quantiles(latencies, n=100, method="inclusive")
        out += [
            Figure(f"latency_raw_to_alert_p50_ms{suffix}", cuts[49] * 1000, "ms", note=note),
            Figure(
                f"latency_raw_to_alert_p99_ms{suffix}",
                cuts[98] * 1000,
                "ms",
                limit,
                higher_is_better=False,
                note=note,
            ),
        ]
        if rate == RATE:
            out.append(
                Figure(
                    "memory_notifier_load_mb",
                    peaks.get("notifier", 0) / MB,
                    "MB",
                    note="RSS peak",
                )
            )
    return out
