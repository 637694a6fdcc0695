"""Dedup wiring: settings and collaborators into a consumer definition."""

from __future__ import annotations

import redis
from prometheus_client import CollectorRegistry

from dmzwatch.dedup.handler import DedupHandler
from dmzwatch.dedup.metrics import DedupMetrics
from dmzwatch.dedup.settings import DedupSettings
from dmzwatch.dedup.store import ClaimSeenStore
from dmzwatch.shared.claims import TRANSIENT_REDIS_ERRORS, RedisClaims, connect_redis, redis_probe
from dmzwatch.shared.clock import Clock
from dmzwatch.shared.messages import Article
from dmzwatch.shared.runner import ConsumerDefinition
from dmzwatch.shared.service import ServiceProcess, run_consumer

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
    process = ServiceProcess.start(STAGE, settings, settings.metrics_port)
    client = connect_redis(settings.redis_url.get_secret_value())
    process.health.add_probe("redis", lambda: redis_probe(client))
    run_consumer(process, build(settings, client, process.registry, process.clock))
