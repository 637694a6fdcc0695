"""``remember_many`` (the batch path dedup's handler takes) decides as ``remember`` does."""

from collections.abc import Sequence

import pytest

from dmzwatch.dedup.cluster import article_from, memory_store
from dmzwatch.dedup.index import Lookup, MemoryStoryIndex, NewStory, StoryIndex
from dmzwatch.dedup.store import Sighting
from dmzwatch.dedup.stories import BATCH_ATTEMPTS
from dmzwatch.shared.clock import ManualClock
from dmzwatch.shared.messages import Article
from tests.stories import STORIES, labelled_articles


def stream(seed: int) -> list[Article]:
    """The labelled set with some articles polled twice, some of them within a few items."""
    clock = ManualClock()
    items = labelled_articles(copies=5, seed=seed)
    articles = [article_from(item, clock.now()) for item in items]
    out: list[Article] = []
    for n, article in enumerate(articles):
        out.append(article)
        if n % 7 == 3:
            out.append(article)  # the next poll of the same feed, soon after
        if n % 11 == 5:
            out.append(articles[n // 2])  # a repeat of an older one
    return out


def one_by_one(articles: list[Article]) -> list[Sighting]:
    clock = ManualClock()
    store = memory_store(clock)
    return [store.remember(a, f"raw/0/{n}") for n, a in enumerate(articles)]


def batched(articles: list[Article], size: int, store=None) -> list[Sighting]:
    store = store or memory_store(ManualClock())
    out: list[Sighting] = []
    for start in range(0, len(articles), size):
        chunk = [(a, f"raw/0/{n}") for n, a in enumerate(articles[start : start + size], start)]
        for result in store.remember_many(chunk):
            assert isinstance(result, Sighting), result
            out.append(result)
    return out


def verdicts(sightings: Sequence[Sighting]) -> list[tuple[str | None, str]]:
    return [(s.duplicate, s.story_id if s.duplicate is None else "") for s in sightings]


@pytest.mark.parametrize("size", [1, 7, 50, 1000])
@pytest.mark.parametrize("seed", [1, 2])
def test_batches_give_the_same_stories_and_repeats_as_one_by_one(size: int, seed: int) -> None:
    articles = stream(seed)
    expected = one_by_one(articles)
    got = batched(articles, size)
    assert verdicts(got) == verdicts(expected)
    assert [s.outlets for s in got] == [s.outlets for s in expected]
    assert sum(s.duplicate is not None for s in got) > 0
    assert len({s.story_id for s in got if s.duplicate is None}) == len(STORIES)


def test_a_redelivered_batch_gets_the_same_answers() -> None:
    articles = stream(3)[:60]
    store = memory_store(ManualClock())
    first = batched(articles, 60, store)
    again = batched(articles, 60, store)
    assert verdicts(again) == verdicts(first)


def test_an_id_met_again_in_a_batch_is_a_repeat_or_an_update_as_one_by_one() -> None:
    articles = stream(4)[:40]
    a, b = articles[0], articles[5]
    field = "content" if a.content else "summary"
    edited = a.model_copy(update={field: a.text + " A correction was added."})
    # a, its repeat, its update, the update again, the original text again; b's story too
    mixed = [a, b, a, edited, b, edited, a, *articles[6:12], edited]
    expected = one_by_one(mixed)
    got = batched(mixed, len(mixed))
    assert verdicts(got) == verdicts(expected)
    assert [(s.match, s.revision) for s in got] == [(s.match, s.revision) for s in expected]
    dropped = [s.duplicate is not None for s in got][:7]
    assert dropped == [False, False, True, False, True, True, True]
    assert got[3].revision == 2 and got[3].match == "update"


class RaceIndex(StoryIndex):
    """An index another replica writes to between our lookups and our first create."""

    def __init__(self, inner: MemoryStoryIndex, races: list[NewStory]) -> None:
        self.inner = inner
        self.races = races  # one is created before each of our next creations

    def lookup(self, bands: Sequence[bytes]) -> Lookup:
        return self.inner.lookup(bands)

    def create(self, story_id, signature, bands, version) -> bool:
        return self.inner.create(story_id, signature, bands, version)

    def create_many(self, stories: Sequence[NewStory], version: bytes) -> bool:
        if self.races:
            assert self.inner.create_many([self.races.pop(0)], version)
        return self.inner.create_many(stories, version)


@pytest.mark.parametrize("races", [1, BATCH_ATTEMPTS + 1])
def test_a_story_another_replica_starts_meanwhile_is_joined_not_duplicated(races: int) -> None:
    """Whether the batch looks again (one race) or goes one by one (a race every time)."""
    clock = ManualClock()
    items = labelled_articles(copies=1, seed=4)
    first, second = [item for item in items if item["story"] == items[0]["story"]]
    original, copy = article_from(first, clock.now()), article_from(second, clock.now())
    store = memory_store(clock)
    signature = store._signer.sign(original.title, original.text)
    others = [NewStory(f"other{i}", bytes(256), (bytes([i]) * 5,)) for i in range(races - 1)]
    store._index = RaceIndex(
        MemoryStoryIndex(72 * 3600, clock),
        [NewStory("elsewhere", signature.packed, signature.bands), *others],
    )
    [result] = store.remember_many([(copy, "raw/0/1")])
    assert isinstance(result, Sighting)
    assert result.story_id == "elsewhere" and result.match == "near"


def test_the_guid_of_a_known_article_is_not_claimed_by_the_batch() -> None:
    """``remember`` claims a GUID only for an article id it has not seen: an update that now
    carries a GUID leaves it free, and another id with that GUID in the same batch is new."""
    first, other = stream(4)[0], stream(4)[1]
    assert first.url and other.url and first.article_id != other.article_id
    plain = first.model_copy(update={"guid": None})
    update = first.model_copy(update={"guid": "g-1", "content": first.text + " Updated."})
    rival = other.model_copy(update={"guid": "g-1", "feed_id": first.feed_id})
    reference = memory_store(ManualClock())
    expected = [reference.remember(a, f"raw/0/{n}") for n, a in enumerate([plain, update, rival])]
    assert expected[1].match == "update" and expected[2].duplicate is None
    store = memory_store(ManualClock())
    got = store.remember_many([(plain, "raw/0/0")])
    got += store.remember_many([(update, "raw/0/1"), (rival, "raw/0/2")])
    assert all(isinstance(s, Sighting) for s in got)
    assert verdicts(got) == verdicts(expected)  # type: ignore[arg-type]
