"""Near-duplicate signatures: MinHash over word 3-shingles of the title and the lead.

What counts: the title's words and the first ``LEAD_WORDS`` words of the text, case-folded,
without punctuation and without a short list of English function words (they make distinct
stories look alike: "said on Tuesday", "of the"). Shingles never span title and lead, so a new
headline changes only the title's shingles. :func:`shingles` is the definition of the set.

The hashes (scheme ``SCHEME``; every step is fixed, so a signature is the same in every process
and on every machine):

* a word's hash is the CRC-32 (``zlib.crc32``) of its UTF-8 bytes;
* a shingle's hash mixes its three word hashes (a title or lead of one or two words is one
  shingle, padded with ``PAD``, a value no CRC-32 takes): each word hash goes through the
  MurmurHash3 64-bit finaliser ``fmix64``, the three are combined as ``(w0 * K + w1) * K + w2``
  (mod 2**64) and finalised again; the high 32 bits are the shingle's hash;
* the MinHash values are ``min(a * h + b mod 2**32)`` over the shingle hashes for ``NUM_PERM``
  affine permutations drawn from ``SEED`` (datasketch's ``scheme="affine32"`` draw);
* band ``n`` holds values ``2n`` and ``2n + 1`` (the first ``BANDS * ROWS``); its 4-byte hash is
  the low 32 bits of ``fmix64(v0 | v1 << 32)``. Banding, storage and comparison: ``index``.

Scheme 1 (until November 2026) hashed each shingle string with SHA-1 and each band with BLAKE2b
(datasketch's values exactly); scheme 2 does the same work in a few numpy operations for a whole
batch (:meth:`Signer.sign_many`) and gives other values, so signatures of the two schemes are not
comparable: the index's keys carry a format version (``keys``), so entries of scheme 1 are not
read. On the labelled set scheme 2 estimates copies at ≥ 0.33 of their original and distinct
stories at ≤ 0.125 (scheme 1: 0.28 and 0.16).

The parameters were chosen on the labelled set of ``tests/stories.py`` (``make bench`` prints
the sweep): copies there have Jaccard ≥ 0.35 with their original, distinct look-alike stories
≤ 0.12. ``BANDS`` × ``ROWS`` = 32 × 2 finds a story sharing Jaccard 0.35 with a probability of
0.985 and one sharing 0.05 with 0.08; candidates are then verified by the Jaccard estimated from
the whole signature against ``DEFAULT_THRESHOLD``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import filterfalse, islice

import numpy as np

from dmzwatch.shared.identity import normalised_words

SCHEME = 2
SHINGLE_WORDS = 3
LEAD_WORDS = 60
NUM_PERM = 128
BANDS = 32
ROWS = 2
DEFAULT_THRESHOLD = 0.22
SEED = 1
SIGNATURE_BYTES = NUM_PERM * 2  # stored: the low 16 bits of each value
BAND_BYTES = 5  # the band's number, then its 4-byte hash
PAD = 1 << 32  # pads a title or lead shorter than a shingle (no CRC-32 is this large)
# Shingles per (permutations x shingles) uint32 matrix computed at once: 1 MB, within the L2
# cache (4 MB is a little slower).
CHUNK_ROWS = (1 << 20) // (NUM_PERM * 4)

_STOP_TEXT = (
    "a an the of in on at to for by with from and or but is are was were be been being has have "
    "had it its this that these those as said says say will would could may might should after "
    "before over into about than their his her he she they them who whom which what when where "
    "while also not no s"
)
STOP_WORDS = frozenset(_STOP_TEXT.split())
_STOP_BYTES = frozenset(word.encode() for word in STOP_WORDS)
_is_stop = _STOP_BYTES.__contains__

LEAD_CHARS = 1024  # the lead is first looked for in this much of the text (then 4x more)


def _lead(text: str) -> list[bytes]:
    """The first ``LEAD_WORDS`` words of ``text`` that are not stop words (UTF-8).

    Only a prefix of the text is normalised while that is enough: NFKC, case folding and word
    splitting act within a few characters, so every word of a normalised prefix but the last
    two (the cut may split one) is a word of the normalised text, at the same place."""
    size = LEAD_CHARS
    while size < len(text):
        words = normalised_words(text[:size])
        del words[-2:]
        lead = list(islice(filterfalse(_is_stop, words), LEAD_WORDS))
        if len(lead) == LEAD_WORDS:
            return lead
        size *= 4
    return list(islice(filterfalse(_is_stop, normalised_words(text)), LEAD_WORDS))


def _title(title: str) -> list[bytes]:
    """The title's words that are not stop words (UTF-8)."""
    return list(filterfalse(_is_stop, normalised_words(title)))


