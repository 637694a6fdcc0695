"""Feed entries to Articles: canonical URL, stable id, outlet, timestamps, trustworthy GUIDs.

Choices the Article contract leaves to the poller:

- **No date.** ``published_at`` stays None (DESIGN: null when the feed gives none) rather than
  a made-up date; the first-seen time is ``fetched_at``. The poller publishes an entry when it
  first appears in its feed (again only after a restart, or if it left the feed and came
  back), and the dedup stage keeps the first sighting, so ``fetched_at`` of the article that
  goes on is its first-seen time. Consumers wanting "a time for this article" use
  ``published_at or fetched_at``.
- **Missing GUID.** The id falls back to the canonical URL, else a hash of the content
  (:func:`~dmzwatch.shared.identity.article_id`).
- **Repeated GUIDs.** Some feeds give every entry the same GUID, or recycle a few; the dedup
  stage would then drop new entries as "seen GUID". A document where one GUID is carried by
  entries with different links or titles marks its feed's GUIDs untrusted
  (:func:`guids_repeat`); for such a feed the GUID is replaced by the entry's link, else
  dropped (content hash), from then on.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from dmzwatch.poller.entry import FeedEntry
from dmzwatch.poller.feeds import FeedConfig
from dmzwatch.shared.identity import article_id, canonical_url, outlet
from dmzwatch.shared.messages import Article


def guids_repeat(entries: Iterable[FeedEntry]) -> bool:
    """Whether one GUID is carried by two entries that differ in link or title."""
    seen: dict[str, tuple[str | None, str]] = {}
    for entry in entries:
        if entry.guid is None:
            continue
        identity = (entry.link, entry.title)
        first = seen.setdefault(entry.guid, identity)
        if first != identity:
            return True
    return False


def to_article(
    feed: FeedConfig, entry: FeedEntry, fetched_at: datetime, *, trust_guid: bool = True
) -> Article | None:
    """The Article of one entry, or None when the entry has neither a title nor any text.

    ``trust_guid=False`` (the feed repeats GUIDs) uses the entry's link as its GUID, or none.
    """
    if not (entry.title or entry.summary or entry.content):
        return None
    canonical = canonical_url(entry.link) if entry.link else None
    text = entry.content or entry.summary
    guid = entry.guid if trust_guid else entry.link
    return Article(
        article_id=article_id(canonical, feed.id, guid, entry.title, text),
        feed_id=feed.id,
        source=outlet(canonical or feed.url),
        url=canonical,
        original_url=entry.link,
        guid=guid,
        title=entry.title,
        summary=entry.summary,
        content=entry.content,
        authors=entry.authors,
        published_at=entry.published,
        fetched_at=fetched_at,
        language=entry.language,
        feed_tags=feed.tags,
    )
