"""The near-duplicate index: stories' MinHash signatures found through LSH bands, for a window.

Our own small LSH on Redis rather than datasketch's Redis storage, which sets no expiry: band
entries and signatures live in time buckets that expire (``keys``), so memory is bounded by the
story window. The whole index is one hash slot (tag ``{lsh}``) so that lookup-then-create can be
made safe across replicas with a version counter: ``create`` fails if any story was created
since the lookup, and the caller looks again.
"""

from __future__ import annotations

import struct
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from dmzwatch.dedup.entries import pack_id, unpack_id
from dmzwatch.dedup.keys import INDEX_BUCKETS_PER_WINDOW, Buckets, KeyLayout
from dmzwatch.dedup.records import call_redis
from dmzwatch.shared.clock import Clock

BAND_CAPACITY = 4  # stories kept per band value: the newest; a band shared by many is noise

# KEYS[1] version, KEYS[2..1+S] signature hashes of the live buckets (newest first), then for
# each band j and bucket i the band hash KEYS[1+S+(j-1)*S+i]. ARGV: S, then one field per band.
# Returns the version, then story id and stored signature pairs. A bucket whose signature hash
# is gone (not written yet, or expired) can return no candidate, so its bands are not read.
_LOOKUP = """
local S = tonumber(ARGV[1])
local out = {redis.call('GET', KEYS[1]) or '0'}
local live = {}
for i = 1, S do live[i] = redis.call('EXISTS', KEYS[1 + i]) == 1 end
local seen = {}
for j = 1, #ARGV - 1 do
  for i = 1, S do
    local refs = live[i] and redis.call('HGET', KEYS[1 + S + (j - 1) * S + i], ARGV[1 + j])
    if refs then
      local pos = 1
      while pos <= #refs do
        local n = string.byte(refs, pos)
        local ref = string.sub(refs, pos + 1, pos + n)
        pos = pos + 1 + n
        if not seen[ref] then
          seen[ref] = true
          local sig = redis.call('HGET', KEYS[1 + i], ref)
          if sig then
            table.insert(out, ref)
            table.insert(out, sig)
          end
        end
      end
    end
  end
end
return out
"""
# KEYS[1] version, KEYS[2] current signature hash, KEYS[3..] the bands' current hashes.
# ARGV: expected version, TTL, story id, created + signature, capacity, then the band fields.
_CREATE = """
if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] then return 0 end
redis.call('INCR', KEYS[1])
local ttl = ARGV[2]
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
if redis.call('TTL', KEYS[2]) < 0 then redis.call('EXPIRE', KEYS[2], ttl) end
local entry = string.char(#ARGV[3]) .. ARGV[3]
local capacity = tonumber(ARGV[5])
for j = 3, #KEYS do
  local field = ARGV[3 + j]
  local refs = (redis.call('HGET', KEYS[j], field) or '') .. entry
  local count, pos = 0, 1
  while pos <= #refs do count = count + 1; pos = pos + 1 + string.byte(refs, pos) end
  while count > capacity do
    refs = string.sub(refs, 2 + string.byte(refs, 1))
    count = count - 1
  end
  redis.call('HSET', KEYS[j], field, refs)
  if redis.call('TTL', KEYS[j]) < 0 then redis.call('EXPIRE', KEYS[j], ttl) end
end
return 1
"""
# Several stories at once, all or none: KEYS[1] version, KEYS[2] current signature hash, then
# each story's band hashes. ARGV: expected version, TTL, capacity, stories, bands per story,
# then per story its id, created + signature and band fields.
_CREATE_MANY = """
if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] then return 0 end
local ttl, capacity = ARGV[2], tonumber(ARGV[3])
local stories, bands = tonumber(ARGV[4]), tonumber(ARGV[5])
local expiring = {}  -- band hashes whose TTL is known to be set (stories share them)
redis.call('INCRBY', KEYS[1], stories)
for s = 0, stories - 1 do
  local base = 6 + s * (2 + bands)
  local id = ARGV[base]
  redis.call('HSET', KEYS[2], id, ARGV[base + 1])
  local entry = string.char(#id) .. id
  for j = 1, bands do
    local key, field = KEYS[2 + s * bands + j], ARGV[base + 1 + j]
    if redis.call('HSETNX', key, field, entry) == 0 then  -- a band value met before
      local refs = redis.call('HGET', key, field) .. entry
      local count, pos = 0, 1
      while pos <= #refs do count = count + 1; pos = pos + 1 + string.byte(refs, pos) end
      while count > capacity do
        refs = string.sub(refs, 2 + string.byte(refs, 1))
        count = count - 1
      end
      redis.call('HSET', key, field, refs)
    end
    if not expiring[key] then
      if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, ttl) end
      expiring[key] = true
    end
  end
end
if redis.call('TTL', KEYS[2]) < 0 then redis.call('EXPIRE', KEYS[2], ttl) end
return 1
"""
_CREATED = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class NewStory:
    """A story to add to the index: its id, MinHash signature and LSH bands."""

    story_id: str
    signature: bytes
    bands: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Candidate:
    story_id: str
    created: int  # epoch seconds
    signature: bytes


