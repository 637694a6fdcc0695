"""feedparser's vocabulary, as the fast path (:mod:`~dmzwatch.poller.xmlfeed`) needs it: which
namespaces and element names it reads into which fields, and how it cleans one text value
(strip, repair double-encoded UTF-8, read C1 characters as windows-1252), resolves a link,
reads a date or an RSS author. Pure; copied from feedparser 6.0.14 where noted by name.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache

from feedparser.datetimes import _parse_date as feedparser_date
from feedparser.datetimes import registerDateHandler
from feedparser.datetimes.rfc822 import _parse_date_rfc822
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import _urljoin

from dmzwatch.poller.entry import plain_absolute

ATOM = "http://www.w3.org/2005/Atom"
RSS10 = "http://purl.org/rss/1.0/"
RSS090 = "http://my.netscape.com/rdf/simple/0.9/"
XML_ATTR = "{http://www.w3.org/XML/1998/namespace}"
# Namespaces feedparser reads as its own (no prefix) and the prefixes it gives known ones.
PREFIXES = {
    "": "",
    ATOM.lower(): "",
    RSS10: "",
    RSS090: "",
    "http://backend.userland.com/rss": "",
    "http://backend.userland.com/rss2": "",
    "http://blogs.law.harvard.edu/tech/rss": "",
    "http://purl.org/dc/elements/1.1/": "dc:",
    "http://purl.org/dc/terms/": "dcterms:",
    "http://purl.org/rss/1.0/modules/content/": "content:",
    "http://rssnamespace.org/feedburner/ext/1.0": "feedburner:",
    "http://search.yahoo.com/mrss/": "media:",
    "http://search.yahoo.com/mrss": "media:",
    "http://www.itunes.com/dtds/podcast-1.0.dtd": "itunes:",
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#": "rdf:",
}
TITLE = frozenset({"title", "dc:title"})
SUMMARY = frozenset({"description", "summary", "dc:description"})
CONTENT = {"content": "text/plain", "content:encoded": "text/html"}
DATES = {
    "pubdate": "published_parsed",
    "published": "published_parsed",
    "issued": "published_parsed",
    "dcterms:issued": "published_parsed",
    "updated": "updated_parsed",
    "modified": "updated_parsed",
    "lastbuilddate": "updated_parsed",
    "dc:date": "updated_parsed",
    "dcterms:modified": "updated_parsed",
    "created": "created_parsed",
    "dcterms:created": "created_parsed",
}
AUTHOR = frozenset({"author", "dc:creator", "dc:author", "managingeditor"})
CATEGORY = frozenset({"category", "dc:subject", "keywords"})
# Entry children feedparser keeps in keys this project never reads. Anything else in an entry
# (or any of these with unexpected children) sends the document to feedparser.
INERT = frozenset(
    {
        "comments",
        "enclosure",
        "source",
        "contributor",
        "rights",
        "dc:rights",
        "dc:publisher",
        "dc:contributor",
        "dc:identifier",
        "dc:format",
        "dc:type",
        "dc:source",
        "dc:relation",
        "dc:coverage",
        "media:content",
        "media:thumbnail",
        "media:credit",
        "media:player",
        "media:group",
        "media:rating",
        "media:copyright",
        "media:restriction",
        "media:license",
        "media:text",
        "media:hash",
        "media:embed",
        "media:status",
        "media:price",
    }
)
# Local names feedparser gives meaning to even in an unknown default namespace.
CORE = frozenset(
    {local for local in TITLE | SUMMARY | set(CONTENT) | set(DATES) | AUTHOR | CATEGORY}
    | {"link", "guid", "id", "language", "name", "email", "image", "textinput", "item", "entry"}
)
_EMAIL = re.compile(
    r"(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))"
    r"([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?"
)
ENTITY_IN_LINK = re.compile("&([A-Za-z0-9_]+);")
RFC822 = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-3][0-9]) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov"
    r"|Dec) ([12][0-9]{3}) ([0-2][0-9]):([0-5][0-9]):([0-5][0-9]) ([+-][01][0-9][0-5][0-9]|GMT)\Z"
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
RSS_VERSIONS = {"0.91": "rss091u", "0.92": "rss092", "0.93": "rss093", "0.94": "rss094"}


def looks_like_html(value: str) -> bool:
    """feedparser's guess that a text/plain value is HTML: it needs a close tag or an entity
    reference, so a value without "<" and "&" (most titles) is not, without its regexes."""
    if "<" not in value and "&" not in value:
        return False
    if not (_CLOSE_TAG.search(value) or _REFERENCE.search(value)):
        return False  # feedparser's first test, with compiled patterns
    return bool(_FeedParserMixin.looks_like_html(value))


_CLOSE_TAG = re.compile(r"</(\w+)>")
_REFERENCE = re.compile(r"&#?\w+;")


_CONTENT_TYPES = {"text": "text/plain", "plain": "text/plain", "html": "text/html"}


def map_content_type(value: str) -> str:
    """feedparser's reading of a ``type`` attribute (its ``map_content_type``)."""
    lowered = value.lower()
    if lowered == "xhtml":
        return "application/xhtml+xml"
    return _CONTENT_TYPES.get(lowered, lowered)


HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


class Unsupported(Exception):
    """Raised inside the fast path for anything left to feedparser."""


@lru_cache(maxsize=4096)
def element_key(tag: str) -> str:
    """feedparser's name for an element: known prefix + lower-case local name."""
    if tag[0] != "{":
        return tag.lower()
    uri, local = tag[1:].split("}", 1)
    prefix = PREFIXES.get(uri.lower())
    if prefix is None:
        # An unknown namespace: feedparser uses the document's prefix, which ElementTree does
        # not keep; if it was the default namespace, core names would be read as core.
        if local.lower() in CORE:
            raise Unsupported(tag)
        return "?" + local.lower()
    return prefix + local.lower()


def attributes(el: ET.Element) -> dict[str, str]:
    """Attributes as feedparser normalises them (lower-case names; rel and type lowered)."""
    out: dict[str, str] = {}
    if not el.attrib:
        return out
    for name, value in el.attrib.items():
        key = name.rsplit("}", 1)[-1].lower()
        out[key] = value.lower() if key in ("rel", "type") else value
    return out


def text_value(raw: str | None) -> str:
    """A text value as feedparser pops it: stripped, double-encoded UTF-8 repaired, the C1
    range read as windows-1252 (resolving and HTML guessing are the caller's)."""
    if not raw:
        return ""
    output = raw.strip()
    if not output.isascii():
        with suppress(UnicodeEncodeError, UnicodeDecodeError):
            output = output.encode("iso-8859-1").decode("utf-8")
        output = output.translate(_cp1252)
    return output


def resolve(base: str, uri: str) -> str:
    """feedparser's resolution of ``uri`` against ``base`` (``urljoin`` after fixing extra
    slashes), skipped for a plain absolute http(s) URL, which it returns unchanged."""
    return uri if plain_absolute(uri) else _urljoin(base, uri)


def leaf_text(el: ET.Element) -> str:
    if len(el):
        raise Unsupported("markup inside a text element")
    return el.text or ""


# Zone names of outlets in East Asia that feedparser does not know (it reads them as UTC, nine
# hours off for Seoul), as numeric offsets.
_ASIAN_ZONES = {"KST": "+0900", "JST": "+0900", "HKT": "+0800", "SGT": "+0800"}


def _asian_zone_date(value: str) -> time.struct_time | None:
    """An RFC 822 date ending in an East Asian zone name; None for any other date."""
    zone = _ASIAN_ZONES.get(value[-3:]) if value[-4:-3] == " " else None
    return None if zone is None else _parse_date_rfc822(value[:-3] + zone)


# feedparser's extension point; both parse paths read dates through feedparser's chain.
registerDateHandler(_asian_zone_date)


# Days in the months before each month of a common year (index 1 is January).
_DAYS_BEFORE_MONTH = (0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)


def _struct_time(when: datetime) -> time.struct_time:
    """``time.struct_time((*when.timetuple()[:8], 0))`` without building ``timetuple``'s own
    struct_time (a third of the cost of reading a date)."""
    year, month = when.year, when.month
    leap = month > 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    yday = _DAYS_BEFORE_MONTH[month] + when.day + leap
    fields = (year, month, when.day, when.hour, when.minute, when.second, when.weekday(), yday, 0)
    return time.struct_time(fields)


def date_value(value: str) -> time.struct_time | None:
    """A date as feedparser reads it (its own parser: RFC 822, W3C-DTF and dozens more).

    The commonest form, RFC 822 with a numeric zone or GMT, is read here from its fields, as the
    standard library's ``parsedate_to_datetime`` reads it (tests/unit/poller/
    test_speed_parity_parse.py checks that); feedparser's chain would try W3C-DTF first, which
    never matches it. Raises ValueError for a date that does not exist.
    """
    rfc822 = RFC822.match(value)
    if rfc822 is not None and rfc822.group(7) != "-0000":  # "-0000": zone unknown, local
        day, month, year, hour, minute, second, zone = rfc822.groups()
        offset = 0
        if zone != "GMT":
            offset = (int(zone[1:3]) * 60 + int(zone[3:5])) * (-60 if zone[0] == "-" else 60)
        when = datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second))
        if offset:
            when -= timedelta(seconds=offset)
        return _struct_time(when)
    if rfc822 is not None:
        aware = parsedate_to_datetime(value).astimezone(UTC)
        return time.struct_time((*aware.timetuple()[:8], 0))
    parsed: time.struct_time | None = feedparser_date(value) if value else None
    return parsed


def rss_author(author: str) -> dict[str, str]:
    """feedparser's reading of ``jo@example.org (Jo Bloggs)``-style author text."""
    detail: dict[str, str] = {}
    if not author:
        return detail
    email = None
    match = _EMAIL.search(author)
    if match:
        email = match.group(0)
        author = author.replace(email, "").replace("()", "").replace("<>", "")
        author = author.replace("&lt;&gt;", "").strip()
        if author and author[0] == "(":
            author = author[1:]
        if author and author[-1] == ")":
            author = author[:-1]
        author = author.strip()
    if author:
        detail["name"] = author
    if email:
        detail["email"] = email
    return detail
