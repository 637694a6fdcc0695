"""One delivery worker per destination: claim a due item, send it, record what happened.

A worker only ever waits on its own destination, so a slow or dead receiver delays nobody
else. Each step is :meth:`DestinationWorker.run_once` (driven directly by tests with a manual
clock); :class:`WorkerThread` loops it in a thread, sleeping until the next item is due, the
rate limit allows, or the handler wakes it for a new alert.
"""

from __future__ import annotations

import base64
import random
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from dmzwatch.notifier.channels import Delivery, DeliveryError, delivery_id
from dmzwatch.notifier.deadletters import DeadLetterSink
from dmzwatch.notifier.metrics import NotifierMetrics
from dmzwatch.notifier.outbox import Claimed, Outbox, Pending, digest_window
from dmzwatch.notifier.policy import RetryPolicy, parse_retry_after
from dmzwatch.notifier.routes import Route
from dmzwatch.shared.clock import Clock
from dmzwatch.shared.errors import InvalidMessage, RetryableError
from dmzwatch.shared.messages import Alert, DeadLetter, decode

log = structlog.get_logger(__name__)

STAGE = "notifier"
DEFAULT_POLICY = RetryPolicy()


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """``lease_seconds`` must exceed the request timeout: it is how long a claimed item stays
    invisible to other workers, and so how soon a crashed worker's item is tried again."""

    policy: RetryPolicy = DEFAULT_POLICY
    lease_seconds: float = 60.0
    ledger_ttl_seconds: int = 30 * 86400
    idle_poll_seconds: float = 1.0
    deadletter_retry_seconds: float = 5.0


class DestinationWorker:
    """Delivers one subscription's queue. ``route`` may be replaced (a reload) between steps."""

    def __init__(
        self,
        route: Route,
        outbox: Outbox,
        deadletters: DeadLetterSink,
        metrics: NotifierMetrics,
        clock: Clock,
        options: WorkerOptions = WorkerOptions(),
        rng: random.Random | None = None,
    ) -> None:
        self.route = route
        self._next: Route | None = None
        self._swap = threading.Lock()
        self._outbox = outbox
        self._deadletters = deadletters
        self._metrics = metrics
        self._clock = clock
        self._options = options
        self._rng = rng or random.Random()  # jitter, not cryptography
        # A delivery the receiver accepted but the outbox could not record yet (Redis away):
        # recorded before anything else, so that it is not claimed and made again.
        self._unrecorded: tuple[str, str] | None = None

    def replace(self, route: Route) -> None:
        """Use ``route`` from the next step on (a reload); the old channel is closed then."""
        with self._swap:
            if self._next is not None and self._next.channel is not route.channel:
                self._next.channel.close()  # never used
            self._next = route

    def _adopt(self) -> Route:
        with self._swap:
            new, self._next = self._next, None
        if new is not None:
            if new.channel is not self.route.channel:
                self.route.channel.close()
            self.route = new
        return self.route

    def run_once(self) -> float:
        """Handle at most one item; returns the seconds to wait before the next step (0: now).

        Raises :class:`RetryableError` when the outbox is unreachable.
        """
        route = self._adopt()
        sub = route.subscription
        if self._unrecorded is not None:
            subscription, item = self._unrecorded
            self._outbox.finish(subscription, item, "delivered", self._options.ledger_ttl_seconds)
            self._unrecorded = None
            self._metrics.deliveries.labels(route.channel.kind, subscription, "delivered").inc()
            log.info("delivery_recorded_late", subscription=subscription, item=item)
            return 0.0
        now = self._clock.now().timestamp()
        claimed = self._outbox.claim(
            sub.name,
            now=now,
            lease_seconds=self._options.lease_seconds,
            interval_seconds=sub.rate_limit.interval_seconds,
            burst=sub.rate_limit.burst,
        )
        if not isinstance(claimed, Claimed):
            self._metrics.queue.labels(sub.name).set(self._outbox.depth(sub.name))
            wait = claimed.wait_seconds
            idle = self._options.idle_poll_seconds
            # At least a millisecond: clocks (and float timestamps) are not finer than that.
            return idle if wait is None else max(0.001, min(wait, idle))
        pending = self._outbox.load(sub.name, claimed.item)
        if not pending.bodies:  # its records are gone (finished elsewhere): drop the item
            self._outbox.finish(sub.name, claimed.item, "delivered", 60)
            return 0.0
        self._attempt(route, claimed, pending)
        return 0.0

    def _attempt(self, route: Route, claimed: Claimed, pending: Pending) -> None:
        sub, channel = route.subscription, route.channel
        try:
            alerts = tuple(decode(Alert, body) for body in pending.bodies)
        except InvalidMessage as exc:
            self._give_up(route, claimed, pending, "rejected", f"stored alert unreadable: {exc}")
            return
        window = digest_window(claimed.item)
        delivery = Delivery(
            sub.name,
            delivery_id(sub.name, claimed.item),
            alerts,
            None if window is None else (_utc(window), _utc(window + sub.digest_seconds)),
        )
        if claimed.attempt > self._options.policy.attempts:
            # Earlier attempts were interrupted (crashes) until the budget ran out.
            self._give_up(route, claimed, pending, "exhausted", "retry budget spent")
            return
        started = self._clock.monotonic()
        try:
            channel.send(delivery)
        except DeliveryError as exc:
            self._metrics.request_seconds.labels(channel.kind).observe(
                self._clock.monotonic() - started
            )
            self._failed(route, claimed, pending, exc)
            return
        self._metrics.request_seconds.labels(channel.kind).observe(
            self._clock.monotonic() - started
        )
        try:
            self._outbox.finish(
                sub.name, claimed.item, "delivered", self._options.ledger_ttl_seconds
            )
        except RetryableError:
            self._unrecorded = (sub.name, claimed.item)
            log.warning("delivery_unrecorded", subscription=sub.name, item=claimed.item)
            raise
        self._metrics.deliveries.labels(channel.kind, sub.name, "delivered").inc()
        self._metrics.latency.labels(channel.kind, sub.mode).observe(
            max(0.0, self._clock.now().timestamp() - pending.enqueued_at)
        )
        log.info(
            "delivered",
            subscription=sub.name,
            channel=channel.kind,
            message_id=delivery.message_id,
            alerts=len(alerts),
            attempt=claimed.attempt,
        )

    def _failed(self, route: Route, claimed: Claimed, pending: Pending, exc: DeliveryError) -> None:
        sub, policy = route.subscription, self._options.policy
        if not exc.retryable:
            self._give_up(route, claimed, pending, "rejected", str(exc))
            return
        if policy.exhausted(claimed.attempt):
            self._give_up(route, claimed, pending, "exhausted", str(exc))
            return
        now = self._clock.now()
        retry_after = parse_retry_after(exc.retry_after, now)
        delay = policy.delay(claimed.attempt, retry_after, self._rng)
        pause = None
        if retry_after is not None:  # the receiver asked for quiet: hold the whole destination
            pause = now.timestamp() + min(retry_after, policy.retry_after_max_seconds)
        self._outbox.retry(
            sub.name,
            claimed.item,
            due=now.timestamp() + delay,
            pause_until=pause,
            error=str(exc),
        )
        self._metrics.retries.labels(route.channel.kind, sub.name, exc.reason).inc()
        log.warning(
            "delivery_retrying",
            subscription=sub.name,
            channel=route.channel.kind,
            attempt=claimed.attempt,
            reason=exc.reason,
            error=str(exc),
            retry_in_seconds=round(delay, 3),
        )

    def _give_up(
        self, route: Route, claimed: Claimed, pending: Pending, reason: str, error: str
    ) -> None:
        sub = route.subscription
        letter = _letter(sub.name, claimed, pending, reason, error, self._clock.now())
        try:
            self._deadletters.publish(letter, pending.key)
        except RetryableError as exc:
            # Not recorded anywhere yet: keep the item and try the dead letter again soon.
            due = self._clock.now().timestamp() + self._options.deadletter_retry_seconds
            self._outbox.retry(sub.name, claimed.item, due=due, error=str(exc))
            log.warning("deadletter_failed", subscription=sub.name, error=str(exc))
            return
        self._outbox.finish(sub.name, claimed.item, "dead", self._options.ledger_ttl_seconds)
        self._metrics.deliveries.labels(route.channel.kind, sub.name, "deadlettered").inc()
        self._metrics.deadletters.labels(route.channel.kind, sub.name, reason).inc()
        log.error(
            "delivery_dead_lettered",
            subscription=sub.name,
            channel=route.channel.kind,
            attempt=claimed.attempt,
            reason=reason,
            error=error,
        )


