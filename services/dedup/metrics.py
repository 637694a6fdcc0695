"""Dedup's own metrics (the runner's standard ones are in ``dmzwatch.shared.metrics``).

- ``dmzwatch_dedup_duplicates_total{kind}``: articles dropped as repeats, by kind
  (url, guid, id, content — see ``store.DuplicateKind``).
- ``dmzwatch_dedup_unique_total{syndicated}``: first versions passed on; ``syndicated="true"``
  when the article joined a story another article started (a copy or a rewrite).
- ``dmzwatch_dedup_stories_total{match}``: articles passed on by how they found their story
  (new, exact, near, update — see ``store.Match``); ``update`` counts changed texts of known
  articles.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from dmzwatch.dedup.store import DUPLICATE_KINDS, MATCHES


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
            "First versions passed on, by whether they joined a story another article started.",
            ["syndicated"],
            registry=registry,
        )
        self.unique = unique.labels("false")
        self.syndicated = unique.labels("true")
        matches = Counter(
            "dmzwatch_dedup_stories_total",
            "Articles passed on, by how they found their story.",
            ["match"],
            registry=registry,
        )
        self.matches = {match: matches.labels(match) for match in MATCHES}
