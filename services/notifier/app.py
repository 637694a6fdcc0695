"""Notifier wiring: settings and collaborators into a consumer definition plus its workers.

The runner's thread schedules deliveries (``handler``); a worker thread per subscription makes
them (``dispatcher``); a watcher thread reloads the subscriptions (and so does SIGHUP).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from types import FrameType

import redis
from prometheus_client import CollectorRegistry

from dmzwatch.notifier.deadletters import DeadLetterSink, KafkaDeadLetters
from dmzwatch.notifier.dispatcher import Dispatcher
from dmzwatch.notifier.handler import NotifierHandler
from dmzwatch.notifier.metrics import NotifierMetrics
from dmzwatch.notifier.redis_outbox import RedisOutbox
from dmzwatch.notifier.routes import Route, make_routes
from dmzwatch.notifier.settings import NotifierSettings
from dmzwatch.notifier.subscriptions import Subscription
from dmzwatch.notifier.watcher import SubscriptionWatcher
from dmzwatch.shared.claims import TRANSIENT_REDIS_ERRORS
from dmzwatch.shared.clock import Clock
from dmzwatch.shared.kafka import make_producer
from dmzwatch.shared.messages import Alert
from dmzwatch.shared.runner import ConsumerDefinition
from dmzwatch.shared.service import serve_with_redis

STAGE = "notifier"


@dataclass(frozen=True)
class Notifier:
    """The assembled service: what the runner runs, and the parts around it."""

    definition: ConsumerDefinition[Alert]
    dispatcher: Dispatcher
    watcher: SubscriptionWatcher


def assemble(
    settings: NotifierSettings,
    client: redis.Redis,
    registry: CollectorRegistry,
    clock: Clock,
    environ: Mapping[str, str] | None = None,
    deadletters: DeadLetterSink | None = None,
) -> Notifier:
    """Build and start the notifier's workers; raises ``ConfigurationError`` on bad
    subscriptions or missing secrets (refuse to start). ``handler.close()`` stops it all."""
    environ = dict(os.environ) if environ is None else environ  # read once, at start-up
    metrics = NotifierMetrics(registry)
    outbox = RedisOutbox(client, settings.redis_key_prefix)
    topics = settings.topics()
    sink = deadletters or KafkaDeadLetters(
        topics.deadletter, lambda: make_producer(settings, client_id="dmzwatch-notifier-dlq")
    )
    dispatcher = Dispatcher(outbox, sink, metrics, clock, settings.worker_options())

    def routes_for(subscriptions: tuple[Subscription, ...]) -> tuple[Route, ...]:
        return make_routes(subscriptions, environ, clock, settings.webhook_timeout_seconds)

    watcher = SubscriptionWatcher(
        settings.subscriptions_file,
        routes_for,
        dispatcher.apply,
        metrics,
        settings.subscriptions_reload_seconds,
    )
    try:
        watcher.load()
    except Exception:
        dispatcher.stop(0)
        raise
    watcher.start()

    def close() -> None:
        watcher.stop()
        dispatcher.stop(settings.webhook_timeout_seconds + 1)
        sink.close()

    handler = NotifierHandler(
        dispatcher.routes, outbox, metrics, clock, wake=dispatcher.wake, on_close=close
    )
    definition = ConsumerDefinition(
        stage=STAGE,
        topics=(),
        pattern=topics.alerts_pattern,
        message_type=Alert,
        handler=handler,
        retryable=TRANSIENT_REDIS_ERRORS,
    )
    return Notifier(definition, dispatcher, watcher)


def build(
    settings: NotifierSettings,
    client: redis.Redis,
    registry: CollectorRegistry,
    clock: Clock,
    environ: Mapping[str, str] | None = None,
) -> ConsumerDefinition[Alert]:
    """The notifier's consumer definition (its workers already running)."""
    return assemble(settings, client, registry, clock, environ).definition


def main() -> None:
    settings = NotifierSettings()

    def make(
        client: redis.Redis, registry: CollectorRegistry, clock: Clock
    ) -> ConsumerDefinition[Alert]:
        notifier = assemble(settings, client, registry, clock)

        def on_sighup(_signum: int, _frame: FrameType | None) -> None:
            notifier.watcher.request()

        signal.signal(signal.SIGHUP, on_sighup)
        return notifier.definition

    serve_with_redis(STAGE, settings, settings.metrics_port, make)
