"""The fast path (ElementTree) gives exactly what feedparser gives, or declines.

An article's id must not depend on which path read its feed (a feed that turns malformed for
one poll would otherwise re-publish every entry under new ids), so every case compares the two
paths field by field, and says whether the fast path is expected to take the document.
"""

from __future__ import annotations

import random
from datetime import timezone
from pathlib import Path

import pytest

from dmzwatch.poller.parse import _ENTRY_TAG, parse_feed
from dmzwatch.poller.safety import defuse_xml
from dmzwatch.poller.text import decode_document
from dmzwatch.poller.xmlfeed import read_tree

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "feeds"
REAL = Path(__file__).resolve().parents[3].parent / "shared" / "feeds"
URL = "https://feeds.example.org/news/feed.xml"
RSS = (
    '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"'
    ' xmlns:content="http://purl.org/rss/1.0/modules/content/"'
    ' xmlns:atom="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/"'
    ' xmlns:x="http://unknown.example/ns" xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0">'
    "<channel><title>Desk</title><link>https://news.example.org/</link>"
    '<atom:link rel="self" href="https://feeds.example.org/self"/><language>en-GB</language>'
    "{items}</channel></rss>"
)
ATOM = (
    '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="ko" xml:base="https://atom.example.org/b/">'
    '<title type="html">A &amp;lt;b&amp;gt;feed</title><link href="/home"/>{items}</feed>'
)

RSS_ITEMS = {
    "plain": "<item><title>T</title><link>/a</link><guid>g1</guid><pubDate>Tue, 03 Mar 2026"
    " 09:15:00 +0900</pubDate><description>&lt;p&gt;Hi&lt;/p&gt;</description></item>",
    "guid_not_permalink": '<item><title>T</title><guid isPermaLink="false">g1</guid></item>',
    "guid_permalink_no_link": "<item><title>T</title><guid>story/7</guid></item>",
    "guid_before_link": "<item><title>T</title><guid>g</guid><link>https://x.example/l</link></item>",
    "guid_case": '<item><title>T</title><guid isPermaLink="True">g</guid></item>',
    "empty_link_after_guid": "<item><title>T</title><guid>g</guid><link></link></item>",
    "link_with_entities": "<item><title>T</title><link>https://x.example/?a=1&amp;amp;b=2</link>"
    "</item>",
    "html_title": "<item><title>&lt;b&gt;Bold&lt;/b&gt; &amp;amp; more</title></item>",
    "title_entity_only": "<item><title>Caf&amp;eacute;</title></item>",
    "two_titles": "<item><title></title><title>Second</title><title>Third</title></item>",
    "dc_title": "<item><dc:title>DC</dc:title><title>Plain</title></item>",
    "content_only": "<item><title>T</title><content:encoded><![CDATA[<p>Body</p>]]>"
    "</content:encoded></item>",
    "content_then_description": "<item><title>T</title><content:encoded>&lt;p&gt;Body&lt;/p&gt;"
    "</content:encoded><description>Short</description></item>",
    "description_then_content": "<item><title>T</title><description>Short</description>"
    "<content:encoded>&lt;p&gt;Body&lt;/p&gt;</content:encoded></item>",
    "authors": "<item><title>T</title><author>jo@example.org (Jo Bloggs)</author>"
    "<dc:creator>Kim</dc:creator><dc:creator>Kim</dc:creator><author>ed@example.org</author>"
    "</item>",
    "categories": '<item><title>T</title><category domain="https://x.example/s">A</category>'
    "<category>B</category><category>A</category><dc:subject>C</dc:subject>"
    '<category domain="d"></category></item>',
    "dates": "<item><title>T</title><dc:date>2026-03-01T10:00:00Z</dc:date></item>",
    "bad_date": "<item><title>T</title><pubDate>sometime soon</pubDate>"
    "<dc:date>2026-03-01T10:00:00+02:00</dc:date></item>",
    "origlink": "<item><title>T</title><link>http://proxy.example/x</link>"
    "<feedburner:origLink>https://pub.example/1</feedburner:origLink></item>",
    "item_lang": '<item xml:lang="fr"><title>T</title></item>',
    "item_base": '<item xml:base="https://other.example/dir/"><title>T</title><link>a.html</link>'
    "</item>",
    "atom_link_in_item": '<item><title>T</title><atom:link href="/alt"/></item>',
    "inert_extras": '<item><title>T</title><comments>c</comments><enclosure url="/e.mp3"/>'
    '<source url="https://s.example/">S</source><x:thing>v</x:thing>'
    '<media:content url="/m.jpg"><media:credit>AP</media:credit></media:content></item>',
    "double_encoded": "<item><title>CafÃ© Ã¼ber</title></item>",
    "c1_controls": "<item><title>\u0093quoted\u0094</title></item>",
    "whitespace": "<item><title>\n   spaced\n  out  </title><description>  \n </description>"
    "</item>",
}
ATOM_ENTRIES = {
    "basic": '<entry><title>T</title><link href="p/1"/><link rel="self" href="/s"/>'
    "<id>tag:x.example,2026:1</id><updated>2026-03-02T10:00:00Z</updated>"
    "<published>2026-03-01T10:00:00Z</published><summary>S &amp; s</summary></entry>",
    "xhtml": '<entry><title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">A <b>b</b>'
    '</div></title><content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>One</p>'
    "<p>Two &amp; <br/>three</p></div></content></entry>",
    "html_content": '<entry><title>T</title><content type="html">&lt;p&gt;X&lt;/p&gt;</content>'
    "</entry>",
    "relative_id": "<entry><title>T</title><id>42</id></entry>",
    "author": "<entry><title>T</title><author><name> N </name><email>e@x.example</email>"
    "<uri>https://x.example</uri></author></entry>",
    "author_email_only": "<entry><title>T</title><author><email>e@x.example</email></author>"
    "</entry>",
    "category": '<entry><title>T</title><category term="t1" label="L1"/><category label="L2"/>'
    '<category term="t3"/></entry>',
    "own_lang": '<entry xml:lang="en"><title>T</title></entry>',
    "alternate_kinds": '<entry><title>T</title><link rel="alternate" type="application/pdf"'
    ' href="/a.pdf"/><link rel="ALTERNATE" type="TEXT/HTML" href="/b"/></entry>',
}
DECLINED = {
    "media_title": "<item><title>T</title><media:title>M</media:title></item>",
    "two_descriptions": "<item><title>T</title><description>a</description>"
    "<dc:description>b</dc:description></item>",
    "item_language": "<item><title>T</title><dc:language>de</dc:language></item>",
    "markup_in_title": "<item><title>A <b>b</b></title></item>",
}


