"""Notifier wiring: settings and collaborators into a consumer definition."""

from __future__ import annotations

import os

import httpx
import redis
from prometheus_client import CollectorRegistry

from dmzwatch.notifier.channels import WebhookChannel
from dmzwatch.notifier.handler import DeliveryPolicy, NotifierHandler, Route
from dmzwatch.notifier.metrics import NotifierMetrics
from dmzwatch.notifier.settings import NotifierSettings
from dmzwatch.notifier.subscriptions import load_subscriptions
from dmzwatch.shared.claims import TRANSIENT_REDIS_ERRORS, RedisClaims
from dmzwatch.shared.clock import Clock
from dmzwatch.shared.messages import Alert
from dmzwatch.shared.runner import ConsumerDefinition
from dmzwatch.shared.service import serve_with_redis

STAGE = "notifier"


def build(
    settings: NotifierSettings,
    client: redis.Redis,
    registry: CollectorRegistry,
    clock: Clock,
    environ: dict[str, str] | None = None,
) -> ConsumerDefinition[Alert]:
    http = httpx.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False)
    environ = dict(os.environ) if environ is None else environ  # read once, at start-up
    routes = [
        Route(sub, WebhookChannel(sub.name, sub.webhook.resolve(environ), http))
        for sub in load_subscriptions(settings.subscriptions_file)
    ]
    topics = settings.topics()
    handler = NotifierHandler(
        routes,
        RedisClaims(client, settings.redis_key_prefix),
        topics.deadletter,
        NotifierMetrics(registry),
        clock,
        DeliveryPolicy(attempts=settings.delivery_attempts),
        on_close=http.close,
    )
    return ConsumerDefinition(
        stage=STAGE,
        topics=(),
        pattern=topics.alerts_pattern,
        message_type=Alert,
        handler=handler,
        retryable=TRANSIENT_REDIS_ERRORS,
    )


def main() -> None:
    settings = NotifierSettings()
    serve_with_redis(
        STAGE, settings, settings.metrics_port, lambda c, r, k: build(settings, c, r, k)
    )
