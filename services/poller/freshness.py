"""How long a publisher asks us not to fetch a feed again: RSS ``<ttl>``, ``Cache-Control:
max-age`` and ``Expires``. Pure.

The answer is a *floor* on the next fetch, never a ceiling: a feed that says "fresh for an hour"
is not fetched sooner, one that says "fresh for a second" is still fetched at its interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_NO_REUSE = ("no-cache", "no-store", "must-revalidate")


def freshness_seconds(
    headers: Mapping[str, str] | None, now: datetime, ttl_minutes: int | None = None
) -> float | None:
    """Seconds the response stays fresh by its headers and the feed's ``<ttl>``; None if neither
    says. ``headers`` have lower-case names.

    ``Cache-Control: max-age`` (less ``Age``) wins over ``Expires`` as RFC 9111 says; ``Expires``
    is measured from the response's ``Date`` when it has one, so that a skewed server clock does
    not shift it. ``no-cache``/``no-store`` give no floor from the headers (the ``<ttl>`` still
    counts). An unreadable value is ignored rather than trusted.
    """
    floors: list[float] = []
    if ttl_minutes is not None and ttl_minutes > 0:
        floors.append(ttl_minutes * 60.0)
    header_floor = _header_freshness(headers, now) if headers else None
    if header_floor is not None:
        floors.append(header_floor)
    return max(floors) if floors else None


def _header_freshness(headers: Mapping[str, str], now: datetime) -> float | None:
    directives = _cache_control(headers.get("cache-control", ""))
    if any(d in directives for d in _NO_REUSE):
        return None
    max_age = _seconds(directives.get("max-age"))
    if max_age is not None:
        age = _seconds(headers.get("age")) or 0.0
        return max(0.0, max_age - age)
    expires = _http_date(headers.get("expires"))
    if expires is None:
        return None
    reference = _http_date(headers.get("date")) or now
    return max(0.0, (expires - reference).total_seconds())


def _cache_control(value: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for part in value.split(","):
        name, _, arg = part.strip().partition("=")
        if name:
            out[name.lower()] = arg.strip().strip('"') or None
    return out


def _seconds(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None  # "Expires: 0" and "-1" mean "already expired": no floor
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when
