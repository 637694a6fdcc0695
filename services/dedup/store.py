"""Where dedup remembers what it has seen: the SeenStore seam and what it concludes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from dmzwatch.shared.errors import RetryableError
from dmzwatch.shared.messages import Article

DuplicateKind = Literal["url", "guid", "id", "content"]
"""Why an article was dropped: the same canonical URL with the same text (``url``), the same
GUID in the same feed under a new URL (``guid``), the same GUID- or content-derived id with the
same text (``id``), or the same text from the same outlet under a new URL and GUID
(``content``)."""

DUPLICATE_KINDS: tuple[DuplicateKind, ...] = ("url", "guid", "id", "content")

Match = Literal["new", "exact", "near", "update"]
"""How an article found its story: it started one (``new``), it is another outlet's verbatim
copy of a story's article (``exact``), its title and lead resemble a story's first article
(``near``), or it is a new revision of an article seen before (``update``)."""

MATCHES: tuple[Match, ...] = ("new", "exact", "near", "update")


@dataclass(frozen=True, slots=True)
class Sighting:
    """What the store concluded about one article."""

    duplicate: DuplicateKind | None  # None: pass it on
    story_id: str
    match: Match = "new"
    revision: int = 1  # > 1: an update of an article passed on before
    outlets: tuple[str, ...] = ()  # the story's independent outlets so far, this one included
    first_seen: datetime | None = None  # when the article was first seen (None: now)

    @property
    def syndicated(self) -> bool:
        """Joined a story that another article started (a copy or a rewrite)."""
        return self.match in ("exact", "near")


class SeenStore(ABC):
    """Remembers articles and stories for a time window.

    ``remember`` is called once per raw record and may be called again for the same record
    (re-delivery); ``token`` identifies the record, so a repeat of the same record gets the same
    answer and a later record of the same article is a duplicate, or an update when its text
    changed. It raises :class:`RetryableError` when its backing store is unreachable.
    """

    @abstractmethod
    def remember(self, article: Article, token: str) -> Sighting: ...

    def remember_many(self, items: Sequence[tuple[Article, str]]) -> list[Sighting | Exception]:
        """``remember`` for each (article, token) of a batch, in order: the same sightings as
        one by one, except that articles of one batch may be told apart the way two replicas
        handling them at the same moment would be. A failure of one article is its result; a
        store that fails as a whole raises (e.g. :class:`RetryableError`)."""
        results: list[Sighting | Exception] = []
        for article, token in items:
            try:
                results.append(self.remember(article, token))
            except RetryableError:
                raise
            except Exception as exc:
                results.append(exc)
        return results
