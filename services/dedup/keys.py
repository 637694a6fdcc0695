"""Every Redis key dedup writes: what it holds, how long it lives, which hash slot it lands on.

Memory is bounded by time, never by hope: every key below carries a TTL, and records
are grouped into *time buckets* so that one TTL per bucket expires many records at once (a
Redis key costs ~100 bytes before it holds anything; a field in a small hash costs ~30).
A record written at time t lands in bucket ``floor(t / w)`` with ``w = lifetime / 8`` and that
bucket's key expires at its end plus ``lifetime``: a record is kept at least ``lifetime`` and at
most ``lifetime + w``; lookups read the 9 newest buckets. The near-duplicate index is one
stream instead, trimmed by time (see ``dmzwatch.dedup.index``). ``<p>`` is
``DMZWATCH_REDIS_KEY_PREFIX`` (it must not contain ``{``), ``<s>`` a shard number (a hash of the
record's name modulo ``DMZWATCH_DEDUP_SHARDS``), ``<t>`` a bucket number.

===============================  ==============================================  ================
key                              holds (field → value, binary)                   lives
===============================  ==============================================  ================
``<p>x{<s>}:<t>`` (hash)         ``a``+id → article record: first seen, story,   ``DMZWATCH_DEDUP_
                                 recent revisions (text hash + record token);    TTL_SECONDS``
                                 ``g``+feed/GUID → hash of the article id;       (+1 bucket)
                                 ``c``+text hash → article and outlet hashes,
                                 story; ``o``+story → story start and outlets
``<p>l{lsh}:stream1`` (stream)   one entry per story created, its id the         entries: ``DMZ
                                 creation time in ms: field ``s`` → packed       WATCH_STORY_
                                 story id, created (u32), MinHash signature      WINDOW_SECONDS``
                                 (128 × 16 bits), 32 band hashes (4 bytes        + 10 min; the
                                 each)                                           key: as long
                                                                                 after the last
                                                                                 story
===============================  ==============================================  ================

A story's outlets count only while it is younger than the story window (its start is stored);
the index forgets the story after the window, so a later copy starts a new story. The ``1`` in
``stream1`` is the index's format: a deployment with another format ignores the key (the
format before it, hashes ``l{lsh}:s:<t>``, ``l{lsh}:b:<t>:<n>`` and the counter ``l{lsh}:v``,
expire but for the counter, which can be deleted).

Redis Cluster: every script touches one hash slot. Exact records of one shard share the tag
``{<s>}``, so a lookup over all its buckets and the write are one atomic script; different
shards spread over the cluster. The near-duplicate index is deliberately *one* slot (tag
``{lsh}``): finding a story's look-alikes and creating the story must be atomic across
replicas, or two copies handled at the same moment would each start a story (optimistic: the
create succeeds only if the stream still ends at the entry read with the lookup). It costs
about 490 bytes per story in the window in Redis (~2 million stories per GB), and each dedup
process keeps a copy at 0.65–1.1 KB per story (``dmzwatch.dedup.local_index``). The alert
ledger's keys in the classifier carry the story id as their tag (``{<story>}``).
"""

from __future__ import annotations

from dataclasses import dataclass

BUCKETS_PER_LIFETIME = 8
INDEX_TAG = "{lsh}"
INDEX_FORMAT = 1  # of the index stream's entries (``dmzwatch.dedup.index.encode_story``)


@dataclass(frozen=True, slots=True)
class Buckets:
    """Time buckets for records that live ``lifetime`` seconds (see the module docstring)."""

    lifetime: int
    per_lifetime: int = BUCKETS_PER_LIFETIME

    @property
    def width(self) -> int:
        return max(1, self.lifetime // self.per_lifetime)

    def current(self, now: float) -> int:
        return int(now // self.width)

    def live(self, now: float) -> list[int]:
        """The buckets a lookup reads, newest (the one written to) first."""
        current = self.current(now)
        return [current - i for i in range(self.per_lifetime + 1)]

    def ttl(self, bucket: int, now: float) -> int:
        """Seconds the key of ``bucket`` has left: until its end plus the lifetime."""
        return max(1, int((bucket + 1) * self.width + self.lifetime - now) + 1)


@dataclass(frozen=True, slots=True)
class KeyLayout:
    prefix: str
    shards: int

    def __post_init__(self) -> None:
        if "{" in self.prefix or "}" in self.prefix:
            raise ValueError("the Redis key prefix must not contain braces (hash tags)")
        if self.shards < 1:
            raise ValueError("shards must be at least 1")

    def shard(self, name: bytes) -> int:
        return int.from_bytes(name[-3:], "big") % self.shards

    def records(self, namespace: str, shard: int, bucket: int) -> str:
        return f"{self.prefix}{namespace}{{{shard:x}}}:{bucket:x}"

    def index_stream(self) -> str:
        return f"{self.prefix}l{INDEX_TAG}:stream{INDEX_FORMAT}"
