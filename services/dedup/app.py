"""Dedup wiring: settings and collaborators into a consumer definition."""

from __future__ import annotations

import redis
from prometheus_client import CollectorRegistry

from dmzwatch.dedup.handler import DedupHandler
from dmzwatch.dedup.index import StreamStoryIndex
from dmzwatch.dedup.keys import KeyLayout
from dmzwatch.dedup.metrics import DedupMetrics
from dmzwatch.dedup.outlets import Outlets
from dmzwatch.dedup.records import RedisRecords
from dmzwatch.dedup.settings import DedupSettings
from dmzwatch.dedup.stories import StoryStore
from dmzwatch.shared.claims import TRANSIENT_REDIS_ERRORS
from dmzwatch.shared.clock import Clock
from dmzwatch.shared.messages import Article
from dmzwatch.shared.runner import ConsumerDefinition
from dmzwatch.shared.service import serve_with_redis

STAGE = "dedup"


def redis_store(settings: DedupSettings, client: redis.Redis, clock: Clock) -> StoryStore:
    """The SeenStore of ``settings`` on ``client`` (see ``keys`` for what it writes)."""
    layout = KeyLayout(settings.redis_key_prefix, settings.dedup_shards)
    window = settings.story_window_seconds
    return StoryStore(
        RedisRecords(
            client,
            layout,
            "x",
            settings.dedup_ttl_seconds,
            clock,
            declare_keys=settings.dedup_declare_keys,
        ),
        StreamStoryIndex(client, layout, window, clock) if settings.near_duplicates else None,
        Outlets(settings.outlet_aliases),
        clock,
        window_seconds=window,
        threshold=settings.similarity_threshold,
    )


def build(
    settings: DedupSettings, client: redis.Redis, registry: CollectorRegistry, clock: Clock
) -> ConsumerDefinition[Article]:
    return ConsumerDefinition(
        stage=STAGE,
        topics=(settings.topics().articles_raw,),
        message_type=Article,
        handler=DedupHandler(
            redis_store(settings, client, clock), settings.topics(), DedupMetrics(registry), clock
        ),
        retryable=TRANSIENT_REDIS_ERRORS,
    )


def main() -> None:
    settings = DedupSettings()
    serve_with_redis(
        STAGE, settings, settings.metrics_port, lambda c, r, k: build(settings, c, r, k)
    )
