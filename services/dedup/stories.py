"""One story per event: exact and near-duplicate detection, updates, and the story's outlets.

For each raw article (see :meth:`StoryStore.remember`):

1. **Article record** (by article id). A new id is claimed. A known id whose record token is
   one of its recent revisions' is a re-delivery: the same answer again. A known id with a text
   seen among its recent revisions is a repeat (dropped); with a new text it is an *update*:
   the next revision, passed on in the same story.
2. **GUID** (same feed): a GUID first seen under another article id is a repeat (``guid``).
3. **Text**: the same normalised title and text seen first from the same outlet is a repeat
   (``content``); from another outlet it is a verbatim copy and joins that story (``exact``).
4. **Near duplicates**: otherwise the MinHash of the title and lead is looked up in the story
   index; a story whose first article is at least ``threshold`` similar (estimated Jaccard) and
   no older than the window is joined (``near``); else the article starts a story named after
   itself (``new``), created only if no story was created meanwhile (or it looks again).
5. **Outlets**: the article's independent outlet (``outlets``) joins the story's outlets, while
   the story is younger than the window (a late copy still joins the story, not its count).

Every step is idempotent for a re-delivered record (claims hold the article id or record
token), so a crash anywhere re-delivers and gets the same story.
"""

from __future__ import annotations

from datetime import UTC, datetime

from dmzwatch.dedup.entries import (
    MAX_OUTLETS,
    ArticleRecord,
    ContentRecord,
    OutletsRecord,
    article_hash,
    article_name,
    content_name,
    digest,
    guid_name,
    outlet_hash,
    outlets_name,
)
from dmzwatch.dedup.index import Candidate, StoryIndex
from dmzwatch.dedup.outlets import Outlets
from dmzwatch.dedup.records import RecordStore
from dmzwatch.dedup.signature import DEFAULT_THRESHOLD, Signer
from dmzwatch.dedup.store import DuplicateKind, Match, SeenStore, Sighting
from dmzwatch.shared.clock import Clock
from dmzwatch.shared.errors import RetryableError
from dmzwatch.shared.identity import content_fingerprint
from dmzwatch.shared.messages import Article

ATTEMPTS = 8  # compare-and-swap rounds before giving up (the runner then retries the record)


