"""Dedup's batch path on the real Redis (pipelines, the all-or-none story creation)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis

from dmzwatch.dedup.app import redis_store
from dmzwatch.dedup.cluster import article_from, memory_store
from dmzwatch.dedup.settings import DedupSettings
from dmzwatch.dedup.store import Sighting
from dmzwatch.shared.clock import ManualClock
from tests.stories import labelled_articles, score

START = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("size", "declare"),
    [(25, False), (1000, False), (25, True)],  # 1000: copies of one text in one batch
)
def test_batches_on_redis_give_the_stories_of_one_by_one_in_memory(
    redis_client: redis.Redis,
    key_prefix: str,
    size: int,
    declare: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = labelled_articles(copies=5, seed=9)
    clock = ManualClock(START)
    articles = [article_from(item, clock.now()) for item in items]
    articles += articles[:10]  # polled again: repeats
    memory = memory_store(ManualClock(START))
    expected = [memory.remember(a, f"raw/0/{n}") for n, a in enumerate(articles)]
    declared: list[int] = []  # KEYS per script call
    evalsha = redis_client.evalsha

    def spy(sha: str, numkeys: int, *args: object) -> object:
        declared.append(numkeys)
        return evalsha(sha, numkeys, *args)

    monkeypatch.setattr(redis_client, "evalsha", spy)
    settings = DedupSettings(redis_key_prefix=key_prefix, dedup_declare_keys=declare)
    store = redis_store(settings, redis_client, clock)
    got: list[Sighting] = []
    for start in range(0, len(articles), size):
        chunk = [(a, f"raw/0/{n}") for n, a in enumerate(articles[start : start + size], start)]
        results = store.remember_many(chunk)
        assert all(isinstance(r, Sighting) for r in results), results
        got.extend(r for r in results if isinstance(r, Sighting))
    assert [(s.duplicate, s.story_id) for s in got] == [(s.duplicate, s.story_id) for s in expected]
    assert [s.outlets for s in got] == [s.outlets for s in expected]
    stories = {item["id"]: s.story_id for item, s in zip(items, got, strict=False)}
    result = score(items, stories)
    assert result.recall >= 0.95 and result.merged == ()
    # DMZWATCH_DEDUP_DECLARE_KEYS: batch scripts name their keys (9 per shard met), or none
    assert (max(declared) > 9 * 10) if declare else (max(declared) <= 9), max(declared)
    # every key the batches wrote expires
    for key in redis_client.scan_iter(match=key_prefix + "*", count=1000):
        ttl = redis_client.ttl(key)
        assert ttl > 0, (key, ttl)
    # the same batch re-delivered: the same answers, nothing new
    again = store.remember_many([(a, f"raw/0/{n}") for n, a in enumerate(articles[:25])])
    assert [(s.duplicate, s.story_id) for s in again if isinstance(s, Sighting)] == [
        (s.duplicate, s.story_id) for s in got[:25]
    ]


def test_on_redis_the_guid_of_a_known_article_is_not_claimed_by_the_batch(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    """The GUIDs are claimed in the records' script call, only for the records it created."""
    items = labelled_articles(copies=1, seed=4)
    first, other = (article_from(item, START) for item in items[:2])
    plain = first.model_copy(update={"guid": None})
    update = first.model_copy(update={"guid": "g-1", "content": first.text + " Updated."})
    rival = other.model_copy(update={"guid": "g-1", "feed_id": first.feed_id})
    memory = memory_store(ManualClock(START))
    expected = [memory.remember(a, f"raw/0/{n}") for n, a in enumerate([plain, update, rival])]
    assert expected[1].match == "update" and expected[2].duplicate is None
    clock = ManualClock(START)
    store = redis_store(DedupSettings(redis_key_prefix=key_prefix), redis_client, clock)
    got = store.remember_many([(plain, "raw/0/0")])
    got += store.remember_many([(update, "raw/0/1"), (rival, "raw/0/2")])
    assert [(s.duplicate, s.story_id, s.match) for s in got if isinstance(s, Sighting)] == [
        (s.duplicate, s.story_id, s.match) for s in expected
    ]


@pytest.mark.parametrize("seed", [1, 2])
def test_copies_of_one_text_in_a_batch_on_redis_join_as_one_by_one(
    redis_client: redis.Redis, key_prefix: str, seed: int
) -> None:
    """Big batches holding several copies of one text from different outlets: the copies'
    text claims lose to the first, and they join the story in one more call, in batch order."""
    clock = ManualClock(START)
    articles = [article_from(item, clock.now()) for item in labelled_articles(copies=5, seed=seed)]
    articles += [a for n, a in enumerate(articles) if n % 7 == 3]  # polled again
    memory = memory_store(ManualClock(START))
    expected = [memory.remember(a, f"raw/0/{n}") for n, a in enumerate(articles)]
    store = redis_store(DedupSettings(redis_key_prefix=key_prefix), redis_client, clock)
    got = store.remember_many([(a, f"raw/0/{n}") for n, a in enumerate(articles)])
    assert all(isinstance(s, Sighting) for s in got), got
    assert [(s.duplicate, s.story_id, s.outlets) for s in got if isinstance(s, Sighting)] == [
        (s.duplicate, s.story_id, s.outlets) for s in expected
    ]
