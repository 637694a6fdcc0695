"""Where WebSub subscriptions live, so that every poller replica can answer a hub.

A hub calls back whichever replica its load balancer picks, so callback tokens, secrets and
states cannot stay in the memory of the replica that subscribed. :class:`SubscriptionStore` is
that registry: :class:`MemorySubscriptionStore` for one process (or several replicas in one
test), :class:`RedisSubscriptionStore` for a deployment of replicas sharing Redis.

A :class:`Subscription` names its ``owner``: the replica that sends and renews its requests
(the holder of the feed's poll lease, since ``owner_since``, the Unix time it won that lease).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import TypeVar

import redis
from redis.typing import EncodableT, FieldT

from dmzwatch.poller.websub_contract import SUBSCRIPTION_STATES, SubscriptionState
from dmzwatch.shared.claims import TRANSIENT_REDIS_ERRORS
from dmzwatch.shared.clock import Clock
from dmzwatch.shared.errors import RetryableError

_R = TypeVar("_R")


@dataclass(frozen=True, slots=True)
class Subscription:
    """One feed's subscription. Times (``next_attempt``, ``requested_at``, ``expires_at``,
    ``renew_at``) are seconds on the store's scale (:meth:`SubscriptionStore.time`)."""

    feed_id: str
    hub: str
    topic: str
    callback_id: str
    secret: str
    state: SubscriptionState = "requesting"
    next_attempt: float = 0.0
    requested_at: float | None = None
    expires_at: float | None = None
    renew_at: float | None = None
    renewing: bool = False
    verified: bool = False
    failures: int = 0
    owner: str = ""
    owner_since: float = 0.0


Change = Callable[[Subscription], Subscription | None]


class SubscriptionStore(ABC):
    """The subscriptions of one deployment, by callback token and by feed (one per feed).

    Thread-safe; shared by every replica of a deployment when it is shared at all. Every method
    may raise :class:`RetryableError` when a shared store cannot be reached; nothing was then
    changed. ``keep_seconds`` is how long a record written now is kept without another write
    (garbage collection of feeds removed or replicas gone; never shorter than the lease).
    """

    @abstractmethod
    def time(self, clock: Clock) -> float:
        """Now, on the scale stored times use: the monotonic clock of a store private to one
        process, Unix time of a store shared by processes (their monotonic clocks differ)."""

    @abstractmethod
    def get(self, callback_id: str) -> Subscription | None:
        """The subscription of callback token ``callback_id``, None if unknown."""

    @abstractmethod
    def for_feeds(self, feed_ids: Iterable[str]) -> dict[str, Subscription]:
        """The subscriptions of those of ``feed_ids`` that have one."""

    @abstractmethod
    def put(self, sub: Subscription, keep_seconds: float) -> Subscription | None:
        """Make ``sub`` its feed's subscription, replacing (and forgetting the token of) any
        other; returns the one replaced, if any."""

    @abstractmethod
    def update(self, callback_id: str, change: Change, keep_seconds: float) -> Subscription | None:
        """Atomically replace the subscription of ``callback_id`` by ``change(current)``.

        ``change`` is pure (it may be called more than once when writers race) and returns the
        new value (with the same token and feed), or None to leave the record as it is. Returns
        what is stored afterwards; None when the token is unknown (``change`` is not called)."""

    @abstractmethod
    def remove(self, callback_id: str) -> None:
        """Forget the subscription of ``callback_id`` (a no-op when unknown)."""


