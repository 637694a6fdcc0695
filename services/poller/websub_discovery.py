"""WebSub discovery (W3C WebSub §4): which hub a feed advertises, and under which topic URL.

The HTTP ``Link`` headers of the fetch come first (the recommendation says a subscriber MUST
check them before the body); the document is read only for what they do not name:

- Atom ``<link rel="hub" href="…"/>`` / ``rel="self"`` children of ``<feed>``;
- RSS (and RDF) ``<atom:link rel="hub" …/>`` children of ``<channel>``;
- JSON Feed ``hubs: [{"type": "WebSub", "url": …}]`` and ``feed_url``.

Only feed-level links count: the XML is read incrementally and the read stops at the first
``<item>``/``<entry>``, so a long feed costs a few kilobytes of parsing. A feed that names a hub
but no ``self`` link is taken to be its own topic (the final URL it was fetched from). Only
absolute http(s) URLs are returned; relative ones are resolved against the document URL.

Pure: no I/O; never raises for any input (a malformed body means "no hub").
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import urljoin, urlsplit

import orjson

from dmzwatch.poller.safety import defuse_xml
from dmzwatch.poller.text import decode_document

_CHUNK = 16384
_HEAD_LIMIT = 256 * 1024  # feed-level links sit before the entries: the head is enough
_MENTIONS_HUB = re.compile(rb"hub", re.IGNORECASE)
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff")  # UTF-16/32 text has no ASCII "hub" to find


@dataclass(frozen=True, slots=True)
class Advert:
    """A hub a feed advertises, and the topic URL to subscribe to there."""

    hub: str
    topic: str


def discover(
    body: bytes | None,
    url: str,
    headers: Mapping[str, str] | None = None,
    content_type: str | None = None,
) -> Advert | None:
    """The hub and topic a fetched feed advertises, or None when it names no hub.

    ``url`` is the final URL of the fetch (base of relative links, and the topic when the feed
    names none); ``headers`` the response headers with lower-case names.
    """
    hub, topic = header_links((headers or {}).get("link", ""), url)
    if hub is None and not _may_name_hub(body):
        return None  # most feeds: no hub in headers or head, nothing to parse
    if (hub is None or topic is None) and body:
        doc_hub, doc_topic = document_links(body, url, content_type)
        hub = hub or doc_hub
        topic = topic or doc_topic
    if hub is None:
        return None
    return Advert(hub, topic or url)


def _may_name_hub(body: bytes | None) -> bool:
    if not body:
        return False
    head = body[:_HEAD_LIMIT]
    return head.startswith(_WIDE_BOMS) or _MENTIONS_HUB.search(head) is not None


def header_links(value: str, base: str) -> tuple[str | None, str | None]:
    """The first ``rel=hub`` and ``rel=self`` targets of a ``Link`` header value (RFC 8288).

    A linear scan (no backtracking regular expression: the header comes from the publisher).
    """
    hub: str | None = None
    topic: str | None = None
    for target, params in _header_links(value or ""):
        rels: set[str] = set()
        for param in _split_unquoted(params, ";"):
            name, _, given = param.partition("=")
            if name.strip().lower() == "rel":
                rels.update(given.strip().strip('"').lower().split())
        if "hub" in rels and hub is None:
            hub = _absolute(target, base)
        if "self" in rels and topic is None:
            topic = _absolute(target, base)
    return hub, topic


def _header_links(value: str) -> Iterator[tuple[str, str]]:
    """``(target, parameters)`` of each link-value: ``<target>; parameters, <…>…``."""
    i = 0
    while (start := value.find("<", i)) >= 0:
        end = value.find(">", start + 1)
        if end < 0:
            return
        quoted = False
        k = end + 1
        while k < len(value):
            char = value[k]
            if char == '"':
                quoted = not quoted
            elif char == "," and not quoted:
                break
            k += 1
        yield value[start + 1 : end].strip(), value[end + 1 : k]
        i = k + 1


def _split_unquoted(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    quoted = False
    begin = 0
    for k, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append(text[begin:k])
            begin = k + 1
    parts.append(text[begin:])
    return parts


def document_links(
    body: bytes, url: str, content_type: str | None = None
) -> tuple[str | None, str | None]:
    """The first feed-level hub and self links of a feed document (XML or JSON Feed)."""
    try:
        text = decode_document(body[:_HEAD_LIMIT], content_type).text.lstrip("\ufeff \t\r\n")
    except Exception:  # a body we cannot decode advertises nothing; polling goes on
        return None, None
    if text.startswith("{"):
        return _json_links(body, url)
    return _xml_links(text, url)


def _json_links(body: bytes, url: str) -> tuple[str | None, str | None]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(document, dict):
        return None, None
    hub: str | None = None
    for item in document.get("hubs") or ():
        if isinstance(item, dict) and str(item.get("type", "")).lower() == "websub":
            hub = _absolute(item.get("url"), url)
            if hub:
                break
    return hub, _absolute(document.get("feed_url"), url)


def _xml_links(text: str, url: str) -> tuple[str | None, str | None]:
    data = defuse_xml(text).data
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start",))
    hub: str | None = None
    topic: str | None = None
    try:
        for offset in range(0, len(data), _CHUNK):
            parser.feed(data[offset : offset + _CHUNK])
            events = cast("Iterator[tuple[str, object]]", parser.read_events())
            for _, element in events:
                if not isinstance(element, ET.Element):
                    continue
                local = element.tag.rsplit("}", 1)[-1].lower()
                if local in ("item", "entry"):
                    return hub, topic  # entry links are the entries', not the feed's
                if local != "link" or "href" not in element.attrib:
                    continue
                rels = set(element.attrib.get("rel", "").lower().split())
                href = element.attrib["href"]
                if "hub" in rels and hub is None:
                    hub = _absolute(href, url)
                if "self" in rels and topic is None:
                    topic = _absolute(href, url)
    except ET.ParseError:
        pass  # what was read before the error stands (the head may also have been cut)
    return hub, topic


def _absolute(link: object, base: str) -> str | None:
    if not isinstance(link, str) or not link.strip():
        return None
    try:
        resolved = urljoin(base, link.strip())
        parts = urlsplit(resolved)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return resolved
