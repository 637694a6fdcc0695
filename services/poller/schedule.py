"""When each feed is next fetched: an interval adapted to how often it publishes, floors the
publisher sets, and backoff with jitter while it fails.

- **Adaptive interval.** Each feed starts at its configured ``interval_seconds``. After every
  successful parse the interval moves towards the median gap between the feed's most recent
  entries, clamped to ``[min_interval_seconds, max_interval_seconds]`` (default 1 min – 24 h).
  It moves geometrically, a fraction ``smoothing`` of the way per poll, so one burst or one
  quiet night does not swing it: a feed publishing every 10 minutes converges on 10 minutes,
  one publishing daily on a day.
- **Floors.** RSS ``<ttl>``, ``Cache-Control: max-age`` and ``Expires`` (see
  :mod:`~dmzwatch.poller.freshness`) delay the next fetch when longer than the interval, capped
  at ``max_interval_seconds``.
- **Failures.** A failing feed is never given up: its delay doubles per consecutive failure up
  to ``max_backoff_seconds``, with full jitter so that many feeds failing together (one host
  down) do not retry in lockstep, and it returns to its interval on the first success. A
  server's ``Retry-After`` wins when longer (capped the same way).

Times are on the injected clock's monotonic scale; single-threaded (the poll loop owns it).
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise

from dmzwatch.poller.feeds import FeedConfig


@dataclass(frozen=True, slots=True)
class IntervalPolicy:
    """Bounds and pace of interval adaptation; ``adaptive=False`` keeps configured intervals."""

    min_interval_seconds: float = 60.0
    max_interval_seconds: float = 24 * 3600.0
    smoothing: float = 0.5
    recent_entries: int = 10
    adaptive: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.min_interval_seconds <= self.max_interval_seconds:
            raise ValueError("need 0 < min_interval_seconds <= max_interval_seconds")
        if not 0 < self.smoothing <= 1 or self.recent_entries < 2:
            raise ValueError("smoothing must be in (0, 1] and recent_entries >= 2")

    def clamp(self, seconds: float) -> float:
        return min(self.max_interval_seconds, max(self.min_interval_seconds, seconds))


def publish_gap_seconds(published: Iterable[datetime], recent: int = 10) -> float | None:
    """Median gap between the ``recent`` newest distinct publication times; None when fewer
    than two are known (the feed gives no dates, or one)."""
    times = sorted({p.timestamp() for p in published}, reverse=True)[:recent]
    if len(times) < 2:
        return None
    return statistics.median(a - b for a, b in pairwise(times))


@dataclass(slots=True)
class FeedState:
    feed: FeedConfig
    interval: float
    next_due: float = 0.0
    failures: int = 0


@dataclass
class Schedule:
    """Due times of every feed; see the module docstring for the rules."""

    feeds: tuple[FeedConfig, ...]
    max_backoff_seconds: float = 6 * 3600.0
    rng: random.Random = field(default_factory=random.Random)
    policy: IntervalPolicy = field(default_factory=IntervalPolicy)
    _states: dict[str, FeedState] = field(init=False)

    def __post_init__(self) -> None:
        self._states = {f.id: FeedState(f, f.interval_seconds) for f in self.feeds}

    def due(self, now: float) -> list[FeedConfig]:
        """Feeds whose next fetch is at or before ``now``."""
        return [s.feed for s in self._states.values() if s.next_due <= now]

    def next_due(self) -> float:
        return min((s.next_due for s in self._states.values()), default=float("inf"))

    def due_at(self, feed_id: str) -> float:
        return self._states[feed_id].next_due

    def failures(self, feed_id: str) -> int:
        return self._states[feed_id].failures

    def interval(self, feed_id: str) -> float:
        """The feed's current (adapted) interval in seconds."""
        return self._states[feed_id].interval

    def succeeded(
        self,
        feed_id: str,
        now: float,
        *,
        published: Sequence[datetime] = (),
        not_before_seconds: float | None = None,
    ) -> float:
        """Record a successful fetch at ``now``; returns the delay until the next one.

        ``published`` are the entry dates of a freshly parsed document (empty for a 304 or an
        unchanged body: the interval then stays); ``not_before_seconds`` is the publisher's
        freshness floor.
        """
        state = self._states[feed_id]
        state.failures = 0
        gap = publish_gap_seconds(published, self.policy.recent_entries) if published else None
        if self.policy.adaptive and gap is not None:
            target = self.policy.clamp(gap)
            current = self.policy.clamp(state.interval)
            # Geometric steps: intervals span three orders of magnitude.
            weight = self.policy.smoothing
            state.interval = math.exp((1 - weight) * math.log(current) + weight * math.log(target))
        delay = state.interval
        if not_before_seconds is not None and not_before_seconds > delay:
            delay = min(not_before_seconds, self.policy.max_interval_seconds)
        state.next_due = now + delay
        return delay

    def failed(self, feed_id: str, now: float, retry_after: float | None = None) -> float:
        """Record a failure; returns the delay until the next attempt."""
        state = self._states[feed_id]
        state.failures += 1
        ceiling = min(self.max_backoff_seconds, state.interval * 2.0 ** min(state.failures, 30))
        delay = max(min(state.interval, ceiling), self.rng.uniform(0, ceiling))
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_backoff_seconds))
        state.next_due = now + delay
        return delay
