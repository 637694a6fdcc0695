"""Dedup's stores on the real Redis: same answers as in memory, TTLs, restarts lose nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from chaos.redisserver import RedisServer, redis_server_binary
from dmzwatch.classifier.ledger import RedisAlertLedger
from dmzwatch.dedup.app import redis_store
from dmzwatch.dedup.cluster import article_from, memory_store
from dmzwatch.dedup.settings import DedupSettings
from dmzwatch.shared.clock import ManualClock
from tests.conftest import REDIS_URL, REPO
from tests.stories import labelled_articles, score

START = datetime(2026, 5, 1, tzinfo=UTC)
ARTICLES = labelled_articles(copies=5, seed=7)


def run(store, clock: ManualClock, articles, first_offset: int = 0) -> dict[str, object]:
    out = {}
    for n, item in enumerate(articles, first_offset):
        sighting = store.remember(article_from(item, clock.now()), f"raw/0/{n}")
        out[item["id"]] = sighting
        clock.advance(20)
    return out


def test_redis_and_memory_stores_give_the_same_stories(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    on_redis = run(
        redis_store(DedupSettings(redis_key_prefix=key_prefix), redis_client, ManualClock(START)),
        ManualClock(START),
        ARTICLES,
    )
    in_memory = run(memory_store(ManualClock(START)), ManualClock(START), ARTICLES)
    assert {k: s.story_id for k, s in on_redis.items()} == {
        k: s.story_id for k, s in in_memory.items()
    }
    result = score(ARTICLES, {k: s.story_id for k, s in on_redis.items()})
    assert result.recall >= 0.95 and result.merged == ()


def test_every_key_expires_within_its_lifetime(redis_client: redis.Redis, key_prefix: str) -> None:
    settings = DedupSettings(redis_key_prefix=key_prefix)
    clock = ManualClock(datetime.now(UTC))
    run(redis_store(settings, redis_client, clock), clock, ARTICLES[:40])
    keys = [k.decode() for k in redis_client.scan_iter(match=key_prefix + "*")]
    assert keys
    longest = settings.dedup_ttl_seconds * 9 // 8 + 2
    assert any(key.endswith("l{lsh}:stream1") for key in keys)  # the story index too
    for key in keys:
        ttl = redis_client.ttl(key)
        assert 0 < ttl <= longest, key


RESTARTED = """
import json, sys
from datetime import datetime
import redis
from dmzwatch.dedup.app import redis_store
from dmzwatch.dedup.cluster import article_from
from dmzwatch.dedup.settings import DedupSettings
from dmzwatch.shared.clock import ManualClock
prefix, url, start, first = sys.argv[1:5]
clock = ManualClock(datetime.fromisoformat(start))
store = redis_store(DedupSettings(redis_key_prefix=prefix), redis.Redis.from_url(url), clock)
for n, line in enumerate(sys.stdin, int(first)):
    s = store.remember(article_from(json.loads(line), clock.now()), f"raw/0/{n}")
    print(json.dumps([s.duplicate, s.story_id, s.match, s.revision, list(s.outlets)]))
"""


def restarted(prefix: str, url: str, articles, first: int) -> list[list[object]]:
    """Dedup's store in a new process against the same Redis."""
    done = subprocess.run(
        [sys.executable, "-c", RESTARTED, prefix, url, START.isoformat(), str(first)],
        input="".join(json.dumps(a) + "\n" for a in articles),
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def check_nothing_was_lost(before: dict[str, object], after: list[list[object]], articles) -> None:
    """Repeats of what was seen are dropped, the rest joins the stories started before."""
    half = len(articles) // 2
    repeats, rest = after[:half], after[half:]
    assert all(r[0] in ("url", "id") for r in repeats)
    stories = {a["story"]: before[a["id"]].story_id for a in articles[:half]}
    for item, (duplicate, story, *_rest) in zip(articles[half:], rest, strict=True):
        assert duplicate is None
        if item["story"] in stories:
            assert story == stories[item["story"]], item["id"]


def test_a_restarted_dedup_process_remembers_articles_and_stories(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    half = len(ARTICLES) // 2
    clock = ManualClock(START)
    before = run(
        redis_store(DedupSettings(redis_key_prefix=key_prefix), redis_client, clock),
        clock,
        ARTICLES[:half],
    )
    after = restarted(key_prefix, REDIS_URL, ARTICLES[:half] + ARTICLES[half:], 10_000)
    check_nothing_was_lost(before, after, ARTICLES)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, Callable[[], redis.Redis]]]:
    """A redis-server of our own, append-only file on, never the shared one."""
    if redis_server_binary() is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path)

    def start() -> redis.Redis:
        server.start(timeout=10)
        return server.client()

    try:
        yield server.url, start
    finally:
        server.stop()


def test_redis_killed_and_restarted_from_its_append_only_file_loses_nothing(own_redis) -> None:
    url, start = own_redis
    client = start()
    half = len(ARTICLES) // 2
    clock = ManualClock(START)
    before = run(
        redis_store(DedupSettings(redis_key_prefix="aof:"), client, clock), clock, ARTICLES[:half]
    )
    keys_before = client.dbsize()
    # A crash, not a clean shutdown: SIGKILL; every write was fsynced to the append-only file.
    pid = client.info("server")["process_id"]
    client.close()
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.3)
    client = start()
    assert client.dbsize() == keys_before
    assert all(client.ttl(k) > 0 for k in client.scan_iter())
    after = restarted("aof:", url, ARTICLES[:half] + ARTICLES[half:], 10_000)
    check_nothing_was_lost(before, after, ARTICLES)


def test_alert_ledger_raises_once_and_corroborates_once_on_redis(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    ledger = RedisAlertLedger(redis_client, key_prefix, 600)
    assert ledger.corroborate("s1", ("purge", "summit"), "u3") == {}  # nothing raised yet
    assert ledger.raise_alert("s1", "purge", "u1", b'{"v": 1}')
    assert ledger.raise_alert("s1", "purge", "u1", b'{"v": 1}')  # re-delivery
    assert not ledger.raise_alert("s1", "purge", "u2", b'{"v": 1}')
    assert ledger.corroborate("s1", ("purge", "summit"), "u3") == {"purge": b'{"v": 1}'}
    assert ledger.corroborate("s1", ("purge", "summit"), "u3") == {"purge": b'{"v": 1}'}
    assert ledger.corroborate("s1", ("purge", "summit"), "u4") == {}
    keys = list(redis_client.scan_iter(match=key_prefix + "*"))
    assert sorted(k.decode()[len(key_prefix) :] for k in keys) == [
        "al:{s1}:purge",
        "co:{s1}:purge",
    ]
    assert all(0 < redis_client.ttl(k) <= 600 for k in keys)
