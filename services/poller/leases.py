"""Several poller replicas share one feed list: who fetches which feed, and when.

A replica fetches a feed only after winning that feed's **lease** for the coming interval. The
lease names its owner and lasts until the feed's next due time, so no other replica fetches
the feed again inside the interval; after the fetch the owner moves the lease's end to the due
time its own schedule computed (adapted interval, backoff, ``Retry-After``, ``<ttl>``), so the
publisher's wishes hold across replicas. A replica that loses a claim waits until the holder's
lease ends. A replica that dies stops renewing: its leases end at their feeds' due times and the
survivors take the feeds then, at most ``grace_seconds`` later (well within one interval).

Spreading the work: live replicas announce themselves with a heartbeat; each feed has a
preferred replica among them (rendezvous hashing of feed id and replica id), which claims it
as soon as it is due. The others claim a due feed only after ``grace_seconds``, so a live
preferred replica wins and the feeds spread evenly, while a dead one's feeds are still taken.

Validators (ETag, Last-Modified) are kept with the lease, so a replica that takes a feed over
sends a conditional request, as the previous owner would have. The rest of the previous
owner's memory (body digest, ids of the entries already sent) is not shared: the new owner's
first full fetch republishes the feed's current entries, which dedup drops by article id.

Times in leases are Unix seconds from the injected clock (not Redis' own clock), so a test
with a manual clock is deterministic; Redis TTLs only collect the garbage of removed feeds.
"""

from __future__ import annotations

import hashlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import redis
import structlog

from dmzwatch.poller.feeds import FeedConfig
from dmzwatch.poller.fetch import Validators
from dmzwatch.poller.metrics import PollerMetrics
from dmzwatch.shared.claims import TRANSIENT_REDIS_ERRORS
from dmzwatch.shared.clock import Clock
from dmzwatch.shared.errors import RetryableError

log = structlog.get_logger(__name__)

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Lease:
    """Who holds a feed until when (Unix seconds), and the validators last stored with it."""

    owner: str
    until: float
    validators: Validators = field(default_factory=Validators)


@dataclass(frozen=True, slots=True)
class ClaimOutcome:
    """``won``: this replica now holds ``lease`` (whose validators are the previous owner's);
    otherwise ``lease`` is the current holder's."""

    won: bool
    lease: Lease


class FeedLeases(ABC):
    """Per-feed leases shared by the replicas of one deployment, for replica ``replica_id``.

    All times are Unix seconds of the caller's clock. Every method may raise
    :class:`RetryableError` when the shared store cannot be reached; nothing is then changed
    that the caller relies on (a claim not answered is not won).
    """

    def __init__(self, replica_id: str) -> None:
        if not replica_id:
            raise ValueError("replica_id must not be empty")
        self.replica_id = replica_id

    @abstractmethod
    def heartbeat(self, now: float, alive_seconds: float) -> tuple[str, ...]:
        """Announce this replica alive until ``now + alive_seconds``; returns the ids of the
        replicas alive at ``now`` (this one included), sorted."""

    @abstractmethod
    def claim(self, wanted: Mapping[str, float], now: float) -> dict[str, ClaimOutcome]:
        """Try to take each feed id of ``wanted`` until its value (Unix seconds).

        A feed is won when it has no lease, its lease ended (``until <= now``) or this replica
        holds it; the new lease keeps the stored validators. Atomic per feed: of replicas
        claiming one feed at once, exactly one wins. Returns an outcome for every feed id."""

    @abstractmethod
    def renew(self, leases: Mapping[str, tuple[float, Validators]], now: float) -> set[str]:
        """Move the end of this replica's leases of the given feeds to the new Unix time and
        store the validators. Returns the feed ids no longer held by this replica (they are
        left alone)."""

    @abstractmethod
    def leave(self) -> None:
        """Stop announcing this replica (clean shutdown); its leases run to their end."""


