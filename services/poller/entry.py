"""What a parsed feed is (:class:`ParsedFeed`, :class:`FeedEntry`) and how one feed field becomes
plain, safe text, a date or an absolute link; shared by every parsing path. Pure."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from feedparser.datetimes import _parse_date as feedparser_date

from dmzwatch.poller.text import html_to_text, one_line, plain_text

# An absolute http(s) URL that urljoin and urlsplit return unchanged: lower-case scheme, a
# plain host, and no parameters, empty query, fragment, whitespace or brackets.
_PLAIN_ABSOLUTE = re.compile(
    r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[^\s?#;\[\]]*)?(?:\?[^\s#;\[\]]+)?\Z"
)
# Text that still holds tags after one HTML pass was escaped twice by its publisher.
_LEFTOVER_TAGS = re.compile(r"</(?:p|div|a|b|i|em|strong|span)>|<br\s*/?>", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One entry, normalised. Texts are plain; ``link`` is absolute http(s) or None.

    ``content`` is "" when the feed gives only one text (it is then ``summary``) or when both
    texts are the same. ``published`` is UTC; None when the feed has no date the parser reads.
    """

    guid: str | None
    link: str | None
    title: str
    summary: str
    content: str
    authors: tuple[str, ...]
    published: datetime | None
    tags: tuple[str, ...]
    language: str | None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A parsed feed. ``error`` is None for a clean parse, else a message for people; entries
    that could be recovered safely are kept beside it. ``bozo`` is feedparser's flag that the
    XML was malformed and read by its loose parser. ``format`` is e.g. ``rss20``, ``atom10``,
    ``json11``, or None when the body is not a feed."""

    title: str | None
    link: str | None
    language: str | None
    ttl_minutes: int | None
    entries: tuple[FeedEntry, ...]
    error: str | None
    bozo: bool
    format: str | None = None


def failed(error: str, *, bozo: bool = False) -> ParsedFeed:
    """A ParsedFeed with no entries and the given error."""
    return ParsedFeed(None, None, None, None, (), error, bozo)


def absolute_http(link: object, base: str) -> str | None:
    """``link`` resolved against ``base``, if it is then an http(s) URL with a host; else None.

    Other schemes (``javascript:``, ``data:``, ``file:``) are dropped: the link ends up in alerts
    that subscribers open.
    """
    if not isinstance(link, str) or not link.strip():
        return None
    if plain_absolute(link):
        return link  # saves a join and a split, a third of an entry's URL work
    try:
        resolved = urljoin(base, link.strip())
        parts = urlsplit(resolved)
    except ValueError:
        return None
    return resolved if parts.scheme in ("http", "https") and parts.hostname else None


def plain_absolute(url: str) -> bool:
    """Whether ``url`` is an absolute http(s) URL that joining against any base, and splitting,
    leave exactly as it is (tests/unit/poller/test_parse_fast_parity.py checks the claim)."""
    return _PLAIN_ABSOLUTE.match(url) is not None


def utc_datetime(value: time.struct_time | None) -> datetime | None:
    """A feedparser date (a UTC ``struct_time``) as an aware datetime; None if impossible."""
    if value is None:
        return None
    try:
        # A leap second (tm_sec 60) is valid in a struct_time but not in a datetime.
        return datetime(*value[:5], min(value[5], 59), tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def parse_date(value: object) -> datetime | None:
    """A date string in any format feedparser reads (RFC 822, W3C-DTF, ISO 8601, and dozens of
    odd ones), as aware UTC; None when unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return utc_datetime(feedparser_date(text))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def markup_text(value: object, content_type: object = "text/html") -> str:
    """Plain text of a feed field: HTML reduced, plain text tidied."""
    if not isinstance(value, str):
        return ""
    if isinstance(content_type, str) and ("html" in content_type or "xml" in content_type):
        text = html_to_text(value)
        return html_to_text(text) if "<" in text and _LEFTOVER_TAGS.search(text) else text
    return plain_text(value)


def unique(values: Iterable[str]) -> tuple[str, ...]:
    """Non-empty values, once each, in order."""
    return tuple(dict.fromkeys(v for v in values if v))


def language(value: object) -> str | None:
    return value.strip().lower() or None if isinstance(value, str) else None


def ttl(value: object) -> int | None:
    """RSS ``<ttl>`` minutes, when a number within a week; else None."""
    try:
        minutes = int(str(value).strip())
    except ValueError:
        return None
    return minutes if 0 < minutes <= 7 * 24 * 60 else None


def _field(entry: Mapping[str, Any], key: str) -> str:
    detail = entry.get(f"{key}_detail") or {}
    return markup_text(entry.get(key), detail.get("type", "text/html"))


def _names(items: Iterable[object] | None, key: str, fallback: str) -> tuple[str, ...]:
    """``unique`` one-line ``key`` (else ``fallback``) values of the mappings in ``items``."""
    names: dict[str, None] = {}
    for item in items or ():
        if isinstance(item, Mapping):
            name = one_line(str(item.get(key) or item.get(fallback) or ""))
            if name:
                names[name] = None
    return tuple(names)


def entry_from_dict(entry: Mapping[str, Any], url: str, feed: Mapping[str, Any]) -> FeedEntry:
    """A :class:`FeedEntry` from an entry shaped as feedparser gives it (both XML paths)."""
    title = _field(entry, "title")
    if "\n" in title:  # markup_text's text holds no other whitespace run for one_line to fold
        title = one_line(title)
    summary = _field(entry, "summary")
    contents = [c for c in entry.get("content") or () if isinstance(c, Mapping)]
    html_first = sorted(contents, key=lambda c: "html" not in str(c.get("type")))
    content = markup_text(html_first[0].get("value"), html_first[0].get("type")) if contents else ""
    if content == summary:
        content = ""
    # FeedBurner's origLink is the publisher's URL; the item's link is a feedproxy redirect.
    link = absolute_http(entry.get("feedburner_origlink"), url) or absolute_http(
        entry.get("link"), url
    )
    guid = entry.get("id")
    published = (
        utc_datetime(entry.get("published_parsed"))
        or utc_datetime(entry.get("updated_parsed"))
        or utc_datetime(entry.get("created_parsed"))
    )
    authors = _names(entry.get("authors"), "name", "email")
    tags = _names(entry.get("tags"), "term", "label")
    detail = entry.get("title_detail") or entry.get("summary_detail") or {}
    lang = language(entry.get("language")) or language(detail.get("language"))
    return FeedEntry(
        guid=guid.strip() or None if isinstance(guid, str) else None,
        link=link,
        title=title,
        summary=summary,
        content=content,
        authors=authors,
        published=published,
        tags=tags,
        language=lang or language(feed.get("language")),
    )
