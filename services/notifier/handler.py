"""Notifier handler: logs every alert and schedules its delivery to each matching subscription.

The handler never makes an HTTP request. For each subscription whose filters the alert passes
it records the delivery durably in the outbox (a no-op if it was recorded before) and wakes
that subscription's worker; only then does it return, so the runner commits the Kafka record
once every destination has its pending record. A crash before that re-delivers the record and
scheduling it again changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog

from dmzwatch.notifier.metrics import NotifierMetrics
from dmzwatch.notifier.outbox import Outbox
from dmzwatch.notifier.routes import Route
from dmzwatch.shared.clock import Clock
from dmzwatch.shared.messages import Alert, encode
from dmzwatch.shared.runner import Context, Handler, Output

log = structlog.get_logger(__name__)


class NotifierHandler(Handler[Alert]):
    """One alert in; delivery records out (in the outbox); no Kafka outputs.

    Raises :class:`~dmzwatch.shared.errors.RetryableError` when the outbox is unreachable (the
    runner retries the record, nothing is committed).
    """

    def __init__(
        self,
        routes: Callable[[], Sequence[Route]],
        outbox: Outbox,
        metrics: NotifierMetrics,
        clock: Clock,
        wake: Callable[[str], None] = lambda subscription: None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._routes = routes
        self._outbox = outbox
        self._metrics = metrics
        self._clock = clock
        self._wake = wake
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
            version=data.version,
            category=data.category,
            status=data.status,
            score=data.score,
            title=data.title,
            url=data.url,
            source=data.source,
        )
        body = encode(message)
        for route in self._routes():
            sub = route.subscription
            if not sub.wants(message):
                continue
            scheduled = self._outbox.schedule(
                sub.name,
                message.id,
                data.version,
                body,
                now=self._clock.now().timestamp(),
                digest_seconds=sub.digest_seconds,
                origin=context.token,
                key=context.key,
            )
            if scheduled.created:
                self._metrics.scheduled.labels(route.channel.kind, sub.name, sub.mode).inc()
                self._wake(sub.name)
            else:
                self._metrics.deliveries.labels(route.channel.kind, sub.name, "duplicate").inc()
                log.info("delivery_duplicate", subscription=sub.name, alert_id=message.id)
        return []
