"""RSS feeds on 127.0.0.1 whose items the benchmark adds while the poller polls them.

``LiveFeeds(n)`` serves ``/feed/<k>.xml`` for ``k < n`` from a thread of the benchmark process;
:meth:`LiveFeeds.publish` adds an item to one feed and returns the moment it became visible
(the detection latency starts there).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import yaml


class LiveFeeds:
    def __init__(self, feeds: int) -> None:
        self._lock = threading.Lock()
        self._items: list[list[str]] = [[] for _ in range(feeds)]
        self._count = 0
        feeds_ref = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                try:
                    k = int(self.path.removeprefix("/feed/").removesuffix(".xml"))
                    body = feeds_ref.body(k)
                except (ValueError, IndexError):
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

    def start(self) -> LiveFeeds:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def body(self, k: int) -> bytes:
        with self._lock:
            items = "".join(reversed(self._items[k][-30:]))
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Live feed {k}</title><link>http://127.0.0.1/{k}</link>"
            f"<description>bench</description>{items}</channel></rss>"
        ).encode()

    def publish(self, k: int, title: str, text: str) -> float:
        """Add an item to feed ``k``; returns the epoch seconds from which it is served."""
        with self._lock:
            self._count += 1
            n = self._count
            now = datetime.now(UTC)
            self._items[k].append(
                f"<item><title>{escape(title)}</title>"
                f"<link>https://live{k}.example/news/{n}</link>"
                f'<guid isPermaLink="false">live-{k}-{n}</guid>'
                f"<pubDate>{format_datetime(now)}</pubDate>"
                f"<description>{escape(text)}</description></item>"
            )
            return time.time()

    def feed_list(self, path: Path, interval_seconds: int) -> Path:
        feeds = [
            {
                "id": f"live-{k}",
                "url": f"http://127.0.0.1:{self.port}/feed/{k}.xml",
                "tags": ["bench"],
                "interval_seconds": interval_seconds,
            }
            for k in range(len(self._items))
        ]
        path.write_text(yaml.safe_dump({"feeds": feeds}))
        return path
