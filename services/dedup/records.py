"""Small binary records kept for a lifetime: the RecordStore seam, in memory and in Redis."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TypeVar

import redis

from dmzwatch.dedup.keys import Buckets, KeyLayout
from dmzwatch.shared.claims import TRANSIENT_REDIS_ERRORS
from dmzwatch.shared.clock import Clock
from dmzwatch.shared.errors import RetryableError

# KEYS: the shard's live buckets, the current one first. ARGV: name, value, TTL of KEYS[1].
_CLAIM = """
for i = 1, #KEYS do
  local v = redis.call('HGET', KEYS[i], ARGV[1])
  if v then return {0, v} end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return {1, ARGV[2]}
"""
# ARGV: name, expected, new. Replaces in the bucket that holds it (its lifetime is unchanged).
_SWAP = """
for i = 1, #KEYS do
  local v = redis.call('HGET', KEYS[i], ARGV[1])
  if v then
    if v == ARGV[2] then
      redis.call('HSET', KEYS[i], ARGV[1], ARGV[3])
      return 1
    end
    return 0
  end
end
return 0
"""
_GET = """
for i = 1, #KEYS do
  local v = redis.call('HGET', KEYS[i], ARGV[1])
  if v then return v end
end
return false
"""

T = TypeVar("T")


class RecordStore(ABC):
    """Binary records under binary names, each kept ``lifetime`` seconds after it was first
    written (at most one time bucket longer, see ``keys``), then forgotten.

    ``claim`` writes ``value`` when ``name`` holds nothing and returns ``(True, value)``;
    otherwise it changes nothing and returns ``(False, current)``. ``swap`` replaces the value
    only if it is still ``expected`` and says whether it did; the record keeps its original
    lifetime. ``get`` returns the value or None. Each call is atomic. All raise
    :class:`RetryableError` when the backing store is unreachable.
    """

    @abstractmethod
    def claim(self, name: bytes, value: bytes) -> tuple[bool, bytes]: ...

    @abstractmethod
    def swap(self, name: bytes, expected: bytes, new: bytes) -> bool: ...

    @abstractmethod
    def get(self, name: bytes) -> bytes | None: ...

    # Batches: the same operations, applied in order, answers in order. Each operation is
    # atomic on its own (not the batch); a store may send them in one round trip.

    def claim_many(self, entries: Sequence[tuple[bytes, bytes]]) -> list[tuple[bool, bytes]]:
        return [self.claim(name, value) for name, value in entries]

    def get_many(self, names: Sequence[bytes]) -> list[bytes | None]:
        return [self.get(name) for name in names]

    def swap_many(self, entries: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
        return [self.swap(name, expected, new) for name, expected, new in entries]


class MemoryRecords(RecordStore):
    """Records in a dict, expired by the injected clock (unit tests, ``dmzwatch cluster``)."""

    def __init__(self, lifetime: int, clock: Clock) -> None:
        self._lifetime = lifetime
        self._clock = clock
        self._lock = threading.Lock()
        self._records: dict[bytes, tuple[bytes, float]] = {}

    def _live(self, name: bytes) -> tuple[bytes, float] | None:
        entry = self._records.get(name)
        if entry is not None and self._clock.now().timestamp() - entry[1] > self._lifetime:
            del self._records[name]
            return None
        return entry

    def claim(self, name: bytes, value: bytes) -> tuple[bool, bytes]:
        with self._lock:
            entry = self._live(name)
            if entry is not None:
                return False, entry[0]
            self._records[name] = (value, self._clock.now().timestamp())
            return True, value

    def swap(self, name: bytes, expected: bytes, new: bytes) -> bool:
        with self._lock:
            entry = self._live(name)
            if entry is None or entry[0] != expected:
                return False
            self._records[name] = (new, entry[1])
            return True

    def get(self, name: bytes) -> bytes | None:
        with self._lock:
            entry = self._live(name)
            return None if entry is None else entry[0]


class RedisRecords(RecordStore):
    """Records in time-bucketed, sharded Redis hashes ``<prefix><namespace>{<shard>}:<bucket>``.

    A name's shard is fixed by its last bytes; every call is one Lua script on the shard's hash
    slot (all its buckets share the hash tag), so it is atomic on a cluster too.
    """

    def __init__(
        self,
        client: redis.Redis,
        layout: KeyLayout,
        namespace: str,
        lifetime: int,
        clock: Clock,
    ) -> None:
        self._client = client
        self._layout = layout
        self._namespace = namespace
        self._buckets = Buckets(lifetime)
        self._clock = clock
        self._claim = client.register_script(_CLAIM)
        self._swap = client.register_script(_SWAP)
        self._get = client.register_script(_GET)
        self._cached_bucket: int | None = None
        self._cached_keys: dict[int, list[str]] = {}

    def _keys(self, name: bytes, now: float) -> list[str]:
        """The shard's live bucket keys (cached for the current bucket: a batch names the same
        few thousand keys many times; the lists are not to be changed)."""
        shard = self._layout.shard(name)
        current = self._buckets.current(now)
        if current != self._cached_bucket:
            self._cached_bucket, self._cached_keys = current, {}
        keys = self._cached_keys.get(shard)
        if keys is None:
            layout, namespace = self._layout, self._namespace
            keys = [layout.records(namespace, shard, b) for b in self._buckets.live(now)]
            self._cached_keys[shard] = keys
        return keys

    def claim(self, name: bytes, value: bytes) -> tuple[bool, bytes]:
        now = self._clock.now().timestamp()
        ttl = self._buckets.ttl(self._buckets.current(now), now)
        won, holder = call_redis(
            lambda: self._claim(keys=self._keys(name, now), args=[name, value, ttl])
        )
        return bool(won), bytes(holder)

    def swap(self, name: bytes, expected: bytes, new: bytes) -> bool:
        keys = self._keys(name, self._clock.now().timestamp())
        return bool(call_redis(lambda: self._swap(keys=keys, args=[name, expected, new])))

    def get(self, name: bytes) -> bytes | None:
        keys = self._keys(name, self._clock.now().timestamp())
        value = call_redis(lambda: self._get(keys=keys, args=[name]))
        return bytes(value) if value else None

    # Batches go in one pipeline (one round trip; not a transaction: each script is atomic).

    def claim_many(self, entries: Sequence[tuple[bytes, bytes]]) -> list[tuple[bool, bytes]]:
        if not entries:
            return []
        now = self._clock.now().timestamp()
        ttl = self._buckets.ttl(self._buckets.current(now), now)
        pipe = self._client.pipeline(transaction=False)
        for name, value in entries:
            self._claim(keys=self._keys(name, now), args=[name, value, ttl], client=pipe)
        replies = call_redis(pipe.execute)
        return [(bool(won), bytes(holder)) for won, holder in replies]

    def get_many(self, names: Sequence[bytes]) -> list[bytes | None]:
        if not names:
            return []
        now = self._clock.now().timestamp()
        pipe = self._client.pipeline(transaction=False)
        for name in names:
            self._get(keys=self._keys(name, now), args=[name], client=pipe)
        return [bytes(value) if value else None for value in call_redis(pipe.execute)]

    def swap_many(self, entries: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
        if not entries:
            return []
        now = self._clock.now().timestamp()
        pipe = self._client.pipeline(transaction=False)
        for name, expected, new in entries:
            self._swap(keys=self._keys(name, now), args=[name, expected, new], client=pipe)
        return [bool(done) for done in call_redis(pipe.execute)]


def call_redis(command: Callable[[], T]) -> T:
    """Run ``command``; a transient Redis failure becomes :class:`RetryableError`."""
    try:
        return command()
    except TRANSIENT_REDIS_ERRORS as exc:
        raise RetryableError(f"redis unavailable: {exc}") from exc
