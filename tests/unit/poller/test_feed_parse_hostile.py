"""Hostile and broken feeds: no entity is expanded or fetched, and every failure is an error
message on the ParsedFeed, never an exception."""

from __future__ import annotations

import random
import socket
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from dmzwatch.poller.parse import ParsedFeed, parse_feed

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "feeds"
URL = "https://hostile.example.org/feed.xml"


def all_text(feed: ParsedFeed) -> str:
    parts = [feed.title or ""]
    for e in feed.entries:
        parts += [e.title, e.summary, e.content, e.link or ""]
    return "\n".join(parts)


def parse_bounded(body: bytes) -> ParsedFeed:
    """Parse, asserting it takes under a second and under 50 MB of Python allocations."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        feed = parse_feed(body, URL)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 1.0
    assert peak < 50 * 1024 * 1024
    return feed


def quadratic_blowup(entity_bytes: int, references: int, *, doctype: bool = True) -> bytes:
    declaration = f'<!ENTITY a "{"x" * entity_bytes}">'
    prolog = f"<!DOCTYPE rss [{declaration}]>" if doctype else declaration
    refs = "&a;" * references
    return (
        f'<?xml version="1.0"?>{prolog}<rss version="2.0"><channel><title>q</title>'
        f"<item><title>{refs}</title><link>https://q.example.org/1</link></item></channel></rss>"
    ).encode()


def test_billion_laughs_is_not_expanded() -> None:
    feed = parse_bounded((FIXTURES / "billion_laughs.xml").read_bytes())
    assert "lol" not in all_text(feed)
    assert [e.title for e in feed.entries] == ["Expansion bait"]
    assert feed.error is not None
    assert feed.error.startswith("refused entity declarations (lol, lol1")


def test_quadratic_blowup_of_160_kb_is_not_expanded() -> None:
    body = quadratic_blowup(80_000, 27_000)  # would expand to 2 GB
    assert 150_000 < len(body) < 170_000
    feed = parse_bounded(body)
    assert "xxxx" not in all_text(feed)
    assert feed.error == "refused entity declarations (a): not expanded"
    assert len(feed.entries) == 1


def test_entity_declared_outside_a_doctype_is_not_expanded() -> None:
    # feedparser's own DOCTYPE handling collects such declarations for its loose parser.
    feed = parse_bounded(quadratic_blowup(80_000, 27_000, doctype=False))
    assert "xxxx" not in all_text(feed)
    assert feed.error == "refused entity declarations (a): not expanded"


def test_doctype_after_the_root_element_is_not_expanded() -> None:
    body = (
        '<rss version="2.0"><!DOCTYPE r [<!ENTITY a "' + "x" * 60_000 + '">]><channel>'
        "<item><title>" + "&a;" * 2_000 + "</title></item></channel></rss>"
    ).encode()
    feed = parse_bounded(body)
    assert "xxxx" not in all_text(feed)
    assert feed.bozo
    assert feed.error is not None


def test_xxe_to_a_local_file_reads_nothing() -> None:
    feed = parse_bounded((FIXTURES / "xxe_file.xml").read_bytes())
    assert "root:" not in all_text(feed)
    assert feed.entries[0].title == "Leak []"
    assert feed.error == "refused entity declarations (secret): not expanded"


@pytest.fixture
def canary() -> Iterator[socket.socket]:
    """A listener on 127.0.0.1 that must never see a connection."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    yield listener
    listener.close()


def test_xxe_to_an_http_url_fetches_nothing(canary: socket.socket) -> None:
    port = canary.getsockname()[1]
    body = f"""<?xml version="1.0"?>
<!DOCTYPE rss [
  <!ENTITY % remote SYSTEM "http://127.0.0.1:{port}/evil.dtd">
  %remote;
  <!ENTITY ext SYSTEM "http://127.0.0.1:{port}/entity">
]>
<rss version="2.0"><channel><title>x</title>
<item><title>a&ext;b</title><link>https://q.example.org/1</link></item></channel></rss>
""".encode()
    feed = parse_bounded(body)
    assert feed.entries[0].title == "ab"
    assert feed.error == "refused entity declarations (%remote, ext): not expanded"
    with pytest.raises(TimeoutError):
        canary.accept()


def test_external_dtd_of_rss_091_is_dropped_silently_and_entities_still_read() -> None:
    feed = parse_feed((FIXTURES / "rss091_netscape_doctype.xml").read_bytes(), URL)
    assert feed.error is None
    (entry,) = feed.entries
    assert entry.title == "Old style © item"
    assert entry.summary == "Entities from the DTD: été"


