"""Who published an article: an outlet's host name reduced to one name per independent outlet.

Mirrors and aggregators of one outlet must count once towards corroboration: ``m.``, ``amp.``,
``edition.`` and ``english.`` hosts share their registrable domain (the public-suffix rule:
``news.bbc.co.uk`` → ``bbc.co.uk``), and an alias map folds what the suffix list cannot know
(``yonhapnews.co.kr`` and ``yna.co.kr`` are one newsroom). The suffix list is tldextract's
bundled snapshot: no network fetch, no cache files. Host names under a suffix the list does not
know (``.example``, ``.internal``) keep their last two labels.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

import tldextract

_CACHE_LIMIT = 10_000


class Outlets:
    """Maps an article's ``source`` (a host name or URL) to its independent outlet.

    ``aliases`` maps a host or registrable domain to the name it stands for. Calling never
    raises: an empty or odd source maps to itself, lower-cased.
    """

    def __init__(self, aliases: Mapping[str, str] | None = None) -> None:
        self._extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
        self._aliases = {_host(k): v.strip().lower() for k, v in (aliases or {}).items()}
        self._cache: dict[str, str] = {}

    def __call__(self, source: str) -> str:
        cached = self._cache.get(source)
        if cached is None:
            cached = self._normalise(source)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[source] = cached
        return cached

    def _normalise(self, source: str) -> str:
        host = _host(source)
        if host in self._aliases:
            return self._aliases[host]
        domain = host
        if host and not _is_ip(host):
            parts = self._extract(host)
            if parts.suffix and parts.domain:
                domain = f"{parts.domain}.{parts.suffix}"
            elif host.count(".") >= 1:
                domain = ".".join(host.split(".")[-2:])
        return self._aliases.get(domain, domain)


def _host(source: str) -> str:
    value = source.strip().lower()
    if "://" in value:
        value = urlsplit(value).hostname or ""
    return value.rstrip(".").removeprefix("www.")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
