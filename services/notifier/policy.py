"""When to try a delivery again: exponential backoff with jitter, ``Retry-After``, the budget."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    Returns None when the header is absent or unreadable, 0 for a date in the past.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The retry budget and pacing of one destination.

    ``attempts`` requests at most (the first included); between them an exponentially growing
    delay from ``initial_seconds`` up to ``max_seconds`` with "equal jitter" (half fixed, half
    random, so replicas retrying the same receiver spread out but never hammer it at once). A
    ``Retry-After`` answer replaces the delay when it is longer, capped at ``retry_after_max``.
    """

    attempts: int = 8
    initial_seconds: float = 1.0
    max_seconds: float = 300.0
    retry_after_max_seconds: float = 600.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if not 0 < self.initial_seconds <= self.max_seconds:
            raise ValueError("need 0 < initial_seconds <= max_seconds")

    def exhausted(self, attempt: int) -> bool:
        """Whether attempt number ``attempt`` (1-based) was the last one allowed."""
        return attempt >= self.attempts

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_seconds, self.initial_seconds * 2.0 ** (attempt - 1))
        delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.retry_after_max_seconds))
        return delay
