"""The near-duplicate index on the real Redis: one stream shared by replicas, a copy in each."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import redis

from dmzwatch.dedup.index import (
    EMPTY_VERSION,
    TRIM_MARGIN_SECONDS,
    NewStory,
    StreamStoryIndex,
)
from dmzwatch.dedup.keys import KeyLayout
from dmzwatch.shared.clock import ManualClock

WINDOW = 3600
START = datetime(2026, 5, 1, tzinfo=UTC)


def story(rng: random.Random, name: str) -> NewStory:
    bands = tuple(bytes([j]) + rng.randbytes(4) for j in range(32))
    return NewStory(name, rng.randbytes(256), bands)


def replica(client: redis.Redis, prefix: str, clock: ManualClock, page: int = 2000):
    return StreamStoryIndex(client, KeyLayout(prefix, 8), WINDOW, clock, page=page)


def found(index: StreamStoryIndex, stories: list[NewStory]) -> list[list[str]]:
    return [
        [c.story_id for c in one.candidates]
        for one in index.lookup_many([s.bands for s in stories])
    ]


def test_a_creation_on_a_stale_version_adds_nothing_and_the_other_replica_sees_the_winner(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    rng = random.Random(1)
    clock = ManualClock(START)
    one, two = replica(redis_client, key_prefix, clock), replica(redis_client, key_prefix, clock)
    first, second = story(rng, "u" + "1" * 24), story(rng, "u" + "2" * 24)
    [seen_by_one] = one.lookup_many([first.bands])
    [seen_by_two] = two.lookup_many([second.bands])
    assert seen_by_one.version == seen_by_two.version == EMPTY_VERSION
    assert one.create_many([first], seen_by_one.version)
    key = KeyLayout(key_prefix, 8).index_stream()
    assert not two.create_many([second], seen_by_two.version)  # one created meanwhile
    assert redis_client.xlen(key) == 1
    [again] = two.lookup_many([first.bands])  # the candidate the race was about
    assert [(c.story_id, c.created, c.signature) for c in again.candidates] == [
        (first.story_id, int(START.timestamp()), first.signature)
    ]
    assert again.version != EMPTY_VERSION
    assert two.create(second.story_id, second.signature, second.bands, again.version)
    assert not one.create_many([story(rng, "late")], seen_by_one.version)
    assert found(one, [first, second]) == [[first.story_id], [second.story_id]]
    assert redis_client.xlen(key) == 2


def test_a_new_replica_loads_the_window_then_shares_the_version(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    rng = random.Random(2)
    clock = ManualClock(START)
    writer = replica(redis_client, key_prefix, clock)
    stories = [story(rng, f"s{n}") for n in range(250)]
    for at in range(0, len(stories), 50):
        version = writer.lookup_many([()])[0].version
        assert writer.create_many(stories[at : at + 50], version)
        clock.advance(1)
    fresh = replica(redis_client, key_prefix, clock, page=100)  # three pages
    assert found(fresh, stories) == [[s.story_id] for s in stories]
    version = fresh.lookup(()).version
    assert version == writer.lookup(()).version
    assert fresh.create_many([story(rng, "next")], version)


def test_stories_past_the_window_are_trimmed_and_the_stream_expires(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    rng = random.Random(3)
    clock = ManualClock(START)
    index = replica(redis_client, key_prefix, clock)
    key = KeyLayout(key_prefix, 8).index_stream()
    old = [story(rng, f"old{n}") for n in range(20)]
    assert index.create_many(old, index.lookup(()).version)
    assert 0 < redis_client.pttl(key) <= (WINDOW + TRIM_MARGIN_SECONDS) * 1000
    clock.advance(WINDOW + 1)
    assert found(index, old[:1]) == [[]]  # past the window: no candidate
    new = story(rng, "new")
    assert index.create_many([new], index.lookup(()).version)
    assert redis_client.xlen(key) == 21  # kept for the margin
    clock.advance(TRIM_MARGIN_SECONDS)
    newer = story(rng, "newer")
    assert index.create_many([newer], index.lookup(()).version)
    assert redis_client.xlen(key) == 2  # the old ones trimmed by id (time)
    assert 0 < redis_client.pttl(key) <= (WINDOW + TRIM_MARGIN_SECONDS) * 1000
    fresh = replica(redis_client, key_prefix, clock)
    assert found(fresh, [*old[:1], new, newer]) == [[], ["new"], ["newer"]]


def test_a_replica_whose_clock_is_behind_still_appends_after_the_last_story(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    rng = random.Random(4)
    ahead, behind = ManualClock(START), ManualClock(START)
    ahead.advance(60)
    one, two = replica(redis_client, key_prefix, ahead), replica(redis_client, key_prefix, behind)
    assert one.create_many([story(rng, "a")], one.lookup(()).version)
    assert two.create_many([story(rng, "b"), story(rng, "c")], two.lookup(()).version)
    ids = [entry for entry, _ in redis_client.xrange(KeyLayout(key_prefix, 8).index_stream())]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split(b"-")))) and len(set(ids)) == 3


def test_a_stream_deleted_under_a_replica_is_read_again_from_its_start(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    rng = random.Random(5)
    clock = ManualClock(START)
    index = replica(redis_client, key_prefix, clock)
    gone = story(rng, "gone")
    assert index.create_many([gone], index.lookup(()).version)
    redis_client.delete(KeyLayout(key_prefix, 8).index_stream())
    earlier = ManualClock(START)
    earlier.advance(-10)  # so the new stream ends before the version the replica holds
    other = replica(redis_client, key_prefix, earlier)
    first = story(rng, "first")
    assert other.create_many([first], EMPTY_VERSION)  # a new stream, its ids before ours
    stale = index.lookup(()).version
    assert not index.create_many([story(rng, "x")], stale)
    assert found(index, [gone, first]) == [[], ["first"]]
    assert index.create_many([story(rng, "y")], index.lookup(()).version)