def _shingle_set(title: str, text: str) -> set[bytes]:
    out: set[bytes] = set()
    for words in (_title(title), _lead(text)):
        if 0 < len(words) < SHINGLE_WORDS:
            out.add(b" ".join(words))
        out.update(map(b" ".join, zip(*(words[i:] for i in range(SHINGLE_WORDS)), strict=False)))
    return out


def shingles(title: str, text: str) -> list[bytes]:
    """The shingles of ``title`` and the lead of ``text`` (empty when neither has a word)."""
    return sorted(_shingle_set(title, text))


@dataclass(frozen=True, slots=True)
class Signature:
    """An article's MinHash: ``packed`` for storage and comparison, ``bands`` for lookup.

    Each band field is the band's number (one byte) and a 4-byte hash of its ``ROWS`` values.
    """

    packed: bytes
    bands: tuple[bytes, ...]

    def similarity(self, other: bytes) -> float:
        """Estimated Jaccard similarity with a stored signature (0 when it is malformed)."""
        return similarity(self.packed, other)


def similarity(a: bytes, b: bytes) -> float:
    if len(a) != SIGNATURE_BYTES or len(b) != SIGNATURE_BYTES:
        return 0.0
    left = np.frombuffer(a, dtype="<u2")
    right = np.frombuffer(b, dtype="<u2")
    return float(np.count_nonzero(left == right)) / NUM_PERM


def similarities(left: Sequence[bytes], right: Sequence[bytes]) -> list[float]:
    """``similarity(left[i], right[i])`` for each ``i``, in one numpy comparison."""
    if not left:
        return []
    valid = [
        len(a) == SIGNATURE_BYTES and len(b) == SIGNATURE_BYTES
        for a, b in zip(left, right, strict=True)
    ]
    if not all(valid):  # malformed pairs compare two blank signatures, then count 0
        blank = bytes(SIGNATURE_BYTES)
        left = [a if ok else blank for a, ok in zip(left, valid, strict=True)]
        right = [b if ok else blank for b, ok in zip(right, valid, strict=True)]
    shape = (len(valid), NUM_PERM)
    lhs = np.frombuffer(b"".join(left), dtype="<u2").reshape(shape)
    rhs = np.frombuffer(b"".join(right), dtype="<u2").reshape(shape)
    equal = np.count_nonzero(lhs == rhs, axis=1) * np.asarray(valid)
    scores: list[float] = (equal / NUM_PERM).tolist()
    return scores


