"""The near-duplicate index: stories' MinHash signatures found through LSH bands, for a window.

The shared truth is one Redis stream (``keys``: ``<p>l{lsh}:stream1``), one entry per story
created: its id, when, its signature and its band fields. Each process keeps the stories of the
window in memory (:class:`LocalStoryIndex`, numpy arrays) and answers lookups there after
reading the entries it has not seen yet: Redis then does one range read per lookup batch and
one small script per creation, instead of ~64 hash reads per article. The stream's last entry
id is the index version: a creation is appended only if the stream still ends at the version
its lookup saw, so two replicas never each start a story for near-duplicates handled at the
same moment (the loser looks again and finds the winner's story). Entries older than the window
(plus a margin) are trimmed by id, which is a millisecond timestamp, and the key expires when
no story is created for that long.
"""

from __future__ import annotations

import struct
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import redis

from dmzwatch.dedup.entries import pack_id, unpack_id
from dmzwatch.dedup.keys import KeyLayout
from dmzwatch.dedup.local_index import (
    BAND_CAPACITY,
    Candidate,
    LocalStoryIndex,
    band_keys,
    release_freed_memory,
)
from dmzwatch.dedup.records import call_redis
from dmzwatch.shared.clock import Clock

__all__ = [
    "BAND_CAPACITY",
    "Candidate",
    "Lookup",
    "MemoryStoryIndex",
    "NewStory",
    "StoryIndex",
    "StreamStoryIndex",
    "decode_stories",
    "decode_story",
    "encode_stories",
    "encode_story",
]

TRIM_MARGIN_SECONDS = 600  # stream entries outlive the window by this much (clock skew)
PAGE = 2000  # stream entries per read
EMPTY_VERSION = b"0-0"  # the version of an index with no story (no stream)

# KEYS[1] the stream. ARGV: the expected version (the id of the stream's last entry), now (ms),
# the oldest id to keep (ms), the TTL (ms), then one entry per story. Returns {1, new ids...},
# or {0, last id} when the stream no longer ends at the expected version (nothing added). Ids
# are the creating replica's clock in ms, never below the last id (its sequence goes up then).
_CREATE = """
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
local last = top and top[1] or '0-0'
if last ~= ARGV[1] then return {0, last} end
local dash = string.find(last, '-', 1, true)
local ms, seq = tonumber(string.sub(last, 1, dash - 1)), tonumber(string.sub(last, dash + 1))
local now = tonumber(ARGV[2])
if now > ms then ms, seq = now, 0 else seq = seq + 1 end
local out = {1}
for i = 5, #ARGV do
  local id = string.format('%.0f-%.0f', ms, seq)
  redis.call('XADD', KEYS[1], id, 's', ARGV[i])
  out[#out + 1] = id
  seq = seq + 1
end
redis.call('XTRIM', KEYS[1], 'MINID', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return out
"""
_HEAD = struct.Struct("<IH")  # created (epoch seconds), signature length
_NUMBERED, _LISTED = 0, 1  # band field forms: band j is bytes([j]) + 4 bytes, or any bytes
_FIVE = frozenset([5])
_NUMBERS = bytes(range(256))  # the first bytes of the numbered form's bands


@dataclass(frozen=True, slots=True)
class NewStory:
    """A story to add to the index: its id, MinHash signature and LSH bands."""

    story_id: str
    signature: bytes
    bands: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Lookup:
    version: bytes
    candidates: tuple[Candidate, ...]


