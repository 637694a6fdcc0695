"""``dmzwatch cluster``: offline story clustering of JSONL articles, with the service's algorithm.

Each input line is an object with ``id``, ``url``, ``title``, ``text`` and ``source`` (the outlet's
host; default: the URL's). Each output line is ``{"id", "story_id"}`` in input order; a repeat
gets the story of what it repeats; a line that cannot be read gets ``{"id", "error"}``. The
stores are in memory, every article is taken as seen at one moment (the window never closes).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TextIO

from dmzwatch.dedup.index import MemoryStoryIndex
from dmzwatch.dedup.outlets import Outlets
from dmzwatch.dedup.records import MemoryRecords
from dmzwatch.dedup.signature import DEFAULT_THRESHOLD
from dmzwatch.dedup.stories import StoryStore
from dmzwatch.shared.clock import Clock, ManualClock
from dmzwatch.shared.identity import canonical_url, outlet
from dmzwatch.shared.messages import Article

WINDOW_SECONDS = 72 * 3600


def memory_store(
    clock: Clock,
    *,
    near_duplicates: bool = True,
    threshold: float = DEFAULT_THRESHOLD,
    window_seconds: int = WINDOW_SECONDS,
    ttl_seconds: int = 14 * 86400,
    aliases: Mapping[str, str] | None = None,
) -> StoryStore:
    """The service's store on in-memory records and index."""
    index = MemoryStoryIndex(window_seconds, clock) if near_duplicates else None
    return StoryStore(
        MemoryRecords(ttl_seconds, clock),
        index,
        Outlets(aliases),
        clock,
        window_seconds=window_seconds,
        threshold=threshold,
    )


def article_from(item: Mapping[str, object], now: datetime) -> Article:
    """An Article from a ``cluster`` input line; raises ``KeyError``/``ValueError`` if unusable."""
    raw_url = str(item.get("url") or "")
    url = canonical_url(raw_url) if raw_url else None
    source = str(item.get("source") or outlet(url))
    return Article(
        article_id=str(item["id"]),
        feed_id=source,
        source=source,
        url=url,
        original_url=raw_url or None,
        guid=None,
        title=str(item.get("title") or ""),
        content=str(item.get("text") or ""),
        published_at=None,
        fetched_at=now,
    )


def cluster_stream(
    lines: Iterable[str], out: TextIO, store: StoryStore | None = None, now: datetime | None = None
) -> int:
    """Cluster ``lines`` into ``out``; returns how many lines could not be read."""
    now = now or datetime.now(UTC)
    store = store or memory_store(ManualClock(now))
    story_of: dict[str, str] = {}
    errors = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        ident: object = None
        try:
            item = json.loads(line)
            ident = item.get("id")
            sighting = store.remember(article_from(item, now), f"cluster/{number}")
        except (ValueError, KeyError, AttributeError, TypeError) as exc:
            errors += 1
            out.write(json.dumps({"id": ident, "error": f"line {number}: {exc}"}) + "\n")
            continue
        story = story_of.get(sighting.story_id, sighting.story_id)
        story_of[str(ident)] = story
        out.write(json.dumps({"id": ident, "story_id": story}) + "\n")
    return errors
