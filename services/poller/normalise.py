"""Feed entries to Articles: canonical URL, stable id, outlet, timestamps."""

from __future__ import annotations

from datetime import datetime

from dmzwatch.poller.feeds import FeedConfig
from dmzwatch.poller.parse import FeedEntry
from dmzwatch.shared.identity import article_id, canonical_url, outlet
from dmzwatch.shared.messages import Article


def to_article(feed: FeedConfig, entry: FeedEntry, fetched_at: datetime) -> Article | None:
    """The Article of one entry, or None when the entry has neither a title nor any text."""
    if not (entry.title or entry.summary or entry.content):
        return None
    canonical = canonical_url(entry.link) if entry.link else None
    text = entry.content or entry.summary
    return Article(
        article_id=article_id(canonical, feed.id, entry.guid, entry.title, text),
        feed_id=feed.id,
        source=outlet(canonical or feed.url),
        url=canonical,
        original_url=entry.link,
        guid=entry.guid,
        title=entry.title,
        summary=entry.summary,
        content=entry.content,
        authors=entry.authors,
        published_at=entry.published,
        fetched_at=fetched_at,
        language=entry.language,
        feed_tags=feed.tags,
    )
