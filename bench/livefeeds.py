"""RSS feeds on 127.0.0.1 whose items are added while the poller polls them.

``LiveFeeds(n)`` (feeds ``live-0`` … ``live-<n-1>``) or ``LiveFeeds(("a", "b"))`` serves
``/<feed>.xml`` from a thread of the calling process, newest item first, keeping the last
``keep`` items of each feed. :meth:`LiveFeeds.publish` adds an item to one feed and returns the
moment it became visible (a detection latency starts there). Used by the benchmarks and by the
chaos run's growing feeds (``chaos.feeds``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import yaml


@dataclass(frozen=True, slots=True)
class FeedItem:
    link: str
    guid: str
    title: str
    summary: str
    published: datetime

    def render(self) -> str:
        return (
            f"<item><title>{escape(self.title)}</title><link>{escape(self.link)}</link>"
            f'<guid isPermaLink="false">{escape(self.guid)}</guid>'
            f"<description>{escape(self.summary)}</description>"
            f"<pubDate>{format_datetime(self.published)}</pubDate></item>"
        )


class LiveFeeds:
    def __init__(self, feeds: int | Sequence[str], keep: int = 30) -> None:
        self.feed_ids: tuple[str, ...] = (
            tuple(f"live-{k}" for k in range(feeds)) if isinstance(feeds, int) else tuple(feeds)
        )
        self._keep = keep
        self._lock = threading.Lock()
        self._items: dict[str, list[FeedItem]] = {f: [] for f in self.feed_ids}
        self._count = 0
        feeds_ref = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                body = feeds_ref.render(self.path.strip("/").removesuffix(".xml"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, feed: int | str) -> str:
        return f"http://127.0.0.1:{self.port}/{self._feed_id(feed)}.xml"

    def start(self) -> LiveFeeds:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def render(self, feed_id: str) -> bytes | None:
        with self._lock:
            items = self._items.get(feed_id)
            if items is None:
                return None
            entries = "".join(item.render() for item in reversed(items))
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>{feed_id}</title><link>https://{feed_id}.example/</link>"
            f"<description>live feed</description>{entries}</channel></rss>"
        ).encode()

    def publish(
        self,
        feed: int | str,
        title: str,
        summary: str,
        *,
        link: str | None = None,
        guid: str | None = None,
    ) -> float:
        """Add an item to ``feed`` (index or id); the epoch seconds from which it is served.

        ``link`` and ``guid`` default to ``https://<feed>.example/news/<n>`` and ``<feed>-<n>``,
        ``n`` counting the items published here.
        """
        feed_id = self._feed_id(feed)
        with self._lock:
            self._count += 1
            n = self._count
            item = FeedItem(
                link or f"https://{feed_id}.example/news/{n}",
                guid or f"{feed_id}-{n}",
                title,
                summary,
                datetime.now(UTC),
            )
            self._items[feed_id] = (self._items[feed_id] + [item])[-self._keep :]
            return time.time()

    def feed_list(
        self, path: Path, interval_seconds: int, tags: Sequence[str] = ("bench",)
    ) -> Path:
        """Write the poller's feed list (every feed, one interval) to ``path``."""
        feeds = [
            {
                "id": feed_id,
                "url": self.url(feed_id),
                "tags": list(tags),
                "interval_seconds": interval_seconds,
            }
            for feed_id in self.feed_ids
        ]
        path.write_text(yaml.safe_dump({"feeds": feeds}))
        return path

    def _feed_id(self, feed: int | str) -> str:
        return self.feed_ids[feed] if isinstance(feed, int) else feed
