"""Small binary records kept for a lifetime: the RecordStore seam, in memory and in Redis."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.exceptions import NoScriptError

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


# The batch scripts: one call handles many entries, in order, with the per-entry semantics of
# the scripts above. KEYS: the live buckets (current first) of each shard the call names, ``nb``
# per shard; ARGV: nb, then (claim) the TTL, then per entry the shard's 0-based position in KEYS
# and the entry's arguments. Replies are flat. Entries are looped, never ``unpack``ed (Lua's
# stack takes ~8,000 values).
_CLAIM_BATCH = """
local nb = tonumber(ARGV[1])
local ttl = ARGV[2]
local out, n, fresh = {}, 0, {}
for j = 3, #ARGV, 3 do
  local base = tonumber(ARGV[j]) * nb
  local name = ARGV[j + 1]
  local held = false
  for i = base + 1, base + nb do
    held = redis.call('HGET', KEYS[i], name)
    if held then break end
  end
  if held then
    out[n + 1], out[n + 2] = 0, held
  else
    local key = KEYS[base + 1]
    redis.call('HSET', key, name, ARGV[j + 2])
    if not fresh[base] then
      fresh[base] = true
      if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, ttl) end
    end
    out[n + 1], out[n + 2] = 1, ARGV[j + 2]
  end
  n = n + 2
end
return out
"""
_SWAP_BATCH = """
local nb = tonumber(ARGV[1])
local out, n = {}, 0
for j = 2, #ARGV, 4 do
  local base = tonumber(ARGV[j]) * nb
  local name = ARGV[j + 1]
  local done = 0
  for i = base + 1, base + nb do
    local v = redis.call('HGET', KEYS[i], name)
    if v then
      if v == ARGV[j + 2] then
        redis.call('HSET', KEYS[i], name, ARGV[j + 3])
        done = 1
      end
      break
    end
  end
  n = n + 1
  out[n] = done
end
return out
"""
_GET_BATCH = """
local nb = tonumber(ARGV[1])
local out, n = {}, 0
for j = 2, #ARGV, 2 do
  local base = tonumber(ARGV[j]) * nb
  local name = ARGV[j + 1]
  local v = false
  for i = base + 1, base + nb do
    v = redis.call('HGET', KEYS[i], name)
    if v then break end
  end
  n = n + 1
  out[n] = v
