"""The fetcher's quick URL split gives what ``httpx.URL`` gives (the URL reported, the host
connected to, the port and the request target), over plain and awkward URLs."""

from __future__ import annotations

import random

import httpx
import pytest

from dmzwatch.poller import fetch
from dmzwatch.poller.fetch import Target, split_url

SCHEMES = ["http", "https", "HTTP", "ftp"]
HOSTS = ["example.org", "a-b.example", "127.0.0.1", "News.Example", "x" * 63 + ".a", "[::1]", "ü.a"]
PORTS = ["", ":8080", ":80", ":443", ":65535", ":65536", ":0", ":08080", ":"]
PATHS = ["", "/", "/a", "/a/b.xml", "/a b", "/%7e", "/%zz", "/a;b", "/a,b!$&'()*+=:@", "/é", "/a|b"]
QUERIES = ["", "?", "?a=1", "?a=1&b=2", "?a=/b?c", "?a=%20", "?a b", "?a=é", "?a[]=1"]
FRAGMENTS = ["", "#", "#top"]


def _httpx_target(url: str) -> Target:
    parsed = httpx.URL(url)
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme, 0)
    return Target(
        str(parsed),
        parsed.scheme,
        parsed.raw_host.decode("ascii"),
        port,
        parsed.raw_path.decode("ascii"),
    )


def _urls(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)

    def pick(pieces: list[str], plain: int) -> str:
        return rng.choice(pieces[:plain] if rng.random() < 0.5 else pieces)

    return [
        f"{pick(SCHEMES, 2)}://{pick(HOSTS, 3)}{pick(PORTS, 2)}{pick(PATHS, 4)}"
        f"{pick(QUERIES, 4)}{pick(FRAGMENTS, 1)}"
        for _ in range(count)
    ]


@pytest.mark.parametrize("seed", range(3))
def test_split_url_equals_httpx(seed: int) -> None:
    urls = _urls(3000, seed)
    assert sum(1 for u in urls if fetch._PLAIN_URL.match(u)) > 300  # the quick path is tested
    differences = []
    for url in urls:
        try:
            expected: Target | str = _httpx_target(url)
        except httpx.InvalidURL as exc:
            expected = f"InvalidURL {exc}"
        try:
            got: Target | str = split_url(url)
        except httpx.InvalidURL as exc:
            got = f"InvalidURL {exc}"
        if got != expected:
            differences.append((url, got, expected))
    assert differences[:10] == []
