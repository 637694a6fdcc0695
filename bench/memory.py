"""Resident size of each service when idle (issue 9: at most 150 MB each).

poller (one feed on 127.0.0.1), dedup, classifier and notifier are started as processes, left
ready with nothing to do for ``SETTLE`` seconds, and their RSS read from ``/proc``. Dedup keeps
a copy of the story window in memory, so it is measured a second time idle with a full window:
``WINDOW_STORIES`` stories (72 hours of 10,000 new stories a day, more than the expected
volume) are put in the index first and one article makes dedup load them. Sizes under load come
from the benchmarks that load them (replay, latency, detection).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import redis

from bench.articles import ArticleFactory, encoded
from bench.figures import Figure
from bench.livefeeds import LiveFeeds
from bench.stack import REDIS_URL, BenchStack, Broker, produce_all, wait_until
from dmzwatch.dedup.index import NewStory, StreamStoryIndex
from dmzwatch.dedup.keys import KeyLayout
from dmzwatch.dedup.settings import DedupSettings
from dmzwatch.dedup.signature import Signer
from dmzwatch.shared.clock import SystemClock

SERVICES = ("poller", "dedup", "classifier", "notifier")
SETTLE = 5.0
WINDOW_STORIES = 30_000
LIMIT_MB = 150
MB = 1024 * 1024


def measure(bootstrap_servers: str) -> dict[str, int]:
    feeds = LiveFeeds(1).start()
    try:
        with tempfile.TemporaryDirectory() as tmp, BenchStack(bootstrap_servers, "idle") as stack:
            feeds.publish(0, "Nothing new", "An item polled once and then left alone.")
            stack.create_topics()
            stack.extra_env.update(
                {
                    "DMZWATCH_FEEDS_FILE": str(feeds.feed_list(Path(tmp) / "feeds.yaml", 60)),
                    "DMZWATCH_FETCH_ALLOW_NETWORKS": f"127.0.0.1:{feeds.port}",
                }
            )
            services = [stack.start(name) for name in SERVICES]
            stack.wait_ready(services)
            time.sleep(SETTLE)
            return {name: s.rss() for name, s in zip(SERVICES, services, strict=True)}
    finally:
        feeds.stop()


def fill_window(redis_prefix: str, stories: int) -> None:
    """Put ``stories`` distinct stories in the near-duplicate index under ``redis_prefix``."""
    settings = DedupSettings()
    client = redis.Redis.from_url(REDIS_URL)
    try:
        index = StreamStoryIndex(
            client,
            KeyLayout(redis_prefix, settings.dedup_shards),
            settings.story_window_seconds,
            SystemClock(),
        )
        factory = ArticleFactory(seed=17, run="window")
        signer = Signer()
        for start in range(0, stories, 1000):
            articles = [factory.story() for _ in range(min(1000, stories - start))]
            signed = signer.sign_many([(a.title, a.text) for a in articles])
            batch = [
                NewStory(a.article_id, sig.packed, sig.bands)
                for a, sig in zip(articles, signed, strict=True)
                if sig is not None
            ]
            version = index.lookup(batch[0].bands).version
            if not index.create_many(batch, version):
                raise RuntimeError("the index moved while it was being filled")
    finally:
        client.close()


def measure_window(bootstrap_servers: str, stories: int = WINDOW_STORIES) -> int:
    """Dedup's RSS idle after loading a window of ``stories`` stories."""
    with BenchStack(bootstrap_servers, "window") as stack:
        stack.create_topics()
        fill_window(stack.redis_prefix, stories)
        dedup = stack.start("dedup")
        stack.wait_ready([dedup])
        one = encoded(ArticleFactory(seed=18, run="window-probe").mix(1))
        produce_all(bootstrap_servers, stack.catalogue.articles_raw, one)
        wait_until(
            lambda: dedup.counter("dmzwatch_messages_total", outcome="in") >= 1,
            60,
            "memory: dedup loads the window",
            [dedup],
        )
        time.sleep(SETTLE)
        return dedup.rss()


def figures() -> list[Figure]:
    with Broker() as servers:
        sizes = measure(servers)
        window = measure_window(servers)
    return [
        Figure(
            "memory_dedup_idle_window_mb",
            window / MB,
            "MB",
            LIMIT_MB,
            higher_is_better=False,
            note=f"RSS {SETTLE:.0f}s idle after loading {WINDOW_STORIES:,} stories in the window",
        ),
        *(
            Figure(
                f"memory_{name}_idle_mb",
                size / MB,
                "MB",
                LIMIT_MB,
                higher_is_better=False,
                note=f"RSS after {SETTLE:.0f}s ready and idle",
            )
            for name, size in sizes.items()
        ),
    ]
