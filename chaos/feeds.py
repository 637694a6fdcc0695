"""Feeds that keep growing: a generator of article text served by ``bench.livefeeds``.

A thread adds one article every ``period`` seconds to one of the feeds, round robin; about one
in ``alert_every`` is written to be alert-worthy (a purge, a summit or a defection), the rest is
ordinary local news. Every article has its own URL and words of its own, so dedup sees each as
new and the near-duplicate index does not fold alert-worthy ones into one story. The server
records what it offered (article id, when), which is the reconciliation's "articles in".
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

from bench.livefeeds import LiveFeeds
from dmzwatch.shared.identity import article_id, canonical_url

_SYLLABLES = tuple(
    [
        "ba",
        "do",
        "gan",
        "hu",
        "ji",
        "kyo",
        "lim",
        "mun",
        "nam",
        "ok",
        "pyo",
        "ri",
        "san",
        "tae",
        "un",
        "won",
        "yong",
    ]
)
_ROLES = ("vice premier", "army general", "party secretary", "security minister", "envoy")
_COUNTRIES = ("South Korea", "the United States", "China", "Russia", "Japan", "Vietnam")
_CITIES = ("Hanoi", "Singapore", "Vladivostok", "Beijing", "Panmunjom", "Ulaanbaatar")
_ORDINARY = (
    "harvest festival",
    "bridge repair",
    "school concert",
    "ferry timetable",
    "library reopening",
    "football final",
    "farmers market",
    "rail upgrade",
)


def _name(rng: random.Random) -> str:
    def part() -> str:
        return "".join(rng.choice(_SYLLABLES) for _ in range(2)).capitalize()

    return f"{part()} {part()}"


def _filler(rng: random.Random, words: int) -> str:
    return " ".join("".join(rng.choice(_SYLLABLES) for _ in range(3)) for _ in range(words))


def write_article(n: int, rng: random.Random, alert: bool) -> tuple[str, str]:
    """The title and summary of article ``n``: alert-worthy or not."""
    name, filler = _name(rng), _filler(rng, 8)
    if not alert:
        topic, town = rng.choice(_ORDINARY), _name(rng).split()[0]
        return (
            f"{town} {topic} number {n} draws {rng.randint(20, 900)} visitors",
            f"Organisers of the {topic} in {town} thanked volunteers; {filler}.",
        )
    kind = n % 3
    if kind == 0:
        role = rng.choice(_ROLES)
        return (
            f"North Korea executes {role} {name} in latest purge, case {n}",
            f"Pyongyang executed {role} {name}, accused of factionalism, state media"
            f" reported; {filler}.",
        )
    if kind == 1:
        city, country = rng.choice(_CITIES), rng.choice(_COUNTRIES)
        return (
            f"Kim Jong Un to hold summit with {country} leader in {city}, talks {n}",
            f"The leaders will meet for a summit in {city}, officials said; {filler}.",
        )
    return (
        f"North Korean diplomat {name} defects to South Korea, report {n}",
        f"Senior North Korean diplomat {name} has defected to the South with his family,"
        f" the unification ministry said; {filler}.",
    )


@dataclass(frozen=True, slots=True)
class Offered:
    article_id: str
    feed_id: str
    alert: bool
    at: float  # time.monotonic() when it first appeared in its feed


class GrowingFeeds:
    """``feeds`` RSS feeds at ``http://127.0.0.1:<port>/<feed>.xml``, growing while running."""

    def __init__(
        self,
        feeds: int = 3,
        period: float = 0.5,
        alert_every: int = 5,
        keep: int = 400,
        seed: int = 8,
    ) -> None:
        self.feed_ids = tuple(f"chaos-{i}" for i in range(feeds))
        self.period = period
        self._alert_every = alert_every
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.offered: list[Offered] = []
        self._n = 0
        self._growing = threading.Event()
        self._stop = threading.Event()
        self._server = LiveFeeds(self.feed_ids, keep=keep).start()
        threading.Thread(target=self._grow, daemon=True).start()

    @property
    def port(self) -> int:
        return self._server.port

    def url(self, feed_id: str) -> str:
        return self._server.url(feed_id)

    def start_growing(self) -> None:
        self._growing.set()

    def stop_growing(self) -> None:
        self._growing.clear()

    def add(self) -> Offered:
        """One new article in the next feed (round robin)."""
        with self._lock:
            n = self._n
            self._n += 1
            feed = self.feed_ids[n % len(self.feed_ids)]
            alert = n % self._alert_every == self._alert_every - 1
            title, summary = write_article(n, self._rng, alert)
            link, guid = f"https://{feed}.example/news/{n}", f"{feed}-{n}"
            self._server.publish(feed, title, summary, link=link, guid=guid)
            offered = Offered(
                article_id(canonical_url(link), feed, guid, title, summary),
                feed,
                alert,
                time.monotonic(),
            )
            self.offered.append(offered)
        return offered

    def offered_between(self, start: float, end: float) -> list[Offered]:
        with self._lock:
            return [o for o in self.offered if start <= o.at < end]

    def stop(self) -> None:
        self._stop.set()
        self._server.stop()

    def _grow(self) -> None:
        while not self._stop.wait(self.period):
            if self._growing.is_set():
                self.add()
