"""The topic catalogue: every topic name dmzwatch uses, in one place.

Names are ``<prefix>.<name>``; the prefix defaults to ``dmzwatch`` and lets tests (and several
deployments sharing one cluster) isolate themselves. Alert topics follow the taxonomy: one per
category, so adding a category to the taxonomy adds its topic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_PREFIX = "dmzwatch"
DEFAULT_PARTITIONS = 6
DEFAULT_CATEGORIES: tuple[str, ...] = ("purge", "summit", "defection")


@dataclass(frozen=True, slots=True)
class TopicCatalogue:
    """Topic names for one deployment (a prefix) and its alert categories."""

    prefix: str = DEFAULT_PREFIX
    categories: tuple[str, ...] = DEFAULT_CATEGORIES

    @property
    def articles_raw(self) -> str:
        return f"{self.prefix}.articles.raw"

    @property
    def articles_unique(self) -> str:
        return f"{self.prefix}.articles.unique"

    @property
    def decisions(self) -> str:
        return f"{self.prefix}.decisions"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}.deadletter"

    def alert(self, category: str) -> str:
        """The alert topic of one category; raises ``ValueError`` for an unknown category."""
        if category not in self.categories:
            raise ValueError(f"unknown alert category {category!r}; known: {self.categories}")
        return f"{self.prefix}.alerts.{category}"

    @property
    def alerts(self) -> tuple[str, ...]:
        return tuple(self.alert(c) for c in self.categories)

    @property
    def alerts_pattern(self) -> str:
        """A regular expression matching every alert topic, present and future."""
        return "^" + re.escape(f"{self.prefix}.alerts.") + r"[a-z0-9_]+$"

    def category_of(self, alert_topic: str) -> str:
        """The category of an alert topic; raises ``ValueError`` for any other topic."""
        head = f"{self.prefix}.alerts."
        category = alert_topic.removeprefix(head)
        if category == alert_topic or not category:
            raise ValueError(f"{alert_topic!r} is not an alert topic of this catalogue")
        return category

    def all(self) -> tuple[str, ...]:
        return (
            self.articles_raw,
            self.articles_unique,
            self.decisions,
            *self.alerts,
            self.deadletter,
        )

    def with_categories(self, categories: Iterable[str]) -> TopicCatalogue:
        return TopicCatalogue(prefix=self.prefix, categories=tuple(categories))
