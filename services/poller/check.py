"""``dmzwatch feed check URL_OR_FILE``: fetch (or read) and parse one feed, as one JSON object.

The object (DESIGN.md): ``entries`` (count), ``error`` (null or a message), ``items`` (each with
``title``, ``link``, ``published`` as ISO 8601 or null) and ``seconds``; also ``feed_title``,
``format``, ``outcome`` (a fetch outcome), ``url`` (after redirects), ``status_code``,
``fetched_at`` and ``guids_trusted`` (false when the feed repeats GUIDs).

Each item also shows what the poller would make of it: ``time`` (``published``, else the
first-seen time, i.e. ``fetched_at``), ``guid`` as the poller uses it (the link instead when the
feed's GUIDs repeat), ``id`` (the article id) and ``id_from`` (``url``, ``guid`` or ``content``
hash), and ``text``, the plain text the classifier reads.

Private and loopback hosts are refused like the poller refuses them, unless ``allow`` (the
poller's allow-list entries, e.g. ``127.0.0.1/32``) opens them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from dmzwatch.poller.feeds import FeedConfig
from dmzwatch.poller.fetch import FeedFetcher, FetchOutcome, Validators
from dmzwatch.poller.normalise import guids_repeat, to_article
from dmzwatch.poller.parse import FeedEntry, ParsedFeed, parse_feed

MAX_FILE_BYTES = 10 * 1024 * 1024
ALLOW_HINT = "; pass --allow-network ADDRESS[/PREFIX][:PORT] to check a private host"
ID_FROM = {"u": "url", "g": "guid", "c": "content"}


def check_feed(
    target: str,
    fetcher: FeedFetcher,
    *,
    max_file_bytes: int = MAX_FILE_BYTES,
    timer: Callable[[], float] = time.monotonic,
    base_url: str | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, object]:
    """Check one feed: an http(s) URL is fetched with ``fetcher``, anything else is read as a
    file path (``file://`` URLs too). ``base_url`` is the URL a file's relative links resolve
    against (by default its ``file://`` URL, so they are dropped as not http(s)).

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
        if outcome == "blocked" and error and "not in the allow-list" in error:
            error += ALLOW_HINT
    else:
        outcome, url, body, error = _read_file(target, max_file_bytes)
        url = base_url or url
        content_type = None
    fetched_at = now()
    parsed: ParsedFeed | None = None
    if body is not None:
        parsed = parse_feed(body, url, content_type)
        error = parsed.error
    entries = parsed.entries if parsed else ()
    trusted = not guids_repeat(entries)
    items = [_item(entry, fetched_at, trusted) for entry in entries]
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
        "fetched_at": fetched_at.isoformat(),
        "guids_trusted": trusted,
    }


# Only for the article id: the poller scopes GUID ids by its feed id.
_CHECK_FEED = FeedConfig(id="check", url="https://feed.check.invalid/")


def _item(entry: FeedEntry, fetched_at: datetime, trusted: bool) -> dict[str, object]:
    published = entry.published.isoformat() if entry.published else None
    article = to_article(_CHECK_FEED, entry, fetched_at, trust_guid=trusted)
    return {
        "title": entry.title,
        "link": entry.link,
        "published": published,
        "time": published or fetched_at.isoformat(),
        "guid": article.guid if article else None,
        "id": article.article_id if article else None,
        "id_from": ID_FROM[article.article_id[0]] if article else None,
        "text": entry.content or entry.summary,
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
