"""parse_feed on each feed format: RSS 2.0, RSS 1.0/RDF, Atom, JSON Feed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from dmzwatch.poller.parse import FeedEntry, ParsedFeed, parse_feed

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "feeds"


def parse_fixture(name: str, url: str = "https://feeds.example.org/feed.xml") -> ParsedFeed:
    return parse_feed((FIXTURES / name).read_bytes(), url)


def by_title(feed: ParsedFeed, title: str) -> FeedEntry:
    return next(e for e in feed.entries if e.title == title)


def test_rss2_fields_are_normalised() -> None:
    feed = parse_fixture("rss2_relative_links.xml")
    assert feed.error is None
    assert feed.format == "rss20"
    assert feed.title == "Peninsula Desk & Wire"
    assert feed.language == "ko-kr"
    assert feed.ttl_minutes == 30
    first = feed.entries[0]
    assert first.guid == "desk-0001"
    assert first.title == "Delegations meet at Panmunjom for working-level talks"
    assert first.authors == ("Han Ji-won",)
    assert first.tags == ("Diplomacy", "Inter-Korean")
    assert first.published == datetime(2026, 3, 3, 0, 15, tzinfo=UTC)
    assert first.language == "ko-kr"


def test_rss2_html_becomes_plain_text_with_paragraphs() -> None:
    first = parse_fixture("rss2_relative_links.xml").entries[0]
    assert (
        first.summary == "Officials from both sides met for three hours.\n\nNo statement followed."
    )
    # content:encoded: the script is dropped and &nbsp; decoded.
    assert (
        first.content == "Officials met for three hours.\n\nA second round is expected next week."
    )


def test_relative_links_resolve_against_xml_base_of_channel_and_item() -> None:
    feed = parse_fixture("rss2_relative_links.xml")
    assert feed.link == "https://news.example.org/"
    assert feed.entries[0].link == "https://news.example.org/korea/articles/talks-resume.html"
    archived = by_title(feed, "Archive note with its own base")
    assert archived.link == "https://archive.example.org/notes/one.html"


def test_relative_links_resolve_against_the_feed_url_without_xml_base() -> None:
    body = b"""<rss version="2.0"><channel><title>t</title>
        <item><title>a</title><link>/news/1</link></item>
        <item><title>b</title><link>2.html</link></item></channel></rss>"""
    feed = parse_feed(body, "https://site.example.org/feeds/main.xml")
    assert [e.link for e in feed.entries] == [
        "https://site.example.org/news/1",
        "https://site.example.org/feeds/2.html",
    ]


def test_links_other_than_http_are_dropped() -> None:
    feed = parse_fixture("rss2_relative_links.xml")
    assert by_title(feed, "Unsafe link scheme").link is None
    assert by_title(feed, "Item without a date or link").link is None


def test_missing_date_is_none_and_odd_formats_are_read() -> None:
    feed = parse_fixture("rss2_relative_links.xml")
    assert by_title(feed, "Item without a date or link").published is None
    assert by_title(feed, "Odd date format").published == datetime(2026, 3, 5, 8, 30, tzinfo=UTC)
    archived = by_title(feed, "Archive note with its own base").published
    assert archived == datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


def test_rss1_rdf_reads_dc_date_subject_and_language() -> None:
    feed = parse_fixture("rss1_rdf.xml")
    assert feed.error is None
    assert feed.format == "rss10"
    assert [e.title for e in feed.entries] == ["Erste Meldung", "Zweite Meldung"]
    first = feed.entries[0]
    assert first.link == "https://rdf.example.org/a"
    assert first.published == datetime(2026, 2, 1, 11, 0, tzinfo=UTC)
    assert first.tags == ("Politik",)
    assert first.language == "de"


def test_atom_resolves_xml_base_and_reads_text_html_and_xhtml() -> None:
    feed = parse_fixture("atom_xml_base.xml")
    assert feed.error is None
    assert feed.format == "atom10"
    assert feed.title == "Unification Watch"
    assert feed.link == "https://atom.example.org/blog/"
    first, second = feed.entries
    assert first.link == "https://atom.example.org/blog/posts/summit-venue"
    assert first.summary == "Two cities are said to be on the shortlist & more."
    assert first.content == "Background\n\nBoth capitals were mentioned."
    assert first.authors == ("Park Min-jun",)
    assert first.published == datetime(2026, 2, 28, 23, 0, tzinfo=UTC)  # published, not updated
    assert first.language == "en"
    assert second.link == "https://mirror.example.net/copy/item-2"  # the entry's own xml:base
    assert second.title == "Entry with xhtml title"
    assert second.summary == "First paragraph.\n\nSecond paragraph."
    assert second.published == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # falls back to updated
    assert second.language == "ko"


def test_json_feed_1_1_maps_to_the_same_entries() -> None:
    feed = parse_fixture("jsonfeed_1_1.json", "https://json.example.org/feed.json")
    assert feed.error is None
    assert feed.format == "json11"
    assert feed.title == "Border Notes"
    assert feed.link == "https://json.example.org/"
    assert len(feed.entries) == 3  # the string item is skipped
    first, second, third = feed.entries
    assert first.guid == "2026-001"
    assert first.link == "https://json.example.org/2026/03/defector-arrives"
    assert first.summary == "Short summary."
    assert first.content == "The soldier was unarmed.\n\nAn investigation is under way."
    assert first.published == datetime(2026, 3, 1, 20, 40, tzinfo=UTC)
    assert first.authors == ("Lee Soo-ah",)
    assert first.tags == ("defection", "military")
    assert second.guid == "42"
    assert second.link == "https://elsewhere.example.com/story"
    assert second.summary == "Text only item.\n\nSecond paragraph."
    assert second.published == datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # RFC 822 in JSON
    assert second.authors == ("Desk Editor",)  # the feed's authors
    assert second.language == "ko"
    assert third.published is None


def test_json_feed_1_0_single_author() -> None:
    feed = parse_fixture("jsonfeed_1_0.json")
    assert feed.format == "json1"
    (entry,) = feed.entries
    assert entry.authors == ("Single Author",)
    assert entry.summary == "Hello & welcome"


def test_json_feed_is_sniffed_whatever_the_content_type() -> None:
    body = (FIXTURES / "jsonfeed_1_0.json").read_bytes()
    feed = parse_feed(body, "https://x.example.org/", "text/html; charset=utf-8")
    assert len(feed.entries) == 1


def test_json_that_is_not_a_feed_is_an_error() -> None:
    assert parse_feed(b'{"hello": 1}', "https://x.example.org/").error == (
        "not a feed: JSON without an items list"
    )
    broken = parse_feed(b'{"items": [', "https://x.example.org/")
    assert broken.error is not None
    assert broken.error.startswith("JSON not well-formed")


def test_feedburner_orig_link_is_preferred_to_the_proxy_link() -> None:
    body = b"""<rss version="2.0" xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0">
        <channel><title>t</title><item><title>a</title>
        <link>http://feedproxy.example.com/~r/x/~3/abc/</link>
        <feedburner:origLink>https://publisher.example.org/story/1</feedburner:origLink>
        </item></channel></rss>"""
    (entry,) = parse_feed(body, "https://feeds.example.org/x").entries
    assert entry.link == "https://publisher.example.org/story/1"


def test_identical_summary_and_content_are_not_duplicated() -> None:
    body = b"""<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
        <channel><title>t</title><item><title>a</title>
        <content:encoded><![CDATA[<p>Only text.</p>]]></content:encoded>
        </item></channel></rss>"""
    (entry,) = parse_feed(body, "https://x.example.org/").entries
    assert (entry.summary, entry.content) == ("Only text.", "")


def test_double_escaped_html_is_reduced_to_text() -> None:
    (entry,) = parse_fixture("double_escaped_html.xml").entries
    assert entry.summary == "Paragraph one.\n\nParagraph two."


@pytest.mark.parametrize(
    ("ttl", "expected"), [("60", 60), ("0", None), ("soon", None), ("99999999", None)]
)
def test_ttl_is_minutes_within_a_week(ttl: str, expected: int | None) -> None:
    body = f'<rss version="2.0"><channel><title>t</title><ttl>{ttl}</ttl></channel></rss>'
    assert parse_feed(body.encode(), "https://x.example.org/").ttl_minutes == expected
