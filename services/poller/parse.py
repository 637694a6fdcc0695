"""Feed bytes → a :class:`ParsedFeed`: RSS 0.9x/1.0/2.0, Atom and JSON Feed, as plain text.

Pure: no I/O, no clock, no logging. feedparser is only ever handed an in-memory stream of
UTF-8 bytes, decoded by :mod:`~dmzwatch.poller.text` and defused by
:mod:`~dmzwatch.poller.safety`: given a URL it would fetch it with no timeout or size cap, and
given a ``bytes`` that happens to name a file it would read the file, so even the bytes go in a
``BytesIO``.
"""

from __future__ import annotations

import io
import re
import time
import xml.sax
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import orjson
from feedparser.datetimes import _parse_date as feedparser_date
from selectolax.lexbor import LexborHTMLParser

from dmzwatch.poller.safety import defuse_xml
from dmzwatch.poller.text import decode_document, html_to_text, one_line, plain_text

MAX_ENTRIES = 10_000
_FEED_ROOTS = frozenset({"rss", "feed", "rdf", "channel"})
_HTML_ROOTS = frozenset({"html", "head", "body", "div", "p", "table", "meta", "script", "title"})
_ENTRY_TAG = re.compile(r"<(?:[\w.-]+:)?(?:item|entry)[\s>/]")
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


def _failed(error: str, *, bozo: bool = False) -> ParsedFeed:
    """A ParsedFeed with no entries and the given error."""
    return ParsedFeed(None, None, None, None, (), error, bozo)


def _absolute_http(link: object, base: str) -> str | None:
    """``link`` resolved against ``base``, if it is then an http(s) URL with a host; else None.

    Other schemes (``javascript:``, ``data:``, ``file:``) are dropped: the link ends up in alerts
    that subscribers open.
    """
    if not isinstance(link, str) or not link.strip():
        return None
    try:
        resolved = urljoin(base, link.strip())
        parts = urlsplit(resolved)
    except ValueError:
        return None
    return resolved if parts.scheme in ("http", "https") and parts.hostname else None