end
return out
"""
# Entries per batch script call: bounds the keys and arguments of one call and how long it
# holds the server (~10 µs of Redis time per entry at most); a bigger batch is cut into calls
# sent in order.
BATCH_CHUNK = 1000

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

    A name's shard is fixed by its last bytes; every single-entry call is one Lua script on the
    shard's hash slot (all its buckets share the hash tag), so it is atomic on a cluster too.

    Batches (``claim_many``, ``get_many``, ``swap_many``) are applied in order with the answers
    the single-entry calls would give one after another (a name met twice in a batch sees the
    first's effect). How they are sent depends on where the records live:

    - a standalone Redis (``redis.Redis``): one script call handles the whole batch, declaring
      in KEYS every bucket key of every shard the batch names. That call touches many hash
      slots, which only a standalone server allows; it is atomic as a whole (stronger than the
      contract needs).
    - a Redis Cluster (a ``redis.cluster.RedisCluster`` client, or ``cluster=True`` to force it
      on any client): entries are grouped by shard and each shard's entries go in one script
      call on that shard's keys (one hash slot, tag ``{<shard>}``); the calls are pipelined.
      Entries of different shards never share a name, so running the groups in any order
      gives the same answers as the batch's order.

    Either way a batch bigger than ``BATCH_CHUNK`` entries is cut into several script calls,
    sent in order in one pipeline.
    """

    def __init__(
        self,
        client: redis.Redis | RedisCluster,
        layout: KeyLayout,
        namespace: str,
        lifetime: int,
        clock: Clock,
        *,
        cluster: bool | None = None,
    ) -> None:
        self._client = client
        self._layout = layout
        self._namespace = namespace
        self._buckets = Buckets(lifetime)
        self._clock = clock
        self._cluster = isinstance(client, RedisCluster) if cluster is None else cluster
        self._claim = client.register_script(_CLAIM)
        self._swap = client.register_script(_SWAP)
        self._get = client.register_script(_GET)
        self._claim_batch = client.register_script(_CLAIM_BATCH)
        self._swap_batch = client.register_script(_SWAP_BATCH)
        self._get_batch = client.register_script(_GET_BATCH)
        self._cached_bucket: int | None = None
        self._cached_keys: dict[int, list[str]] = {}

    def _keys(self, name: bytes, now: float) -> list[str]:
        return self._shard_keys(self._layout.shard(name), now)

    def _shard_keys(self, shard: int, now: float) -> list[str]:
        """The shard's live bucket keys, the current one first."""
        keys = self._keys_cache(now).get(shard)
        if keys is None:
            layout, namespace = self._layout, self._namespace
            keys = [layout.records(namespace, shard, b) for b in self._buckets.live(now)]
            self._cached_keys[shard] = keys
        return keys

    def _keys_cache(self, now: float) -> dict[int, list[str]]:
        """Shard → live bucket keys, for the current bucket (a batch names the same few
        thousand keys many times; the lists are not to be changed)."""
        current = self._buckets.current(now)
        if current != self._cached_bucket:
            self._cached_bucket, self._cached_keys = current, {}
        return self._cached_keys

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

    # Batches: one batch script per batch, or per shard on a cluster (see the class docstring).

    def claim_many(self, entries: Sequence[tuple[bytes, bytes]]) -> list[tuple[bool, bytes]]:
        if not entries:
            return []
        now = self._clock.now().timestamp()
        ttl = self._buckets.ttl(self._buckets.current(now), now)
        out: list[tuple[bool, bytes]] = [(False, b"")] * len(entries)
        for positions, reply in self._run(self._claim_batch, entries, [ttl], now):
            for k, i in enumerate(positions):
                out[i] = (bool(reply[2 * k]), bytes(reply[2 * k + 1]))
        return out

    def get_many(self, names: Sequence[bytes]) -> list[bytes | None]:
        if not names:
            return []
        now = self._clock.now().timestamp()
        out: list[bytes | None] = [None] * len(names)
        entries = [(name,) for name in names]
        for positions, reply in self._run(self._get_batch, entries, [], now):
            for i, value in zip(positions, reply, strict=True):
                out[i] = bytes(value) if value else None
        return out

    def swap_many(self, entries: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
        if not entries:
            return []
        now = self._clock.now().timestamp()
        out = [False] * len(entries)
        for positions, reply in self._run(self._swap_batch, entries, [], now):
            for i, done in zip(positions, reply, strict=True):
                out[i] = bool(done)
        return out

    def _calls(
        self, entries: Sequence[tuple[bytes, ...]], head: list[int], now: float
    ) -> list[tuple[Sequence[int], list[str], list[bytes | int]]]:
        """The batch script calls for ``entries`` (each starts with its name), in the order
        they must run: per call, the entries' positions in ``entries``, its KEYS and its ARGV
        (``nb``, ``head``, then per entry its shard's position in KEYS and the entry)."""
        shard_of = self._layout.shard
        width = len(self._buckets.live(now))
        chunk = BATCH_CHUNK
        calls: list[tuple[Sequence[int], list[str], list[bytes | int]]] = []
        if self._cluster:
            groups: dict[int, list[int]] = {}
            for i, entry in enumerate(entries):
                groups.setdefault(shard_of(entry[0]), []).append(i)
            for shard, members in groups.items():
                keys = self._shard_keys(shard, now)
                for start in range(0, len(members), chunk):
                    positions = members[start : start + chunk]
                    args: list[bytes | int] = [width, *head]
                    for i in positions:
                        args.append(0)
                        args.extend(entries[i])
                    calls.append((positions, keys, args))
            return calls
        cache = self._keys_cache(now)
        for start in range(0, len(entries), chunk):
            span = range(start, min(start + chunk, len(entries)))
            slots: dict[int, int] = {}
            keys = []
            args = [width, *head]
            for i in span:
                entry = entries[i]
                shard = shard_of(entry[0])
                slot = slots.get(shard)
                if slot is None:
                    slot = slots[shard] = len(slots)
                    keys.extend(cache.get(shard) or self._shard_keys(shard, now))
                args.append(slot)
                args.extend(entry)
            calls.append((span, keys, args))
        return calls

    def _run(
        self, script: Script, entries: Sequence[tuple[bytes, ...]], head: list[int], now: float
    ) -> list[tuple[Sequence[int], list[Any]]]:
        """Run the batch script calls for ``entries`` in order (one pipeline when there are
        several); each call's positions with its reply."""
        calls = self._calls(entries, head, now)
        if len(calls) == 1:
            positions, keys, args = calls[0]
            return [(positions, call_redis(lambda: script(keys=keys, args=args)))]
        replies = call_redis(lambda: self._pipelined(script, calls))
        return [(positions, reply) for (positions, _, _), reply in zip(calls, replies, strict=True)]

    def _pipelined(
        self, script: Script, calls: list[tuple[Sequence[int], list[str], list[bytes | int]]]
    ) -> list[Any]:
        replies: list[Any] = [None] * len(calls)
        pending = list(range(len(calls)))
        for _attempt in range(2):
            pipe = self._client.pipeline(transaction=False)
            for n in pending:
                _, keys, args = calls[n]
                # not ``pipe.evalsha``: a cluster pipeline refuses it (the missing script is
                # handled here instead)
                pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
            for n, reply in zip(pending, pipe.execute(raise_on_error=False), strict=True):
                replies[n] = reply
            pending = [n for n in pending if isinstance(replies[n], NoScriptError)]
            if not pending:
                break
            # A server that lacks the script ran nothing of those calls: load it (on a cluster,
            # on every primary) and send them again, in order.
            script.sha = self._client.script_load(script.script)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies


def call_redis(command: Callable[[], T]) -> T:
    """Run ``command``; a transient Redis failure becomes :class:`RetryableError`."""
    try:
        return command()
    except TRANSIENT_REDIS_ERRORS as exc:
        raise RetryableError(f"redis unavailable: {exc}") from exc
