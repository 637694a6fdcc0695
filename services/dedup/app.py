"""Dedup wiring: settings and collaborators into a consumer definition."""

from __future__ import annotations

import redis
from prometheus_client import CollectorRegistry

from dmzwatch.dedup.handler import DedupHandler
from dmzwatch.dedup.metrics import DedupMetrics
from dmzwatch.dedup.settings import DedupSettings
from dmzwatch.dedup.store import ClaimSeenStore
from dmzwatch.shared.claims import TRANSIENT_REDIS_ERRORS, RedisClaims
from dmzwatch.shared.clock import Clock
from dmzwatch.shared.messages import Article
from dmzwatch.shared.runner import ConsumerDefinition
from dmzwatch.shared.service import serve_with_redis

STAGE = "dedup"


def build(
    settings: DedupSettings, client: redis.Redis, registry: CollectorRegistry, clock: Clock
) -> ConsumerDefinition[Article]:
    topics = settings.topics()
    store = ClaimSeenStore(
        RedisClaims(client, settings.redis_key_prefix), settings.dedup_ttl_seconds
    )
    return ConsumerDefinition(
        stage=STAGE,
        topics=(topics.articles_raw,),
        message_type=Article,
        handler=DedupHandler(store, topics, DedupMetrics(registry), clock),
        retryable=TRANSIENT_REDIS_ERRORS,
    )


def main() -> None:
    settings = DedupSettings()
    serve_with_redis(
        STAGE, settings, settings.metrics_port, lambda c, r, k: build(settings, c, r, k)
    )