class MemorySubscriptionStore(SubscriptionStore):
    """Subscriptions in process memory: one replica alone, or replicas of one test sharing it
    (and one clock). Times are the clock's monotonic seconds; nothing expires."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_token: dict[str, Subscription] = {}
        self._by_feed: dict[str, str] = {}

    def time(self, clock: Clock) -> float:
        return clock.monotonic()

    def get(self, callback_id: str) -> Subscription | None:
        with self._lock:
            return self._by_token.get(callback_id)

    def for_feeds(self, feed_ids: Iterable[str]) -> dict[str, Subscription]:
        with self._lock:
            found = {f: self._by_token.get(self._by_feed.get(f, "")) for f in feed_ids}
        return {f: sub for f, sub in found.items() if sub is not None}

    def put(self, sub: Subscription, keep_seconds: float) -> Subscription | None:
        with self._lock:
            old = self._by_token.pop(self._by_feed.get(sub.feed_id, ""), None)
            self._by_token[sub.callback_id] = sub
            self._by_feed[sub.feed_id] = sub.callback_id
            return None if old is None or old.callback_id == sub.callback_id else old

    def update(self, callback_id: str, change: Change, keep_seconds: float) -> Subscription | None:
        with self._lock:
            current = self._by_token.get(callback_id)
            if current is None:
                return None
            new = change(current)
            if new is not None:
                _same_record(current, new)
                self._by_token[callback_id] = new
                return new
            return current

    def remove(self, callback_id: str) -> None:
        with self._lock:
            sub = self._by_token.pop(callback_id, None)
            if sub is not None and self._by_feed.get(sub.feed_id) == callback_id:
                del self._by_feed[sub.feed_id]


class RedisSubscriptionStore(SubscriptionStore):
    """Subscriptions in Redis, shared by the replicas of a deployment. Times are Unix seconds
    of the replicas' injected clocks (not Redis' clock).

    Keys (``<p>`` is ``DMZWATCH_REDIS_KEY_PREFIX``): ``<p>{websub}:sub:<token>``, a hash of the
    :class:`Subscription`'s fields (the hub's secret included: whoever reads this Redis can sign
    pushes, as whoever reads the poller's memory could before); ``<p>{websub}:feed:<feed_id>``,
    the token of the feed's subscription. The ``{websub}`` hash tag keeps them in one Redis
    Cluster slot (a transaction may touch both). Every write sets a TTL of ``keep_seconds``:
    Redis expiry only collects garbage; states and leases run on the replicas' clocks.
    Read-modify-write uses WATCH/MULTI and retries when another replica wrote in between.
    """

    def __init__(self, client: redis.Redis, prefix: str, *, attempts: int = 20) -> None:
        self._client = client
        self._base = f"{prefix}{{websub}}:"
        self._attempts = attempts

    def sub_key(self, callback_id: str) -> str:
        return f"{self._base}sub:{callback_id}"

    def feed_key(self, feed_id: str) -> str:
        return f"{self._base}feed:{feed_id}"

    def time(self, clock: Clock) -> float:
        return clock.now().timestamp()

    def get(self, callback_id: str) -> Subscription | None:
        try:
            return _decode(self._client.hgetall(self.sub_key(callback_id)))
        except TRANSIENT_REDIS_ERRORS as exc:
            raise RetryableError(f"redis unavailable: {exc}") from exc

    def for_feeds(self, feed_ids: Iterable[str]) -> dict[str, Subscription]:
        ids = list(feed_ids)
        if not ids:
            return {}
        try:
            tokens = self._client.mget([self.feed_key(f) for f in ids])
            with self._client.pipeline(transaction=False) as pipe:
                known = [(f, _text(t)) for f, t in zip(ids, tokens, strict=True) if t]
                for _, token in known:
                    pipe.hgetall(self.sub_key(token))
                rows = pipe.execute()
        except TRANSIENT_REDIS_ERRORS as exc:
            raise RetryableError(f"redis unavailable: {exc}") from exc
        found = {}
        for (feed_id, _), row in zip(known, rows, strict=True):
            sub = _decode(row)
            if sub is not None and sub.feed_id == feed_id:
                found[feed_id] = sub
        return found

    def put(self, sub: Subscription, keep_seconds: float) -> Subscription | None:
        feed_key = self.feed_key(sub.feed_id)
        ttl = _millis(keep_seconds)

        def write(pipe: redis.client.Pipeline) -> Subscription | None:
            token = pipe.get(feed_key)
            old = None
            if token and _text(token) != sub.callback_id:
                old = _decode(pipe.hgetall(self.sub_key(_text(token))))
            pipe.multi()
            if token and _text(token) != sub.callback_id:
                pipe.delete(self.sub_key(_text(token)))
            self._write(pipe, sub, ttl)
            return old

        return self._transaction(write, feed_key)

    def update(self, callback_id: str, change: Change, keep_seconds: float) -> Subscription | None:
        key = self.sub_key(callback_id)
        ttl = _millis(keep_seconds)

        def write(pipe: redis.client.Pipeline) -> Subscription | None:
            current = _decode(pipe.hgetall(key))
            if current is None:
                return None
            new = change(current)
            if new is None:
                pipe.multi()  # nothing to write; the (empty) transaction still checks the watch
                return current
            _same_record(current, new)
            pipe.multi()
            self._write(pipe, new, ttl)
            return new

        return self._transaction(write, key)

    def remove(self, callback_id: str) -> None:
        key = self.sub_key(callback_id)

        def write(pipe: redis.client.Pipeline) -> None:
            sub = _decode(pipe.hgetall(key))
            feed_key = None if sub is None else self.feed_key(sub.feed_id)
            points_here = feed_key is not None and _text(pipe.get(feed_key)) == callback_id
            pipe.multi()
            pipe.delete(key)
            if points_here and feed_key is not None:
                pipe.delete(feed_key)

        self._transaction(write, key)

    def _write(self, pipe: redis.client.Pipeline, sub: Subscription, ttl: int) -> None:
        key = self.sub_key(sub.callback_id)
        pipe.delete(key)
        pipe.hset(key, mapping=_encode(sub))
        pipe.pexpire(key, ttl)
        pipe.set(self.feed_key(sub.feed_id), sub.callback_id, px=ttl)

    def _transaction(self, write: Callable[[redis.client.Pipeline], _R], *watched: str) -> _R:
        """Run ``write`` (reads, then ``pipe.multi()`` and writes) under WATCH of ``watched``,
        again when another client changed a watched key before EXEC."""
        try:
            with self._client.pipeline(transaction=True) as pipe:
                for _ in range(self._attempts):
                    try:
                        pipe.watch(*watched)  # type: ignore[no-untyped-call]
                        result = write(pipe)
                        pipe.execute()
                        return result
                    except redis.WatchError:
                        continue
                    finally:
                        pipe.reset()
        except TRANSIENT_REDIS_ERRORS as exc:
            raise RetryableError(f"redis unavailable: {exc}") from exc
        raise RetryableError(f"redis: {watched[0]} kept changing ({self._attempts} attempts)")


def _same_record(current: Subscription, new: Subscription) -> None:
    if (new.callback_id, new.feed_id) != (current.callback_id, current.feed_id):
        raise ValueError("a subscription's change must keep its callback token and feed")


def _millis(seconds: float) -> int:
    return max(1000, int(seconds * 1000))


def _encode(sub: Subscription) -> dict[FieldT, EncodableT]:
    out: dict[FieldT, EncodableT] = {}
    for f in fields(Subscription):
        value = getattr(sub, f.name)
        if value is None:
            continue
        if isinstance(value, bool):
            out[f.name] = "1" if value else "0"
        elif isinstance(value, float):
            out[f.name] = repr(value)
        else:
            out[f.name] = str(value)
    return out


def _decode(row: Mapping[bytes | str, bytes | str]) -> Subscription | None:
    """A subscription from its hash; None for a missing key (an empty hash)."""
    if not row:
        return None
    data = {_text(k): _text(v) for k, v in row.items()}
    state = data.get("state", "requesting")
    if state not in SUBSCRIPTION_STATES:
        raise ValueError(f"stored WebSub subscription has an unknown state {state!r}")

    def when(name: str) -> float | None:
        return float(data[name]) if name in data else None

    return Subscription(
        feed_id=data.get("feed_id", ""),
        hub=data.get("hub", ""),
        topic=data.get("topic", ""),
        callback_id=data.get("callback_id", ""),
        secret=data.get("secret", ""),
        state=state,
        next_attempt=float(data.get("next_attempt", "0")),
        requested_at=when("requested_at"),
        expires_at=when("expires_at"),
        renew_at=when("renew_at"),
        renewing=data.get("renewing") == "1",
        verified=data.get("verified") == "1",
        failures=int(data.get("failures", "0")),
        owner=data.get("owner", ""),
        owner_since=float(data.get("owner_since", "0")),
    )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
