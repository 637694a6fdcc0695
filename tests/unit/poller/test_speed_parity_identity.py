"""The fast paths of :func:`canonical_url` and :func:`outlet` give exactly what the general ones
give: w3lib's canonicalisation and ``urlsplit``. Checked over every link in the shared sample
feeds and corpus, and over thousands of generated URLs built from awkward parts."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from dmzwatch.shared import identity
from dmzwatch.shared.identity import canonical_url, outlet

SHARED = Path(__file__).resolve().parents[3].parent / "shared"
_LINK = re.compile(r"""https?://[^\s"'<>]+""", re.IGNORECASE)

SCHEMES = ["http", "https", "HTTP", "Https", "ftp", "httpx"]
HOSTS = [
    "example.org",
    "News.Example.ORG",
    "www.example.org",
    "example.org.",
    "a-b.example",
    "-bad.example",
    "bad-.example",
    "1.2.3.4",
    "127.0.0.1",
    "x" * 63 + ".example",
    "x" * 64 + ".example",
    "ex..ample",
    "xn--bcher-kva.example",
    "XN--BCHER-KVA.example",
    "bücher.example",
    "[::1]",
    "[2001:DB8::0:1]",
    "user:pw@example.org",
    "@example.org",
    "exa_mple.org",
    "",
]
PORTS = ["", ":80", ":443", ":8080", ":0080", ":", ":65535", ":65536", ":99999", ":0", ":x"]
PATH_PIECES = [
    "/",
    "/a",
    "/B",
    "/story-1.html",
    "/2026/03/01/",
    "/a.b~c_d-e",
    "/./",
    "/../",
    "/a/./b",
    "/a/../b",
    "/.hidden",
    "/..x",
    "/%7e",
    "/%7E",
    "/%2F",
    "/%2f",
    "/%25",
    "/%zz",
    "/%",
    "/résumé",
    "/a b",
    "/a;p=1",
    "/a,b",
    "/a+b",
    "/a:b",
    "/a=b",
    "/a@b",
    "/a!b",
    "/a$b",
    "/a&b",
    "/a'b",
    "/a(b)",
    "/a*b",
    "/a|b",
    "/a[b]",
    '/a"b',
    "/a<b>",
    "/a\\b",
    "/a^b",
    "/a`b",
    "/a{b}",
    "//double",
    "/\u00a0",
    "/a\tb",
]
QUERY_PIECES = [
    "a=1",
    "b=2",
    "A=1",
    "a=2",
    "a",
    "a=",
    "=1",
    "",
    "utm_source=rss",
    "UTM_Medium=x",
    "fbclid=abc",
    "rss",
    "id=7",
    "q=a+b",
    "q=a%20b",
    "q=%7e",
    "q=é",
    "q=a b",
    "x=1=2",
    "k.~-_=v.~-_",
    "a;b=1",
    "a[]=1",
    "a=%zz",
    "a=/b",
    "a=?b",
]
FRAGMENTS = ["", "#", "#top", "#a?b", "#a b", "#é", "#a#b", "#\n"]
SPACES = ["", " ", "\t", "\n"]


def _generated(count: int, seed: int) -> list[str]:
    """URLs from the pieces above; each piece is drawn, half of the time, from the first few
    of its list (the plain ones), so that many URLs are near misses of the fast path."""
    rng = random.Random(seed)

    def pick(pieces: list[str], plain: int) -> str:
        return rng.choice(pieces[:plain] if rng.random() < 0.5 else pieces)

    urls = []
    for _ in range(count):
        path = "".join(pick(PATH_PIECES, 6) for _ in range(rng.randint(0, 3)))
        query = "&".join(pick(QUERY_PIECES, 13) for _ in range(rng.randint(0, 4)))
        url = (
            f"{pick(SPACES, 1)}{pick(SCHEMES, 2)}://{pick(HOSTS, 5)}{pick(PORTS, 4)}{path}"
            f"{('?' + query) if query or rng.random() < 0.1 else ''}"
            f"{pick(FRAGMENTS, 3)}{pick(SPACES, 1)}"
        )
        urls.append(url)
    return urls


def _shared_links() -> list[str]:
    links: set[str] = set()
    for path in sorted((SHARED / "feeds").glob("*")):
        links.update(_LINK.findall(path.read_text(encoding="utf-8", errors="replace")))
    corpus = SHARED / "corpus" / "news_dev.jsonl"
    if corpus.exists():
        for line in corpus.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            links.update(v for v in record.values() if isinstance(v, str) and _LINK.match(v))
    return sorted(links)


def _general_outlet(url: str | None) -> str:
    if not url:
        return "unknown"
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.") or "unknown"


def _both(url: str) -> tuple[str | None, str | None]:
    try:
        general = identity._w3lib_canonical(url.strip())
    except Exception as exc:  # the fast path must then fail the same way
        general = f"raised {type(exc).__name__}"
    try:
        fast = canonical_url(url)
    except Exception as exc:
        fast = f"raised {type(exc).__name__}"
    return fast, general


def test_shared_links_are_many_and_mostly_take_the_fast_path() -> None:
    links = _shared_links()
    assert len(links) > 500
    simple = [u for u in links if identity._SIMPLE_URL.match(u)]
    assert len(simple) > len(links) // 2  # the fast path is what is being compared


def test_canonical_url_fast_path_equals_w3lib_on_shared_links() -> None:
    differences = [(u, *_both(u)) for u in _shared_links() if _both(u)[0] != _both(u)[1]]
    assert differences == []


@pytest.mark.parametrize("seed", range(4))
def test_canonical_url_fast_path_equals_w3lib_on_generated_urls(seed: int) -> None:
    urls = _generated(3000, seed)
    assert sum(1 for u in urls if identity._SIMPLE_URL.match(u.strip())) > 300
    differences = [(u, *_both(u)) for u in urls if _both(u)[0] != _both(u)[1]]
    assert differences[:10] == []


def test_outlet_fast_path_equals_urlsplit() -> None:
    urls = _shared_links() + _generated(5000, 99)
    canonical = [canonical_url(u) for u in urls]
    candidates = [*urls, *(c for c in canonical if c), "", "http:///x", "https://WWW.A.b:99/"]
    differences = []
    for url in candidates:
        try:
            expected = _general_outlet(url)
        except ValueError:
            continue  # urlsplit refuses it; outlet is only given parsed URLs
        if outlet(url) != expected:
            differences.append((url, outlet(url), expected))
    assert differences[:10] == []


def test_an_ipv6_literal_link_is_canonical_not_an_error() -> None:
    assert canonical_url("http://[2001:DB8::0:1]:8080/a#x") == "http://[2001:db8::1]:8080/a"
    assert canonical_url("http://[::1]:x/") is None