def test_a_body_that_names_a_file_is_not_read() -> None:
    # feedparser.parse(bytes) would open a file of that name.
    feed = parse_feed(b"/etc/passwd", URL)
    assert feed.entries == ()
    assert feed.error == "not a feed: neither XML nor JSON"


@pytest.mark.parametrize("body", [b"", b"   \n\t ", b"\xef\xbb\xbf"])
def test_empty_body_is_a_clear_error(body: bytes) -> None:
    feed = parse_feed(body, URL)
    assert (feed.entries, feed.error) == ((), "empty body")


def test_html_page_is_a_clear_error_naming_the_advertised_feed() -> None:
    feed = parse_feed((FIXTURES / "html_page.html").read_bytes(), "https://site.example.org/")
    assert feed.entries == ()
    assert feed.error == (
        "not a feed: looks like HTML (it links to the feed https://site.example.org/rss/all.xml)"
    )


def test_truncated_feed_recovers_the_complete_entries() -> None:
    feed = parse_feed((FIXTURES / "truncated.xml").read_bytes(), URL)
    assert [e.title for e in feed.entries] == ["Complete one", "Complete two"]
    assert feed.bozo
    assert feed.error == (
        "XML not well-formed at line 5, column 24: no element found (recovered 2 entries)"
    )


@pytest.mark.parametrize(
    ("fixture", "error"),
    [
        ("not_a_feed.txt", "not a feed: neither XML nor JSON"),
        ("not_a_feed_root.xml", "not a feed: root element <config> is not RSS, Atom or RDF"),
    ],
)
def test_documents_that_are_not_feeds_are_named_as_such(fixture: str, error: str) -> None:
    feed = parse_feed((FIXTURES / fixture).read_bytes(), URL)
    assert (feed.entries, feed.error) == ((), error)


def test_more_entries_than_the_limit_are_refused_unread() -> None:
    items = "".join(f"<item><title>{i}</title></item>" for i in range(5))
    body = f'<rss version="2.0"><channel>{items}</channel></rss>'.encode()
    feed = parse_feed(body, URL, max_entries=3)
    assert (feed.entries, feed.error) == ((), "refused: more than 3 entries")
    assert len(parse_feed(body, URL, max_entries=5).entries) == 5
    as_json = b'{"version": "https://jsonfeed.org/version/1.1", "items": [{}, {}, {}, {}]}'
    assert parse_feed(as_json, URL, max_entries=3).error == "refused: more than 3 entries"


def test_junk_before_the_xml_declaration_is_skipped() -> None:
    feed = parse_feed((FIXTURES / "junk_before_xml.xml").read_bytes(), URL)
    assert feed.error is None
    assert [e.title for e in feed.entries] == ["Still readable"]


def test_sloppy_xml_is_repaired_for_the_strict_parser() -> None:
    # Bare "&", HTML named entities and control characters each make XML ill-formed.
    feed = parse_feed((FIXTURES / "sloppy_xml.xml").read_bytes(), URL)
    assert not feed.bozo
    assert feed.error is None
    assert feed.title == "Q&A — sloppy"
    (entry,) = feed.entries
    assert entry.title == "Tom & Jerry … AT&T"
    assert entry.link == "https://sloppy.example.org/1?a=1&b=2"
    assert entry.summary == "Bell and formfeed"


def test_cdata_sections_are_left_as_they_are() -> None:
    body = b"""<rss version="2.0"><channel><title>t</title><item><title>a</title>
        <description><![CDATA[<p>R&D &nbsp;spend</p>]]></description></item></channel></rss>"""
    (entry,) = parse_feed(body, URL).entries
    assert entry.summary == "R&D spend"


def test_unterminated_cdata_openers_do_not_take_quadratic_time() -> None:
    body = b'<rss version="2.0"><channel><title>' + b"<![CDATA[&x" * 200_000
    started = time.perf_counter()
    parse_feed(body, URL)
    assert time.perf_counter() - started < 2.0


def test_arbitrary_bytes_never_raise() -> None:
    rng = random.Random(4)
    samples = [b"<", b"<?xml", b"<rss", b"<rss><channel><item>", b"{", b"[1, 2]", b"\x00" * 64]
    samples += [b"<!DOCTYPE", b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'"]
    samples += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))) for _ in range(200)]
    samples += [b"<rss>" + bytes(rng.randrange(256) for _ in range(300)) for _ in range(100)]
    for body in samples:
        feed = parse_feed(body, URL)
        assert isinstance(feed, ParsedFeed)
        assert feed.entries or feed.error is not None or feed.title is not None
