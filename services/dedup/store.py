"""Where dedup remembers what it has seen: the SeenStore seam and its claim-based version."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

from dmzwatch.shared.claims import Claims
from dmzwatch.shared.identity import content_fingerprint
from dmzwatch.shared.messages import Article

DuplicateKind = Literal["url", "guid", "id", "content"]
"""Why an article was dropped: the same canonical URL (``url``), the same GUID in the same
feed under a new URL (``guid``), the same GUID- or content-derived id (``id``), or the same
text from the same outlet under a new URL and GUID (``content``)."""

DUPLICATE_KINDS: tuple[DuplicateKind, ...] = ("url", "guid", "id", "content")


@dataclass(frozen=True, slots=True)
class Sighting:
    """What the store concluded about one article."""

    duplicate: DuplicateKind | None  # None: first sighting, pass it on
    story_id: str
    syndicated: bool  # a verbatim copy of another outlet's article: same story, new outlet


class SeenStore(ABC):
    """Remembers articles for a time window.

    ``remember`` is called once per raw record and may be called again for the same record
    (re-delivery); ``token`` identifies the record, so a repeat of the same record gets the same
    answer ("first sighting") and a later record of the same article is a duplicate. It raises
    :class:`RetryableError` when its backing store is unreachable.
    """

    @abstractmethod
    def remember(self, article: Article, token: str) -> Sighting: ...


class ClaimSeenStore(SeenStore):
    """First sightings as claims: one per article id, per feed GUID and per content fingerprint.

    The content claim holds ``"<article id> <outlet>"`` of the first article with that text: a
    copy from the same outlet is a duplicate, a copy from another outlet joins its story.
    """

    def __init__(self, claims: Claims, ttl_seconds: int) -> None:
        self._claims = claims
        self._ttl = ttl_seconds

    def remember(self, article: Article, token: str) -> Sighting:
        own = article.article_id
        if not self._claim(token, "a", own):
            kind: DuplicateKind = "url" if own.startswith("u") else "id"
            return Sighting(kind, own, False)
        if (
            article.guid
            and article.url
            and not self._claim(token, "g", article.feed_id, article.guid)
        ):
            return Sighting("guid", own, False)
        fingerprint = content_fingerprint(article.title, article.text)
        key = self._claims.key("seen", "c", fingerprint)
        claim = self._claims.claim(key, f"{own} {article.source}", self._ttl)
        if claim.won:
            return Sighting(None, own, False)
        first_id, _, first_outlet = claim.holder.partition(" ")
        if first_outlet == article.source:
            return Sighting("content", first_id, False)
        return Sighting(None, first_id, True)

    def _claim(self, token: str, *parts: str) -> bool:
        return self._claims.claim(self._claims.key("seen", *parts), token, self._ttl).won
