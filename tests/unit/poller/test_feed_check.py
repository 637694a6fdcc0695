"""check_feed: the JSON object of ``dmzwatch feed check``, for URLs and files."""

from __future__ import annotations

import json
from pathlib import Path

from dmzwatch.poller.check import check_feed
from dmzwatch.poller.fetch import FeedFetcher, FetchResult, Validators

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "feeds"


class StaticFetcher(FeedFetcher):
    """Answers every fetch with one result, recording the calls."""

    def __init__(self, result: FetchResult) -> None:
        self.result = result
        self.calls: list[tuple[str, Validators]] = []

    def fetch(self, url: str, validators: Validators) -> FetchResult:
        self.calls.append((url, validators))
        return self.result


def fetched(
    outcome: str = "ok", body: bytes | None = None, error: str | None = None
) -> FetchResult:
    return FetchResult(
        outcome=outcome,  # type: ignore[arg-type]
        url="https://final.example.org/feed.xml",
        status_code=200 if outcome == "ok" else None,
        body=body,
        content_type="application/rss+xml",
        validators=Validators(),
        error=error,
        seconds=0.01,
        bytes_read=len(body or b""),
        retry_after=None,
    )


def test_file_feed_is_read_and_summarised() -> None:
    fetcher = StaticFetcher(fetched())
    report = check_feed(str(FIXTURES / "rss2_relative_links.xml"), fetcher)
    assert fetcher.calls == []
    assert report["entries"] == 5
    assert report["error"] is None
    assert report["outcome"] == "ok"
    assert report["feed_title"] == "Peninsula Desk & Wire"
    items = report["items"]
    assert isinstance(items, list)
    assert {k: items[0][k] for k in ("title", "link", "published")} == {
        "title": "Delegations meet at Panmunjom for working-level talks",
        "link": "https://news.example.org/korea/articles/talks-resume.html",
        "published": "2026-03-03T00:15:00+00:00",
    }
    assert items[2]["published"] is None
    assert isinstance(report["seconds"], float)
    json.dumps(report)  # JSON-able as it is


def test_url_is_fetched_without_validators_and_parsed_against_the_final_url() -> None:
    body = (
        b'<rss version="2.0"><channel><title>t</title>'
        b"<item><title>a</title><link>/a</link></item></channel></rss>"
    )
    fetcher = StaticFetcher(fetched(body=body))
    report = check_feed("https://start.example.org/feed", fetcher)
    assert fetcher.calls == [("https://start.example.org/feed", Validators())]
    assert report["url"] == "https://final.example.org/feed.xml"
    (item,) = report["items"]  # type: ignore[misc]
    assert (item["title"], item["link"], item["published"]) == (
        "a",
        "https://final.example.org/a",
        None,
    )


def test_fetch_failure_is_reported_not_raised() -> None:
    failure = fetched("timeout", error="timed out after 10.0 s (ReadTimeout)")
    report = check_feed("http://slow.example.org/feed", StaticFetcher(failure))
    assert report["entries"] == 0
    assert report["items"] == []
    assert report["outcome"] == "timeout"
    assert report["error"] == "timed out after 10.0 s (ReadTimeout)"


def test_parse_error_is_reported_with_recovered_entries() -> None:
    report = check_feed(str(FIXTURES / "truncated.xml"), StaticFetcher(fetched()))
    assert report["entries"] == 2
    assert isinstance(report["error"], str)
    assert report["error"].startswith("XML not well-formed at line 5")


def test_missing_file_and_bad_paths_are_errors() -> None:
    fetcher = StaticFetcher(fetched())
    missing = check_feed("/nonexistent/feed.xml", fetcher)
    assert missing["error"] == "cannot read /nonexistent/feed.xml: No such file or directory"
    assert missing["outcome"] == "error"
    assert check_feed("bad\x00path", fetcher)["outcome"] == "error"
    assert check_feed(str(FIXTURES), fetcher)["outcome"] == "error"  # a directory


def test_file_url_is_read_as_a_file() -> None:
    report = check_feed((FIXTURES / "rss1_rdf.xml").as_uri(), StaticFetcher(fetched()))
    assert report["entries"] == 2


def test_oversized_file_is_not_read_whole(tmp_path: Path) -> None:
    big = tmp_path / "big.xml"
    big.write_bytes(b"<rss>" + b" " * 2000 + b"</rss>")
    report = check_feed(str(big), StaticFetcher(fetched()), max_file_bytes=1000)
    assert report["outcome"] == "too_large"
    assert report["error"] == "file is over the 1000-byte limit"


def test_empty_file_is_a_clear_error() -> None:
    report = check_feed(str(FIXTURES / "empty.xml"), StaticFetcher(fetched()))
    assert (report["entries"], report["error"]) == (0, "empty body")