def _utc_datetime(value: time.struct_time | None) -> datetime | None:
    """A feedparser date (a UTC ``struct_time``) as an aware datetime; None if impossible."""
    if value is None:
        return None
    try:
        # A leap second (tm_sec 60) is valid in a struct_time but not in a datetime.
        return datetime(*value[:5], min(value[5], 59), tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _parse_date(value: object) -> datetime | None:
    """A date string in any format feedparser reads (RFC 822, W3C-DTF, ISO 8601, and dozens of
    odd ones), as aware UTC; None when unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return _utc_datetime(feedparser_date(text))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _markup_text(value: object, content_type: object = "text/html") -> str:
    """Plain text of a feed field: HTML reduced, plain text tidied."""
    if not isinstance(value, str):
        return ""
    if isinstance(content_type, str) and ("html" in content_type or "xml" in content_type):
        text = html_to_text(value)
        return html_to_text(text) if _LEFTOVER_TAGS.search(text) else text
    return plain_text(value)


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    """Non-empty values, once each, in order."""
    return tuple(dict.fromkeys(v for v in values if v))


def parse_feed(
    body: bytes, url: str, content_type: str | None = None, *, max_entries: int = MAX_ENTRIES
) -> ParsedFeed:
    """Parse one feed body fetched from ``url`` (the base for relative links).

    Never raises for any input: an empty body, HTML, a truncated or hostile document, an unknown
    encoding, all give a ParsedFeed whose ``error`` says what is wrong, with the entries that
    could be recovered. A document with more than ``max_entries`` entries is refused unread,
    because feedparser's memory grows with the entry count.
    """
    if not body.strip():
        return _failed("empty body")
    decoded = decode_document(body, content_type)
    text = decoded.text.lstrip("\ufeff \t\r\n")
    if not text:
        return _failed("empty body")
    if text.startswith(("{", "[")):
        parsed = _parse_json_feed(text, url, max_entries)
    else:
        parsed = _parse_xml_document(text, url, max_entries)
    if decoded.warning is None:
        return parsed
    error = decoded.warning if parsed.error is None else f"{decoded.warning}; {parsed.error}"
    return _with_error(parsed, error)


def _with_error(parsed: ParsedFeed, error: str) -> ParsedFeed:
    return ParsedFeed(
        parsed.title,
        parsed.link,
        parsed.language,
        parsed.ttl_minutes,
        parsed.entries,
        error,
        parsed.bozo,
        parsed.format,
    )


def _parse_xml_document(text: str, url: str, max_entries: int) -> ParsedFeed:
    defused = defuse_xml(text)
    root = defused.root
    if root is None:
        return _failed("not a feed: neither XML nor JSON")
    local = root.rsplit(":", 1)[-1].lower()
    if local in _HTML_ROOTS:
        return _failed(_html_message(text, url))
    if local not in _FEED_ROOTS:
        return _failed(f"not a feed: root element <{root}> is not RSS, Atom or RDF")
    if sum(1 for _ in _ENTRY_TAG.finditer(text)) > max_entries:
        return _failed(f"refused: more than {max_entries} entries")
    try:
        result = feedparser.parse(
            io.BytesIO(defused.data),
            response_headers={
                "content-location": url,
                "content-type": "application/xml; charset=utf-8",
            },
            # Texts are reduced to plain text here, so feedparser's HTML sanitising and its
            # rewriting of links inside HTML would be wasted work (most of its per-entry cost).
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except Exception as exc:  # hostile input must never crash the poller: it is an outcome
        return _failed(f"parser failed: {type(exc).__name__}: {exc}")

    problems: list[str] = []
    if defused.removed_entities:
        names = ", ".join(defused.removed_entities[:5])
        problems.append(f"refused entity declarations ({names}): not expanded")
    bozo = bool(result.get("bozo"))
    if bozo:
        problems.append(_bozo_message(result.get("bozo_exception")))
    # A loose parse of a truncated document can end on an entry with nothing in it.
    entries = tuple(
        e
        for e in (_entry(e, url, result.feed) for e in result.entries)
        if e.title or e.link or e.guid or e.summary or e.content
    )
    if bozo:
        problems[-1] += f" (recovered {len(entries)} entries)"
    feed = result.feed
    title_detail = feed.get("title_detail") or {}
    return ParsedFeed(
        title=one_line(_markup_text(feed.get("title"), title_detail.get("type"))) or None,
        link=_absolute_http(feed.get("link"), url),
        language=_language(feed.get("language")),
        ttl_minutes=_ttl(feed.get("ttl")),
        entries=entries,
        error="; ".join(problems) or None,
        bozo=bozo,
        format=result.get("version") or None,
    )


def _bozo_message(exc: object) -> str:
    if isinstance(exc, xml.sax.SAXParseException):
        return (
            f"XML not well-formed at line {exc.getLineNumber()}, column "
            f"{exc.getColumnNumber()}: {exc.getMessage()}"
        )
    return f"malformed feed: {type(exc).__name__}: {exc}"


def _html_message(text: str, url: str) -> str:
    """Say the body is HTML, naming the feeds it advertises, which is what the user wanted."""
    page = LexborHTMLParser(text[:65536])  # feed links sit in <head>
    hrefs = [
        _absolute_http(node.attributes.get("href"), url)
        for node in page.css("link[rel~=alternate][href]")
        if any(k in (node.attributes.get("type") or "") for k in ("rss", "atom", "json"))
    ]
    found = [h for h in hrefs if h]
    hint = f" (it links to the feed {found[0]})" if found else ""
    return f"not a feed: looks like HTML{hint}"


def _language(value: object) -> str | None:
    return value.strip().lower() or None if isinstance(value, str) else None


def _ttl(value: object) -> int | None:
    try:
        minutes = int(str(value).strip())
    except ValueError:
        return None
    return minutes if 0 < minutes <= 7 * 24 * 60 else None


def _field(entry: Mapping[str, Any], key: str) -> str:
    detail = entry.get(f"{key}_detail") or {}
    return _markup_text(entry.get(key), detail.get("type", "text/html"))


def _entry(entry: Mapping[str, Any], url: str, feed: Mapping[str, Any]) -> FeedEntry:
    title = one_line(_field(entry, "title"))
    summary = _field(entry, "summary")
    contents = [c for c in entry.get("content") or () if isinstance(c, Mapping)]
    html_first = sorted(contents, key=lambda c: "html" not in str(c.get("type")))
    content = (
        _markup_text(html_first[0].get("value"), html_first[0].get("type")) if contents else ""
    )
    if content == summary:
        content = ""
    # FeedBurner's origLink is the publisher's URL; the item's link is a feedproxy redirect.
    link = _absolute_http(entry.get("feedburner_origlink"), url) or _absolute_http(
        entry.get("link"), url
    )
    guid = entry.get("id")
    published = (
        _utc_datetime(entry.get("published_parsed"))
        or _utc_datetime(entry.get("updated_parsed"))
        or _utc_datetime(entry.get("created_parsed"))
    )
    authors = _unique(
        one_line(str(a.get("name") or a.get("email") or ""))
        for a in entry.get("authors") or ()
        if isinstance(a, Mapping)
    )
    tags = _unique(
        one_line(str(t.get("term") or t.get("label") or ""))
        for t in entry.get("tags") or ()
        if isinstance(t, Mapping)
    )
    detail = entry.get("title_detail") or entry.get("summary_detail") or {}
    language = _language(entry.get("language")) or _language(detail.get("language"))
    return FeedEntry(
        guid=guid.strip() or None if isinstance(guid, str) else None,
        link=link,
        title=title,
        summary=summary,
        content=content,
        authors=authors,
        published=published,
        tags=tags,
        language=language or _language(feed.get("language")),
    )


def _parse_json_feed(text: str, url: str, max_entries: int) -> ParsedFeed:
    """A JSON Feed (https://jsonfeed.org, versions 1 and 1.1) mapped to the same shapes."""
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return _failed(f"JSON not well-formed: {exc}")
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        return _failed("not a feed: JSON without an items list")
    if len(doc["items"]) > max_entries:
        return _failed(f"refused: more than {max_entries} entries")
    version = _json_str(doc.get("version"))
    known = version.startswith("https://jsonfeed.org/version/")
    number = version.rstrip("/").rsplit("/", 1)[-1].replace(".", "") if known else ""
    language = _language(doc.get("language"))
    feed_authors = _json_authors(doc)
    entries = tuple(
        _json_entry(item, url, language, feed_authors)
        for item in doc["items"]
        if isinstance(item, dict)
    )
    return ParsedFeed(
        title=one_line(plain_text(_json_str(doc.get("title")))) or None,
        link=_absolute_http(doc.get("home_page_url"), url),
        language=language,
        ttl_minutes=None,
        entries=entries,
        error=None if known else "JSON has no JSON Feed version; read as one anyway",
        bozo=False,
        format="json" + number,
    )


def _json_str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _json_authors(doc: Mapping[str, object]) -> tuple[str, ...]:
    # 1.1 has "authors" (a list); 1.0 had one "author".
    authors = doc.get("authors")
    listed = authors if isinstance(authors, list) else [doc.get("author")]
    return _unique(one_line(_json_str(a.get("name"))) for a in listed if isinstance(a, dict))


def _json_entry(
    item: Mapping[str, object], url: str, language: str | None, feed_authors: tuple[str, ...]
) -> FeedEntry:
    guid = item.get("id")
    if isinstance(guid, bool) or not isinstance(guid, (str, int, float)):
        guid = None
    html = _json_str(item.get("content_html"))
    summary = plain_text(_json_str(item.get("summary")))
    content = _markup_text(html) if html else plain_text(_json_str(item.get("content_text")))
    if not summary:
        summary, content = content, ""
    elif content == summary:
        content = ""
    tags = item.get("tags")
    tag_list = tags if isinstance(tags, list) else []
    return FeedEntry(
        guid=str(guid).strip() or None if guid is not None else None,
        link=_absolute_http(item.get("url"), url) or _absolute_http(item.get("external_url"), url),
        title=one_line(plain_text(_json_str(item.get("title")))),
        summary=summary,
        content=content,
        authors=_json_authors(item) or feed_authors,
        published=_parse_date(item.get("date_published")) or _parse_date(item.get("date_modified")),
        tags=_unique(one_line(t) for t in tag_list if isinstance(t, str)),
        language=_language(item.get("language")) or language,
    )
