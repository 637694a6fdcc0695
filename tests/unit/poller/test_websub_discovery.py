"""WebSub discovery: Link headers first, then feed-level links of Atom, RSS and JSON Feed."""

from __future__ import annotations

import pytest

from dmzwatch.poller.websub_discovery import Advert, discover, header_links

URL = "https://news.example/feed.xml"
ATOM = "http://www.w3.org/2005/Atom"


def rss(channel_links: str, item_links: str = "") -> bytes:
    return (
        f'<?xml version="1.0"?><rss version="2.0" xmlns:atom="{ATOM}"><channel><title>t</title>'
        f"{channel_links}<item><title>a</title>{item_links}</item></channel></rss>"
    ).encode()


def test_rss_atom_links_name_hub_and_topic() -> None:
    body = rss(
        '<atom:link rel="hub" href="https://hub.example/"/>'
        '<atom:link rel="self" type="application/rss+xml" href="https://news.example/rss"/>'
    )
    assert discover(body, URL) == Advert("https://hub.example/", "https://news.example/rss")


def test_atom_feed_links_with_relative_hrefs_are_resolved() -> None:
    body = (
        f'<feed xmlns="{ATOM}"><title>t</title><link rel="self" href="/atom.xml"/>'
        '<link href="https://news.example/"/><link rel="hub" href="//hub.example/push"/>'
        '<entry><title>x</title><link href="https://news.example/1"/></entry></feed>'
    ).encode()
    assert discover(body, URL) == Advert(
        "https://hub.example/push", "https://news.example/atom.xml"
    )


def test_a_feed_naming_no_self_link_is_its_own_topic() -> None:
    body = rss('<atom:link rel="hub" href="https://hub.example/"/>')
    assert discover(body, "https://news.example/final") == Advert(
        "https://hub.example/", "https://news.example/final"
    )


def test_links_inside_entries_do_not_count() -> None:
    body = rss("", '<atom:link rel="hub" href="https://evil.example/"/>')
    assert discover(body, URL) is None


def test_link_headers_win_over_the_document() -> None:
    body = rss(
        '<atom:link rel="hub" href="https://doc-hub.example/"/>'
        '<atom:link rel="self" href="https://news.example/doc-self"/>'
    )
    headers = {
        "link": '<https://header-hub.example/>; rel="hub", <https://news.example/h>; rel=self'
    }
    assert discover(body, URL, headers) == Advert(
        "https://header-hub.example/", "https://news.example/h"
    )


def test_a_header_hub_is_completed_by_the_document_self_link() -> None:
    body = rss('<atom:link rel="self" href="https://news.example/doc-self"/>')
    headers = {"link": "<https://hub.example/>; rel=hub"}
    assert discover(body, URL, headers) == Advert(
        "https://hub.example/", "https://news.example/doc-self"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('<https://h/>; rel="hub self"', ("https://h/", "https://h/")),
        ('<https://h/>; title="a, b"; rel="hub"', ("https://h/", None)),
        ('<https://a/>; rel="alternate", <https://h/>; REL="Hub"', ("https://h/", None)),
        ("<javascript:alert(1)>; rel=hub", (None, None)),
        ("<relative>; rel=hub", ("https://news.example/relative", None)),
        ("garbage without brackets", (None, None)),
        # Hostile values a backtracking pattern would take seconds over: read in one pass.
        ("<a>;" + " " * 60000 + '"', (None, None)),
        ("<" * 60000, (None, None)),
        ("", (None, None)),
    ],
)
def test_link_header_values(value: str, expected: tuple[str | None, str | None]) -> None:
    assert header_links(value, URL) == expected


def test_json_feed_hubs() -> None:
    body = (
        b'{"version": "https://jsonfeed.org/version/1.1", "feed_url": "https://news.example/j",'
        b' "hubs": [{"type": "rssCloud", "url": "https://cloud.example/"},'
        b' {"type": "WebSub", "url": "https://hub.example/"}], "items": []}'
    )
    assert discover(body, URL) == Advert("https://hub.example/", "https://news.example/j")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml at all",
        b"<rss><channel><title>unterminated",
        b"{not json",
        b"[1, 2]",
        rss('<atom:link rel="hub" href="ftp://hub.example/"/>'),
        rss('<atom:link rel="hub"/>'),
        b'<!DOCTYPE x [<!ENTITY e "https://hub.example/">]><rss><channel>'
        b'<link rel="hub" href="&e;"/></channel></rss>',
    ],
)
def test_bodies_that_advertise_no_usable_hub(body: bytes) -> None:
    assert discover(body, URL) is None


def test_a_hub_before_a_parse_error_is_kept() -> None:
    body = rss('<atom:link rel="hub" href="https://hub.example/"/>').replace(b"</rss>", b"<oops")
    assert discover(body, URL) == Advert("https://hub.example/", URL)


def test_a_utf16_feed_is_read_for_its_hub_too() -> None:
    text = rss('<atom:link rel="hub" href="https://hub.example/"/>').decode()
    body = b"\xff\xfe" + text.replace('encoding="utf-8"', "").encode("utf-16-le")
    assert discover(body, URL) == Advert("https://hub.example/", URL)