@dataclass(frozen=True, slots=True)
class Lookup:
    version: bytes
    candidates: tuple[Candidate, ...]


class StoryIndex(ABC):
    """Stories' signatures, found by their LSH bands, remembered for the story window.

    ``lookup`` returns every remembered story sharing at least one band with ``bands`` and the
    index version it saw. ``create`` adds a story with its signature and bands, but only if the
    index is still at ``version`` (no story was created since that lookup): False means "look
    again". Both are atomic and raise :class:`RetryableError` when the store is unreachable.
    """

    @abstractmethod
    def lookup(self, bands: Sequence[bytes]) -> Lookup: ...

    @abstractmethod
    def create(
        self, story_id: str, signature: bytes, bands: Sequence[bytes], version: bytes
    ) -> bool: ...

    def lookup_many(self, bands: Sequence[Sequence[bytes]]) -> list[Lookup]:
        """``lookup`` of each band set (one round trip where the store allows)."""
        return [self.lookup(b) for b in bands]

    @abstractmethod
    def create_many(self, stories: Sequence[NewStory], version: bytes) -> bool:
        """Add every story, in order, if the index is still at ``version``; else add none and
        return False. Atomic; the version then counts every story added."""


class MemoryStoryIndex(StoryIndex):
    def __init__(self, window: int, clock: Clock) -> None:
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._version = 0
        self._stories: dict[str, Candidate] = {}
        self._bands: dict[bytes, list[str]] = {}

    def lookup(self, bands: Sequence[bytes]) -> Lookup:
        now = self._clock.now().timestamp()
        with self._lock:
            found: dict[str, Candidate] = {}
            for band in bands:
                for story in self._bands.get(band, ()):
                    candidate = self._stories[story]
                    if now - candidate.created <= self._window:
                        found[story] = candidate
            return Lookup(str(self._version).encode(), tuple(found.values()))

    def create(
        self, story_id: str, signature: bytes, bands: Sequence[bytes], version: bytes
    ) -> bool:
        return self.create_many([NewStory(story_id, signature, tuple(bands))], version)

    def create_many(self, stories: Sequence[NewStory], version: bytes) -> bool:
        with self._lock:
            if str(self._version).encode() != version:
                return False
            created = int(self._clock.now().timestamp())
            for story in stories:
                self._version += 1
                self._stories[story.story_id] = Candidate(story.story_id, created, story.signature)
                for band in story.bands:
                    refs = self._bands.setdefault(band, [])
                    refs.append(story.story_id)
                    del refs[:-BAND_CAPACITY]
            return True


