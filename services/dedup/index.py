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

import redis

from dmzwatch.dedup.entries import pack_id, unpack_id
from dmzwatch.dedup.keys import Buckets, KeyLayout
from dmzwatch.dedup.records import call_redis
from dmzwatch.shared.clock import Clock

BAND_CAPACITY = 4  # stories kept per band value: the newest; a band shared by many is noise

# KEYS[1] version, KEYS[2..1+S] signature hashes of the live buckets (newest first), then for
# each band j and bucket i the band hash KEYS[1+S+(j-1)*S+i]. ARGV: S, then one field per band.
# Returns the version, then story id and stored signature pairs.
_LOOKUP = """
local S = tonumber(ARGV[1])
local out = {redis.call('GET', KEYS[1]) or '0'}
local seen = {}
for j = 1, #ARGV - 1 do
  for i = 1, S do
    local refs = redis.call('HGET', KEYS[1 + S + (j - 1) * S + i], ARGV[1 + j])
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
_CREATED = struct.Struct("<I")


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
        with self._lock:
            if str(self._version).encode() != version:
                return False
            self._version += 1
            created = int(self._clock.now().timestamp())
            self._stories[story_id] = Candidate(story_id, created, signature)
            for band in bands:
                refs = self._bands.setdefault(band, [])
                refs.append(story_id)
                del refs[:-BAND_CAPACITY]
            return True


class RedisStoryIndex(StoryIndex):
    """The index in Redis, in one hash slot (see ``keys`` for the layout and lifetimes)."""

    def __init__(self, client: redis.Redis, layout: KeyLayout, window: int, clock: Clock) -> None:
        self._layout = layout
        self._buckets = Buckets(window)
        self._clock = clock
        self._lookup = client.register_script(_LOOKUP)
        self._create = client.register_script(_CREATE)

    def lookup(self, bands: Sequence[bytes]) -> Lookup:
        live = self._buckets.live(self._clock.now().timestamp())
        layout = self._layout
        keys = [layout.index_version()] + [layout.index_signatures(b) for b in live]
        keys += [layout.index_bands(b, band) for band in bands for b in live]
        reply = call_redis(lambda: self._lookup(keys=keys, args=[len(live), *bands]))
        candidates = tuple(
            Candidate(
                unpack_id(bytes(reply[i])),
                _CREATED.unpack_from(bytes(reply[i + 1]))[0],
                bytes(reply[i + 1])[_CREATED.size :],
            )
            for i in range(1, len(reply), 2)
        )
        return Lookup(bytes(reply[0]), candidates)

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
