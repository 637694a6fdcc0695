"""Detection latency: an item appears in a feed → its alert is on its topic, with the real
poller, dedup and classifier processes polling feeds every 5 s (issue 9).

``FEEDS`` feeds on 127.0.0.1 (``bench/livefeeds.py``) are polled with
``DMZWATCH_MIN_INTERVAL_SECONDS`` = ``DMZWATCH_MAX_INTERVAL_SECONDS`` = 5. Once the first polls
are through, an alert-worthy item is added to one feed every 0.5 s; its latency is the alert
record's timestamp minus the moment the item was first served. Polling alone makes this about
uniform on [0, 5 s], so the p99 limit is the poll interval plus 1 s. The poller's resident size
under this load is reported here too.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import orjson

from bench.articles import ArticleFactory
from bench.figures import Figure
from bench.livefeeds import LiveFeeds
from bench.stack import BenchStack, Broker, read_topic, wait_until

FEEDS = 20
INTERVAL = 5
ITEMS = 60
EVERY = 0.5
MB = 1024 * 1024


def measure(bootstrap_servers: str) -> tuple[list[float], int, int]:
    """Latencies (s) of the alerts seen, items published, and the poller's peak RSS."""
    feeds = LiveFeeds(FEEDS).start()
    factory = ArticleFactory(seed=21, run="live")
    with tempfile.TemporaryDirectory() as tmp, BenchStack(bootstrap_servers, "detect") as stack:
        for k in range(FEEDS):  # something to poll first: old, alert-free items
            old = factory.story()
            feeds.publish(k, old.title, old.content)
        stack.create_topics()
        stack.extra_env.update(
            {
                "DMZWATCH_FEEDS_FILE": str(feeds.feed_list(Path(tmp) / "feeds.yaml", INTERVAL)),
                "DMZWATCH_FETCH_ALLOW_NETWORKS": f"127.0.0.1:{feeds.port}",
                "DMZWATCH_MIN_INTERVAL_SECONDS": str(INTERVAL),
                "DMZWATCH_MAX_INTERVAL_SECONDS": str(INTERVAL),
                "DMZWATCH_FETCH_PER_HOST": "8",
            }
        )
        services = [stack.start(s) for s in ("dedup", "classifier", "poller")]
        stack.wait_ready(services)
        _dedup, classifier, poller = services
        stack.sample_memory()
        wait_until(
            lambda: classifier.counter("dmzwatch_messages_total", outcome="in") >= FEEDS,
            120,
            "detection: first polls",
            services,
        )
        published: dict[str, float] = {}
        categories = ("purge", "summit", "defection")
        started = time.monotonic()
        for i in range(ITEMS):
            time.sleep(max(0.0, started + i * EVERY - time.monotonic()))
            item = factory.story(categories[i % 3])
            published[item.title] = feeds.publish(i % FEEDS, item.title, item.content)
        topics = stack.catalogue

        def alerts() -> dict[str, float]:
            seen: dict[str, float] = {}
            for topic in topics.alerts:
                for record in read_topic(bootstrap_servers, topic, stack.partitions):
                    title = orjson.loads(record.value)["data"]["title"]
                    seen.setdefault(title, record.timestamp_ms / 1000)
            return seen

        with contextlib.suppress(TimeoutError):  # the missing ones count as missed below
            wait_until(
                lambda: len(published.keys() & alerts().keys()) >= ITEMS,
                INTERVAL * 4 + 10,
                "detection: alerts",
                services,
            )
        seen = alerts()
        feeds.stop()
        latencies = [seen[t] - at for t, at in published.items() if t in seen]
        return latencies, len(published), poller.peak_rss


def figures() -> list[Figure]:
    with Broker() as servers:
        latencies, published, poller_rss = measure(servers)
    if not latencies:
        return [Figure("detection_latency_poll_p99_seconds", float("inf"), "s", INTERVAL + 1.0)]
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    note = f"{len(latencies)} of {published} items alerted; {FEEDS} feeds polled every {INTERVAL}s"
    missed = published - len(latencies)
    p99 = cuts[98] if not missed else float("inf")
    return [
        Figure("detection_latency_poll_p50_seconds", cuts[49], "s", note=note),
        Figure(
            "detection_latency_poll_p99_seconds",
            p99,
            "s",
            INTERVAL + 1.0,
            higher_is_better=False,
            note=note if not missed else f"{note}: {missed} missed",
        ),
        Figure("memory_poller_load_mb", poller_rss / MB, "MB", note="RSS peak while polling"),
    ]
