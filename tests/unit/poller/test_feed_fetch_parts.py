"""The pure parts of fetching: Retry-After, bounded inflation, the per-thread deadline."""

from __future__ import annotations

import gzip
import zlib
from datetime import UTC, datetime

import httpcore
import pytest

from dmzwatch.poller.fetch import FETCH_OUTCOMES, HttpFeedFetcher, Validators, parse_retry_after
from dmzwatch.poller.safety import BodyError, BodyTooLarge, BoundedInflater, DeadlineNetwork
from dmzwatch.shared.clock import ManualClock

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "server_date", "seconds"),
    [
        ("120", None, 120.0),
        (" 0 ", None, 0.0),
        ("1.5", None, 1.5),
        ("Sun, 01 Mar 2026 12:05:00 GMT", None, 300.0),
        ("Sun, 01 Mar 2026 11:00:00 GMT", None, 0.0),  # in the past: retry now
        # Measured from the server's own Date, so its clock skew cancels out.
        ("Sun, 01 Mar 2026 09:01:00 GMT", "Sun, 01 Mar 2026 09:00:00 GMT", 60.0),
        ("soon", None, None),
        ("-5", None, None),
        ("", None, None),
        (None, None, None),
    ],
)
def test_parse_retry_after(
    value: str | None, server_date: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(value, NOW, server_date) == seconds


def test_outcomes_match_the_metric_labels() -> None:
    assert FETCH_OUTCOMES == ("ok", "not_modified", "error", "blocked", "too_large", "timeout")


def feed_all(inflater: BoundedInflater, data: bytes, limit: int, chunk: int = 4096) -> bytes:
    out = b""
    for i in range(0, len(data), chunk):
        out += inflater.feed(data[i : i + chunk], limit - len(out))
    inflater.finish()
    return out


@pytest.mark.parametrize("encoding", ["", "identity", "gzip", "x-gzip", "deflate"])
def test_inflater_decodes(encoding: str) -> None:
    payload = b"<rss>" + b"news " * 5000 + b"</rss>"
    encoded = {
        "gzip": gzip.compress(payload),
        "x-gzip": gzip.compress(payload),
        "deflate": zlib.compress(payload),
    }.get(encoding, payload)
    assert feed_all(BoundedInflater(encoding), encoded, 1 << 20) == payload


def test_inflater_reads_raw_deflate_and_concatenated_gzip_members() -> None:
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    data = raw.compress(b"raw deflate") + raw.flush()
    assert feed_all(BoundedInflater("deflate"), data, 1000) == b"raw deflate"
    two = gzip.compress(b"first ") + gzip.compress(b"second")
    assert feed_all(BoundedInflater("gzip"), two, 1000) == b"first second"


def test_inflater_stops_a_gzip_bomb_at_the_limit_without_inflating_it() -> None:
    bomb = gzip.compress(bytes(20 * 1024 * 1024))  # 20 MB of zeros in ~20 KB
    inflater = BoundedInflater("gzip")
    with pytest.raises(BodyTooLarge):
        inflater.feed(bomb, 1024 * 1024)


def test_inflater_refuses_unknown_and_truncated_encodings() -> None:
    with pytest.raises(BodyError, match="unsupported Content-Encoding 'br'"):
        BoundedInflater("br")
    inflater = BoundedInflater("gzip")
    inflater.feed(gzip.compress(b"x" * 1000)[:-12], 10_000)
    with pytest.raises(BodyError, match="truncated"):
        inflater.finish()


def test_deadline_is_per_thread_and_shortens_timeouts() -> None:
    clock = ManualClock()
    network = DeadlineNetwork(httpcore.SyncBackend(), clock)
    assert network.bound(5.0, httpcore.ReadTimeout) == 5.0  # no deadline set
    with network.deadline(clock.monotonic() + 2.0):
        assert network.bound(5.0, httpcore.ReadTimeout) == 2.0
        assert network.bound(None, httpcore.ReadTimeout) == 2.0
        clock.advance(1.5)
        assert network.bound(1.0, httpcore.ReadTimeout) == pytest.approx(0.5)
        clock.advance(1.0)
        with pytest.raises(httpcore.ReadTimeout, match="total deadline"):
            network.bound(1.0, httpcore.ReadTimeout)
    assert network.bound(5.0, httpcore.ReadTimeout) == 5.0


def test_fetcher_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="must be"):
        HttpFeedFetcher(timeout_seconds=0)


@pytest.mark.parametrize("url", ["ftp://example.org/feed", "file:///etc/passwd", "gopher://x/"])
def test_non_http_urls_are_blocked_without_any_connection(url: str) -> None:
    with HttpFeedFetcher(timeout_seconds=1.0) as fetcher:
        result = fetcher.fetch(url, Validators())
    assert result.outcome == "blocked"
    assert result.error is not None