def _utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _letter(
    subscription: str, claimed: Claimed, pending: Pending, reason: str, error: str, now: datetime
) -> DeadLetter:
    """The dead letter of a delivery: the alert (a digest: the JSON array of its alerts), the
    Kafka record it came from when there is one, and why it was given up."""
    raw = pending.bodies[0] if len(pending.bodies) == 1 else b"[" + b",".join(pending.bodies) + b"]"
    topic, partition, offset = None, None, None
    if pending.origin and digest_window(claimed.item) is None:
        head, _, tail = pending.origin.rpartition("/")
        topic_name, _, part = head.rpartition("/")
        if topic_name and part.isdigit() and tail.isdigit():
            topic, partition, offset = topic_name, int(part), int(tail)
    return DeadLetter(
        stage=STAGE,
        error=(
            f"delivery to {subscription} gave up ({reason}) after {claimed.attempt} "
            f"attempt(s): {error}"
        )[:2000],
        error_type="DeliveryError",
        topic=topic,
        partition=partition,
        offset=offset,
        key=pending.key,
        value_text=raw.decode("utf-8", "replace"),
        value_base64=base64.b64encode(raw).decode("ascii"),
        failed_at=now,
    )


DEFAULT_OPTIONS = WorkerOptions()


class WorkerThread:
    """Runs a :class:`DestinationWorker` until :meth:`stop`; :meth:`wake` cuts a wait short."""

    def __init__(self, worker: DestinationWorker, name: str) -> None:
        self.worker = worker
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"notifier-{name}", daemon=True)

    def start(self) -> WorkerThread:
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def join(self, timeout: float) -> bool:
        """Wait for the thread to end; False if it is still busy (e.g. a hanging request)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        name = self.worker.route.subscription.name
        while not self._stop.is_set():
            try:
                wait = self.worker.run_once()
            except RetryableError as exc:
                log.warning("worker_store_unavailable", subscription=name, error=str(exc))
                wait = 1.0
            except Exception as exc:  # a bug: keep the worker alive, say so loudly
                log.exception("worker_failed", subscription=name, error=repr(exc))
                wait = 1.0
            if wait > 0:
                self._wake.wait(wait)
                self._wake.clear()
