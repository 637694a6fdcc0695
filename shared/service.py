"""Process wiring shared by every service: logging, metrics registry, health server, signals.

A service's ``__main__`` builds its settings and definition and calls :func:`run_consumer` (or,
for the poller, runs its source loop inside a :class:`ServiceProcess`).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

import redis
import structlog
from prometheus_client import CollectorRegistry

from dmzwatch import __version__
from dmzwatch.shared.claims import connect_redis, redis_probe
from dmzwatch.shared.clock import Clock, SystemClock
from dmzwatch.shared.health import Health, HealthServer
from dmzwatch.shared.kafka import broker_probe, make_consumer, make_producer
from dmzwatch.shared.logs import configure_logging
from dmzwatch.shared.messages import M
from dmzwatch.shared.metrics import ServiceInfo, StageMetrics
from dmzwatch.shared.runner import ConsumerDefinition, Runner, RunnerOptions
from dmzwatch.shared.settings import CommonSettings

log = structlog.get_logger(__name__)


@dataclass
class ServiceProcess:
    """The per-process plumbing of one stage."""

    stage: str
    settings: CommonSettings
    registry: CollectorRegistry
    health: Health
    clock: Clock
    server: HealthServer

    @classmethod
    def start(
        cls,
        stage: str,
        settings: CommonSettings,
        port: int,
        *,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
    ) -> ServiceProcess:
        configure_logging(settings.log_level, settings.log_format)
        clock = clock or SystemClock()
        registry = registry or CollectorRegistry()
        health = Health(clock)
        ServiceInfo(stage, __version__, registry)
        health.add_probe("broker", lambda: broker_probe(settings.bootstrap_servers))
        server = HealthServer(health, registry, settings.metrics_host, port).start()
        log.info(
            "service_starting",
            stage=stage,
            version=__version__,
            metrics_port=server.port,
            kafka=settings.kafka_bootstrap_servers,
            redis=settings.masked_redis_url(),
            topic_prefix=settings.topic_prefix,
        )
        return cls(stage, settings, registry, health, clock, server)

    def on_stop_signal(self, stop: Callable[[], None]) -> None:
        """Call ``stop`` on SIGTERM or SIGINT (drain and exit cleanly)."""

        def handler(signum: int, _frame: FrameType | None) -> None:
            log.info("stop_signal", stage=self.stage, signal=signal.Signals(signum).name)
            stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def close(self) -> None:
        self.server.stop()


def run_consumer(process: ServiceProcess, definition: ConsumerDefinition[M]) -> None:
    """Run ``definition`` with real Kafka clients until SIGTERM/SIGINT."""
    settings = process.settings
    metrics = StageMetrics(definition.stage, process.registry)
    health = process.health
    health.on_change = lambda ready: metrics.ready.set(1 if ready else 0)
    consumer = make_consumer(settings, definition.stage, definition.topics, definition.pattern)
    producer = make_producer(settings, client_id=f"dmzwatch-{definition.stage}")
    runner = Runner(
        definition,
        consumer,
        producer,
        deadletter_topic=settings.topics().deadletter,
        metrics=metrics,
        health=health,
        clock=process.clock,
        options=RunnerOptions(
            max_records=settings.max_poll_records,
            backoff_max_seconds=settings.retry_backoff_max_seconds,
        ),
    )
    process.on_stop_signal(runner.stop)
    try:
        runner.run()
    finally:
        process.close()


def serve_with_redis(
    stage: str,
    settings: CommonSettings,
    port: int,
    build: Callable[[redis.Redis, CollectorRegistry, Clock], ConsumerDefinition[M]],
) -> None:
    """The ``main`` of a consuming service that keeps state in Redis."""
    process = ServiceProcess.start(stage, settings, port)
    url = settings.redis_url.get_secret_value()
    client = connect_redis(url)
    # Its own client, single-shot: /readyz answers within one timeout even while the handler's
    # client is retrying against a paused Redis.
    probe_client = connect_redis(url, retries=0)
    process.health.add_probe("redis", lambda: redis_probe(probe_client))
    run_consumer(process, build(client, process.registry, process.clock))
