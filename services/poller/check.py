"""``dmzwatch feed check URL_OR_FILE``: fetch (or read) and parse one feed, as one JSON object.

The object (DESIGN.md): ``entries`` (count), ``error`` (null or a message), ``items`` (each with
``title``, ``link``, ``published`` as ISO 8601 or null) and ``seconds``; also ``feed_title``,
``format``, ``outcome`` (a fetch outcome), ``url`` (after redirects) and ``status_code``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from dmzwatch.poller.fetch import FeedFetcher, FetchOutcome, Validators
from dmzwatch.poller.parse import ParsedFeed, parse_feed

MAX_FILE_BYTES = 10 * 1024 * 1024


def check_feed(
    target: str,
    fetcher: FeedFetcher,
    *,
    max_file_bytes: int = MAX_FILE_BYTES,
    timer: Callable[[], float] = time.monotonic,
) -> dict[str, object]:
    """Check one feed: an http(s) URL is fetched with ``fetcher``, anything else is read as a
    file path (``file://`` URLs too).

    Never raises for bad input (unreachable URL, missing file, broken feed): what went wrong is
    the ``error`` of the object. A feed that parsed with a recoverable problem has both entries
    and an ``error``. Only a bug raises.
    """
    started = timer()
    outcome: FetchOutcome
    status_code: int | None = None
    if target.lower().startswith(("http://", "https://")):
        fetched = fetcher.fetch(target, Validators())
        outcome, url, status_code = fetched.outcome, fetched.url, fetched.status_code
        body, content_type, error = fetched.body, fetched.content_type, fetched.error
        if outcome == "not_modified":  # no validators were sent, so a 304 is the server's bug
            error = "server answered 304 Not Modified to an unconditional request"
    else:
        outcome, url, body, error = _read_file(target, max_file_bytes)
        content_type = None
    parsed: ParsedFeed | None = None
    if body is not None:
        parsed = parse_feed(body, url, content_type)
        error = parsed.error
    items = [
        {
            "title": entry.title,
            "link": entry.link,
            "published": entry.published.isoformat() if entry.published else None,
        }
        for entry in (parsed.entries if parsed else ())
    ]
    return {
        "entries": len(items),
        "error": error,
        "items": items,
        "seconds": round(timer() - started, 4),
        "feed_title": parsed.title if parsed else None,
        "format": parsed.format if parsed else None,
        "outcome": outcome,
        "url": url,
        "status_code": status_code,
    }


def _read_file(target: str, max_bytes: int) -> tuple[FetchOutcome, str, bytes | None, str | None]:
    """(outcome, base URL, body, error) of a local file, read no further than ``max_bytes``."""
    path = Path(target.removeprefix("file://"))
    try:
        with path.open("rb") as handle:
            body = handle.read(max_bytes + 1)
        # Relative links in a file resolve against its file:// URL and are then dropped by the
        # parser (only http(s) links are kept), as a fetched feed's would be against its URL.
        url = path.resolve().as_uri()
    except (OSError, ValueError) as exc:  # ValueError: a path with a NUL byte
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        return "error", target, None, f"cannot read {target}: {reason}"
    if len(body) > max_bytes:
        return "too_large", url, None, f"file is over the {max_bytes}-byte limit"
    return "ok", url, body, None
