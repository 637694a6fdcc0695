"""A static HTTP server for the bundled demo feeds on 127.0.0.1 (``stack``, ``demo``, tests).

It answers conditional GETs (If-Modified-Since → 304) like a real publisher's server.
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

DEMO_FEEDS = Path(str(resources.files("dmzwatch").joinpath("demo_feeds")))


class _QuietHandler(SimpleHTTPRequestHandler):
    conditional = True

    extensions_map = {  # noqa: RUF012 - class attribute of the stdlib handler
        ".xml": "application/rss+xml",
        ".atom": "application/atom+xml",
        ".json": "application/feed+json",
        "": "application/octet-stream",
    }

    def send_head(self) -> Any:
        if not self.conditional:
            # Behave like the many publishers that ignore validators and always send 200.
            del self.headers["If-Modified-Since"]
            del self.headers["If-None-Match"]
        return super().send_head()

    def log_message(self, format: str, *args: Any) -> None:
        return


class FeedServer:
    """Serves the files of ``directory`` at ``http://127.0.0.1:<port>/``.

    ``conditional=False`` ignores If-Modified-Since/If-None-Match, as many publishers do.
    """

    def __init__(
        self, directory: Path = DEMO_FEEDS, port: int = 0, conditional: bool = True
    ) -> None:
        handler_class = type("Handler", (_QuietHandler,), {"conditional": conditional})
        handler = functools.partial(handler_class, directory=str(directory))
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.directory = directory

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FeedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def render_feed_list(self, target: Path, source: Path | None = None) -> Path:
        """Write the demo feed list with ``{base}`` replaced by this server's URL."""
        template = (source or self.directory / "feeds.yaml").read_text()
        target.write_text(template.replace("{base}", self.base_url))
        return target