class MemoryLeaseStore:
    """The shared state of :class:`MemoryFeedLeases`: one per simulated deployment."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.leases: dict[str, Lease] = {}
        self.alive: dict[str, float] = {}


class MemoryFeedLeases(FeedLeases):
    """Leases in process memory: one replica alone, or several in one test sharing a store."""

    def __init__(self, replica_id: str, store: MemoryLeaseStore | None = None) -> None:
        super().__init__(replica_id)
        self.store = store or MemoryLeaseStore()

    def heartbeat(self, now: float, alive_seconds: float) -> tuple[str, ...]:
        with self.store.lock:
            self.store.alive[self.replica_id] = now + alive_seconds
            return tuple(sorted(r for r, until in self.store.alive.items() if until >= now))

    def claim(self, wanted: Mapping[str, float], now: float) -> dict[str, ClaimOutcome]:
        outcomes = {}
        with self.store.lock:
            for feed_id, until in wanted.items():
                held = self.store.leases.get(feed_id)
                if held is None or held.owner == self.replica_id or held.until <= now:
                    validators = held.validators if held else Validators()
                    mine = Lease(self.replica_id, until, validators)
                    self.store.leases[feed_id] = mine
                    outcomes[feed_id] = ClaimOutcome(True, mine)
                else:
                    outcomes[feed_id] = ClaimOutcome(False, held)
        return outcomes

    def renew(self, leases: Mapping[str, tuple[float, Validators]], now: float) -> set[str]:
        lost = set()
        with self.store.lock:
            for feed_id, (until, validators) in leases.items():
                held = self.store.leases.get(feed_id)
                if held is None or held.owner != self.replica_id:
                    lost.add(feed_id)
                else:
                    self.store.leases[feed_id] = Lease(self.replica_id, until, validators)
        return lost

    def leave(self) -> None:
        with self.store.lock:
            self.store.alive.pop(self.replica_id, None)


# KEYS: lease hashes. ARGV: owner, now, gc seconds, then one end time per key.
# Returns per key {won, owner, until, etag, last_modified} ('' for a missing validator).
_CLAIM = """
local owner, now, gc = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
for i, key in ipairs(KEYS) do
  local untl = ARGV[3 + i]
  local cur = redis.call('HMGET', key, 'o', 'u', 'e', 'm')
  if (not cur[1]) or cur[1] == owner or tonumber(cur[2]) <= now then
    redis.call('HSET', key, 'o', owner, 'u', untl)
    redis.call('PEXPIRE', key, math.max(1, math.ceil((tonumber(untl) - now + gc) * 1000)))
    out[i] = {1, owner, untl, cur[3] or '', cur[4] or ''}
  else
    out[i] = {0, cur[1], cur[2], cur[3] or '', cur[4] or ''}
  end
end
return out
"""

# KEYS: lease hashes. ARGV: owner, now, gc seconds, then (until, etag, last_modified) per key.
# Returns per key 1 when renewed, 0 when the lease is not this owner's.
_RENEW = """
local owner, now, gc = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
for i, key in ipairs(KEYS) do
  local at = 3 + (i - 1) * 3
  local untl = ARGV[at + 1]
  if redis.call('HGET', key, 'o') == owner then
    redis.call('HSET', key, 'u', untl, 'e', ARGV[at + 2], 'm', ARGV[at + 3])
    redis.call('PEXPIRE', key, math.max(1, math.ceil((tonumber(untl) - now + gc) * 1000)))
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""

