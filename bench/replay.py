"""Replay throughput (issue 9): ``ARTICLES`` raw articles through dedup and classifier as
separate processes, and through a pass-through chain of the same shape in the same run.

The articles (``bench/articles.py``: ~2 KB each, new stories, rewrites, copies, repeats and
alert-worthy ones) are produced to ``articles.raw`` before the stages start; see
``bench/chain.py`` for what is timed. The services' resident sizes under this load are reported
too.
"""

from __future__ import annotations

from bench.articles import ArticleFactory, encoded
from bench.chain import replay
from bench.figures import Figure
from bench.stack import Broker

ARTICLES = 100_000
MB = 1024 * 1024


def figures() -> list[Figure]:
    records = encoded(ArticleFactory(seed=3, run="replay").mix(ARTICLES))
    size = sum(len(v) for _, v in records) / len(records)
    broker = Broker()
    with broker as servers:
        relay = replay(servers, records, "relay", broker_pid=broker.pid)
    broker = Broker()
    with broker as servers:
        real = replay(servers, records, "services", broker_pid=broker.pid)
    note = (
        f"{ARTICLES:,} raw articles of {size:,.0f} B ({real.passed_on:,} unique); "
        f"start-up {real.startup_seconds:.1f}s not counted"
    )
    return [
        Figure("replay_articles_per_second", real.per_second, "articles/s", 5000, note=note),
        Figure(
            "replay_passthrough_articles_per_second",
            relay.per_second,
            "articles/s",
            note="same chain shape, handlers only decode, encode and forward",
        ),
        Figure(
            "replay_ratio_to_passthrough",
            real.per_second / relay.per_second,
            "ratio",
            0.5,
            note="same run",
        ),
        Figure(
            "replay_duplicate_decisions",
            real.duplicate_decisions,
            "decisions",
            note=f"{real.decisions:,} decisions; must be 0",
        ),
        *(
            Figure(f"memory_{stage}_load_mb", rss / MB, "MB", note="RSS peak during the replay")
            for stage, rss in real.peak_rss.items()
        ),
        *(
            Figure(
                f"replay_cpu_us_per_article_{chain}_{name}",
                value,
                "µs",
                note="CPU time of the process (all replicas) from spawn to the last commit, per "
                "raw article: where the time goes (2 cores shared by all of them)",
            )
            for chain, result in (("services", real), ("passthrough", relay))
            for name, value in result.cpu_us_per_article().items()
        ),
    ]
