"""Near-duplicate signatures: MinHash over word 3-shingles of the title and the lead.

What counts: the title's words and the first ``LEAD_WORDS`` words of the text, case-folded,
without punctuation and without a short list of English function words (they make distinct
stories look alike: "said on Tuesday", "of the"). Shingles never span title and lead, so a new
headline changes only the title's shingles. The MinHash values are datasketch's
(``MinHash(scheme="affine32")``: SHA-1 of each shingle, the MurmurHash3 finaliser, affine
permutations drawn from ``SEED``), computed here with numpy alone: importing datasketch pulls in
scipy, 60 MB of a dedup process's 120 (the tests check the values against datasketch's).
Banding, storage and comparison are ours (see ``index``).

The parameters were chosen on the labelled set of ``tests/stories.py`` (``make bench`` prints
the sweep): copies there have Jaccard ≥ 0.35 with their original, distinct look-alike stories
≤ 0.12. ``BANDS`` × ``ROWS`` = 32 × 2 finds a story sharing Jaccard 0.35 with a probability of
0.985 and one sharing 0.05 with 0.08; candidates are then verified by the Jaccard estimated from
the whole signature against ``DEFAULT_THRESHOLD``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from itertools import filterfalse, islice

import numpy as np

from dmzwatch.shared.identity import normalised_text

SHINGLE_WORDS = 3
LEAD_WORDS = 60
NUM_PERM = 128
BANDS = 32
ROWS = 2
DEFAULT_THRESHOLD = 0.22
SEED = 1
SIGNATURE_BYTES = NUM_PERM * 2  # stored: the low 16 bits of each value

_STOP_TEXT = (
    "a an the of in on at to for by with from and or but is are was were be been being has have "
    "had it its this that these those as said says say will would could may might should after "
    "before over into about than their his her he she they them who whom which what when where "
    "while also not no s"
)
STOP_WORDS = frozenset(_STOP_TEXT.split())


LEAD_CHARS = 1024  # the lead is first looked for in this much of the text (then 4x more)


def _lead(text: str) -> list[str]:
    """The first ``LEAD_WORDS`` words of ``text`` that are not stop words.

    Only a prefix of the text is normalised while that is enough: NFKC, case folding and word
    splitting act within a few characters, so every word of a normalised prefix but the last
    two (the cut may split one) is a word of the normalised text, at the same place."""
    size = LEAD_CHARS
    while size < len(text):
        words = normalised_text(text[:size]).split()[:-2]
        lead = list(islice(filterfalse(STOP_WORDS.__contains__, words), LEAD_WORDS))
        if len(lead) == LEAD_WORDS:
            return lead
        size *= 4
    return list(
        islice(filterfalse(STOP_WORDS.__contains__, normalised_text(text).split()), LEAD_WORDS)
    )


def _shingle_set(title: str, text: str) -> set[str]:
    title_words = [w for w in normalised_text(title).split() if w not in STOP_WORDS]
    out: set[str] = set()
    for words in (title_words, _lead(text)):
        if 0 < len(words) < SHINGLE_WORDS:
            out.add(" ".join(words))
        out.update(map(" ".join, zip(*(words[i:] for i in range(SHINGLE_WORDS)), strict=False)))
    return out


def shingles(title: str, text: str) -> list[bytes]:
    """The shingles of ``title`` and the lead of ``text`` (empty when neither has a word)."""
    return sorted(s.encode() for s in _shingle_set(title, text))


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


def permutations(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """The affine permutations ``h -> a * h + b mod 2**32`` datasketch's ``MinHash`` draws for
    ``seed`` with ``scheme="affine32"`` (``a`` odd, so each is a bijection)."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, NUM_PERM, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, NUM_PERM, dtype=np.uint32)
    return a, b


def _fmix32(values: np.ndarray) -> np.ndarray:
    """The MurmurHash3 32-bit finaliser (wrapping uint32 arithmetic), as datasketch applies it."""
    values = values ^ (values >> np.uint32(16))
    values = values * np.uint32(0x85EBCA6B)
    values = values ^ (values >> np.uint32(13))
    values = values * np.uint32(0xC2B2AE35)
    mixed: np.ndarray = values ^ (values >> np.uint32(16))
    return mixed


class Signer:
    """Signs articles; the permutations are drawn once."""

    def __init__(self) -> None:
        self._a, self._b = permutations()

    def values(self, items: list[bytes]) -> np.ndarray:
        """The MinHash values (uint32) of non-empty ``items``."""
        digests = b"".join([hashlib.sha1(item).digest()[:4] for item in items])  # noqa: S324
        hashed = _fmix32(np.frombuffer(digests, dtype="<u4").astype(np.uint32))
        values: np.ndarray = (hashed[:, None] * self._a + self._b).min(axis=0).astype(np.uint32)
        return values

    def sign(self, title: str, text: str) -> Signature | None:
        """The signature of the article, or None when it has no words to compare."""
        items = [s.encode() for s in _shingle_set(title, text)]  # any order: a minimum each
        if not items:
            return None
        values = self.values(items)
        raw = values.astype("<u4").tobytes()
        step = ROWS * 4
        bands = tuple(
            bytes([band])
            + hashlib.blake2b(raw[band * step : (band + 1) * step], digest_size=4).digest()
            for band in range(BANDS)
        )
        packed = (values & 0xFFFF).astype("<u2").tobytes()
        return Signature(packed, bands)
