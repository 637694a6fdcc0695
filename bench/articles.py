"""Synthetic raw articles for the pipeline benchmarks: ~1–2 KB each, written for this benchmark.

A replay is a realistic mix rather than the best or the worst case (see :func:`replay_mix`):

- most articles start a story of their own (a distinct lead, so dedup must sign, look up and
  create a story: its most expensive path);
- some are rewrites of an earlier story by another outlet (near duplicates: same story);
- some are verbatim copies by another outlet (exact copies: same story);
- some are the same article polled again (unchanged repeats: dropped by dedup);
- about one in twelve is alert-worthy (a purge, summit or defection story).

Everything is deterministic for a seed.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dmzwatch.shared.messages import Article, encode

# Our own vocabulary: distinct stories differ in their words, so their MinHash signatures do.
_WORDS = tuple(
    f"{a}{b}"
    for a in (
        "kor",
        "pyong",
        "seo",
        "han",
        "chon",
        "gang",
        "won",
        "san",
        "bu",
        "dae",
        "mun",
        "jin",
        "hye",
        "sin",
        "ryo",
        "tong",
        "kae",
        "nam",
        "buk",
        "yang",
    )
    for b in (
        "an",
        "ul",
        "do",
        "ri",
        "ju",
        "ong",
        "yong",
        "san",
        "gil",
        "pa",
        "ho",
        "chu",
        "mi",
        "bong",
        "dok",
        "gye",
        "sam",
        "ha",
        "rim",
        "ton",
    )
)
_FILLER = (
    "Officials said the talks would continue next week after a pause of several months.",
    "Analysts in the capital said the move was expected and would change little in practice.",
    "The ministry did not answer requests for comment sent on Thursday and Friday.",
    "Trade across the border has picked up since the spring, according to customs figures.",
    "Local markets reported higher prices for fuel and grain than a year earlier.",
    "A spokesman said a fuller statement would follow once the review was complete.",
    "Satellite pictures showed new roads and buildings near the port over the winter.",
    "The weather service expects heavy rain in the west of the country at the weekend.",
)
# Alert-worthy leads, one list per category (what the classifier must find).
_ALERTS = {
    "purge": (
        "A senior Workers' Party official was purged and expelled from the party for anti-party "
        "acts, and several of his aides were arrested, officials in Seoul said.",
        "The regime executed a former vice minister and demoted three generals in a campaign "
        "against corruption among the elite, according to the National Intelligence Service.",
    ),
    "summit": (
        "Kim Jong Un and the Russian president will hold a summit next month, the Kremlin "
        "announced, the first meeting of the two leaders in two years.",
        "The leaders of North and South Korea agreed to meet at a summit in Panmunjom to resume "
        "talks on the peninsula, the presidential office said.",
    ),
    "defection": (
        "A North Korean soldier crossed the demarcation line and defected to the South, the "
        "Joint Chiefs of Staff said, the second defection across the border this year.",
        "A North Korean diplomat posted in Europe defected with his family and sought asylum in "
        "South Korea, officials in Seoul said.",
    ),
}
BASE_TIME = datetime(2026, 3, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Mix:
    """Shares of a replay (the rest start a story of their own)."""

    near: float = 0.08  # rewrites of an earlier story by another outlet
    copies: float = 0.04  # verbatim copies by another outlet
    repeats: float = 0.05  # the same article polled again
    alerts: float = 0.08  # new stories that are alert-worthy


def _hex(value: str) -> str:
    return hashlib.blake2b(value.encode(), digest_size=12).hexdigest()


class ArticleFactory:
    """Makes raw articles; ``story`` returns a new story's first article."""

    def __init__(self, seed: int = 7, *, run: str = "bench") -> None:
        self._rng = random.Random(seed)
        self._run = run
        self._n = 0

    def _lead(self) -> str:
        rng = self._rng
        return " ".join(rng.choices(_WORDS, k=60)).capitalize() + "."

    def story(self, category: str | None = None) -> Article:
        """A new story (alert-worthy for ``category``), about 1–2 KB of text."""
        rng = self._rng
        self._n += 1
        words = " ".join(rng.choices(_WORDS, k=8))
        title = f"{words.capitalize()} report {self._n}"
        parts = [self._lead()]
        if category is not None:  # after a lead of its own, so that stories stay distinct
            title = f"{rng.choice(_ALERTS[category]).split(',')[0]} ({self._n})"
            parts.append(rng.choice(_ALERTS[category]))
        parts += rng.sample(_FILLER, k=rng.randint(4, 8))
        parts.append(self._lead())
        return self._article(title, " ".join(parts), outlet=f"outlet{rng.randrange(40)}.example")

    def _article(self, title: str, text: str, outlet: str) -> Article:
        self._n += 1
        url = f"https://{outlet}/{self._run}/{self._n}"
        fetched = BASE_TIME + timedelta(seconds=self._n)
        return Article(
            article_id="u" + _hex(url),
            feed_id=f"feed-{outlet}",
            source=outlet,
            url=url,
            original_url=url,
            guid=f"{self._run}-{self._n}",
            title=title,
            summary=text[:200],
            content=text,
            published_at=fetched - timedelta(minutes=5),
            fetched_at=fetched,
            language="en",
        )

    def rewrite(self, original: Article) -> Article:
        """Another outlet's rewrite: new headline ending, a few words of the lead changed."""
        rng = self._rng
        words = original.content.split(" ")
        for _ in range(4):
            words[rng.randrange(min(60, len(words)))] = rng.choice(_WORDS)
        title = original.title.rsplit(" ", 1)[0] + " (update)"
        return self._article(title, " ".join(words), outlet=f"mirror{rng.randrange(40)}.example")

    def copy(self, original: Article) -> Article:
        """Another outlet's verbatim copy (new URL and GUID, same text)."""
        outlet = f"wire{self._rng.randrange(40)}.example"
        return self._article(original.title, original.content, outlet=outlet)

    def mix(self, n: int, mix: Mix = Mix()) -> list[Article]:
        """``n`` raw articles in the shares of ``mix``; alerts spread over the categories."""
        rng = self._rng
        out: list[Article] = []
        stories: list[Article] = []
        categories = tuple(_ALERTS)
        for i in range(n):
            roll = rng.random()
            if stories and roll < mix.near:
                out.append(self.rewrite(rng.choice(stories[-500:])))
            elif stories and roll < mix.near + mix.copies:
                out.append(self.copy(rng.choice(stories[-500:])))
            elif out and roll < mix.near + mix.copies + mix.repeats:
                out.append(rng.choice(out[-500:]))
            else:
                alert = roll > 1 - mix.alerts
                story = self.story(categories[i % len(categories)] if alert else None)
                stories.append(story)
                out.append(story)
        return out


def encoded(articles: list[Article]) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs as the poller produces them."""
    return [(a.article_id.encode(), encode(a)) for a in articles]
