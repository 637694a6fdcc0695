"""Politeness towards each publisher: at most N fetches in flight per host (as miniflux does).

Many feeds often live on one host (a newspaper's thirty section feeds); fetching them all at
once looks like an attack and earns 429s. :class:`HostLimiter` bounds the fetches in flight per
host name, and :func:`interleave_by_host` orders a batch so that the fetch pool's workers are
not all parked on one busy host while other hosts wait.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from itertools import zip_longest
from typing import TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")


@lru_cache(maxsize=65536)
def host_of(url: str) -> str:
    """The lower-case host name of ``url`` ("" when it has none); the port does not count.

    Cached: feed URLs come from configuration and are looked up on every poll (twice).
    """
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


class HostLimiter:
    """Thread-safe: :meth:`slot` blocks while ``per_host`` fetches to the host are in flight."""

    def __init__(self, per_host: int = 2) -> None:
        if per_host < 1:
            raise ValueError("per_host must be >= 1")
        self._per_host = per_host
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}

    @property
    def per_host(self) -> int:
        return self._per_host

    @contextmanager
    def slot(self, url: str) -> Iterator[None]:
        """Hold one of the host's slots for the duration of the block."""
        host = host_of(url)
        with self._lock:
            semaphore = self._slots.get(host)
            if semaphore is None:
                semaphore = self._slots[host] = threading.BoundedSemaphore(self._per_host)
        with semaphore:
            yield


def interleave_by_host(items: Iterable[T], url: Callable[[T], str]) -> list[T]:
    """``items`` reordered round-robin across their hosts, keeping each host's own order."""
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(host_of(url(item)), []).append(item)
    rounds = zip_longest(*groups.values())
    return [item for batch in rounds for item in batch if item is not None]
