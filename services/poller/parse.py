"""Feed bytes → a :class:`ParsedFeed`: RSS 0.9x/1.0/2.0, Atom and JSON Feed, as plain text.

Two paths, chosen per document by measurement (``bench/poller.py``, issue 4):

- well-formed RSS and Atom are read by :mod:`~dmzwatch.poller.xmlfeed` on the C ElementTree,
  ~25 µs an entry, giving feedparser's values;
- anything it declines (malformed XML, Atom 0.3, elements whose feedparser semantics it does
  not reproduce) goes to feedparser, ~650 µs an entry, which recovers what a loose parse can.

Pure: no I/O, no clock, no logging. feedparser is only ever handed an in-memory stream of
UTF-8 bytes, decoded by :mod:`~dmzwatch.poller.text` and defused by
:mod:`~dmzwatch.poller.safety`: given a URL it would fetch it with no timeout or size cap, and
given a ``bytes`` that happens to name a file it would read the file, so even the bytes go in a
``BytesIO``.
"""

from __future__ import annotations

import io
import re
import xml.sax
from collections.abc import Mapping, Sequence
from typing import Any

import feedparser
from selectolax.lexbor import LexborHTMLParser

from dmzwatch.poller.entry import (
    FeedEntry,
    ParsedFeed,
    absolute_http,
    entry_from_dict,
    failed,
    language,
    markup_text,
    ttl,
)
from dmzwatch.poller.jsonfeed import parse_json_feed
from dmzwatch.poller.safety import Defused, defuse_xml
from dmzwatch.poller.text import decode_document, one_line
from dmzwatch.poller.xmlfeed import read_tree

__all__ = ["MAX_ENTRIES", "FeedEntry", "ParsedFeed", "parse_feed"]

MAX_ENTRIES = 10_000
_FEED_ROOTS = frozenset({"rss", "feed", "rdf", "channel"})
_HTML_ROOTS = frozenset({"html", "head", "body", "div", "p", "table", "meta", "script", "title"})
_ENTRY_TAG = re.compile(r"<(?:[\w.-]+:)?(?:item|entry)[\s>/]")


def parse_feed(
    body: bytes,
    url: str,
    content_type: str | None = None,
    *,
    max_entries: int = MAX_ENTRIES,
    fast: bool = True,
) -> ParsedFeed:
    """Parse one feed body fetched from ``url`` (the base for relative links).

    Never raises for any input: an empty body, HTML, a truncated or hostile document, an unknown
    encoding, all give a ParsedFeed whose ``error`` says what is wrong, with the entries that
    could be recovered. A document with more than ``max_entries`` entries is refused unread,
    because feedparser's memory grows with the entry count. ``fast=False`` skips the fast path
    (the parity tests and the benchmark's feedparser figure use it).
    """
    if not body.strip():
        return failed("empty body")
    decoded = decode_document(body, content_type)
    text = decoded.text.lstrip("\ufeff \t\r\n")
    if not text:
        return failed("empty body")
    if text.startswith(("{", "[")):
        parsed = parse_json_feed(text, url, max_entries)
    else:
        parsed = _parse_xml_document(text, url, max_entries, fast)
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


def _parse_xml_document(text: str, url: str, max_entries: int, fast: bool) -> ParsedFeed:
    defused = defuse_xml(text)
    root = defused.root
    if root is None:
        return failed("not a feed: neither XML nor JSON")
    local = root.rsplit(":", 1)[-1].lower()
    if local in _HTML_ROOTS:
        return failed(_html_message(text, url))
    if local not in _FEED_ROOTS:
        return failed(f"not a feed: root element <{root}> is not RSS, Atom or RDF")
    # A list of matches is quicker to count, but not for a hostile document of a million items.
    matches = _ENTRY_TAG.findall(text) if len(text) < 1 << 20 else _ENTRY_TAG.finditer(text)
    count = len(matches) if isinstance(matches, list) else sum(1 for _ in matches)
    if count > max_entries:
        return failed(f"refused: more than {max_entries} entries")
    tree = read_tree(defused.data, url, count) if fast else None
    if tree is not None:
        return _result(defused, url, tree.version, tree.feed, tree.entries, None)
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
        return failed(f"parser failed: {type(exc).__name__}: {exc}")
    bozo = _bozo_message(result.get("bozo_exception")) if result.get("bozo") else None
    return _result(defused, url, result.get("version"), result.feed, result.entries, bozo)


def _result(
    defused: Defused,
    url: str,
    version: str | None,
    feed: Mapping[str, Any],
    raw_entries: Sequence[Mapping[str, Any]],
    bozo: str | None,
) -> ParsedFeed:
    """The ParsedFeed of either path's feedparser-shaped dictionaries."""
    problems: list[str] = []
    if defused.removed_entities:
        names = ", ".join(defused.removed_entities[:5])
        problems.append(f"refused entity declarations ({names}): not expanded")
    # A loose parse of a truncated document can end on an entry with nothing in it.
    entries = tuple(
        e
        for e in (entry_from_dict(e, url, feed) for e in raw_entries)
        if e.title or e.link or e.guid or e.summary or e.content
    )
    if bozo is not None:
        problems.append(f"{bozo} (recovered {len(entries)} entries)")
    title_detail = feed.get("title_detail") or {}
    return ParsedFeed(
        title=one_line(markup_text(feed.get("title"), title_detail.get("type"))) or None,
        link=absolute_http(feed.get("link"), url),
        language=language(feed.get("language")),
        ttl_minutes=ttl(feed.get("ttl")),
        entries=entries,
        error="; ".join(problems) or None,
        bozo=bozo is not None,
        format=version or None,
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
        absolute_http(node.attributes.get("href"), url)
        for node in page.css("link[rel~=alternate][href]")
        if any(k in (node.attributes.get("type") or "") for k in ("rss", "atom", "json"))
    ]
    found = [h for h in hrefs if h]
    hint = f" (it links to the feed {found[0]})" if found else ""
    return f"not a feed: looks like HTML{hint}"
