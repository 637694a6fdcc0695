"""Every real feed in ../shared/feeds parses with all its entries, absolute links and dates.

The files are the project's test data, read at test time (skipped when absent); the expected
entry counts come from the README beside them.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from dmzwatch.poller.parse import parse_feed

FEEDS = Path(__file__).resolve().parents[3].parent / "shared" / "feeds"
ROW = re.compile(r"^\|\s*([\w.-]+\.xml)\s*\|.*\|\s*(\d+)\s*\|\s*$")


def expected_counts() -> dict[str, int]:
    readme = FEEDS / "README.md"
    if not readme.is_file():
        return {}
    rows = (ROW.match(line) for line in readme.read_text(encoding="utf-8").splitlines())
    return {m.group(1): int(m.group(2)) for m in rows if m}


COUNTS = expected_counts()
pytestmark = pytest.mark.skipif(not COUNTS, reason=f"no test feeds at {FEEDS}")


def pub_dates_in_source(body: bytes) -> int:
    """Items or entries in the raw document that carry a date element."""
    chunks = re.split(rb"<(?:item|entry)[\s>]", body)[1:]
    date = re.compile(rb"<(?:pubDate|dc:date|published|updated)[\s>]")
    return sum(1 for chunk in chunks if date.search(chunk))


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_real_feed_parses_completely(name: str) -> None:
    body = (FEEDS / name).read_bytes()
    feed = parse_feed(body, f"https://feeds.example.org/{name}")
    assert feed.error is None
    assert not feed.bozo
    assert len(feed.entries) == COUNTS[name]
    for entry in feed.entries:
        assert entry.title
        assert entry.link is not None
        parts = urlsplit(entry.link)
        assert parts.scheme in ("http", "https")
        assert parts.hostname
        assert "feeds.example.org" not in entry.link  # all links were absolute in the source
        assert entry.published is None or entry.published.utcoffset() is not None
    dated = sum(1 for e in feed.entries if e.published is not None)
    assert dated == pub_dates_in_source(body)
