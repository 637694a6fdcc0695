"""Classifier wiring: settings and collaborators into a consumer definition."""

from __future__ import annotations

import redis
from prometheus_client import CollectorRegistry

from dmzwatch.classifier.engine import Classifier
from dmzwatch.classifier.handler import ClassifierHandler
from dmzwatch.classifier.ledger import RedisAlertLedger
from dmzwatch.classifier.metrics import ClassifierMetrics
from dmzwatch.classifier.settings import ClassifierSettings
from dmzwatch.shared.claims import TRANSIENT_REDIS_ERRORS
from dmzwatch.shared.clock import Clock
from dmzwatch.shared.messages import UniqueArticle
from dmzwatch.shared.runner import ConsumerDefinition
from dmzwatch.shared.service import serve_with_redis

STAGE = "classifier"


def build(
    settings: ClassifierSettings,
    client: redis.Redis,
    registry: CollectorRegistry,
    clock: Clock,
    classifier: Classifier | None = None,
) -> ConsumerDefinition[UniqueArticle]:
    classifier = classifier or Classifier.from_taxonomy(settings.taxonomy_file)
    topics = settings.topics(classifier.categories)
    ledger = RedisAlertLedger(client, settings.redis_key_prefix, settings.alert_ttl_seconds)
    handler = ClassifierHandler(
        classifier,
        ledger,
        topics,
        ClassifierMetrics(classifier.categories, registry),
        clock,
        settings.corroboration_sources,
    )
    return ConsumerDefinition(
        stage=STAGE,
        topics=(topics.articles_unique,),
        message_type=UniqueArticle,
        handler=handler,
        retryable=TRANSIENT_REDIS_ERRORS,
    )


def main() -> None:
    settings = ClassifierSettings()
    serve_with_redis(
        STAGE, settings, settings.metrics_port, lambda c, r, k: build(settings, c, r, k)
    )
