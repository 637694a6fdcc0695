"""Claims against the real Redis, including the lost-reply retry that drops new articles."""

import redis

from dmzwatch.shared.claims import RedisClaims


def test_first_claimant_wins_and_others_see_the_holder(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    claims = RedisClaims(redis_client, key_prefix)
    key = claims.key("seen", "a", "x")
    assert claims.claim(key, "record-1", 60).won
    other = claims.claim(key, "record-2", 60)
    assert not other.won and other.holder == "record-1"
    assert 0 < redis_client.ttl(key) <= 60


def test_a_repeat_of_the_same_claim_still_wins(redis_client: redis.Redis, key_prefix: str) -> None:
    """What redis-py does after a lost reply: it sends the same command again."""
    claims = RedisClaims(redis_client, key_prefix)
    key = claims.key("seen", "a", "y")
    assert claims.claim(key, "record-1", 60).won
    assert claims.claim(key, "record-1", 60).won  # the retry of the same record


def test_naive_set_nx_would_drop_the_article_on_a_retry(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    """The failure the token prevents, shown with the plain command (documents why)."""
    key = key_prefix + "naive"
    assert redis_client.set(key, "1", nx=True, ex=60)
    assert redis_client.set(key, "1", nx=True, ex=60) is None  # the retry says "exists"
