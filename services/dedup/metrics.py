"""Dedup's own metrics (the runner's standard ones are in ``dmzwatch.shared.metrics``).

- ``dmzwatch_dedup_duplicates_total{kind}``: articles dropped as repeats, by kind
  (url, guid, id, content — see ``store.DuplicateKind``).
- ``dmzwatch_dedup_unique_total{syndicated}``: articles passed on; ``syndicated="true"`` when a
  verbatim copy from another outlet joined an existing story.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from dmzwatch.dedup.store import DUPLICATE_KINDS


class DedupMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        duplicates = Counter(
            "dmzwatch_dedup_duplicates_total",
            "Articles dropped as repeats, by kind.",
            ["kind"],
            registry=registry,
        )
        self.duplicates = {kind: duplicates.labels(kind) for kind in DUPLICATE_KINDS}
        unique = Counter(
            "dmzwatch_dedup_unique_total",
            "Articles passed on, by whether they are another outlet's verbatim copy.",
            ["syndicated"],
            registry=registry,
        )
        self.unique = unique.labels("false")
        self.syndicated = unique.labels("true")
