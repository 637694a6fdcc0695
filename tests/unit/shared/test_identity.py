import pytest

from dmzwatch.shared.identity import (
    article_id,
    canonical_url,
    content_fingerprint,
    outlet,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://News.Example/a/B?x=1#top", "https://news.example/a/B?x=1"),
        ("https://news.example:443/a", "https://news.example/a"),
        ("http://news.example:8080/a", "http://news.example:8080/a"),
        (
            "https://news.example/a?utm_source=rss&utm_medium=feed&id=7&fbclid=abc&gclid=z",
            "https://news.example/a?id=7",
        ),
        ("https://news.example/a?b=2&a=1", "https://news.example/a?a=1&b=2"),
        ("https://news.example", "https://news.example/"),
    ],
)
def test_canonical_url_normalises_what_does_not_identify_the_document(
    url: str, expected: str
) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    "url", ["ftp://x.example/a", "/relative/path", "mailto:a@b", "", "http://"]
)
def test_canonical_url_refuses_anything_but_absolute_http(url: str) -> None:
    assert canonical_url(url) is None


def test_tracking_variants_of_one_link_share_an_article_id() -> None:
    a = canonical_url("https://news.example/story?utm_campaign=x&fbclid=abc")
    b = canonical_url("https://NEWS.example/story#comments")
    assert article_id(a, "f1", "g1", "t", "x") == article_id(b, "f2", "g2", "t", "y")


def test_article_id_falls_back_to_guid_scoped_by_feed_then_content() -> None:
    assert article_id(None, "f1", "42", "t", "x") != article_id(None, "f2", "42", "t", "x")
    assert article_id(None, "f1", None, "Title", "Body!") == article_id(
        None, "f2", "  ", "title", "body"
    )
    assert article_id(None, "f1", None, "t", "x").startswith("c")


def test_content_fingerprint_ignores_case_spacing_and_punctuation() -> None:
    assert content_fingerprint("Kim meets Moon", "They met.  Today!") == content_fingerprint(
        "kim meets moon", "they met today"
    )
    assert content_fingerprint("Kim meets Moon", "a") != content_fingerprint("Kim meets Moon", "b")


def test_outlet_is_the_host_without_www() -> None:
    assert outlet("https://www.News.example/a") == "news.example"
    assert outlet(None) == "unknown"
