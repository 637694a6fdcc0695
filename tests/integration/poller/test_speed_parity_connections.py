"""HttpFeedFetcher's HTTP/1.1 layer (:mod:`dmzwatch.poller.connections`) reads what httpx
reads, from a loopback server that answers each path with fixed raw bytes: content-length,
chunked and close-delimited bodies, 304, 1xx, repeated headers, HTTP/1.0, and broken answers.
It also reuses kept-alive connections, and survives a server that closes an idle one."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from dmzwatch.poller.connections import MAX_HEAD_BYTES
from dmzwatch.poller.fetch import HttpFeedFetcher, Validators
from dmzwatch.poller.ssrf import AddressPolicy

BODY = b"<rss><channel><title>t</title></channel></rss>"
KEEP = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n" % len(BODY)
ANSWERS: dict[str, tuple[bytes, bool]] = {
    # path: (raw answer, whether the server then closes)
    "/length": (KEEP + BODY, False),
    "/chunked": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\n<rss>\r\n3;ext=1\r\n<ch\r\n0\r\nX-Trailer: y\r\n\r\n",
        False,
    ),
    "/until-close": (b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\r\n" + BODY, True),
    "/http10": (b"HTTP/1.0 200 OK\r\n\r\n" + BODY, True),
    "/not-modified": (b'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n', False),
    "/continue": (b"HTTP/1.1 100 Continue\r\n\r\n" + KEEP + BODY, False),
    "/repeated": (
        b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nCache-Control: public\r\n"
        b"Content-Length: 2\r\n\r\nok",
        False,
    ),
    "/no-reason": (b"HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", False),
    "/truncated": (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", True),
    "/garbage": (b"SPDY/9 what\r\n\r\n", True),
    "/huge-head": (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (MAX_HEAD_BYTES + 10), True),
    "/silent-close": (b"", True),
}


class RawServer:
    """Answers each request with the raw bytes of its path; counts connections."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.close_after_first = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                path = head.split(b" ")[1].decode()
                answer, close = ANSWERS[path]
                conn.sendall(answer)
                if close or self.close_after_first:
                    return


@pytest.fixture(scope="module")
def server() -> Iterator[RawServer]:
    srv = RawServer()
    yield srv
    srv.sock.close()


def _fetcher() -> HttpFeedFetcher:
    return HttpFeedFetcher(
        timeout_seconds=2.0, address_policy=AddressPolicy.from_entries(["127.0.0.1"])
    )


def _httpx(url: str) -> tuple[int, bytes, dict[str, str]] | str:
    try:
        with httpx.Client(timeout=2.0) as client:
            response = client.get(url)
    except httpx.HTTPError as exc:
        return f"error {type(exc).__name__}"
    return response.status_code, response.content, dict(response.headers.items())


@pytest.mark.parametrize(
    "path",
    ["/length", "/chunked", "/until-close", "/http10", "/not-modified", "/continue", "/repeated"],
)
def test_answers_read_as_httpx_reads_them(server: RawServer, path: str) -> None:
    expected = _httpx(server.url(path))
    assert not isinstance(expected, str)
    with _fetcher() as fetcher:
        result = fetcher.fetch(server.url(path), Validators())
    assert result.status_code == expected[0]
    assert (result.body or b"") == expected[1]
    assert dict(result.headers or {}) == {k.lower(): v for k, v in expected[2].items()}
    assert result.outcome == ("not_modified" if expected[0] == 304 else "ok")


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/no-reason", "HTTP 404"),
        ("/truncated", "RemoteProtocolError: "),
        ("/garbage", "RemoteProtocolError: "),
        ("/huge-head", "RemoteProtocolError: "),
        ("/silent-close", "RemoteProtocolError: "),
    ],
)
def test_broken_answers_are_errors_as_with_httpx(server: RawServer, path: str, error: str) -> None:
    expected = _httpx(server.url(path))
    with _fetcher() as fetcher:
        result = fetcher.fetch(server.url(path), Validators())
    assert result.outcome == "error"
    assert result.error is not None
    assert result.error.startswith(error)
    assert result.body is None
    if error.startswith("HTTP"):
        assert not isinstance(expected, str)
        assert result.status_code == expected[0]
    else:
        assert isinstance(expected, str)  # httpx fails on it too


def test_kept_alive_connections_are_reused(server: RawServer) -> None:
    before = server.connections
    with _fetcher() as fetcher:
        results = [fetcher.fetch(server.url(p), Validators()) for p in ["/length"] * 5]
        results += [fetcher.fetch(server.url("/not-modified"), Validators(etag='"x"'))]
        results += [fetcher.fetch(server.url("/chunked"), Validators())]
    assert [r.outcome for r in results] == ["ok"] * 5 + ["not_modified", "ok"]
    assert server.connections - before == 1


def test_a_connection_the_server_closed_while_idle_is_replaced(server: RawServer) -> None:
    server.close_after_first = True
    try:
        before = server.connections
        with _fetcher() as fetcher:
            results = [fetcher.fetch(server.url("/length"), Validators()) for _ in range(3)]
    finally:
        server.close_after_first = False
    assert [(r.outcome, r.body) for r in results] == [("ok", BODY)] * 3
    assert server.connections - before == 3


def test_validators_with_line_breaks_are_not_sent(server: RawServer) -> None:
    with _fetcher() as fetcher:
        result = fetcher.fetch(server.url("/length"), Validators(etag='"x"\r\nX-Injected: 1'))
    assert result.outcome == "error"
    assert result.error is not None
    assert "LocalProtocolError" in result.error
