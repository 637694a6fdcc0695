"""A loopback HTTP server of generated feeds for ``bench/poller.py`` (run in its own process so
that it does not share the poller's interpreter lock).

``python -m bench.feedserver FEEDS ENTRIES`` listens on 127.0.0.1 (a free port, printed on the
first line of stdout) and serves, for ``n`` in ``0..FEEDS-1``:

- ``/etag/<n>.xml``: an RSS 2.0 feed of ENTRIES items with an ETag; answers a matching
  ``If-None-Match`` with 304;
- ``/plain/<n>.xml``: the same body, no validators, always 200 (a server that ignores them).

A minimal asyncio HTTP/1.1 server with keep-alive, so that the server is not what is measured.
It stops when its stdin closes.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

BASE_TIME = datetime(2026, 3, 1, tzinfo=UTC)


def feed_body(n: int, entries: int) -> bytes:
    """Feed ``n``: RSS 2.0 with dated, linked items carrying HTML descriptions (~600 B each)."""
    items = []
    for i in range(entries):
        when = format_datetime(BASE_TIME - timedelta(minutes=37 * i + n))
        items.append(
            f"<item><title>Feed {n} story {i}: talks resume at Panmunjom &amp; more</title>"
            f"<link>https://news{n % 50}.example.org/2026/03/story-{n}-{i}.html?utm_source=rss"
            f'</link><guid isPermaLink="false">feed-{n}-item-{i}</guid><pubDate>{when}</pubDate>'
            f"<dc:creator>Reporter {i % 7}</dc:creator><category>Diplomacy</category>"
            "<description><![CDATA[<p>Officials from both sides met for three hours on "
            f'day {i}. <a href="/more">More</a></p><p>No statement followed; a second round is'
            " expected next week, according to people familiar with the matter.</p>]]>"
            "</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>Bench feed {n}</title><link>https://news{n % 50}.example.org/</link>"
        f"<description>Generated</description><language>en</language>{''.join(items)}"
        "</channel></rss>"
    ).encode()


class _Feeds(asyncio.Protocol):
    def __init__(self, bodies: list[bytes]) -> None:
        self._bodies = bodies
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while b"\r\n\r\n" in self._buffer:
            head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
            self._answer(head)

    def _answer(self, head: bytes) -> None:
        assert self._transport is not None
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "/"
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
        kind, _, name = path.strip("/").partition("/")
        try:
            n = int(name.removesuffix(".xml"))
            body = self._bodies[n]
        except (ValueError, IndexError):
            self._send(b"404 Not Found", b"", b"")
            return
        if kind == "etag":
            etag = f'"v{n}"'.encode()
            if headers.get("if-none-match", "").encode() == etag:
                self._send(b"304 Not Modified", b"ETag: " + etag + b"\r\n", b"")
            else:
                self._send(b"200 OK", b"ETag: " + etag + b"\r\n", body)
        else:
            self._send(b"200 OK", b"", body)

    def _send(self, status: bytes, extra: bytes, body: bytes) -> None:
        assert self._transport is not None
        self._transport.write(
            b"HTTP/1.1 "
            + status
            + b"\r\nContent-Type: application/rss+xml; charset=utf-8\r\n"
            + extra
            + b"Content-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )


async def _serve(feeds: int, entries: int) -> None:
    bodies = [feed_body(n, entries) for n in range(feeds)]
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Feeds(bodies), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    # Stop when the parent closes our stdin (or dies).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1]), int(sys.argv[2])))
