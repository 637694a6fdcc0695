"""The records dedup keeps and their compact binary encodings (names and values, see ``keys``).

Sizes matter: ten thousand articles a day are remembered for two weeks, so an article's three
exact-match records stay under ~100 bytes together: 12-byte hashes for names, ids packed to 13
bytes, 6-byte hashes for texts and record tokens.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass, replace

from dmzwatch.dedup.store import Match
from dmzwatch.shared.errors import InvalidMessage

# Ids made by ``dmzwatch.shared.identity.article_id``: a kind letter and 12 bytes in hex.
_COMPACT_ID = re.compile(r"[a-z][0-9a-f]{24}")
RECENT_REVISIONS = 8  # text hashes kept per article: a flip-flopping feed is not an update
MAX_OUTLETS = 64


def digest(value: str | bytes, size: int = 12) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return hashlib.blake2b(raw, digest_size=size).digest()


def pack_id(value: str) -> bytes:
    """An article or story id in 13 bytes when it has the usual form, else its UTF-8 after a 0."""
    if _COMPACT_ID.fullmatch(value):
        return value[0].encode() + bytes.fromhex(value[1:])
    raw = value.encode()
    if len(raw) > 200:
        raise InvalidMessage(f"id longer than 200 bytes: {value[:40]}…")
    return b"\x00" + raw


def unpack_id(raw: bytes) -> str:
    if not raw:
        return ""
    if raw[0] == 0:
        return raw[1:].decode()
    return chr(raw[0]) + raw[1:].hex()


def _lp(raw: bytes) -> bytes:
    return bytes([len(raw)]) + raw


def _read_lp(raw: bytes, pos: int) -> tuple[bytes, int]:
    size = raw[pos]
    return raw[pos + 1 : pos + 1 + size], pos + 1 + size


def article_name(article_id: str) -> bytes:
    return b"a" + digest(article_id)


def guid_name(feed_id: str, guid: str) -> bytes:
    return b"g" + digest(f"{feed_id}\n{guid.strip()}")


def content_name(fingerprint: str) -> bytes:
    return b"c" + bytes.fromhex(fingerprint)


def outlets_name(story_id: str) -> bytes:
    return b"o" + digest(story_id)


_HEAD = struct.Struct("<IBH")  # first seen (epoch seconds), how it found its story, revisions
_MATCHES: tuple[Match, ...] = ("new", "exact", "near")


@dataclass(frozen=True, slots=True)
class ArticleRecord:
    """What dedup remembers of one article id: when, which story, and its recent revisions.

    ``recent`` holds (text hash, record token hash) pairs, oldest first, of the newest
    ``RECENT_REVISIONS`` revisions; revision numbers count from 1. ``story`` is empty until the
    article's story is decided (a crash in between leaves it empty; the re-delivery decides it).
    """

    first_seen: int
    story: str
    match: Match  # how its first revision found the story
    revisions: int
    recent: tuple[tuple[bytes, bytes], ...]

    @classmethod
    def first(cls, first_seen: int, text: bytes, token: bytes) -> ArticleRecord:
        return cls(first_seen, "", "new", 1, ((text, token),))

    def encode(self) -> bytes:
        head = _HEAD.pack(self.first_seen, _MATCHES.index(self.match), self.revisions)
        story = _lp(pack_id(self.story) if self.story else b"")
        return head + story + b"".join(text + token for text, token in self.recent)

    @classmethod
    def decode(cls, raw: bytes) -> ArticleRecord:
        first_seen, match, revisions = _HEAD.unpack_from(raw)
        story, pos = _read_lp(raw, _HEAD.size)
        rest = raw[pos:]
        recent = tuple((rest[i : i + 6], rest[i + 6 : i + 12]) for i in range(0, len(rest), 12))
        return cls(first_seen, unpack_id(story), _MATCHES[match], revisions, recent)

    def revision_of(self, token: bytes) -> int | None:
        """The revision this record token made, if it is one of the recent ones."""
        for i, (_, held) in enumerate(self.recent):
            if held == token:
                return self.revisions - len(self.recent) + i + 1
        return None

    def knows(self, text: bytes) -> bool:
        return any(held == text for held, _ in self.recent)

    def revised(self, text: bytes, token: bytes) -> ArticleRecord:
        recent = (*self.recent, (text, token))[-RECENT_REVISIONS:]
        return replace(self, revisions=self.revisions + 1, recent=recent)

    def decided(self, story: str, match: Match) -> ArticleRecord:
        return replace(self, story=story, match=match)


@dataclass(frozen=True, slots=True)
class ContentRecord:
    """The first article with a given text: a hash of its id, its story, a hash of its outlet."""

    article: bytes  # article_hash(id)
    story: str
    outlet: bytes  # outlet_hash(outlet)

    def encode(self) -> bytes:
        return self.article + self.outlet + pack_id(self.story)

    @classmethod
    def decode(cls, raw: bytes) -> ContentRecord:
        return cls(raw[:6], unpack_id(raw[10:]), raw[6:10])


def article_hash(article_id: str) -> bytes:
    """Enough of an article id to tell it from others claiming the same text or GUID."""
    return digest(article_id, 6)


def outlet_hash(outlet: str) -> bytes:
    return digest(outlet, 4)


_CREATED = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class OutletsRecord:
    """A story's independent outlets, in order of arrival, and when the story started."""

    created: int
    outlets: tuple[str, ...]

    def encode(self) -> bytes:
        return _CREATED.pack(self.created) + "\n".join(self.outlets).encode()

    @classmethod
    def decode(cls, raw: bytes) -> OutletsRecord:
        text = raw[_CREATED.size :].decode()
        return cls(_CREATED.unpack_from(raw)[0], tuple(text.split("\n")) if text else ())