class StoryIndex(ABC):
    """Stories' signatures, found by their LSH bands, remembered for the story window.

    ``lookup`` returns every remembered story sharing at least one band with ``bands`` (at
    most the ``BAND_CAPACITY`` newest per band value) and the index version it saw. ``create``
    adds a story with its signature and bands, but only if the index is still at ``version``
    (no story was created since that lookup): False means "look again". Both are atomic and
    raise :class:`RetryableError` when the store is unreachable.
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
    """The index in plain dicts, for one process (unit tests, ``dmzwatch cluster``)."""

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


def encode_story(story_id: str, created: int, signature: bytes, bands: Sequence[bytes]) -> bytes:
    """A stream entry: packed id (length-prefixed), created and signature length, signature,
    then the bands: numbered (band j is ``bytes([j])`` and 4 bytes: the 4 bytes each) or listed
    (each length-prefixed), after a form byte and their count."""
    return encode_stories([(story_id, created, signature, bands)])[0]


def encode_stories(stories: Sequence[tuple[str, int, bytes, Sequence[bytes]]]) -> list[bytes]:
    """:func:`encode_story` of each (story id, created, signature, bands): the bands of all
    are checked for the numbered form (compared with the numbers they would have), and
    stripped of their numbers, at once."""
    flat = [band for *_, bands in stories for band in bands]
    joined = b"".join(flat)
    numbers = b"".join(_NUMBERS[: len(bands)] for *_, bands in stories)
    numbered = set(map(len, flat)) <= _FIVE and joined[::5] == numbers
    if not numbered and len(stories) > 1:  # never from the signer: story by story
        return [entry for story in stories for entry in encode_stories([story])]
    hashes = b""
    if numbered:
        hashes = np.frombuffer(joined, np.uint8).reshape(len(flat), 5)[:, 1:].tobytes()
    out = []
    at = 0
    for story_id, created, signature, bands in stories:
        packed = pack_id(story_id)
        head = bytes([len(packed)]) + packed + _HEAD.pack(created, len(signature)) + signature
        if numbered:
            out.append(head + bytes([_NUMBERED, len(bands)]) + hashes[at : at + 4 * len(bands)])
        else:
            listed = b"".join(bytes([len(band)]) + band for band in bands)
            out.append(head + bytes([_LISTED, len(bands)]) + listed)
        at += 4 * len(bands)
    return out


def decode_story(raw: bytes) -> tuple[str, int, bytes, tuple[bytes, ...]]:
    """(story id, created, signature, bands) of a stream entry made by :func:`encode_story`."""
    pos = 1 + raw[0]
    story_id = unpack_id(raw[1:pos])
    created, size = _HEAD.unpack_from(raw, pos)
    pos += _HEAD.size
    signature = raw[pos : pos + size]
    pos += size
    form, count = raw[pos], raw[pos + 1]
    pos += 2
    if form == _NUMBERED:
        bands = tuple(bytes([j]) + raw[pos + 4 * j : pos + 4 * j + 4] for j in range(count))
        return story_id, created, signature, bands
    listed = []
    for _ in range(count):
        listed.append(raw[pos + 1 : pos + 1 + raw[pos]])
        pos += 1 + raw[pos]
    return story_id, created, signature, tuple(listed)


def decode_stories(
    entries: Sequence[bytes],
) -> tuple[list[bytes], list[int], np.ndarray, np.ndarray]:
    """Stream entries in the form of :meth:`LocalStoryIndex.extend` (without an object per
    band: numbered bands, the usual form, are read as one array)."""
    stories, created, numbered, listed = [], [], [], []
    counts = np.empty(len(entries), np.int64)
    for n, raw in enumerate(entries):
        split = 1 + raw[0]
        when, size = _HEAD.unpack_from(raw, split)
        end = split + _HEAD.size + size
        stories.append(raw[:split] + raw[split + _HEAD.size : end])
        created.append(when)
        counts[n] = raw[end + 1]
        if raw[end] == _NUMBERED:
            numbered.append(raw[end + 2 : end + 2 + 4 * raw[end + 1]])
        else:
            listed.append(n)
    plain = np.ones(len(entries), dtype=bool)
    plain[listed] = False
    story = np.repeat(np.flatnonzero(plain), counts[plain])
    hashes = np.frombuffer(b"".join(numbered), dtype=">u4").astype(np.uint64)
    number = np.arange(len(story)) - np.repeat(
        np.cumsum(counts[plain]) - counts[plain], counts[plain]
    )
    keys = [hashes | number.astype(np.uint64) << np.uint64(32) | np.uint64(5 << 56)]
    stories_of = [story]
    for n in listed:
        bands = decode_story(entries[n])[3]
        keys.append(band_keys(bands))
        stories_of.append(np.full(len(bands), n))
    return stories, created, np.concatenate(keys), np.concatenate(stories_of)


def _id(version: bytes) -> tuple[int, int]:
    ms, _, seq = version.partition(b"-")
    return int(ms), int(seq or 0)


class StreamStoryIndex(StoryIndex):
    """The index as a Redis stream (see the module docstring), answered from a local copy.

    Each lookup first reads the entries after the last one applied (the whole window when the
    process starts); the version is the id of the last entry applied. A creation appends only
    if the stream still ends there, then applies its own entries. A stream that ends before
    the version (it expired, or was deleted) is read again from its start.
    """

    def __init__(
        self,
        client: redis.Redis,
        layout: KeyLayout,
        window: int,
        clock: Clock,
        *,
        page: int = PAGE,
    ) -> None:
        self._client = client
        self._key = layout.index_stream()
        self._window = window
        self._keep_ms = (window + TRIM_MARGIN_SECONDS) * 1000
        self._clock = clock
        self._page = page
        self._local = LocalStoryIndex(window)
        self._version = EMPTY_VERSION
        self._lock = threading.Lock()
        self._create = client.register_script(_CREATE)

    def _catch_up(self) -> None:
        pages = 0
        while True:
            start = b"(" + self._version
            entries: list[Any] = call_redis(partial(self._page_after, start)) or []
            if entries:
                decoded = decode_stories([fields[b"s"] for _, fields in entries])
                self._local.extend(*decoded, self._clock.now().timestamp())
                self._version = bytes(entries[-1][0])
            pages += 1
            if len(entries) < self._page:
                break
        if pages > 1:
            release_freed_memory()  # after loading a window: the pages' objects are gone

    def _page_after(self, start: bytes) -> Any:
        return self._client.xrange(self._key, start, count=self._page)

    def lookup(self, bands: Sequence[bytes]) -> Lookup:
        return self.lookup_many([bands])[0]

    def lookup_many(self, bands: Sequence[Sequence[bytes]]) -> list[Lookup]:
        with self._lock:
            self._catch_up()
            found = self._local.find(bands, self._clock.now().timestamp())
            return [Lookup(self._version, candidates) for candidates in found]

    def create(
        self, story_id: str, signature: bytes, bands: Sequence[bytes], version: bytes
    ) -> bool:
        return self.create_many([NewStory(story_id, signature, tuple(bands))], version)

    def create_many(self, stories: Sequence[NewStory], version: bytes) -> bool:
        if not stories:
            return True
        now = self._clock.now().timestamp()
        created = int(now)
        entries = encode_stories([(s.story_id, created, s.signature, s.bands) for s in stories])
        now_ms = int(now * 1000)
        args: list[bytes | int] = [version, now_ms, max(0, now_ms - self._keep_ms), self._keep_ms]
        args += entries
        with self._lock:
            if version != self._version:
                return False  # a lookup of this process has moved on: the stream has too
            reply = call_redis(lambda: self._create(keys=[self._key], args=args))
            if not int(reply[0]):
                if _id(bytes(reply[1])) < _id(self._version):  # a new stream: read it all
                    self._local.clear()
                    self._version = EMPTY_VERSION
                return False
            self._local.extend(*decode_stories(entries), now)
            self._version = bytes(reply[-1])
            return True
