"""The near-duplicate index's copy in each dedup process: stories found by their bands, in
numpy arrays (see ``index`` for the shared stream it copies)."""

from __future__ import annotations

import ctypes
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


ROW_BITS = 27  # a short table entry: its key's 37 bits above its row's 27
MAX_ROWS = 1 << ROW_BITS  # stories held at once (the window holds a few hundred thousand)
_ROW = np.uint64(MAX_ROWS - 1)
_SHORT = np.uint64((1 << (64 - ROW_BITS)) - 1)  # a short key: band number (< 32) and hash
_SHORT_TOP = np.uint64(5 << 56 >> (64 - ROW_BITS))  # what a short key's top bits are
_BITS = np.uint64(ROW_BITS)
_SLICE = 1 << 18  # entries a pass over a whole table takes at once (its temporaries' size)


def _short(keys: np.ndarray) -> np.ndarray:
    """Which keys are of the signer's bands (5 bytes, the first below 32): 37 bits of them."""
    short: np.ndarray = keys >> np.uint64(64 - ROW_BITS) == _SHORT_TOP
    return short


class _BandTable:
    """Band keys in ascending order, equal keys by row (oldest first), and each one's row;
    optionally a filter of the keys held (:meth:`filtered`; the main tables') so that a search
    skips most keys that are not here without reading the large sorted table.

    A short table (the signer's bands: see :func:`_short`) holds each key and row in one
    uint64, ``key << ROW_BITS | row`` (8 bytes an entry), sorted as they are; any other key
    (a wide table) is a uint64 beside a uint32 row (12 bytes)."""

    __slots__ = ("bits", "entries", "marked", "room", "rows", "shift", "short")

    def __init__(
        self, short: bool, entries: np.ndarray | None = None, rows: np.ndarray | None = None
    ) -> None:
        self.short = short
        self.entries = np.empty(0, np.uint64) if entries is None else entries
        self.rows = None if short else np.empty(0, np.uint32) if rows is None else rows
        self.bits: np.ndarray | None = None  # the filter: bit h(key) set for each key marked
        self.shift = np.uint64(64)  # h(key) is the top bits of key * _GOLDEN
        self.marked = 0  # keys marked in the filter (also those dropped since)
        self.room = 0  # keys the filter was sized for

    @classmethod
    def of(cls, short: bool, keys: np.ndarray, rows: np.ndarray) -> _BandTable:
        """A table of ``keys`` (short keys if ``short``) and their ``rows``, in any order."""
        if short:
            return cls(True, np.sort(keys << _BITS | rows.astype(np.uint64)))
        order = np.lexsort((rows, keys))
        return cls(False, keys[order], rows[order].astype(np.uint32))

    def __len__(self) -> int:
        return len(self.entries)

    def filtered(self, previous: _BandTable, added: _BandTable) -> _BandTable:
        """This table with a filter of its keys: ``previous``'s (taken over, no copy) with the
        keys of ``added`` marked while it has room, else a new one with room for twice as many
        keys as here, ``FILTER_BITS`` each (so at most ~1/16 of the keys not here pass)."""
        if previous.bits is not None and previous.marked + len(added) <= previous.room:
            self.bits, self.shift, self.room = previous.bits, previous.shift, previous.room
            self.marked = previous.marked + len(added)
            self._mark(added)
            return self
        self.room = 2 * len(self)
        size = max(8, FILTER_BITS * self.room - 1).bit_length()
        self.shift = np.uint64(64 - size)
        self.bits = np.zeros(1 << (size - 3), np.uint8)
        self._mark(self)
        self.marked = len(self)
        return self

    def _mark(self, table: _BandTable) -> None:
        """Set the filter's bit of each key of ``table``, in place and a slice of keys at a
        time (the temporaries of all the keys at once would be ~7x the table's size)."""
        assert self.bits is not None
        for start in range(0, len(table), _SLICE):
            entries = table.entries[start : start + _SLICE]
            slots = self._slots(entries >> _BITS if table.short else entries)
            bit = np.left_shift(1, slots & np.uint64(7), dtype=np.uint8)
            np.bitwise_or.at(self.bits, (slots >> np.uint64(3)).astype(np.intp), bit)

    def _slots(self, keys: np.ndarray) -> np.ndarray:
        slots: np.ndarray = (keys * _GOLDEN) >> self.shift
        return slots

    def merged(self, newer: _BandTable) -> _BandTable:
        """This table with the entries of ``newer`` (whose rows are newer than any here)."""
        at = np.searchsorted(self.entries, newer.entries, side="right")
        at += np.arange(len(newer))  # their places in the merged table
        ours = np.ones(len(self) + len(newer), dtype=bool)
        ours[at] = False
        merged = _BandTable(self.short, np.empty(len(ours), np.uint64))
        merged.entries[at], merged.entries[ours] = newer.entries, self.entries
        if self.rows is not None and newer.rows is not None:
            merged.rows = np.empty(len(ours), np.uint32)
            merged.rows[at], merged.rows[ours] = newer.rows, self.rows
        return merged

    def unload(self) -> None:
        """Let go of the entries (only the filter is wanted)."""
        self.entries = self.entries[:0].copy()
        self.rows = None if self.rows is None else self.rows[:0].copy()

    def dropped(self, gone: int) -> _BandTable:
        """This table without rows below ``gone``, and the others ``gone`` rows lower."""
        if self.rows is None:
            keep = np.empty(len(self), dtype=bool)
            for start in range(0, len(self), _SLICE):  # no temporary as large as the table
                part = self.entries[start : start + _SLICE]
                np.greater_equal(part & _ROW, np.uint64(gone), out=keep[start : start + _SLICE])
            kept = self.entries[keep]
            kept -= np.uint64(gone)
            return _BandTable(True, kept)
        keep = self.rows >= gone
        return _BandTable(False, self.entries[keep], self.rows[keep] - np.uint32(gone))

    def newest(self, keys: np.ndarray, take: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``take[i]`` of the newest rows of ``keys[i]`` (sorted), each key's oldest first,
        as (rows, index of their key); ``take`` is lowered to the number taken."""
        if not len(self):
            take[:] = 0
            return np.empty(0, np.int64), np.empty(0, np.intp)
        at = np.arange(len(keys))  # the keys that may be here
        if self.bits is not None:
            slots = self._slots(keys)
            at = np.flatnonzero(self.bits[slots >> np.uint64(3)] >> (slots & np.uint64(7)) & 1)
        if self.short:
            first = keys[at] << _BITS
            low = np.searchsorted(self.entries, first, side="left")
            held = self.entries[np.minimum(low, len(self) - 1)] >> _BITS == keys[at]
            at, low = at[held], low[held]
            high = np.searchsorted(self.entries, first[held] | _ROW, side="right")
        else:
            low = np.searchsorted(self.entries, keys[at], side="left")
            held = self.entries[np.minimum(low, len(self) - 1)] == keys[at]
            at, low = at[held], low[held]
            high = np.searchsorted(self.entries, keys[at], side="right")
        count = np.zeros(len(keys), np.int64)
        count[at] = high - low
        np.minimum(take, count, out=take)
        taken = take[at]
        which = np.repeat(at, taken)
        starts = np.cumsum(taken) - taken
        places = np.repeat(high - taken - starts, taken) + np.arange(len(which))
        if self.rows is None:
            return (self.entries[places] & _ROW).astype(np.int64), which
        return self.rows[places].astype(np.int64), which


class LocalStoryIndex:
    """The stories of the window in this process's memory, found by their bands.

    Rows (story id, created, signature) are kept in the order stories were added, in arrays
    and one byte string rather than an object per story (a process holds the whole window, and
    millions of small objects cost twice their size and fragment the heap). Band keys
    (see :func:`band_keys`) sit in sorted tables: ``main`` and a smaller ``tail`` of recent
    additions, merged into ``main`` when it grows past an eighth of it; a merge also forgets
    the oldest stories that are past the window. Each is a short table of the signer's bands
    (8 bytes a band) and a wide one of any others (12 bytes; empty in service). The main tables
    have a bit filter of their keys (1-4 bytes a key), so a lookup searches them only for the
    few keys that may be there. A story costs ~580 bytes: its 32 bands' 256 and their filter's
    ~40, its id and signature (~270), where they start and when it was created (8; and their
    room to grow). A merge copies one table at a time. A lookup answers as
    :class:`MemoryStoryIndex` does for the same additions: the ``capacity`` newest stories of
    each band value, those in the window, each story once, in the order of first sighting.
    Not thread-safe.
    """

    def __init__(self, window: int, capacity: int = BAND_CAPACITY, tail: int = 1 << 16) -> None:
        self._window = window
        self._capacity = capacity
        self._least_tail = tail
        self.clear()

    def clear(self) -> None:
        self._stories = bytearray()  # per row: packed id (length-prefixed) and signature
        # rows in arrays with room to grow (by a quarter when full), the first ``len(self)`` used
        self._size = 0
        self._starts = np.zeros(1, np.uint32)  # where each row starts in it, and the end
        self._created = np.empty(0, np.uint32)  # epoch seconds (as in the stream's entries)
        self._main = (_BandTable(True), _BandTable(False))
        self._tail = (_BandTable(True), _BandTable(False))

    def __len__(self) -> int:
        return self._size

    def nbytes(self) -> int:
        """The bytes of the arrays and the byte string held (their unused room included)."""
        tables = [*self._main, *self._tail]
        held = [self._starts, self._created]
        held += [t.entries for t in tables] + [t.rows for t in tables if t.rows is not None]
        held += [t.bits for t in tables if t.bits is not None]
        return len(self._stories) + sum(array.nbytes for array in held)

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
        low, high = self._size, self._size + len(stories)
        sizes = np.fromiter(map(len, stories), np.uint32, len(stories))
        if high > MAX_ROWS or int(self._starts[low]) + int(sizes.sum()) >= 1 << 32:
            raise OverflowError(f"more than {MAX_ROWS} stories or 4 GiB of them in the index")
        rows = (story + low).astype(np.uint64)
        short = _short(keys)
        if short.all():
            self._tail = (
                self._tail[0].merged(_BandTable.of(True, keys & _SHORT, rows)),
                self._tail[1],
            )
        else:
            self._tail = (
                self._tail[0].merged(_BandTable.of(True, keys[short] & _SHORT, rows[short])),
                self._tail[1].merged(_BandTable.of(False, keys[~short], rows[~short])),
            )
        if high > len(self._created):
            room = max(high + high // 4, 64)
            self._created = np.concatenate((self._created[:low], np.empty(room - low, np.uint32)))
            self._starts = np.concatenate(
                (self._starts[: low + 1], np.empty(room - low, np.uint32))
            )
        np.cumsum(sizes, out=self._starts[low + 1 : high + 1])
        self._starts[low + 1 : high + 1] += self._starts[low]
        self._created[low:high] = created
        self._stories += b"".join(stories)
        self._size = high
        tail = len(self._tail[0]) + len(self._tail[1])
        if tail > max(self._least_tail, (len(self._main[0]) + len(self._main[1])) // 8):
            self.compact(now)

    def compact(self, now: float) -> None:
        """Merge the tail into the main table and forget the leading stories past the window."""
        expired = now - self._created[: self._size] > self._window
        gone = len(expired) if expired.all() else int(np.argmin(expired))
        # one table is copied at a time, its old entries let go as soon as it is
        mains, tails = list(self._main), list(self._tail)
        self._main = self._tail = (_BandTable(True), _BandTable(False))
        done = []
        while mains:
            main, tail = mains.pop(0), tails.pop(0)
            if gone:
                kept, tail = main.dropped(gone), tail.dropped(gone)
                main.unload()
                merged = kept.merged(tail)
                del kept
            else:
                merged = main.merged(tail)
                main.unload()
            done.append(merged.filtered(main, tail))
        self._main = (done[0], done[1])
        if gone:
            del self._stories[: self._starts[gone]]
            self._starts = self._starts[gone:] - self._starts[gone]
            self._created = self._created[gone:]
            self._size -= gone
        release_freed_memory()  # the old tables' (below the mmap threshold, kept otherwise)

    def _newest(
        self,
        tables: tuple[_BandTable, _BandTable],
        keys: np.ndarray,
        short: np.ndarray | None,
        take: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_BandTable.newest` of the ``short`` keys in the short table and of the others
        in the wide one (``short`` None: all are, already as short keys): (rows, index of their
        key), each key's rows together."""
        if short is None:
            return tables[0].newest(keys, take)
        rows, which = [], []
        for table, places, part in (
            (tables[0], np.flatnonzero(short), keys[short] & _SHORT),
            (tables[1], np.flatnonzero(~short), keys[~short]),
        ):
            wanted = take[places]
            found, at = table.newest(part, wanted)
            take[places] = wanted
            rows.append(found)
            which.append(places[at])
        return np.concatenate(rows), np.concatenate(which)

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
        short: np.ndarray | None = _short(keys)
        if short is not None and short.all():  # the usual case: once here, not per table
            keys, short = keys & _SHORT, None
        recent, recent_at = self._newest(self._tail, keys, short, wanted)
        older, older_at = self._newest(self._main, keys, short, cap - wanted)
        older_key, recent_key = by_key[older_at], by_key[recent_at]
        # by query band, then oldest first: the main table's rows before the tail's
        spot = np.concatenate((older_key * (2 * cap), recent_key * (2 * cap) + cap))
        spot += np.concatenate((_ranks(older_at), _ranks(recent_at)))
        order = np.argsort(spot)
        rows = np.concatenate((older, recent))[order]
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


def release_freed_memory() -> None:
    """Give the C allocator's free memory back to the system (glibc's ``malloc_trim``; nothing
    elsewhere). Loading a window parses every entry into short-lived objects and grows the
    arrays step by step; without this, their freed memory stays resident (~40 MB for 30,000
    stories, ``make bench``'s ``memory_dedup_idle_window_mb``); likewise the tables a merge
    replaced (:meth:`LocalStoryIndex.compact`: ~30 MB of 80,000 stories)."""
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


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
