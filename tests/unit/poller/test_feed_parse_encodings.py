"""parse_feed decodes declared, undeclared, BOM-marked and mis-declared encodings."""

from __future__ import annotations

from pathlib import Path

import pytest

from dmzwatch.poller.parse import parse_feed
from dmzwatch.poller.text import decode_document

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "feeds"


@pytest.mark.parametrize(
    ("fixture", "title"),
    [
        ("latin1_declared.xml", "Café Müller in Genève"),
        ("windows1251_declared.xml", "Пхеньян сообщает"),
        ("euckr_declared.xml", "조선중앙통신 보도"),
        ("gb2312_declared.xml", "朝鲜半岛局势"),
        ("utf8_bom.xml", "평양 BOM"),
        ("utf16le_bom.xml", "평양 sixteen"),
        ("utf8_undeclared.xml", "평양 undeclared Café"),
        ("latin1_declared_but_utf8.xml", "Café mislabelled"),
    ],
)
def test_titles_decode_cleanly(fixture: str, title: str) -> None:
    feed = parse_feed((FIXTURES / fixture).read_bytes(), "https://enc.example.org/feed")
    assert feed.error is None
    assert feed.title == title
    assert [e.title for e in feed.entries] == [title]


def test_utf8_declared_but_windows1252_is_decoded_and_reported() -> None:
    feed = parse_feed(
        (FIXTURES / "utf8_declared_but_windows1252.xml").read_bytes(), "https://x.example.org/"
    )
    assert feed.title == "Café “quoted”"
    assert feed.error == "bytes are not valid utf-8; decoded as cp1252"


def test_unknown_encoding_gives_a_clear_error_and_the_entries() -> None:
    feed = parse_feed((FIXTURES / "unknown_encoding.xml").read_bytes(), "https://x.example.org/")
    assert feed.error == "unknown encoding 'x-unknown-charset' declared; decoded as utf-8"
    assert [e.title for e in feed.entries] == ["Plain ASCII title"]


def test_http_charset_is_used_when_the_document_declares_none() -> None:
    body = '<rss version="2.0"><channel><title>Пхеньян</title></channel></rss>'.encode("cp1251")
    feed = parse_feed(body, "https://x.example.org/", "application/rss+xml; charset=windows-1251")
    assert feed.title == "Пхеньян"


def test_xml_declaration_wins_over_a_default_http_charset() -> None:
    body = (
        '<?xml version="1.0" encoding="EUC-KR"?>'
        '<rss version="2.0"><channel><title>평양</title></channel></rss>'
    )
    feed = parse_feed(body.encode("euc-kr"), "https://x.example.org/", "text/xml; charset=utf-8")
    assert feed.title == "평양"


def test_mostly_utf8_with_one_bad_byte_stays_utf8() -> None:
    text = "평양 " * 20
    body = b"<rss version='2.0'><channel><title>" + text.encode() + b"\xff</title></channel></rss>"
    decoded = decode_document(body)
    assert decoded.encoding == "utf-8"
    assert decoded.text.count("평양") == 20


def test_bomless_utf16_is_sniffed() -> None:
    body = '<?xml version="1.0" encoding="utf-16"?><rss/>'.encode("utf-16-be")
    assert decode_document(body).text.startswith("<?xml")


def test_double_encoded_utf8_is_repaired() -> None:
    # "Café" encoded to UTF-8, misread as Latin-1 and encoded to UTF-8 again by the publisher.
    mangled = "Café".encode().decode("latin-1")
    body = f'<rss version="2.0"><channel><item><title>{mangled}</title></item></channel></rss>'
    (entry,) = parse_feed(body.encode(), "https://x.example.org/").entries
    assert entry.title == "Café"
