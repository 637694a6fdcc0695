"""The dispatcher: one :class:`WorkerThread` per subscription, kept in step with the routes.

:meth:`Dispatcher.apply` is called with the full set of routes at start-up and after every
reload: new subscriptions get a worker, changed ones switch to their new channel between two
deliveries, removed ones stop (their queued items stay in the outbox and resume if the
subscription comes back).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import structlog

from dmzwatch.notifier.deadletters import DeadLetterSink
from dmzwatch.notifier.metrics import NotifierMetrics
from dmzwatch.notifier.outbox import Outbox
from dmzwatch.notifier.routes import Route
from dmzwatch.notifier.worker import (
    DEFAULT_OPTIONS,
    DestinationWorker,
    WorkerOptions,
    WorkerThread,
)
from dmzwatch.shared.clock import Clock

log = structlog.get_logger(__name__)


class Dispatcher:
    """Owns the workers. ``routes`` and ``wake`` are safe from any thread (the handler's)."""

    def __init__(
        self,
        outbox: Outbox,
        deadletters: DeadLetterSink,
        metrics: NotifierMetrics,
        clock: Clock,
        options: WorkerOptions = DEFAULT_OPTIONS,
        rng_factory: Callable[[], random.Random] = random.Random,
    ) -> None:
        self._outbox = outbox
        self._deadletters = deadletters
        self._metrics = metrics
        self._clock = clock
        self._options = options
        self._rng_factory = rng_factory
        self._lock = threading.Lock()
        self._threads: dict[str, WorkerThread] = {}
        self._routes: tuple[Route, ...] = ()
        self._stopped = False

    def routes(self) -> tuple[Route, ...]:
        """The routes in force (an immutable snapshot)."""
        return self._routes

    def wake(self, subscription: str) -> None:
        """Tell a subscription's worker that something was scheduled."""
        thread = self._threads.get(subscription)
        if thread is not None:
            thread.wake()

    def apply(self, routes: tuple[Route, ...]) -> None:
        """Make the workers match ``routes`` (see the module docstring)."""
        with self._lock:
            if self._stopped:
                for route in routes:
                    route.channel.close()
                return
            wanted = {route.subscription.name: route for route in routes}
            for name in [n for n in self._threads if n not in wanted]:
                thread = self._threads.pop(name)
                thread.stop()
                self._metrics.forget(thread.worker.route.channel.kind, name)
                log.info("subscription_removed", subscription=name)
            for name, route in wanted.items():
                running = self._threads.get(name)
                if running is not None:
                    running.worker.replace(route)
                    running.wake()
                    continue
                self._metrics.declare(route.channel.kind, name)
                worker = DestinationWorker(
                    route,
                    self._outbox,
                    self._deadletters,
                    self._metrics,
                    self._clock,
                    self._options,
                    self._rng_factory(),
                )
                self._threads[name] = WorkerThread(worker, name).start()
            self._routes = tuple(routes)
            self._metrics.subscriptions.set(len(routes))

    def stop(self, timeout_seconds: float = 15.0) -> None:
        """Stop every worker; a worker still in a request after the timeout is left to its
        lease (the item is delivered again by the next notifier to claim it)."""
        with self._lock:
            self._stopped = True
            threads, self._threads = self._threads, {}
        for thread in threads.values():
            thread.stop()
        for name, thread in threads.items():
            if thread.join(timeout_seconds):
                thread.worker.route.channel.close()
            else:
                log.warning("worker_still_busy", subscription=name)