# KEYS[1]: sorted set of replicas by alive-until. ARGV: owner, now, alive-until, gc seconds.
_HEARTBEAT = """
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[4]) * 1000))
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""


class RedisFeedLeases(FeedLeases):
    """Leases in Redis, each checked and set by a Lua script (atomic, one round trip per batch).

    Keys (``<p>`` is ``DMZWATCH_REDIS_KEY_PREFIX``): ``<p>{poller}:lease:<feed_id>``, a hash of
    owner ``o``, end ``u`` (Unix seconds of the replicas' clocks), ``e`` ETag and ``m``
    Last-Modified; ``<p>{poller}:replicas``, a sorted set of replica ids by alive-until. The
    ``{poller}`` hash tag keeps every key in one Redis Cluster slot, so one script may touch
    many. Each key expires ``gc_seconds`` after its end, so removed feeds leave nothing behind.
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        replica_id: str,
        *,
        gc_seconds: float = 7 * 86400.0,
        batch: int = 500,
    ) -> None:
        super().__init__(replica_id)
        self._client = client
        self._base = f"{prefix}{{poller}}:"
        self._gc = gc_seconds
        self._batch = batch
        self._claim = client.register_script(_CLAIM)
        self._renew = client.register_script(_RENEW)
        self._heartbeat = client.register_script(_HEARTBEAT)

    def lease_key(self, feed_id: str) -> str:
        return f"{self._base}lease:{feed_id}"

    def heartbeat(self, now: float, alive_seconds: float) -> tuple[str, ...]:
        args: list[str | float] = [self.replica_id, repr(now), repr(now + alive_seconds), self._gc]
        try:
            members = self._heartbeat(keys=[f"{self._base}replicas"], args=args)
        except TRANSIENT_REDIS_ERRORS as exc:
            raise RetryableError(f"redis unavailable: {exc}") from exc
        return tuple(sorted(_text(m) for m in members))

    def claim(self, wanted: Mapping[str, float], now: float) -> dict[str, ClaimOutcome]:
        outcomes: dict[str, ClaimOutcome] = {}
        for chunk in _chunks(list(wanted.items()), self._batch):
            keys = [self.lease_key(feed_id) for feed_id, _ in chunk]
            args: list[str | float] = [self.replica_id, repr(now), self._gc]
            args += [repr(until) for _, until in chunk]
            try:
                rows = self._claim(keys=keys, args=args)
            except TRANSIENT_REDIS_ERRORS as exc:
                raise RetryableError(f"redis unavailable: {exc}") from exc
            for (feed_id, _), (won, owner, until, etag, modified) in zip(chunk, rows, strict=True):
                validators = Validators(_text(etag) or None, _text(modified) or None)
                lease = Lease(_text(owner), float(_text(until)), validators)
                outcomes[feed_id] = ClaimOutcome(bool(won), lease)
        return outcomes

    def renew(self, leases: Mapping[str, tuple[float, Validators]], now: float) -> set[str]:
        lost: set[str] = set()
        for chunk in _chunks(list(leases.items()), self._batch):
            keys = [self.lease_key(feed_id) for feed_id, _ in chunk]
            args: list[str | float] = [self.replica_id, repr(now), self._gc]
            for _, (until, validators) in chunk:
                args += [repr(until), validators.etag or "", validators.last_modified or ""]
            try:
                renewed = self._renew(keys=keys, args=args)
            except TRANSIENT_REDIS_ERRORS as exc:
                raise RetryableError(f"redis unavailable: {exc}") from exc
            lost.update(feed_id for (feed_id, _), ok in zip(chunk, renewed, strict=True) if not ok)
        return lost

    def leave(self) -> None:
        try:
            self._client.zrem(f"{self._base}replicas", self.replica_id)
        except TRANSIENT_REDIS_ERRORS as exc:
            log.warning("replica_leave_failed", replica=self.replica_id, error=repr(exc))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _chunks(items: list[_T], size: int) -> Iterable[list[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def preferred_replica(feed_id: str, replicas: Sequence[str]) -> str | None:
    """The replica that should fetch ``feed_id`` (rendezvous hashing): stable, and when a
    replica joins or leaves only the feeds it gains or loses move."""

    def weight(replica: str) -> bytes:
        return hashlib.blake2b(f"{feed_id}\0{replica}".encode(), digest_size=8).digest()

    return max(replicas, key=weight, default=None)


class FeedOwnership:
    """Which due feeds this replica fetches, through :class:`FeedLeases` (see module docstring).

    Used by the poll loop only (one thread). Due times are on the clock's monotonic scale, as
    in :class:`~dmzwatch.poller.schedule.Schedule`; leases hold Unix times of ``clock.now()``.
    """

    def __init__(
        self,
        leases: FeedLeases,
        clock: Clock,
        *,
        metrics: PollerMetrics | None = None,
        alive_seconds: float = 30.0,
        grace_seconds: float = 5.0,
        retry_seconds: float = 5.0,
    ) -> None:
        if alive_seconds <= 0 or grace_seconds < 0 or retry_seconds <= 0:
            raise ValueError("need alive_seconds > 0, grace_seconds >= 0, retry_seconds > 0")
        self.leases = leases
        self._clock = clock
        self._metrics = metrics
        self._alive = alive_seconds
        self._grace = grace_seconds
        self._retry = retry_seconds
        self._replicas: tuple[str, ...] = ()
        self._last_beat: float | None = None
        self._not_before: dict[str, float] = {}
        self._waiting: dict[str, float] = {}
        self._owned: set[str] = set()
        # Unix time each owned feed's lease was won; copied whole by other threads (held()).
        self._won_at: dict[str, float] = {}
        self._inherited: dict[str, Validators] = {}

    @property
    def replica_id(self) -> str:
        return self.leases.replica_id

    def owned(self) -> frozenset[str]:
        """Feeds whose lease this replica won and has not lost since."""
        return frozenset(self._owned)

    def held(self) -> dict[str, float]:
        """Feeds this replica holds, each with the Unix time it won the lease (thread-safe:
        WebSub's maintenance thread asks which subscriptions are this replica's to renew)."""
        return dict(self._won_at)

    def not_before(self, feed_id: str) -> float:
        """Monotonic time before which this replica does not try the feed (0 if none)."""
        return self._not_before.get(feed_id, 0.0)

    def beat(self) -> None:
        """Heartbeat, at most every third of ``alive_seconds`` (call it every loop turn)."""
        mono = self._clock.monotonic()
        if self._last_beat is not None and mono - self._last_beat < self._alive / 3:
            return
        try:
            self._replicas = self.leases.heartbeat(self._clock.now().timestamp(), self._alive)
        except RetryableError as exc:
            log.warning("feed_leases_unavailable", replica=self.replica_id, error=str(exc))
            return
        self._last_beat = mono
        if self._metrics is not None:
            self._metrics.replicas.set(len(self._replicas))

    def select(
        self, due: Sequence[FeedConfig], interval: Callable[[str], float]
    ) -> list[FeedConfig]:
        """The feeds of ``due`` (due by this replica's schedule) that this replica fetches now:
        those it wins a lease on, until now plus ``interval(feed_id)`` (moved to the real next
        due time by :meth:`settled`)."""
        self.beat()
        mono = self._clock.monotonic()
        wall = self._clock.now().timestamp()
        wanted: dict[str, float] = {}
        for feed in due:
            if self._not_before.get(feed.id, 0.0) > mono:
                continue
            mine = preferred_replica(feed.id, self._replicas) in (self.replica_id, None)
            if not mine:
                grace = min(self._grace, interval(feed.id) / 2)
                since = self._waiting.setdefault(feed.id, mono)
                if mono - since < grace:
                    self._not_before[feed.id] = since + grace
                    continue
            wanted[feed.id] = wall + interval(feed.id)
        if not wanted:
            return []
        try:
            outcomes = self.leases.claim(wanted, wall)
        except RetryableError as exc:
            log.warning("feed_leases_unavailable", replica=self.replica_id, error=str(exc))
            for feed_id in wanted:
                self._not_before[feed_id] = mono + self._retry
            return []
        won = []
        for feed in due:
            outcome = outcomes.get(feed.id)
            if outcome is None:
                continue
            self._waiting.pop(feed.id, None)
            if outcome.won:
                self._not_before.pop(feed.id, None)
                if feed.id not in self._owned:
                    self._inherited[feed.id] = outcome.lease.validators
                    self._owned.add(feed.id)
                    self._won_at[feed.id] = wall
                won.append(feed)
            else:
                self._owned.discard(feed.id)
                self._won_at.pop(feed.id, None)
                self._not_before[feed.id] = mono + (outcome.lease.until - wall)
        self._count("won", len(won))
        self._count("lost", len(wanted) - len(won))
        if self._metrics is not None:
            self._metrics.feeds_owned.set(len(self._owned))
        return won

    def take_inherited(self, feed_id: str) -> Validators | None:
        """The validators a newly won feed's lease carried (once), None if it was ours."""
        return self._inherited.pop(feed_id, None)

    def settled(self, next_due: Mapping[str, tuple[float, Validators]]) -> None:
        """After a poll: move each polled feed's lease to its next due time (monotonic) and
        store its validators."""
        mono = self._clock.monotonic()
        wall = self._clock.now().timestamp()
        mine = {
            feed_id: (wall + (due - mono), validators)
            for feed_id, (due, validators) in next_due.items()
            if feed_id in self._owned
        }
        if not mine:
            return
        try:
            lost = self.leases.renew(mine, wall)
        except RetryableError as exc:
            # The leases still end at the interval claimed: nobody fetches the feeds twice.
            log.warning("feed_leases_unavailable", replica=self.replica_id, error=str(exc))
            return
        if lost:
            log.warning("feed_leases_lost", replica=self.replica_id, feeds=len(lost))
            self._owned -= lost
            for feed_id in lost:
                self._won_at.pop(feed_id, None)
            self._count("lost", len(lost))
        if self._metrics is not None:
            self._metrics.feeds_owned.set(len(self._owned))

    def close(self) -> None:
        self.leases.leave()

    def _count(self, outcome: str, n: int) -> None:
        if self._metrics is not None and n:
            self._metrics.lease_claims.labels(outcome).inc(n)
