"""Fixtures shared by every tier.

Integration and e2e tests use the real Redis at 127.0.0.1:6379 (own key prefix, cleaned up) and a
Tansu broker started once per session (own topic prefix per test). Set
DMZWATCH_TEST_KAFKA_BOOTSTRAP_SERVERS to run them against a real Kafka instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from dmzwatch.shared.broker import TansuBroker
from dmzwatch.shared.messages import Article

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"  # the project's test data (../shared), not the library
REDIS_URL = os.environ.get("DMZWATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def bootstrap_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("DMZWATCH_TEST_KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    log = tmp_path_factory.mktemp("tansu") / "tansu.log"
    with TansuBroker(log_path=log) as broker:
        yield broker.bootstrap_servers


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: integration tests need it")
    yield client
    client.close()


@pytest.fixture
def key_prefix(redis_client: redis.Redis, run_id: str) -> Iterator[str]:
    prefix = f"dmzwatch-test:{run_id}:"
    yield prefix
    keys = list(redis_client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        redis_client.delete(*keys)


def make_article(**overrides: object) -> Article:
    """A valid raw article; override any field."""
    fields: dict[str, object] = {
        "article_id": "u-test-1",
        "feed_id": "test-feed",
        "source": "news.example",
        "url": "https://news.example/a/1",
        "original_url": "https://news.example/a/1?utm_source=rss",
        "guid": "guid-1",
        "title": "A title",
        "summary": "A summary.",
        "content": "",
        "published_at": datetime(2026, 11, 1, 8, 0, tzinfo=UTC),
        "fetched_at": datetime(2026, 11, 1, 8, 5, tzinfo=UTC),
    }
    fields.update(overrides)
    return Article.model_validate(fields)
