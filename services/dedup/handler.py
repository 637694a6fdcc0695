"""Dedup's handler: raw article in, unique article (with its story) out, repeats dropped."""

from __future__ import annotations

from collections.abc import Sequence

from dmzwatch.dedup.metrics import DedupMetrics
from dmzwatch.dedup.store import SeenStore, Sighting
from dmzwatch.shared.clock import Clock
from dmzwatch.shared.messages import Article, UniqueArticle
from dmzwatch.shared.runner import BatchHandler, Context, Output, Result
from dmzwatch.shared.topics import TopicCatalogue


class DedupHandler(BatchHandler[Article]):
    """Passes on first sightings and updates (a changed text under a known id), each with its
    story and the story's outlets so far; drops unchanged repeats. A poll's batch is remembered
    at once (``SeenStore.remember_many``: a few pipelined Redis round trips, not ~8 per article).
    """

    def __init__(
        self, store: SeenStore, topics: TopicCatalogue, metrics: DedupMetrics, clock: Clock
    ) -> None:
        self._store = store
        self._topic = topics.articles_unique
        self._metrics = metrics
        self._clock = clock

    def handle(self, message: Article, context: Context) -> Sequence[Output]:
        return self._outputs(message, self._store.remember(message, context.token))

    def handle_batch(self, items: Sequence[tuple[Article, Context]]) -> Sequence[Result]:
        sightings = self._store.remember_many([(m, c.token) for m, c in items])
        return [
            s if isinstance(s, Exception) else self._outputs(m, s)
            for (m, _), s in zip(items, sightings, strict=True)
        ]

    def _outputs(self, message: Article, sighting: Sighting) -> Sequence[Output]:
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