def permutations(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """The affine permutations ``h -> a * h + b mod 2**32`` datasketch's ``MinHash`` draws for
    ``seed`` with ``scheme="affine32"`` (``a`` odd, so each is a bijection)."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, NUM_PERM, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, NUM_PERM, dtype=np.uint32)
    return a, b


_BAND_FIELDS = struct.Struct(f"{BAND_BYTES}s" * BANDS)  # a signature's band fields, split
_K = np.uint64(0x9E3779B97F4A7C15)  # the combining multiplier (odd: 2**64 / golden ratio)


def _fmix64(values: np.ndarray) -> np.ndarray:
    """The MurmurHash3 64-bit finaliser (a bijection; wrapping uint64 arithmetic)."""
    values = values ^ (values >> np.uint64(33))
    values *= np.uint64(0xFF51AFD7ED558CCD)
    values ^= values >> np.uint64(33)
    values *= np.uint64(0xC4CEB9FE1A85EC53)
    values ^= values >> np.uint64(33)
    return values


def _shingle_hashes(words: np.ndarray) -> np.ndarray:
    """uint32 hashes of the shingles starting at each of ``words[:-2]`` (uint64 word hashes)."""
    mixed = _fmix64(words)
    combined = mixed[:-2] * _K
    combined += mixed[1:-1]
    combined *= _K
    combined += mixed[2:]
    out: np.ndarray = (_fmix64(combined) >> np.uint64(32)).astype(np.uint32)
    return out


def _word_hashes(words: Iterable[bytes]) -> list[int]:
    return list(map(zlib.crc32, words))


class Signer:
    """Signs articles; the permutations are drawn once."""

    def __init__(self) -> None:
        self._a, self._b = permutations()
        self._bands = np.arange(BANDS, dtype=np.uint8)

    def values(self, items: Sequence[bytes]) -> np.ndarray:
        """The MinHash values (uint32) of the non-empty set of shingles ``items`` (UTF-8 words
        joined by one space, as :func:`shingles` gives them)."""
        words: list[int] = []
        for item in items:
            parts = item.split(b" ")
            words += _word_hashes(parts) + [PAD] * (SHINGLE_WORDS - len(parts))
        hashed = _shingle_hashes(np.array(words, dtype=np.uint64))[::SHINGLE_WORDS]
        values: np.ndarray = self._minima(hashed, np.zeros(1, dtype=np.intp))[0]
        return values

    def sign(self, title: str, text: str) -> Signature | None:
        """The signature of the article, or None when it has no words to compare."""
        return self.sign_many([(title, text)])[0]

    def sign_many(self, items: Sequence[tuple[str, str]]) -> list[Signature | None]:
        """:meth:`sign` of each ``(title, text)``, computed for all of them at once."""
        # Every article's title and lead words, each followed by two pads: a shingle starts at
        # every word whose second next is a word, and at the first word of a title or lead.
        words: list[int] = []
        sizes: list[int] = []
        pads = [PAD, PAD]
        for title, text in items:
            start = len(words)
            words += _word_hashes(_title(title))
            words += pads
            words += _word_hashes(_lead(text))
            words += pads
            sizes.append(len(words) - start)
        out: list[Signature | None] = [None] * len(items)
        if not words:
            return out
        hashes = np.array(words, dtype=np.uint64)
        is_word = hashes != PAD
        opens = is_word.copy()  # the first word of a title or lead
        opens[1:] &= ~is_word[:-1]
        shingle_at = is_word[:-2] & (is_word[2:] | opens[:-2])
        shingle_hashes = _shingle_hashes(hashes)[shingle_at]
        owner = np.repeat(np.arange(len(items)), sizes)[:-2][shingle_at]
        counts = np.bincount(owner, minlength=len(items))
        signed = np.flatnonzero(counts)
        if not len(signed):
            return out
        values = self._minima(shingle_hashes, np.cumsum(counts[signed]) - counts[signed])
        packed = (values & np.uint32(0xFFFF)).astype("<u2").tobytes()
        rows = values[:, : BANDS * ROWS].reshape(len(signed), BANDS, ROWS).astype(np.uint64)
        band_hashes = _fmix64(rows[:, :, 0] | (rows[:, :, 1] << np.uint64(32))).astype("<u4")
        fields = np.empty((len(signed), BANDS, BAND_BYTES), dtype=np.uint8)
        fields[:, :, 0] = self._bands
        fields[:, :, 1:] = band_hashes.view(np.uint8).reshape(len(signed), BANDS, 4)
        every_bands = _BAND_FIELDS.iter_unpack(fields.tobytes())
        for row, (i, bands) in enumerate(zip(signed.tolist(), every_bands, strict=True)):
            at = row * SIGNATURE_BYTES
            out[i] = Signature(packed[at : at + SIGNATURE_BYTES], bands)
        return out

    def _minima(self, hashes: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Per group of ``hashes`` (groups begin at the increasing ``starts``, the first at 0),
        the minimum of each permutation: ``CHUNK_ROWS`` hashes at a time."""
        # (permutations x hashes): reduceat along the last axis reads contiguous runs (along
        # the first it is ten times slower)
        values = np.full((NUM_PERM, len(starts)), np.iinfo(np.uint32).max, dtype=np.uint32)
        a, b = self._a[:, None], self._b[:, None]
        buffer = np.empty((NUM_PERM, min(CHUNK_ROWS, len(hashes))), dtype=np.uint32)
        for low in range(0, len(hashes), CHUNK_ROWS):
            high = min(low + CHUNK_ROWS, len(hashes))
            # the groups in [low, high): the one holding ``low`` and those starting before high
            first = int(np.searchsorted(starts, low, side="right")) - 1
            last = int(np.searchsorted(starts, high, side="left"))
            block = np.multiply(hashes[low:high], a, out=buffer[:, : high - low])
            block += b
            cuts = np.maximum(starts[first:last], low) - low
            part = values[:, first:last]
            np.minimum(part, np.minimum.reduceat(block, cuts, axis=1), out=part)
        return np.ascontiguousarray(values.T)