class RedisStoryIndex(StoryIndex):
    """The index in Redis, in one hash slot (see ``keys`` for the layout and lifetimes)."""

    def __init__(self, client: redis.Redis, layout: KeyLayout, window: int, clock: Clock) -> None:
        self._client = client
        self._layout = layout
        self._buckets = Buckets(window, INDEX_BUCKETS_PER_WINDOW)
        self._clock = clock
        self._lookup = client.register_script(_LOOKUP)
        self._create = client.register_script(_CREATE)
        self._create_many = client.register_script(_CREATE_MANY)
        self._cached_live: list[int] = []
        self._cached_band_keys: dict[int, list[str]] = {}

    def _lookup_call(self, bands: Sequence[bytes], live: list[int]) -> tuple[list[str], list[Any]]:
        layout = self._layout
        keys = [layout.index_version()] + [layout.index_signatures(b) for b in live]
        if live != self._cached_live:  # band keys by shard, for these live buckets
            self._cached_live, self._cached_band_keys = list(live), {}
        cached = self._cached_band_keys
        shards = layout.shards
        for band in bands:
            shard = int.from_bytes(band[-3:], "big") % shards
            per_bucket = cached.get(shard)
            if per_bucket is None:
                per_bucket = cached[shard] = layout.index_band_keys(live, [band])
            keys += per_bucket
        return keys, [len(live), *bands]

    @staticmethod
    def _found(reply: list[Any]) -> Lookup:
        candidates = tuple(
            Candidate(
                unpack_id(bytes(reply[i])),
                _CREATED.unpack_from(bytes(reply[i + 1]))[0],
                bytes(reply[i + 1])[_CREATED.size :],
            )
            for i in range(1, len(reply), 2)
        )
        return Lookup(bytes(reply[0]), candidates)

    def lookup(self, bands: Sequence[bytes]) -> Lookup:
        keys, args = self._lookup_call(bands, self._buckets.live(self._clock.now().timestamp()))
        return self._found(call_redis(lambda: self._lookup(keys=keys, args=args)))

    def lookup_many(self, bands: Sequence[Sequence[bytes]]) -> list[Lookup]:
        if not bands:
            return []
        live = self._buckets.live(self._clock.now().timestamp())
        pipe = self._client.pipeline(transaction=False)
        for one in bands:
            keys, args = self._lookup_call(one, live)
            self._lookup(keys=keys, args=args, client=pipe)
        return [self._found(reply) for reply in call_redis(pipe.execute)]

    def create_many(self, stories: Sequence[NewStory], version: bytes) -> bool:
        if not stories:
            return True
        now = self._clock.now().timestamp()
        bucket = self._buckets.current(now)
        layout = self._layout
        created = _CREATED.pack(int(now))
        keys = [layout.index_version(), layout.index_signatures(bucket)]
        args: list[bytes | int] = [
            version,
            self._buckets.ttl(bucket, now),
            BAND_CAPACITY,
            len(stories),
            len(stories[0].bands),
        ]
        for story in stories:
            if len(story.bands) != len(stories[0].bands):
                raise ValueError("every story needs the same number of bands")
            keys += layout.index_band_keys([bucket], story.bands)
            args += [pack_id(story.story_id), created + story.signature, *story.bands]
        return bool(call_redis(lambda: self._create_many(keys=keys, args=args)))

    def create(
        self, story_id: str, signature: bytes, bands: Sequence[bytes], version: bytes
    ) -> bool:
        now = self._clock.now().timestamp()
        bucket = self._buckets.current(now)
        layout = self._layout
        keys = [layout.index_version(), layout.index_signatures(bucket)]
        keys += [layout.index_bands(bucket, band) for band in bands]
        args: list[bytes | int] = [
            version,
            self._buckets.ttl(bucket, now),
            pack_id(story_id),
            _CREATED.pack(int(now)) + signature,
            BAND_CAPACITY,
            *bands,
        ]
        return bool(call_redis(lambda: self._create(keys=keys, args=args)))
