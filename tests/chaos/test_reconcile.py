"""The chaos table's arithmetic on a scripted cluster: what counts as lost, doubled, drained."""

from __future__ import annotations

import random
import time
from collections import Counter
from types import SimpleNamespace
from typing import Any

from chaos.cluster import Outputs
from chaos.feeds import Offered
from chaos.harness import Fault, Reconciler, format_row


class FakeCluster:
    def __init__(self) -> None:
        self.outputs = Outputs()
        self.offered: list[Offered] = []
        self.delivered: list[Counter[tuple[str, int]]] = [Counter(), Counter()]
        self.reader = SimpleNamespace(snapshot=self.snapshot)
        self.feeds = SimpleNamespace(offered_between=self.offered_between)
        self.receivers = [SimpleNamespace(keys=lambda c=c: Counter(c)) for c in self.delivered]

    def snapshot(self) -> Outputs:
        o = self.outputs
        return Outputs(Counter(o.decisions), Counter(o.alerts), o.deadletters, o.records)

    def offered_between(self, start: float, end: float) -> list[Offered]:
        return [o for o in self.offered if start <= o.at < end]

    def offer(self, article_id: str) -> None:
        self.offered.append(Offered(article_id, "f", False, time.monotonic()))


def run(cluster: FakeCluster, action: Any, drain: float = 1.0):
    reconciler = Reconciler(cluster, drain)  # type: ignore[arg-type]
    return reconciler.run(Fault("scripted", action), random.Random(1), time.monotonic() - 1)


def test_a_clean_row_drains_and_counts_every_article() -> None:
    cluster = FakeCluster()

    def fault(_cluster: object, _rng: random.Random) -> None:
        for n in range(3):
            cluster.offer(f"a{n}")
            cluster.outputs.decisions[f"a{n}"] += 1
        cluster.outputs.alerts[("al-1", 1)] += 1
        for receiver in cluster.delivered:
            receiver[("al-1", 1)] += 1

    row, _ = run(cluster, fault)
    assert (row.articles_in, row.decided, row.lost) == (3, 3, 0)
    assert row.ok and row.recover_seconds is not None
    assert format_row(row).startswith("| scripted | 3 | 3 | 0 |")


def test_lost_duplicated_and_undelivered_are_reported() -> None:
    cluster = FakeCluster()
    cluster.outputs.decisions["old"] = 2  # a duplicate from before the row is not this row's

    def fault(_cluster: object, _rng: random.Random) -> None:
        cluster.offer("kept")
        cluster.offer("lost")
        cluster.outputs.decisions["kept"] += 2  # re-processed after a crash
        cluster.outputs.alerts[("al-2", 1)] += 2
        cluster.delivered[0][("al-2", 1)] += 2  # notified twice
        # the second receiver never gets it

    row, _ = run(cluster, fault)
    assert (row.articles_in, row.decided, row.lost) == (2, 1, 1)
    assert row.duplicated_decisions == 1
    assert row.duplicated_alerts == 1
    assert row.duplicated_notifications == 1
    assert row.undelivered == 1
    assert row.recover_seconds is None  # it never drained
    assert not row.ok