class StoryStore(SeenStore):
    """The SeenStore: ``records`` keeps exact-match records and the stories' outlets for the
    dedup TTL, ``index`` (None: exact matching only) the stories' signatures for the window."""

    def __init__(
        self,
        records: RecordStore,
        index: StoryIndex | None,
        outlets: Outlets,
        clock: Clock,
        *,
        window_seconds: int,
        threshold: float = DEFAULT_THRESHOLD,
        signer: Signer | None = None,
    ) -> None:
        self._articles = records
        self._index = index
        self._outlets = outlets
        self._clock = clock
        self._window = window_seconds
        self._threshold = threshold
        self._signer = signer or (Signer() if index is not None else None)

    def remember(self, article: Article, token: str) -> Sighting:
        now = self._clock.now()
        fingerprint = content_fingerprint(article.title, article.text)
        outlet = self._outlets(article.source)
        record, revision = self._revision(
            article, bytes.fromhex(fingerprint)[:6], digest(token, 6), now
        )
        if revision is None:
            kind: DuplicateKind = "url" if article.article_id.startswith("u") else "id"
            return Sighting(kind, record.story or article.article_id)
        first_seen = None if record.revisions == 1 and not record.story else record.first_seen
        seen_at = None if first_seen is None else datetime.fromtimestamp(first_seen, UTC)
        if record.story:
            match: Match = "update" if revision > 1 else record.match
            if revision > 1:  # a verbatim copy of the new text joins the same story
                content = ContentRecord(
                    article_hash(article.article_id), record.story, outlet_hash(outlet)
                )
                self._articles.claim(content_name(fingerprint), content.encode())
            outlets = self._join(record.story, outlet, now)
            return Sighting(None, record.story, match, revision, outlets, seen_at)
        story, match, duplicate = self._decide(article, fingerprint, outlet, now)
        if duplicate is not None:
            return Sighting(duplicate, story)
        outlets = self._join(story, outlet, now)
        name = article_name(article.article_id)
        self._articles.swap(name, record.encode(), record.decided(story, match).encode())
        return Sighting(None, story, match, revision, outlets, seen_at)

    def _revision(
        self, article: Article, text: bytes, token: bytes, now: datetime
    ) -> tuple[ArticleRecord, int | None]:
        """The article's record and this record's revision (None: an unchanged repeat)."""
        name = article_name(article.article_id)
        fresh = ArticleRecord.first(int(now.timestamp()), text, token)
        won, raw = self._articles.claim(name, fresh.encode())
        for _ in range(ATTEMPTS):
            if won:
                return fresh, 1
            record = ArticleRecord.decode(raw)
            revision = record.revision_of(token)
            if revision is not None:
                return record, revision
            if record.knows(text):
                return record, None
            revised = record.revised(text, token)
            if self._articles.swap(name, raw, revised.encode()):
                return revised, revised.revisions
            current = self._articles.get(name)
            if current is None:
                won, raw = self._articles.claim(name, fresh.encode())
            else:
                raw = current
        raise RetryableError(f"the record of {article.article_id} keeps changing")

    def _decide(
        self, article: Article, fingerprint: str, outlet: str, now: datetime
    ) -> tuple[str, Match, DuplicateKind | None]:
        """The story and how it was found, or the duplicate kind and the story it repeats."""
        own = article_hash(article.article_id)
        if article.guid and article.url:
            won, holder = self._articles.claim(guid_name(article.feed_id, article.guid), own)
            if not won and holder != own:
                return article.article_id, "new", "guid"
        ours = outlet_hash(outlet)
        story = ""
        match: Match = "new"
        held = self._articles.get(content_name(fingerprint))
        if held is not None:
            first = ContentRecord.decode(held)
            if first.article != own:
                if first.outlet == ours:
                    return first.story, "new", "content"
                story, match = first.story, "exact"
        if not story:
            story, match = self._near(article, now)
        won, held = self._articles.claim(
            content_name(fingerprint), ContentRecord(own, story, ours).encode()
        )
        if not won:  # another replica took this text meanwhile
            first = ContentRecord.decode(held)
            if first.article != own and first.outlet == ours and match != "exact":
                return first.story, "new", "content"
        return story, match, None

    def _near(self, article: Article, now: datetime) -> tuple[str, Match]:
        own = article.article_id
        if self._index is None or self._signer is None:
            return own, "new"
        signature = self._signer.sign(article.title, article.text)
        if signature is None:
            return own, "new"
        oldest = now.timestamp() - self._window
        for _ in range(ATTEMPTS):
            lookup = self._index.lookup(signature.bands)
            best: tuple[float, int, Candidate] | None = None
            for candidate in lookup.candidates:
                if candidate.story_id == own:
                    return own, "new"  # our own story: this record was handled before
                score = signature.similarity(candidate.signature)
                if candidate.created < oldest or score < self._threshold:
                    continue
                if best is None or (score, -candidate.created) > best[:2]:
                    best = (score, -candidate.created, candidate)
            if best is not None:
                return best[2].story_id, "near"
            if self._index.create(own, signature.packed, signature.bands, lookup.version):
                return own, "new"
        raise RetryableError("the story index kept changing during a lookup")

    def _join(self, story: str, outlet: str, now: datetime) -> tuple[str, ...]:
        """Add ``outlet`` to the story's outlets while the story is in its window; returns them."""
        name = outlets_name(story)
        fresh = OutletsRecord(int(now.timestamp()), (outlet,))
        for _ in range(ATTEMPTS):
            won, raw = self._articles.claim(name, fresh.encode())
            if won:
                return fresh.outlets
            record = OutletsRecord.decode(raw)
            closed = now.timestamp() - record.created > self._window
            if outlet in record.outlets or closed or len(record.outlets) >= MAX_OUTLETS:
                return record.outlets
            joined = OutletsRecord(record.created, (*record.outlets, outlet))
            if self._articles.swap(name, raw, joined.encode()):
                return joined.outlets
        raise RetryableError(f"the outlets of story {story} keep changing")
