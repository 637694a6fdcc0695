"""Dedup's handler: raw article in, unique article (with its story) out, repeats dropped."""

from __future__ import annotations

from collections.abc import Sequence

from dmzwatch.dedup.metrics import DedupMetrics
from dmzwatch.dedup.store import SeenStore
from dmzwatch.shared.clock import Clock
from dmzwatch.shared.messages import Article, UniqueArticle
from dmzwatch.shared.runner import Context, Handler, Output
from dmzwatch.shared.topics import TopicCatalogue


class DedupHandler(Handler[Article]):
    """Passes on first sightings and updates (a changed text under a known id), each with its
    story and the story's outlets so far; drops unchanged repeats."""

    def __init__(
        self, store: SeenStore, topics: TopicCatalogue, metrics: DedupMetrics, clock: Clock
    ) -> None:
        self._store = store
        self._topic = topics.articles_unique
        self._metrics = metrics
        self._clock = clock

    def handle(self, message: Article, context: Context) -> Sequence[Output]:
        sighting = self._store.remember(message, context.token)
        if sighting.duplicate is not None:
            self._metrics.duplicates[sighting.duplicate].inc()
            return ()
        self._metrics.matches[sighting.match].inc()
        if sighting.match != "update":
            (self._metrics.syndicated if sighting.syndicated else self._metrics.unique).inc()
        unique = UniqueArticle(
            **message.model_dump(),
            story_id=sighting.story_id,
            first_seen_at=sighting.first_seen or self._clock.now(),
            revision=sighting.revision,
            story_outlets=sighting.outlets or (message.source,),
        )
        return (Output(self._topic, message.article_id, unique),)
