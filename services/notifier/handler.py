"""Notifier handler: logs every alert and delivers it to each matching subscription once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from dmzwatch.notifier.channels import Channel, DeliveryError
from dmzwatch.notifier.metrics import NotifierMetrics
from dmzwatch.notifier.subscriptions import Subscription
from dmzwatch.shared.claims import Claims
from dmzwatch.shared.clock import Clock
from dmzwatch.shared.messages import Alert, encode
from dmzwatch.shared.runner import Backoff, Context, Handler, Output, dead_letter

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Route:
    subscription: Subscription
    channel: Channel


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    attempts: int = 4
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 5.0
    ledger_ttl_seconds: int = 30 * 86400


class NotifierHandler(Handler[Alert]):
    """One alert in; deliveries as side effects; a dead letter per delivery given up on.

    The delivery ledger (a claim per subscription, alert id and version, written after a
    successful delivery) makes re-delivered alerts and duplicate alerts notify once.
    """

    def __init__(
        self,
        routes: Sequence[Route],
        ledger: Claims,
        deadletter_topic: str,
        metrics: NotifierMetrics,
        clock: Clock,
        policy: DeliveryPolicy = DeliveryPolicy(),
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._routes = tuple(routes)
        self._ledger = ledger
        self._deadletter_topic = deadletter_topic
        self._metrics = metrics
        self._clock = clock
        self._policy = policy
        self._on_close = on_close

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()

    def handle(self, message: Alert, context: Context) -> Sequence[Output]:
        data = message.data
        self._metrics.alerts.labels(data.category).inc()
        log.info(
            "alert",
            alert_id=message.id,
            category=data.category,
            status=data.status,
            score=data.score,
            title=data.title,
            url=data.url,
            source=data.source,
        )
        outputs: list[Output] = []
        for route in self._routes:
            if route.subscription.wants(message):
                failure = self._deliver_once(route, message)
                if failure is not None:
                    outputs.append(self._dead_letter(route, message, context, failure))
        return outputs

    def _deliver_once(self, route: Route, alert: Alert) -> DeliveryError | None:
        name = route.subscription.name
        key = self._ledger.key("delivered", name, alert.id, str(alert.data.version))
        if self._ledger.get(key) is not None:
            self._metrics.deliveries.labels(name, "duplicate").inc()
            return None
        backoff = Backoff(self._policy.backoff_initial_seconds, self._policy.backoff_max_seconds)
        error: DeliveryError | None = None
        for attempt in range(1, self._policy.attempts + 1):
            started = self._clock.monotonic()
            try:
                route.channel.deliver(alert)
            except DeliveryError as exc:
                error = exc
                log.warning(
                    "delivery_failed",
                    channel=name,
                    alert_id=alert.id,
                    attempt=attempt,
                    error=str(exc),
                    retryable=exc.retryable,
                )
                if not exc.retryable or attempt == self._policy.attempts:
                    break
                self._metrics.retries.labels(name).inc()
                self._clock.sleep(backoff.next())
                continue
            self._metrics.delivery_seconds.labels(name).observe(self._clock.monotonic() - started)
            self._ledger.claim(key, "delivered", self._policy.ledger_ttl_seconds)
            self._metrics.deliveries.labels(name, "delivered").inc()
            log.info("delivered", channel=name, alert_id=alert.id, attempts=attempt)
            return None
        self._metrics.deliveries.labels(name, "failed").inc()
        return error

    def _dead_letter(
        self, route: Route, alert: Alert, context: Context, error: DeliveryError
    ) -> Output:
        return dead_letter(
            self._deadletter_topic,
            "notifier",
            context,
            encode(alert),
            f"delivery to {route.subscription.name} failed: {error}",
            "DeliveryError",
            self._clock.now(),
        )
