"""When each feed is next fetched: its interval, and backoff with jitter while it fails.

A failing feed is never given up: its delay doubles per consecutive failure up to a cap, with
full jitter so that many feeds failing together (one host down) do not retry in lockstep, and
it returns to its interval on the first success. A server's ``Retry-After`` wins when longer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from dmzwatch.poller.feeds import FeedConfig


@dataclass(slots=True)
class FeedState:
    feed: FeedConfig
    next_due: float = 0.0
    failures: int = 0


@dataclass
class Schedule:
    """Due times on a monotonic clock; single-threaded (the poll loop owns it)."""

    feeds: tuple[FeedConfig, ...]
    max_backoff_seconds: float = 6 * 3600.0
    rng: random.Random = field(default_factory=random.Random)
    _states: dict[str, FeedState] = field(init=False)

    def __post_init__(self) -> None:
        self._states = {f.id: FeedState(f) for f in self.feeds}

    def due(self, now: float) -> list[FeedConfig]:
        return [s.feed for s in self._states.values() if s.next_due <= now]

    def next_due(self) -> float:
        return min((s.next_due for s in self._states.values()), default=float("inf"))

    def failures(self, feed_id: str) -> int:
        return self._states[feed_id].failures

    def succeeded(self, feed_id: str, now: float) -> None:
        state = self._states[feed_id]
        state.failures = 0
        state.next_due = now + state.feed.interval_seconds

    def failed(self, feed_id: str, now: float, retry_after: float | None = None) -> float:
        """Record a failure; returns the delay until the next attempt."""
        state = self._states[feed_id]
        state.failures += 1
        ceiling = min(
            self.max_backoff_seconds, state.feed.interval_seconds * 2 ** min(state.failures, 30)
        )
        delay = max(state.feed.interval_seconds, self.rng.uniform(0, ceiling))
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_backoff_seconds))
        state.next_due = now + delay
        return delay
