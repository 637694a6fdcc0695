"""The outbox: durable per-destination delivery records, the seam between Kafka and HTTP.

The handler *schedules* a delivery for every (subscription, alert id, version) it matches and
only then lets the runner commit the Kafka record; a worker per subscription *claims* due items,
sends them and *finishes* them. Everything lives in the outbox (Redis in production), so a crash
anywhere loses nothing: an uncommitted record is re-consumed and scheduling it again is a no-op;
a claimed item whose worker died is claimed again when its lease runs out.

Items of a subscription's queue are ``a:<version>:<alert id>`` (one alert) or ``d:<window start>``
(a digest window's alerts, due when the window closes). A record, once scheduled, stays as the
idempotency ledger (state ``delivered`` or ``dead``) for ``ledger_ttl_seconds`` after it is
finished, so re-delivered Kafka records and notifier replicas never notify twice.
Times are epoch seconds from the injected clock.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal

Outcome = Literal["delivered", "dead"]


def alert_item(alert_id: str, version: int) -> str:
    return f"a:{version}:{alert_id}"


def digest_item(window_start: int) -> str:
    return f"d:{window_start}"


def digest_window(item: str) -> int | None:
    """The window start of a digest item, None for an alert item."""
    return int(item[2:]) if item.startswith("d:") else None


@dataclass(frozen=True, slots=True)
class Scheduled:
    """``created`` is False when the delivery was scheduled (or made) before: a duplicate."""

    created: bool
    item: str


@dataclass(frozen=True, slots=True)
class Claimed:
    """An item leased to the caller; ``attempt`` counts claims of it, this one included."""

    item: str
    attempt: int


@dataclass(frozen=True, slots=True)
class Idle:
    """Nothing to do now: ``wait_seconds`` until something may be (None: the queue is empty)."""

    wait_seconds: float | None


@dataclass(frozen=True, slots=True)
class Pending:
    """The content of an item: the alerts' JSON, when the first was scheduled, and for a single
    alert where it came from (``topic/partition/offset`` and key of the Kafka record)."""

    bodies: tuple[bytes, ...]
    enqueued_at: float
    origin: str | None = None
    key: str | None = None


class Outbox(ABC):
    """Durable delivery records and per-subscription queues.

    Every method is atomic and safe to repeat (a lost reply retried by the client changes
    nothing), and raises :class:`~dmzwatch.shared.errors.RetryableError` when the store cannot
    be reached.

    - ``schedule``: record the delivery of an alert unless one exists; immediate mode queues it
      due now, digest mode adds it to the open window (due at the window's end).
    - ``claim``: lease the first due item for ``lease_seconds`` if the subscription's rate limit
      (``interval_seconds`` apart, ``burst`` at once) and any pause allow; else say how long to
      wait.
    - ``load``: the content of an item (empty when its records vanished).
    - ``finish``: mark the item's records ``delivered`` or ``dead`` and drop it from the queue.
    - ``retry``: make the item due again at ``due``; ``pause_until`` holds the whole subscription
      (a 429's ``Retry-After``).
    """

    @abstractmethod
    def schedule(
        self,
        subscription: str,
        alert_id: str,
        version: int,
        body: bytes,
        *,
        now: float,
        digest_seconds: int = 0,
        origin: str | None = None,
        key: str | None = None,
    ) -> Scheduled: ...

    @abstractmethod
    def claim(
        self,
        subscription: str,
        *,
        now: float,
        lease_seconds: float,
        interval_seconds: float,
        burst: int,
    ) -> Claimed | Idle: ...

    @abstractmethod
    def load(self, subscription: str, item: str) -> Pending: ...

    @abstractmethod
    def finish(
        self, subscription: str, item: str, outcome: Outcome, ledger_ttl_seconds: int
    ) -> None: ...

    @abstractmethod
    def retry(
        self,
        subscription: str,
        item: str,
        *,
        due: float,
        pause_until: float | None = None,
        error: str = "",
    ) -> None: ...

    @abstractmethod
    def depth(self, subscription: str) -> int:
        """Items waiting in the subscription's queue (digest windows count once)."""


@dataclass
class _Record:
    state: str
    body: bytes
    enqueued_at: float
    origin: str | None
    key: str | None


@dataclass
class _Subscription:
    records: dict[str, _Record] = field(default_factory=dict)  # "<version>:<alert id>"
    queue: dict[str, float] = field(default_factory=dict)  # item -> due
    attempts: dict[str, int] = field(default_factory=dict)
    windows: dict[int, set[str]] = field(default_factory=dict)
    closed: set[int] = field(default_factory=set)
    tat: float = 0.0  # rate limit: theoretical arrival time (GCRA)
    paused_until: float = 0.0


class MemoryOutbox(Outbox):
    """The outbox in a dict, for unit tests: same semantics as the Redis one, no expiry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[str, _Subscription] = {}
        self.errors: dict[tuple[str, str], str] = {}

    def _sub(self, name: str) -> _Subscription:
        return self._subs.setdefault(name, _Subscription())

    def schedule(
        self,
        subscription: str,
        alert_id: str,
        version: int,
        body: bytes,
        *,
        now: float,
        digest_seconds: int = 0,
        origin: str | None = None,
        key: str | None = None,
    ) -> Scheduled:
        member = f"{version}:{alert_id}"
        with self._lock:
            sub = self._sub(subscription)
            if member in sub.records:
                return Scheduled(False, alert_item(alert_id, version))
            if digest_seconds == 0:
                sub.records[member] = _Record("queued", body, now, origin, key)
                item = alert_item(alert_id, version)
                sub.queue[item] = now
                return Scheduled(True, item)
            window = int(now // digest_seconds) * digest_seconds
            while window in sub.closed:
                window += digest_seconds
            sub.records[member] = _Record("digest", body, now, origin, key)
            sub.windows.setdefault(window, set()).add(member)
            item = digest_item(window)
            sub.queue.setdefault(item, window + digest_seconds)
            return Scheduled(True, item)

    def claim(
        self,
        subscription: str,
        *,
        now: float,
        lease_seconds: float,
        interval_seconds: float,
        burst: int,
    ) -> Claimed | Idle:
        with self._lock:
            sub = self._sub(subscription)
            if not sub.queue:
                return Idle(None)
            item, due = min(sub.queue.items(), key=lambda kv: (kv[1], kv[0]))
            if due > now:
                return Idle(due - now)
            if sub.paused_until > now:
                return Idle(sub.paused_until - now)
            allowed_at = sub.tat - interval_seconds * (burst - 1)
            if allowed_at > now:
                return Idle(allowed_at - now)
            sub.tat = max(sub.tat, now) + interval_seconds
            sub.queue[item] = now + lease_seconds
            sub.attempts[item] = sub.attempts.get(item, 0) + 1
            window = digest_window(item)
            if window is not None:
                sub.closed.add(window)
            return Claimed(item, sub.attempts[item])

    def _members(self, sub: _Subscription, item: str) -> list[str]:
        window = digest_window(item)
        if window is not None:
            return sorted(sub.windows.get(window, set()))
        return [item[2:]]

    def load(self, subscription: str, item: str) -> Pending:
        with self._lock:
            sub = self._sub(subscription)
            records = [sub.records[m] for m in self._members(sub, item) if m in sub.records]
            records = [r for r in records if r.state in ("queued", "digest")]
            if not records:
                return Pending((), 0.0)
            single = records[0] if digest_window(item) is None else None
            return Pending(
                tuple(r.body for r in records),
                min(r.enqueued_at for r in records),
                single.origin if single else None,
                single.key if single else None,
            )

    def finish(
        self, subscription: str, item: str, outcome: Outcome, ledger_ttl_seconds: int
    ) -> None:
        with self._lock:
            sub = self._sub(subscription)
            for member in self._members(sub, item):
                record = sub.records.get(member)
                if record is not None:
                    record.state, record.body = outcome, b""
            window = digest_window(item)
            if window is not None:
                sub.windows.pop(window, None)
            sub.queue.pop(item, None)
            sub.attempts.pop(item, None)

    def retry(
        self,
        subscription: str,
        item: str,
        *,
        due: float,
        pause_until: float | None = None,
        error: str = "",
    ) -> None:
        with self._lock:
            sub = self._sub(subscription)
            if item in sub.queue:
                sub.queue[item] = due
            if pause_until is not None:
                sub.paused_until = max(sub.paused_until, pause_until)
            self.errors[(subscription, item)] = error

    def depth(self, subscription: str) -> int:
        with self._lock:
            return len(self._sub(subscription).queue)

    def state(self, subscription: str, alert_id: str, version: int) -> str | None:
        """The record's state (tests only)."""
        with self._lock:
            record = self._sub(subscription).records.get(f"{version}:{alert_id}")
            return record.state if record else None
