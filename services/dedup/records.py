"""Small binary records kept for a lifetime: the RecordStore seam, in memory and in Redis."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar, cast

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


# The batch script: one call runs many operations, in order, each with the semantics of the
# script above of its kind. ARGV: nb (live buckets per shard), the TTL (for claims), either ''
# (the shards' buckets are declared in KEYS, nb per shard, current first) or the key prefix
# (``<prefix><namespace>``: the script names the keys itself, see RedisRecords), then the
# operations' descriptor: 4 bytes per operation, its arity (1: get name, 2: claim name value,
# 3: swap name expected new; plus 128 for a conditional one) and its shard (its 0-based
# position in KEYS, or its number; 3 bytes, big-endian), then for a conditional one 3 more
# bytes: the 1-based position in the call of the claim that must have won for it to run;
# then (with a prefix) the nb live bucket numbers in hex, current first; then every
# operation's arguments. Two reply values per operation: claim (won, value held), get (found,
# value or nil), swap (done, 0), one not run (-1, nil). Operations are looped, never
# ``unpack``ed (Lua's stack takes ~8,000 values).
_RUN_BATCH = """
local nb = tonumber(ARGV[1])
local ttl = ARGV[2]
local base = ARGV[3]
local desc = ARGV[4]
local j = 5
local buckets = {}
if base ~= '' then
  for i = 1, nb do buckets[i] = ARGV[j]; j = j + 1 end
end
local shards = {}
local out, n, fresh, won = {}, 0, {}, {}
local d, k = 1, 0
while d <= #desc do
  local arity, s1, s2, s3 = string.byte(desc, d, d + 3)
  local shard = (s1 * 256 + s2) * 256 + s3
  local name = ARGV[j]
  local runs = true
  k = k + 1
  d = d + 4
  if arity >= 128 then
    arity = arity - 128
    local t1, t2, t3 = string.byte(desc, d, d + 2)
    runs = won[(t1 * 256 + t2) * 256 + t3] or false
    d = d + 3
  end
  if not runs then
    out[n + 1], out[n + 2] = -1, false
  else
    local ks = shards[shard]
    if not ks then
      ks = {}
      if base == '' then
        local at = shard * nb
        for i = 1, nb do ks[i] = KEYS[at + i] end
      else
        local head = base .. '{' .. string.format('%x', shard) .. '}:'
        for i = 1, nb do ks[i] = head .. buckets[i] end
      end
      shards[shard] = ks
    end
    local held, at = false, 0
    for i = 1, nb do
      held = redis.call('HGET', ks[i], name)
      if held then at = i; break end
    end
    if arity == 2 then
      if held then
        out[n + 1], out[n + 2] = 0, held
      else
        local key, value = ks[1], ARGV[j + 1]
        redis.call('HSET', key, name, value)
        if not fresh[key] then
          fresh[key] = true
          if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, ttl) end
        end
        out[n + 1], out[n + 2] = 1, value
        won[k] = true
      end
    elseif arity == 1 then
      if held then out[n + 1], out[n + 2] = 1, held else out[n + 1], out[n + 2] = 0, false end
    else
      local done = 0
      if held and held == ARGV[j + 1] then
        redis.call('HSET', ks[at], name, ARGV[j + 2])
        done = 1
      end
      out[n + 1], out[n + 2] = done, 0
    end
  end
  n = n + 2
  j = j + arity
