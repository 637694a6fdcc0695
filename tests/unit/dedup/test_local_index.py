"""The near-duplicate index's in-process copy: the answers of the reference index, in arrays."""

from __future__ import annotations

import random

import numpy as np
import pytest

from dmzwatch.dedup import local_index
from dmzwatch.dedup.index import (
    MemoryStoryIndex,
    NewStory,
    decode_stories,
    decode_story,
    encode_stories,
    encode_story,
)
from dmzwatch.dedup.local_index import (
    BAND_CAPACITY,
    Candidate,
    LocalStoryIndex,
    band_keys,
    earlier_sharing,
)
from dmzwatch.shared.clock import ManualClock

WINDOW = 3600


def numbered(values: list[int]) -> tuple[bytes, ...]:
    """Band fields as the signer makes them: the band's number, then 4 bytes."""
    return tuple(bytes([j]) + v.to_bytes(4, "big") for j, v in enumerate(values))


def now(clock: ManualClock) -> float:
    return clock.now().timestamp()


def test_a_story_sharing_one_band_is_found_and_one_sharing_none_is_not() -> None:
    clock = ManualClock()
    index = LocalStoryIndex(WINDOW)
    index.add([("s1", int(now(clock)), b"sig1", numbered([1, 2, 3]))], now(clock))
    index.add([("s2", int(now(clock)), b"sig2", numbered([7, 8, 9]))], now(clock))
    shares_one, shares_none = numbered([5, 2, 6]), numbered([3, 1, 2])  # same values, other bands
    found = index.find([shares_one, shares_none, numbered([7, 2, 9])], now(clock))
    assert found[0] == (Candidate("s1", int(now(clock)), b"sig1"),)
    assert found[1] == ()
    assert [c.story_id for c in found[2]] == ["s2", "s1"]  # by the first band each shares
    assert index.find([()], now(clock)) == [()]


@pytest.mark.parametrize("tail", [1, 1 << 16])  # merged at every addition, or never
def test_a_band_value_returns_its_newest_stories_only(tail: int) -> None:
    clock = ManualClock()
    index = LocalStoryIndex(WINDOW, tail=tail)
    shared = numbered([42])
    for n in range(BAND_CAPACITY + 3):
        index.add([(f"s{n}", int(now(clock)), b"", shared)], now(clock))
        clock.advance(1)
    [found] = index.find([shared], now(clock))
    assert [c.story_id for c in found] == [f"s{n}" for n in range(3, BAND_CAPACITY + 3)]


def test_newest_stories_span_the_merged_table_and_the_recent_additions() -> None:
    clock = ManualClock()
    index = LocalStoryIndex(WINDOW, tail=4)
    shared = numbered([42])
    index.add([(f"old{n}", int(now(clock)), b"", numbered([42, n])) for n in range(3)], now(clock))
    index.add([("new", int(now(clock)), b"", numbered([42, 7]))], now(clock))  # still recent
    [found] = index.find([shared], now(clock))
    assert [c.story_id for c in found] == ["old0", "old1", "old2", "new"]
    index.add([("newer", int(now(clock)), b"", numbered([42, 3]))], now(clock))
    [found] = index.find([shared], now(clock))
    assert [c.story_id for c in found] == ["old1", "old2", "new", "newer"]


def test_a_story_is_found_for_the_window_then_forgotten() -> None:
    clock = ManualClock()
    index = LocalStoryIndex(WINDOW, tail=1)
    bands = numbered([1, 2])
    index.add([("old", int(now(clock)), b"", bands)], now(clock))
    clock.advance(WINDOW)
    index.add([("new", int(now(clock)), b"", numbered([3, 4]))], now(clock))  # compacts
    assert [c.story_id for c in index.find([bands], now(clock))[0]] == ["old"]
    assert len(index) == 2  # still in its window
    clock.advance(1)
    assert index.find([bands], now(clock)) == [()]
    index.add([("newest", int(now(clock)), b"", bands)], now(clock))
    assert len(index) == 2  # "old" forgotten at the merge
    assert [c.story_id for c in index.find([bands], now(clock))[0]] == ["newest"]


def random_bands(rng: random.Random, listed: bool) -> tuple[bytes, ...]:
    """Few distinct values, so bands are shared often and capacity matters."""
    if listed:  # any band fields: other lengths, hashed past 7 bytes
        return tuple(bytes([rng.randrange(3)]) * rng.choice([1, 2, 5, 7, 8, 12]) for _ in range(3))
    return numbered([rng.randrange(6) for _ in range(8)])


