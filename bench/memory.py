"""Resident size of each service when idle (issue 9: at most 150 MB each).

poller (one feed on 127.0.0.1), dedup, classifier and notifier are started as processes, left
ready with nothing to do for ``SETTLE`` seconds, and their RSS read from ``/proc``. Sizes under
load come from the benchmarks that load them (replay, latency, detection).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.figures import Figure
from bench.livefeeds import LiveFeeds
from bench.stack import BenchStack, Broker

SERVICES = ("poller", "dedup", "classifier", "notifier")
SETTLE = 5.0
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


def figures() -> list[Figure]:
    with Broker() as servers:
        sizes = measure(servers)
    return [
        Figure(
            f"memory_{name}_idle_mb",
            size / MB,
            "MB",
            LIMIT_MB,
            higher_is_better=False,
            note=f"RSS after {SETTLE:.0f}s ready and idle",
        )
        for name, size in sizes.items()
    ]
