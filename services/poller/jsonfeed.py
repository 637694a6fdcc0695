"""JSON Feed (https://jsonfeed.org, versions 1 and 1.1) mapped to the shapes of every feed. Pure."""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from dmzwatch.poller.entry import (
    FeedEntry,
    ParsedFeed,
    absolute_http,
    failed,
    language,
    markup_text,
    parse_date,
    unique,
)
from dmzwatch.poller.text import one_line, plain_text


def parse_json_feed(text: str, url: str, max_entries: int) -> ParsedFeed:
    """A JSON Feed (https://jsonfeed.org, versions 1 and 1.1) mapped to the same shapes."""
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return failed(f"JSON not well-formed: {exc}")
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        return failed("not a feed: JSON without an items list")
    if len(doc["items"]) > max_entries:
        return failed(f"refused: more than {max_entries} entries")
    version = _json_str(doc.get("version"))
    known = version.startswith("https://jsonfeed.org/version/")
    number = version.rstrip("/").rsplit("/", 1)[-1].replace(".", "") if known else ""
    feed_language = language(doc.get("language"))
    feed_authors = _json_authors(doc)
    entries = tuple(
        _json_entry(item, url, feed_language, feed_authors)
        for item in doc["items"]
        if isinstance(item, dict)
    )
    return ParsedFeed(
        title=one_line(plain_text(_json_str(doc.get("title")))) or None,
        link=absolute_http(doc.get("home_page_url"), url),
        language=feed_language,
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
    return unique(one_line(_json_str(a.get("name"))) for a in listed if isinstance(a, dict))


def _json_entry(
    item: Mapping[str, object], url: str, feed_language: str | None, feed_authors: tuple[str, ...]
) -> FeedEntry:
    guid = item.get("id")
    if isinstance(guid, bool) or not isinstance(guid, (str, int, float)):
        guid = None
    html = _json_str(item.get("content_html"))
    summary = plain_text(_json_str(item.get("summary")))
    content = markup_text(html) if html else plain_text(_json_str(item.get("content_text")))
    if not summary:
        summary, content = content, ""
    elif content == summary:
        content = ""
    tags = item.get("tags")
    tag_list = tags if isinstance(tags, list) else []
    return FeedEntry(
        guid=str(guid).strip() or None if guid is not None else None,
        link=absolute_http(item.get("url"), url) or absolute_http(item.get("external_url"), url),
        title=one_line(plain_text(_json_str(item.get("title")))),
        summary=summary,
        content=content,
        authors=_json_authors(item) or feed_authors,
        published=parse_date(item.get("date_published")) or parse_date(item.get("date_modified")),
        tags=unique(one_line(t) for t in tag_list if isinstance(t, str)),
        language=language(item.get("language")) or feed_language,
    )
