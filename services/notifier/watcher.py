"""Reloads the subscriptions file when it changes (checked every few seconds) or on SIGHUP.

A file that fails to load or validate, or names a secret that cannot be read, is reported
(log and metric) and the subscriptions in force stay: a typo never silences every destination.
At start-up the same failure refuses to start. Secret files are re-read on every reload, so
after rotating one, send SIGHUP (the subscriptions file itself did not change).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

import structlog

from dmzwatch.notifier.metrics import NotifierMetrics
from dmzwatch.notifier.routes import Route
from dmzwatch.notifier.subscriptions import Subscription, parse_subscriptions
from dmzwatch.shared.errors import ConfigurationError

log = structlog.get_logger(__name__)

RouteBuilder = Callable[[tuple[Subscription, ...]], tuple[Route, ...]]


class SubscriptionWatcher:
    """Loads ``path`` into routes and hands them to ``apply``; see the module docstring."""

    def __init__(
        self,
        path: Path | None,
        build: RouteBuilder,
        apply: Callable[[tuple[Route, ...]], None],
        metrics: NotifierMetrics,
        interval_seconds: float = 5.0,
    ) -> None:
        self._path = path
        self._build = build
        self._apply = apply
        self._metrics = metrics
        self._interval = interval_seconds
        self._fingerprint: str | None = None
        self._rejected: str | None = None
        self._requested = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _current(self) -> tuple[str, str]:
        """The file's fingerprint and text; raises :class:`ConfigurationError` if unreadable."""
        assert self._path is not None
        try:
            raw = self._path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"subscriptions file {self._path}: {exc.strerror}") from None
        return hashlib.sha256(raw).hexdigest(), raw.decode("utf-8", "replace")

    def _routes(self, text: str) -> tuple[Route, ...]:
        return self._build(parse_subscriptions(text, f"subscriptions file {self._path}"))

    def load(self) -> None:
        """The first load; raises :class:`ConfigurationError` when the file is unusable."""
        if self._path is None:
            routes = self._build(())
        else:
            self._fingerprint, text = self._current()
            routes = self._routes(text)
        self._apply(routes)
        log.info("subscriptions_loaded", subscriptions=[r.subscription.name for r in routes])

    def request(self) -> None:
        """Reload soon even if the file looks unchanged (SIGHUP; safe in a signal handler)."""
        self._requested.set()

    def check(self, force: bool = False) -> bool:
        """Reload if the file changed (or ``force``); returns whether new routes were applied.

        A bad version is reported once (again only when it changes, or on ``force``).
        """
        if self._path is None:
            return False
        try:
            fingerprint, text = self._current()
        except ConfigurationError as exc:
            return self._reject("unreadable", exc, force)
        if not force and fingerprint in (self._fingerprint, self._rejected):
            return False
        try:
            routes = self._routes(text)
        except ConfigurationError as exc:
            return self._reject(fingerprint, exc, force)
        self._fingerprint, self._rejected = fingerprint, None
        self._apply(routes)
        self._metrics.reloads.labels("ok").inc()
        log.info("subscriptions_reloaded", subscriptions=[r.subscription.name for r in routes])
        return True

    def _reject(self, fingerprint: str, exc: ConfigurationError, force: bool) -> bool:
        if force or fingerprint != self._rejected:
            self._metrics.reloads.labels("error").inc()
            log.error("subscriptions_reload_failed", error=str(exc), kept="previous")
        self._rejected = fingerprint
        return False

    def start(self) -> SubscriptionWatcher:
        if self._path is not None and self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="notifier-subscriptions", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._requested.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._requested.wait(self._interval)
            if self._stop.is_set():
                return
            force = self._requested.is_set()
            self._requested.clear()
            try:
                self.check(force)
            except Exception as exc:  # a bug: keep watching, say so
                log.exception("subscriptions_watch_failed", error=repr(exc))
