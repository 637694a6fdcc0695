"""RedisAlertLedger.run_many: one pipeline, the answers of one call after another."""

import random

import redis

from dmzwatch.classifier.ledger import Corroborate, LedgerCall, RaiseAlert, RedisAlertLedger

CATEGORIES = ("purge", "summit", "defection")


def calls(seed: int, n: int = 300) -> list[LedgerCall]:
    rng = random.Random(seed)
    out: list[LedgerCall] = []
    for _ in range(n):
        story, article = f"s{rng.randrange(8)}", f"u{rng.randrange(12)}"
        if rng.random() < 0.6:
            category = rng.choice(CATEGORIES)
            out.append(RaiseAlert(story, category, article, f"{story}/{category}".encode()))
        else:
            out.append(Corroborate(story, CATEGORIES, article))
    return out


def one_by_one(ledger: RedisAlertLedger, batch: list[LedgerCall]) -> list[object]:
    return [
        ledger.raise_alert(c.story_id, c.category, c.article_id, c.alert)
        if isinstance(c, RaiseAlert)
        else ledger.corroborate(c.story_id, c.categories, c.article_id)
        for c in batch
    ]


def test_run_many_answers_as_one_call_after_another(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    for seed in range(3):
        batch = calls(seed)
        sequential = one_by_one(RedisAlertLedger(redis_client, f"{key_prefix}a{seed}:", 600), batch)
        batched = RedisAlertLedger(redis_client, f"{key_prefix}b{seed}:", 600).run_many(batch)
        assert batched == sequential
        assert any(a is False for a in batched) and any(a is True for a in batched)
        assert any(isinstance(a, dict) and a for a in batched)


def test_a_failing_call_is_its_own_answer(redis_client: redis.Redis, key_prefix: str) -> None:
    ledger = RedisAlertLedger(redis_client, key_prefix, 600)
    redis_client.hset(f"{key_prefix}al:{{s2}}:purge", "x", "a hash, not a string")
    answers = ledger.run_many(
        [
            RaiseAlert("s1", "purge", "u1", b"one"),
            RaiseAlert("s2", "purge", "u2", b"two"),
            RaiseAlert("s3", "purge", "u3", b"three"),
        ]
    )
    assert answers[0] is True and answers[2] is True
    assert isinstance(answers[1], redis.ResponseError) and "WRONGTYPE" in str(answers[1])