@pytest.mark.parametrize("seed", range(6))
def test_answers_equal_the_reference_index_through_merges_and_expiry(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    monkeypatch.setattr(local_index, "_SLICE", 5)  # tables are filtered, marked in many slices
    listed = seed % 2 == 1
    clock = ManualClock()
    reference = MemoryStoryIndex(WINDOW, clock)
    local = LocalStoryIndex(WINDOW, tail=rng.choice([1, 16, 64, 1 << 16]))
    version = reference.lookup(()).version
    stories = 0
    for _ in range(120):
        batch = [
            NewStory(f"s{stories + n}", rng.randbytes(8), random_bands(rng, listed))
            for n in range(rng.randint(1, 12))
        ]
        stories += len(batch)
        assert reference.create_many(batch, version)
        version = reference.lookup(()).version
        created = int(now(clock))
        local.add([(s.story_id, created, s.signature, s.bands) for s in batch], now(clock))
        queries = [random_bands(rng, listed) for _ in range(20)]
        assert local.find(queries, now(clock)) == [reference.lookup(q).candidates for q in queries]
        clock.advance(rng.choice([0, 1, 30, 200, WINDOW // 3]))
    queries = [random_bands(rng, listed) for _ in range(50)]
    before = local.find(queries, now(clock))
    local.compact(now(clock))
    assert len(local) < stories  # forgot the stories past the window
    assert (
        local.find(queries, now(clock))
        == before
        == [reference.lookup(q).candidates for q in queries]
    )


def test_a_story_of_the_signer_costs_8_bytes_a_band_plus_its_row_and_the_filter() -> None:
    rng = random.Random(3)
    clock = ManualClock()
    index = LocalStoryIndex(WINDOW)
    stories = [
        (f"s{n}", int(now(clock)), rng.randbytes(16), numbered([rng.getrandbits(32)] * 32))
        for n in range(1500)
    ]
    index.add(stories, now(clock))  # in the tail (not merged: no filter yet)
    row = 1 + 3 + 16 + 4 + 4  # id (length-prefixed, packed), signature, start, created
    assert index.nbytes() <= len(stories) * (32 * 8 + row) * 1.25  # growth room: a quarter
    index.compact(now(clock))  # into the main table, with a filter of 2-4 bytes a key
    assert index.nbytes() <= len(stories) * (32 * (8 + 4) + row) * 1.25
    assert index.find([stories[7][3]], now(clock)) == [(Candidate(*stories[7][:3]),)]


def test_a_stream_entry_decodes_to_what_was_encoded() -> None:
    signed = ("u" + "ab" * 12, 1_800_000_000, bytes(range(256)), numbered(list(range(32))))
    raw = encode_story(*signed)
    assert decode_story(raw) == signed
    assert len(raw) == 1 + 13 + 6 + 256 + 2 + 32 * 4
    odd = ("custom id", 7, b"", (b"", b"\x05abcd", b"x" * 20))  # not numbered: listed
    assert decode_story(encode_story(*odd)) == odd


def test_band_keys_are_exact_up_to_seven_bytes() -> None:
    bands = list(numbered([0, 1, 0xFFFFFFFF])) + [b"\x00abcd"]
    fast = band_keys(bands)
    one_by_one = band_keys([*bands, b"x"])[:-1]  # not all of 5 bytes: the general path
    assert fast.dtype == np.uint64 and list(fast) == list(one_by_one)
    short = band_keys([b"", b"\x00", b"\x00\x00", b"\x00" * 7, b"\x00" * 8, b"\x00" * 9])
    assert len(set(short.tolist())) == 6


def test_stream_entries_read_in_bulk_index_as_the_stories_added_one_by_one() -> None:
    rng = random.Random(9)
    clock = ManualClock()
    stories = [
        (f"s{n}", int(now(clock)) - n, rng.randbytes(16), random_bands(rng, listed=n % 3 == 0))
        for n in range(60)
    ]
    added, read = LocalStoryIndex(WINDOW), LocalStoryIndex(WINDOW)
    added.add(stories, now(clock))
    read.extend(*decode_stories([encode_story(*s) for s in stories]), now(clock))
    queries = [random_bands(rng, listed=n % 2 == 0) for n in range(40)]
    expected = added.find(queries, now(clock))
    assert read.find(queries, now(clock)) == expected and sum(map(len, expected)) > 40


@pytest.mark.parametrize("seed", range(8))
def test_earlier_sharing_is_a_dict_of_band_holders_looked_up_field_by_field(seed: int) -> None:
    rng = random.Random(seed)
    batch = [random_bands(rng, listed=seed % 2 == 1) for _ in range(rng.randint(0, 40))]
    if seed == 0:
        batch = [numbered([n, n]) for n in range(30)]  # no band shared
    holders: dict[bytes, list[int]] = {}
    expected = []
    for i, bands in enumerate(batch):
        first_seen = {j: None for band in bands for j in holders.get(band, ())}
        expected.append(list(first_seen))
        for band in bands:
            holders.setdefault(band, []).append(i)
    assert earlier_sharing(batch) == expected
    assert seed == 0 or any(expected)


def test_stream_entries_encoded_at_once_are_those_encoded_one_by_one() -> None:
    rng = random.Random(4)
    sig = rng.randbytes(256)
    misnumbered = (*numbered([1, 2])[:1], b"\x00abcd")
    kinds = [numbered([1, 2, 3]), (), misnumbered, (b"\x00abc", b"\x01abcde"), numbered([9] * 32)]
    stories = [(f"s{n}", 1_800_000_000 + n, sig, kinds[n % len(kinds)]) for n in range(12)]
    for batch in (stories, stories[:2], [s for s in stories if len(s[3]) != 2]):
        assert encode_stories(batch) == [encode_story(*s) for s in batch]
    assert [decode_story(raw) for raw in encode_stories(stories)] == stories
    assert encode_story(*stories[0])[-14:-12] == bytes([0, 3])  # numbered: 3 bands of 4 bytes
    assert encode_story(*stories[2])[-14:-12] == bytes([1, 2])  # misnumbered: listed