end
return out
"""
# Entries per batch script call: bounds the keys and arguments of one call and how long it
# holds the server (~10 µs of Redis time per entry at most); a bigger batch is cut into calls
# sent in order.
BATCH_CHUNK = 1000

T = TypeVar("T")
_DESC_OF_ARITY = [b"", b"\x01", b"\x02", b"\x03"]  # an operation's first descriptor byte
_CONDITIONAL = 0x80  # in it: 3 more bytes follow, the operation whose claim must have won


class Claim(NamedTuple):
    """``claim(name, value)`` in a mixed batch (``run_many``); answered ``(won, held)``."""

    name: bytes
    value: bytes


class Get(NamedTuple):
    """``get(name)`` in a mixed batch; answered by the value or None."""

    name: bytes


class Swap(NamedTuple):
    """``swap(name, expected, new)`` in a mixed batch; answered True when it swapped."""

    name: bytes
    expected: bytes
    new: bytes


class If(NamedTuple):
    """``op`` in a mixed batch, run only if the batch's operation at position ``claim`` (an
    earlier one) was run and is a claim that won; else it is not run and is answered None."""

    op: Claim | Get | Swap
    claim: int


Op = Claim | Get | Swap | If
Reply = tuple[bool, bytes] | bytes | bool | None


def _check_conditions(ops: Sequence[Op]) -> None:
    for k, op in enumerate(ops):
        if isinstance(op, If) and not 0 <= op.claim < k:
            raise ValueError(f"operation {k} depends on {op.claim}, not an earlier one")


def _runs(op: If, out: Sequence[Reply]) -> bool:
    """Whether ``op`` runs, given the answers so far."""
    reply = out[op.claim]
    return isinstance(reply, tuple) and reply[0]


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

    def run_many(self, ops: Sequence[Op]) -> list[Reply]:
        """Claims, gets and swaps mixed, applied in order with the answers of the calls one
        after another (see the classes ``Claim``, ``Get``, ``Swap``, and ``If``: an operation
        run only when an earlier claim of the batch won)."""
        _check_conditions(ops)
        out: list[Reply] = []
        for op in ops:
            if isinstance(op, If):
                if not _runs(op, out):
                    out.append(None)
                    continue
                op = op.op
            if isinstance(op, Claim):
                out.append(self.claim(op.name, op.value))
            elif isinstance(op, Get):
                out.append(self.get(op.name))
            else:
                out.append(self.swap(op.name, op.expected, op.new))
        return out


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

    Batches (``claim_many``, ``get_many``, ``swap_many``, and ``run_many`` mixing the three) are
    applied in order with the answers the single-entry calls would give one after another (a
    name met twice in a batch sees the first's effect). How they are sent depends on where the
    records live:

    - a standalone Redis (``redis.Redis``): one script call handles the whole batch. That call
      touches many hash slots, which only a standalone server allows; it is atomic as a whole
      (stronger than the contract needs). It does not declare its keys: it gets the key prefix
      and the live bucket numbers once and each entry's shard number, and names the keys
      itself. Declaring them (``declare_keys=True``) sends the 9 bucket keys of every shard
      the batch names, which with many shards is ~9 keys per entry: ~3x the arguments to
      pack, send and parse, for nothing a standalone server needs. The price: Redis only
      tolerates undeclared keys in scripts without flags (a shebang), and a proxy that routes
      by the declared keys (twemproxy, Envoy) cannot route these calls; behind one, pass
      ``declare_keys=True``.
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
        declare_keys: bool | None = None,
    ) -> None:
        self._client = client
        self._layout = layout
        self._namespace = namespace
        self._buckets = Buckets(lifetime)
        self._clock = clock
        self._cluster = isinstance(client, RedisCluster) if cluster is None else cluster
        # a cluster script must declare its keys (one slot); a standalone one names them itself
        self._declare = self._cluster or bool(declare_keys)
        self._base = layout.prefix + namespace
        self._shard_bytes: dict[int, bytes] = {}  # shard -> its 3 bytes in a descriptor
        self._claim = client.register_script(_CLAIM)
        self._swap = client.register_script(_SWAP)
        self._get = client.register_script(_GET)
        self._batch = client.register_script(_RUN_BATCH)
        self._cached_bucket: int | None = None
        self._cached_keys: dict[int, list[str]] = {}
        self._cached_live: list[str] = []

    @property
    def declares_keys(self) -> bool:
        """Whether batch scripts name every key they touch (a cluster, or ``declare_keys``)."""
        return self._declare

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
            self._cached_live = [f"{b:x}" for b in self._buckets.live(now)]
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
        replies = self._run_entries(entries)
        return [(bool(replies[k]), bytes(replies[k + 1])) for k in range(0, len(replies), 2)]

    def get_many(self, names: Sequence[bytes]) -> list[bytes | None]:
        if not names:
            return []
        replies = self._run_entries([(name,) for name in names])
        return [bytes(value) if value else None for value in replies[1::2]]

    def swap_many(self, entries: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
        if not entries:
            return []
        return [bool(done) for done in self._run_entries(entries)[::2]]

    def run_many(self, ops: Sequence[Op]) -> list[Reply]:
        if not ops:
            return []
        entries: Sequence[tuple[bytes, ...]]
        if any(type(op) is If for op in ops):
            _check_conditions(ops)
            if self._cluster or len(ops) > BATCH_CHUNK:
                return self._run_in_steps(ops)
            # one script: it skips what it must itself
            plain = [op.op if isinstance(op, If) else op for op in ops]
            entries = plain
            deps = [op.claim if isinstance(op, If) else -1 for op in ops]
            replies = self._run_entries(entries, deps)
        else:
            entries = cast(Sequence[Claim | Get | Swap], ops)
            replies = self._run_entries(entries)
        out: list[Reply] = []
        for k, op in enumerate(entries):
            first, second = replies[2 * k], replies[2 * k + 1]
            if first == -1:  # not run (its condition)
                out.append(None)
            elif len(op) == 2:
                out.append((bool(first), bytes(second)))
            elif len(op) == 1:
                out.append(bytes(second) if second else None)
            else:
                out.append(bool(first))
        return out

    def _run_in_steps(self, ops: Sequence[Op]) -> list[Reply]:
        """``run_many`` of operations with conditions, when one script cannot run them all (on
        a cluster each shard has its own): in steps, each as long as none of its operations
        depends on another of the same step; a step's conditions are known from earlier
        steps' answers."""
        out: list[Reply] = [None] * len(ops)
        start = 0
        while start < len(ops):
            end = start + 1
            while end < len(ops):
                op = ops[end]
                if isinstance(op, If) and op.claim >= start:
                    break
                end += 1
            plain: list[Claim | Get | Swap] = []
            where: list[int] = []
            for k in range(start, end):
                op = ops[k]
                if isinstance(op, If):
                    if not _runs(op, out):
                        continue
                    op = op.op
                plain.append(op)
                where.append(k)
            for k, reply in zip(where, self.run_many(plain), strict=True):
                out[k] = reply
            start = end
        return out

    def _run_entries(
        self, entries: Sequence[tuple[bytes, ...]], deps: Sequence[int] | None = None
    ) -> list[Any]:
        """The batch script's flat reply for ``entries`` (a claim, get or swap each, told apart
        by their length), two values per entry in the entries' order. ``deps``: per entry,
        the earlier entry whose claim must have won for it to run, or -1 (one call only)."""
        now = self._clock.now().timestamp()
        ttl = self._buckets.ttl(self._buckets.current(now), now)
        calls = self._calls(entries, ttl, now, deps)
        script = self._batch
        if len(calls) == 1:
            _, keys, args = calls[0]
            return list(call_redis(lambda: script(keys=keys, args=args)))
        replies = call_redis(lambda: self._pipelined(script, calls))
        if not self._cluster:  # chunks in batch order
            return [value for reply in replies for value in reply]
        out: list[Any] = [None] * (2 * len(entries))
        for (positions, _, _), reply in zip(calls, replies, strict=True):
            for k, i in enumerate(positions):
                out[2 * i], out[2 * i + 1] = reply[2 * k], reply[2 * k + 1]
        return out

    def _calls(
        self,
        entries: Sequence[tuple[bytes, ...]],
        ttl: int,
        now: float,
        deps: Sequence[int] | None = None,
    ) -> list[tuple[Sequence[int], list[str], list[bytes | int | str]]]:
        """The batch script calls for ``entries`` (each starts with its name), in the order
        they must run: per call, the entries' positions in ``entries``, its KEYS and its ARGV
        (see ``_RUN_BATCH``). With ``deps`` (see ``_run_entries``) there must be one call:
        a standalone server and at most ``BATCH_CHUNK`` entries."""
        if deps is not None and (self._cluster or len(entries) > BATCH_CHUNK):
            raise ValueError("conditions need the batch in one script call")
        cache = self._keys_cache(now)
        width = len(self._cached_live)
        chunk = BATCH_CHUNK
        calls: list[tuple[Sequence[int], list[str], list[bytes | int | str]]] = []
        if self._cluster:
            groups: dict[int, list[int]] = {}
            for i, entry in enumerate(entries):
                groups.setdefault(self._layout.shard(entry[0]), []).append(i)
            for shard, members in groups.items():
                keys = self._shard_keys(shard, now)
                for start in range(0, len(members), chunk):
                    positions = members[start : start + chunk]
                    desc = bytearray()
                    args: list[bytes | int | str] = [width, ttl, "", b""]
                    for i in positions:
                        entry = entries[i]
                        desc += _DESC_OF_ARITY[len(entry)]
                        desc += b"\0\0\0"
                        args += entry
                    args[3] = bytes(desc)
                    calls.append((positions, keys, args))
            return calls
        shard_of = self._layout.shard
        for start in range(0, len(entries), chunk):
            span = range(start, min(start + chunk, len(entries)))
            keys = []
            desc = bytearray()
            # A shard's 3 bytes in the descriptor: its position among the declared keys, or
            # its number, from which the script names its keys.
            codes: dict[int, bytes]
            if self._declare:
                codes = {}
                args = [width, ttl, "", b""]
            else:
                codes = self._shard_bytes
                args = [width, ttl, self._base, b"", *self._cached_live]
            for i in span:
                entry = entries[i]
                shard = shard_of(entry[0])
                code = codes.get(shard)
                if code is None:
                    if self._declare:
                        code = len(codes).to_bytes(3, "big")
                        keys.extend(cache.get(shard) or self._shard_keys(shard, now))
                    else:
                        code = shard.to_bytes(3, "big")
                    codes[shard] = code
                if deps is not None and deps[i] >= 0:
                    desc.append(len(entry) | _CONDITIONAL)
                    desc += code
                    desc += (deps[i] + 1).to_bytes(3, "big")
                else:
                    desc += _DESC_OF_ARITY[len(entry)]
                    desc += code
                args += entry
            args[3] = bytes(desc)
            calls.append((span, keys, args))
        return calls

    def _pipelined(
        self, script: Script, calls: list[tuple[Sequence[int], list[str], list[bytes | int | str]]]
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