ATOM_DECLINED = {
    # feedparser mixes the details of a second structured author into the first one's.
    "two_authors": "<entry><title>T</title><author><name>N</name></author><author><name>M"
    "</name></author></entry>",
}


def assert_same(body: bytes, *, fast: bool) -> None:
    slow = parse_feed(body, URL, fast=False)
    quick = parse_feed(body, URL)
    assert quick == slow
    text = decode_document(body).text
    defused = defuse_xml(text)
    took = read_tree(defused.data, URL, len(_ENTRY_TAG.findall(text))) is not None
    assert took is fast


@pytest.mark.parametrize("name", sorted(RSS_ITEMS))
def test_rss_item_reads_as_feedparser_reads_it(name: str) -> None:
    assert_same(RSS.format(items=RSS_ITEMS[name]).encode(), fast=True)


@pytest.mark.parametrize("name", sorted(ATOM_ENTRIES))
def test_atom_entry_reads_as_feedparser_reads_it(name: str) -> None:
    assert_same(ATOM.format(items=ATOM_ENTRIES[name]).encode(), fast=True)


@pytest.mark.parametrize("name", sorted(DECLINED))
def test_semantics_not_reproduced_go_to_feedparser(name: str) -> None:
    assert_same(RSS.format(items=DECLINED[name]).encode(), fast=False)


@pytest.mark.parametrize("name", sorted(ATOM_DECLINED))
def test_atom_semantics_not_reproduced_go_to_feedparser(name: str) -> None:
    assert_same(ATOM.format(items=ATOM_DECLINED[name]).encode(), fast=False)


def test_malformed_xml_goes_to_feedparser_and_is_recovered() -> None:
    body = RSS.format(items="<item><title>T</title><link>/a</link></item><item><title>U").encode()
    feed = parse_feed(body, URL)
    assert feed.bozo and [e.title for e in feed.entries][:1] == ["T"]


@pytest.mark.parametrize(
    "path",
    sorted(FIXTURES.glob("*")) + (sorted(REAL.glob("*.xml")) if REAL.is_dir() else []),
    ids=lambda p: p.name,
)
def test_every_fixture_and_real_feed_parses_the_same_on_both_paths(path: Path) -> None:
    body = path.read_bytes()
    assert parse_feed(body, URL) == parse_feed(body, URL, fast=False)


@pytest.mark.parametrize(
    "url",
    [
        "https://news.example.org/2026/03/story.html?utm_source=rss&id=7",
        "http://h.example:8080/a/../b//c?q=%20x",
        "https://h.example",
        "https://h.example/",
        "https://h.example/caf\u00e9/\u3042",
        "https://h.example/a?",
        "https://h.example/a#",
        "https://h.example/a;p",
        "HTTPS://h.example/a",
        "https:///h.example/a",
        "https://h.example/a b",
        "https://[::1]/a",
        "http://h.example/a\t",
        "ftp://h.example/a",
        "/relative/path",
    ],
)
@pytest.mark.parametrize("base", [URL, "http://other.example/x/", "https://h.example/feed"])
def test_plain_absolute_urls_are_those_joining_leaves_unchanged(url: str, base: str) -> None:
    from feedparser.urls import _urljoin

    from dmzwatch.poller.entry import absolute_http, plain_absolute
    from dmzwatch.poller.xmlnames import resolve

    if plain_absolute(url):
        assert _urljoin(base, url) == url
        assert absolute_http(url, base) == url
    assert resolve(base, url) == _urljoin(base, url)


def test_rfc822_dates_read_by_the_shortcut_equal_feedparsers() -> None:
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    from feedparser.datetimes import _parse_date

    from dmzwatch.poller.xmlnames import RFC822, date_value

    rng = random.Random(3)
    start = datetime(1999, 1, 1, tzinfo=UTC)
    for _ in range(500):
        when = start + timedelta(seconds=rng.randrange(10**9))
        zone = timezone(timedelta(minutes=rng.choice([-600, -330, 0, 60, 540, 765])))
        text = format_datetime(when.astimezone(zone))
        if rng.random() < 0.2:
            text = format_datetime(when, usegmt=True)
        assert RFC822.match(text), text
        assert date_value(text)[:6] == _parse_date(text)[:6]
