"""Scale out (issue 9): dedup and classifier with one and with two replicas each in the same
consumer groups, on the same replay; throughput, and decisions made twice (must be 0).

Both replicas of a stage start together against pre-produced topics (6 partitions), so the
group's first assignment may be followed by a rebalance while they work; what the at-least-once
runner does then is part of what is measured. On a 2-core machine two replicas share the cores
with each other, the broker and Redis, so the speed-up here is a floor, not a forecast.
"""

from __future__ import annotations

from bench.articles import ArticleFactory, encoded
from bench.chain import replay
from bench.figures import Figure
from bench.stack import Broker

ARTICLES = 10_000


def figures() -> list[Figure]:
    records = encoded(ArticleFactory(seed=5, run="scale").mix(ARTICLES))
    out: list[Figure] = []
    rates = {}
    for replicas in (1, 2):
        with Broker() as servers:
            result = replay(servers, records, "services", replicas=replicas)
        rates[replicas] = result.per_second
        out += [
            Figure(
                f"scaleout_{replicas}_replicas_articles_per_second",
                result.per_second,
                "articles/s",
                note=f"{ARTICLES:,} articles, {replicas} dedup + {replicas} classifier",
            ),
            Figure(
                f"scaleout_{replicas}_replicas_duplicate_decisions",
                result.duplicate_decisions,
                "decisions",
                note=f"{result.decisions:,} decisions of {result.passed_on:,} unique; must be 0",
            ),
        ]
    out.append(Figure("scaleout_speedup", rates[2] / rates[1], "x", note="2 replicas over 1"))
    return out
