"""The near-duplicate index's copy in each dedup process: stories found by their bands, in
numpy arrays (see ``index`` for the shared stream it copies)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dmzwatch.dedup.entries import pack_id, unpack_id

BAND_CAPACITY = 4  # stories kept per band value: the newest; a band shared by many is noise
FILTER_BITS = 8  # per key, for twice the keys, in the main band table's filter (2-4 bytes a key)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # the filter's multiplicative hash (odd)


@dataclass(frozen=True, slots=True)
class Candidate:
    story_id: str
    created: int  # epoch seconds
    signature: bytes


def band_keys(bands: Sequence[bytes]) -> np.ndarray:
    """Each band field as a uint64: its length in the top byte above its bytes when it has at
    most 7 (exact: ours have 5), else a 63-bit hash of it with the top bit set."""
    if bands and set(map(len, bands)) == {5}:
        wide = np.zeros((len(bands), 8), dtype=np.uint8)
        wide[:, 0] = 5
        wide[:, 3:] = np.frombuffer(b"".join(bands), dtype=np.uint8).reshape(-1, 5)
        return wide.view(">u8").ravel().astype(np.uint64)
    return np.fromiter(map(_band_key, bands), dtype=np.uint64, count=len(bands))


def earlier_sharing(bands: Sequence[Sequence[bytes]]) -> list[list[int]]:
    """For each band set, the earlier sets (their places in ``bands``) holding one of its band
    fields, in order of first sighting: by the first of its fields found there, then by place
    (as a dict from band field to the earlier sets holding it, looked up field by field,
    would give them). Band fields rarely repeat, so the search is one sort of their keys."""
    out: list[list[int]] = [[] for _ in bands]
    flat = [band for one in bands for band in one]
    if len(set(flat)) == len(flat):  # the usual case: no field met twice
        return out
    keys = band_keys(flat)
    order = np.argsort(keys, kind="stable")  # equal keys: by place in ``flat``
    ordered = keys[order]
    same = ordered[1:] == ordered[:-1]
    member = np.zeros(len(flat), dtype=bool)  # in a run of equal keys
    member[1:] |= same
    member[:-1] |= same
    places = order[member]  # by run, each run by place in ``flat``
    rank = _ranks(np.cumsum(np.r_[True, ~same])[member])  # the place within its run
    # every (later, earlier) pair of a run: each member with each member before it
    later = np.repeat(np.arange(len(places)), rank)
    earlier = later - rank[later] + _ranks(later)
    later, earlier = places[later], places[earlier]
    sizes = [len(one) for one in bands]
    owner = np.repeat(np.arange(len(bands)), sizes)
    i, j = owner[later], owner[earlier]
    field = later - (np.cumsum(sizes) - sizes)[i]  # the later set's field found in the earlier
    keep = j < i
    hashed = keep & (keys[later] >= np.uint64(1 << 63))  # keys of 8+ bytes: compare the bytes
    for n in np.flatnonzero(hashed).tolist():
        keep[n] = flat[int(later[n])] == flat[int(earlier[n])]
    i, j, field = i[keep], j[keep], field[keep]
    if not len(i):
        return out
    # each earlier set once, at the first field found; then by that field and by place
    pairs = np.lexsort((field, j, i))
    i, j, field = i[pairs], j[pairs], field[pairs]
    first = np.r_[True, (i[1:] != i[:-1]) | (j[1:] != j[:-1])]
    i, j, field = i[first], j[first], field[first]
    listed = np.lexsort((j, field, i))
    for a, b in zip(i[listed].tolist(), j[listed].tolist(), strict=True):
        out[a].append(b)
    return out


def _band_key(band: bytes) -> int:
    if len(band) <= 7:
        return len(band) << 56 | int.from_bytes(band, "big")
    return int.from_bytes(hashlib.blake2b(band, digest_size=8).digest(), "big") | 1 << 63


class _BandTable:
    """Band keys in ascending order, equal keys by row (oldest first), and each one's row;
    optionally a filter of the keys held (:meth:`filtered`; the main table's) so that a search
    skips most keys that are not here without reading the large sorted table."""

    __slots__ = ("bits", "keys", "marked", "room", "rows", "shift")

    def __init__(self, keys: np.ndarray | None = None, rows: np.ndarray | None = None) -> None:
        self.keys = np.empty(0, np.uint64) if keys is None else keys
        self.rows = np.empty(0, np.uint32) if rows is None else rows
        self.bits: np.ndarray | None = None  # the filter: bit h(key) set for each key marked
        self.shift = np.uint64(64)  # h(key) is the top bits of key * _GOLDEN
        self.marked = 0  # keys marked in the filter (also those dropped since)
        self.room = 0  # keys the filter was sized for

    def __len__(self) -> int:
        return len(self.keys)

    def filtered(self, previous: _BandTable, added: np.ndarray) -> _BandTable:
        """This table with a filter of its keys: ``previous``'s (taken over, no copy) with the
        ``added`` keys marked while it has room, else a new one with room for twice as many
        keys as here, ``FILTER_BITS`` each (so at most ~1/16 of the keys not here pass)."""
        if previous.bits is not None and previous.marked + len(added) <= previous.room:
            self.bits, self.shift, self.room = previous.bits, previous.shift, previous.room
            self.marked = previous.marked + len(added)
            slots = self._slots(added)
            bit = np.left_shift(1, slots & np.uint64(7), dtype=np.uint8)
            np.bitwise_or.at(self.bits, (slots >> np.uint64(3)).astype(np.intp), bit)
            return self
        self.room = 2 * len(self.keys)
        size = max(8, FILTER_BITS * self.room - 1).bit_length()
        self.shift = np.uint64(64 - size)
        held = np.zeros(1 << size, dtype=bool)
        held[self._slots(self.keys)] = True
        self.bits = np.packbits(held, bitorder="little")
        self.marked = len(self.keys)
        return self

    def _slots(self, keys: np.ndarray) -> np.ndarray:
        slots: np.ndarray = (keys * _GOLDEN) >> self.shift
        return slots

    def merged(self, keys: np.ndarray, rows: np.ndarray) -> _BandTable:
        """This table with ``keys`` (sorted, their rows newer than any here) merged in."""
        at = np.searchsorted(self.keys, keys, side="right")
        at += np.arange(len(keys))  # their places in the merged table
        ours = np.ones(len(self.keys) + len(keys), dtype=bool)
        ours[at] = False
        merged = _BandTable(np.empty(len(ours), np.uint64), np.empty(len(ours), np.uint32))
        merged.keys[at], merged.keys[ours] = keys, self.keys
        merged.rows[at], merged.rows[ours] = rows, self.rows
        return merged

    def newest(self, keys: np.ndarray, take: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``take[i]`` of the newest rows of ``keys[i]`` (sorted), each key's oldest first,
        as (rows, index of their key); ``take`` is lowered to the number taken."""
        if not len(self):
            take[:] = 0
            return self.rows[:0], np.empty(0, np.intp)
        at = np.arange(len(keys))  # the keys that may be here
        if self.bits is not None:
            slots = self._slots(keys)
            at = np.flatnonzero(self.bits[slots >> np.uint64(3)] >> (slots & np.uint64(7)) & 1)
        low = np.searchsorted(self.keys, keys[at], side="left")
        held = self.keys[np.minimum(low, len(self) - 1)] == keys[at]
        at, low = at[held], low[held]
        high = np.searchsorted(self.keys, keys[at], side="right")
        count = np.zeros(len(keys), np.int64)
        count[at] = high - low
        np.minimum(take, count, out=take)
        taken = take[at]
        which = np.repeat(at, taken)
        starts = np.cumsum(taken) - taken
        rows = np.repeat(high - taken - starts, taken) + np.arange(len(which))
        return self.rows[rows], which


class LocalStoryIndex:
    """The stories of the window in this process's memory, found by their bands.

    Rows (story id, created, signature) are kept in the order stories were added, in arrays
    and one byte string rather than an object per story (a process holds the whole window, and
    millions of small objects cost twice their size and fragment the heap). Band keys
    (see :func:`band_keys`) sit in two sorted tables: ``main`` and a smaller ``tail`` of recent
    additions, merged into ``main`` when it grows past an eighth of it; a merge also forgets
    the oldest stories that are past the window. The main table has a bit filter of its keys
    (~70 bytes per story), so a lookup searches it only for the few keys that may be there.
    A lookup answers as :class:`MemoryStoryIndex` does for the same additions: the
    ``capacity`` newest stories of each band value, those in the window, each story once, in
    the order of first sighting. Not thread-safe.
    """

    def __init__(self, window: int, capacity: int = BAND_CAPACITY, tail: int = 1 << 16) -> None:
        self._window = window
        self._capacity = capacity
        self._least_tail = tail
        self.clear()

    def clear(self) -> None:
        self._stories = bytearray()  # per row: packed id (length-prefixed) and signature
        # rows in arrays with room to grow (doubled when full), the first ``len(self)`` used
        self._size = 0
        self._starts = np.zeros(1, np.int64)  # where each row starts in it, and the end
        self._created = np.empty(0, np.int64)
        self._main = _BandTable()
        self._tail = _BandTable()

    def __len__(self) -> int:
        return self._size

    def add(self, stories: Sequence[tuple[str, int, bytes, Sequence[bytes]]], now: float) -> None:
        """Add (story id, created, signature, bands) in order, after every story added before."""
        self.extend(
            [_row(story_id, signature) for story_id, _, signature, _ in stories],
            [created for _, created, *_ in stories],
            band_keys([band for *_, bands in stories for band in bands]),
            np.repeat(np.arange(len(stories)), [len(bands) for *_, bands in stories]),
            now,
        )

    def extend(
        self,
        stories: list[bytes],
        created: Sequence[int],
        keys: np.ndarray,
        story: np.ndarray,
        now: float,
    ) -> None:
        """:meth:`add` of stories in their stored form: each one's packed id (length-prefixed)
        and signature, when each was created, and band keys with the story (counted from 0 in
        ``stories``) that each belongs to, in any order."""
        if not stories:
            return
        rows = (story + len(self)).astype(np.uint32)
        order = np.lexsort((rows, keys))
        self._tail = self._tail.merged(keys[order], rows[order])
        sizes = np.fromiter(map(len, stories), np.int64, len(stories))
        low, high = self._size, self._size + len(stories)
        if high > len(self._created):
            room = max(2 * len(self._created), high, 64)
            self._created = np.concatenate((self._created[:low], np.empty(room - low, np.int64)))
            self._starts = np.concatenate((self._starts[: low + 1], np.empty(room - low, np.int64)))
        np.cumsum(sizes, out=self._starts[low + 1 : high + 1])
        self._starts[low + 1 : high + 1] += self._starts[low]
        self._created[low:high] = created
        self._stories += b"".join(stories)
        self._size = high
        if len(self._tail) > max(self._least_tail, len(self._main) // 8):
            self.compact(now)

    def compact(self, now: float) -> None:
        """Merge the tail into the main table and forget the leading stories past the window."""
        merged = self._main.merged(self._tail.keys, self._tail.rows)
        expired = now - self._created[: self._size] > self._window
        gone = len(expired) if expired.all() else int(np.argmin(expired))
        if gone:
            keep = merged.rows >= gone
            merged = _BandTable(merged.keys[keep], merged.rows[keep] - np.uint32(gone))
            del self._stories[: self._starts[gone]]
            self._starts = self._starts[gone:] - self._starts[gone]
            self._created = self._created[gone:]
            self._size -= gone
        self._main, self._tail = merged.filtered(self._main, self._tail.keys), _BandTable()

    def find(self, bands: Sequence[Sequence[bytes]], now: float) -> list[tuple[Candidate, ...]]:
        """The stories sharing a band with each of ``bands`` and in the window at ``now``."""
        flat = [band for one in bands for band in one]
        if not flat or not len(self):
            return [() for _ in bands]
        keys = band_keys(flat)
        by_key = np.argsort(keys)  # sorted queries search a large table several times faster
        keys = keys[by_key]
        cap = self._capacity
        wanted = np.full(len(keys), cap, dtype=np.int64)
        recent, recent_at = self._tail.newest(keys, wanted)
        older, older_at = self._main.newest(keys, cap - wanted)
        older_key, recent_key = by_key[older_at], by_key[recent_at]
        # by query band, then oldest first: the main table's rows before the tail's
        spot = np.concatenate((older_key * (2 * cap), recent_key * (2 * cap) + cap))
        spot += np.concatenate((_ranks(older_at), _ranks(recent_at)))
        order = np.argsort(spot)
        rows = np.concatenate((older, recent))[order].astype(np.int64)
        query = np.repeat(np.arange(len(bands)), [len(one) for one in bands])
        article = query[np.concatenate((older_key, recent_key))[order]]
        created = self._created[rows]
        live = now - created <= self._window
        rows, article, created = rows[live], article[live], created[live]
        _, first = np.unique(article * len(self) + rows, return_index=True)
        first.sort()
        rows = rows[first]
        found: list[list[Candidate]] = [[] for _ in bands]
        raw = self._stories
        for a, start, end, when in zip(
            article[first].tolist(),
            self._starts[rows].tolist(),
            self._starts[rows + 1].tolist(),
            created[first].tolist(),
            strict=True,
        ):
            split = start + 1 + raw[start]
            story = Candidate(unpack_id(bytes(raw[start + 1 : split])), when, bytes(raw[split:end]))
            found[a].append(story)
        return [tuple(one) for one in found]


def _row(story_id: str, signature: bytes) -> bytes:
    packed = pack_id(story_id)
    return bytes([len(packed)]) + packed + signature


def _ranks(groups: np.ndarray) -> np.ndarray:
    """Each element's place within its run of equal ``groups`` values (runs are contiguous)."""
    places = np.arange(len(groups))
    if not len(groups):
        return places
    opens = np.empty(len(groups), dtype=bool)
    opens[0] = True
    np.not_equal(groups[1:], groups[:-1], out=opens[1:])
    ranks: np.ndarray = places - np.maximum.accumulate(np.where(opens, places, 0))
    return ranks
