"""RedisRecords' batch scripts on the real Redis: the answers and the data of one-by-one calls.

Four stores share one Redis under different prefixes and one manual clock: one is driven call
by call (``claim``, ``get``, ``swap``: the reference), the others by the batch methods
(``claim_many``, ``get_many``, ``swap_many`` and ``run_many`` mixing them), in one script per
batch (naming its keys itself, or declaring them) and grouped by shard as on a cluster. Every
answer, every field left in Redis and every TTL must agree. Time moves by whole buckets and by
more than a lifetime, so names sit in older buckets or have expired; names repeat within a
batch.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from dmzwatch.dedup import records as records_module
from dmzwatch.dedup.keys import Buckets, KeyLayout
from dmzwatch.dedup.records import Claim, Get, If, Op, RedisRecords, Swap
from dmzwatch.shared.clock import ManualClock
from dmzwatch.shared.errors import RetryableError
from tests.record_ops import conditional, one_by_one

START = datetime(2026, 5, 1, tzinfo=UTC)
LIFETIME = 800  # buckets of 100 s: a name is read for 800 to 900 s after it was written
WIDTH = Buckets(LIFETIME).width
VALUES = [b"v0", b"v1", b"v2-longer-value", b"\x00\xff\x00"]


def names(rng: random.Random, count: int) -> list[bytes]:
    return [b"n" + bytes([n]) + rng.randbytes(3) for n in range(count)]  # distinct, any shard


def store(
    client: redis.Redis,
    prefix: str,
    shards: int,
    clock: ManualClock,
    cluster: bool = False,
    declare: bool = False,
) -> RedisRecords:
    layout = KeyLayout(prefix, shards)
    return RedisRecords(client, layout, "x", LIFETIME, clock, cluster=cluster, declare_keys=declare)


def contents(client: redis.Redis, prefix: str) -> dict[bytes, tuple[dict[bytes, bytes], int]]:
    """Every key under ``prefix`` (named without it): its fields and its TTL in ms."""
    out = {}
    for key in client.scan_iter(match=prefix + "*", count=1000):
        out[key[len(prefix) :]] = (client.hgetall(key), client.pttl(key))
    return out


def assert_same_data(client: redis.Redis, reference: str, other: str) -> None:
    want, got = contents(client, reference), contents(client, other)
    assert {k: fields for k, (fields, _) in got.items()} == {
        k: fields for k, (fields, _) in want.items()
    }
    for key, (_, ttl) in want.items():
        assert ttl > 0, key  # every key written expires
        assert abs(got[key][1] - ttl) < 5000, (key, ttl, got[key][1])  # set once, same value


@pytest.fixture
def prefixes(key_prefix: str) -> Callable[[str], str]:
    return lambda name: f"{key_prefix}{name}:"  # cleaned up with key_prefix


@pytest.mark.parametrize(
    ("seed", "shards"), [(1, 4), (2, 4), (3, 1024), (4, 1), (5, 16), (6, 100_000)]
)
@pytest.mark.parametrize("chunk", [1000, 7])
def test_batches_answer_and_write_as_calls_one_by_one(
    redis_client: redis.Redis,
    prefixes: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
    shards: int,
    chunk: int,
) -> None:
    monkeypatch.setattr(records_module, "BATCH_CHUNK", chunk)  # 7: several calls per batch
    rng = random.Random(seed)
    clock = ManualClock(START)
    one, batched, grouped = prefixes("one"), prefixes("batch"), prefixes("cluster")
    declared = prefixes("declared")
    reference = store(redis_client, one, shards, clock)
    stores = {
        "batch": store(redis_client, batched, shards, clock),
        "declared": store(redis_client, declared, shards, clock, declare=True),
        "cluster": store(redis_client, grouped, shards, clock, cluster=True),
    }
    pool = names(rng, 40)
    kinds = {"claim": 0, "get": 0, "swap": 0, "won": 0, "held": 0, "swapped": 0, "found": 0}
    kinds |= {"mixed": 0, "conditional": 0, "ran": 0}  # ran: a conditional one that ran
    for _step in range(200):
        kind = rng.choice(["claim", "claim", "get", "swap", "swap", "mixed", "mixed", "time"])
        size = rng.choice([0, 1, 2, 5, 20, 60])
        if kind == "time":
            # within a bucket, a bucket or two on, or past the lifetime (all expired)
            clock.advance(rng.choice([1, WIDTH // 2, WIDTH, 2 * WIDTH, LIFETIME + 2 * WIDTH]))
            continue
        kinds[kind] += 1
        chosen = [rng.choice(pool) for _ in range(size)]
        if kind == "claim":
            entries = [(n, rng.choice(VALUES)) for n in chosen]
            want_claims = [reference.claim(n, v) for n, v in entries]
            kinds["won"] += sum(won for won, _ in want_claims)
            kinds["held"] += sum(not won for won, _ in want_claims)
            for label, s in stores.items():
                assert s.claim_many(entries) == want_claims, (label, entries)
        elif kind == "mixed":
            ops: list[Op] = [
                rng.choice(
                    [
                        Claim(n, rng.choice(VALUES)),
                        Get(n),
                        Swap(n, rng.choice(VALUES), rng.choice(VALUES)),
                    ]
                )
                for n in chosen
            ]
            if rng.random() < 0.5:
                ops = conditional(rng, ops)
                kinds["conditional"] += 1
            want_ops = one_by_one(reference, ops)
            kinds["ran"] += sum(
                isinstance(op, If) and r is not None for op, r in zip(ops, want_ops, strict=True)
            )
            for label, s in stores.items():
                assert s.run_many(ops) == want_ops, (label, ops)
        elif kind == "get":
            want_gets = [reference.get(n) for n in chosen]
            kinds["found"] += sum(v is not None for v in want_gets)
            for label, s in stores.items():
                assert s.get_many(chosen) == want_gets, (label, chosen)
        else:
            swaps = [(n, rng.choice(VALUES), rng.choice(VALUES)) for n in chosen]
            want_swaps = [reference.swap(*e) for e in swaps]
            kinds["swapped"] += sum(want_swaps)
            for label, s in stores.items():
                assert s.swap_many(swaps) == want_swaps, (label, swaps)
    for other in (batched, declared, grouped):
        assert_same_data(redis_client, one, other)
    # the sequence met every case it is meant to compare
    assert all(kinds[k] > 0 for k in kinds), kinds
    assert len({key.rsplit(b":", 1)[1] for key in contents(redis_client, one)}) > 2  # buckets


def test_a_name_twice_in_a_batch_sees_the_first(
    redis_client: redis.Redis, prefixes: Callable[[str], str]
) -> None:
    clock = ManualClock(START)
    for cluster, declare in ((False, False), (False, True), (True, False)):
        prefix = prefixes(f"twice{cluster}{declare}")
        s = store(redis_client, prefix, 8, clock, cluster=cluster, declare=declare)
        assert s.claim_many([(b"a", b"1"), (b"b", b"2"), (b"a", b"3")]) == [
            (True, b"1"),
            (True, b"2"),
            (False, b"1"),
        ]
        assert s.swap_many([(b"a", b"1", b"4"), (b"a", b"1", b"5"), (b"a", b"4", b"6")]) == [
            True,
            False,
            True,
        ]
        assert s.get_many([b"a", b"b", b"c"]) == [b"6", b"2", None]
        mixed = [Get(b"c"), Claim(b"c", b"7"), Get(b"c"), Swap(b"c", b"7", b"8"), Get(b"c")]
        assert s.run_many([*mixed, Claim(b"c", b"9"), Swap(b"a", b"6", b"1")]) == [
            None,
            (True, b"7"),
            b"7",
            True,
            b"8",
            (False, b"8"),
            True,
        ]


def test_names_in_older_buckets_are_found_and_swapped_where_they_are(
    redis_client: redis.Redis, prefixes: Callable[[str], str]
) -> None:
    clock = ManualClock(START)
    prefix = prefixes("older")
    s = store(redis_client, prefix, 2, clock)
    s.claim_many([(b"old", b"1")])
    first = Buckets(LIFETIME).current(clock.now().timestamp())
    clock.advance(3 * WIDTH)
    assert s.claim_many([(b"old", b"2"), (b"new", b"3")]) == [(False, b"1"), (True, b"3")]
    assert s.swap_many([(b"old", b"1", b"4")]) == [True]
    layout = KeyLayout(prefix, 2)
    shard = layout.shard(b"old")
    assert redis_client.hget(layout.records("x", shard, first), b"old") == b"4"
    assert redis_client.hget(layout.records("x", shard, first + 3), b"old") is None
    clock.advance(LIFETIME)  # 'old' is now past its lifetime, 'new' is not
    assert s.get_many([b"old", b"new"]) == [None, b"3"]
    assert s.claim_many([(b"old", b"5")]) == [(True, b"5")]


def test_the_current_bucket_gets_its_ttl_once_and_older_ones_keep_theirs(
    redis_client: redis.Redis, prefixes: Callable[[str], str]
) -> None:
    clock = ManualClock(datetime.now(UTC))
    prefix = prefixes("ttl")
    s = store(redis_client, prefix, 1, clock)
    buckets = Buckets(LIFETIME)
    now = clock.now().timestamp()
    key = KeyLayout(prefix, 1).records("x", 0, buckets.current(now))
    s.claim_many([(b"a", b"1"), (b"b", b"1")])
    assert abs(redis_client.ttl(key) - buckets.ttl(buckets.current(now), now)) <= 1
    redis_client.expire(key, 10_000)  # a TTL already set is left alone by later claims
    s.claim_many([(b"c", b"1")])
    assert 9_990 <= redis_client.ttl(key) <= 10_000


@pytest.mark.parametrize("chunk", [1000, 100_000])  # 100,000: one script for everything
@pytest.mark.parametrize("cluster", [False, True])
def test_twenty_thousand_entries_in_one_call(
    redis_client: redis.Redis,
    prefixes: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
    cluster: bool,
    chunk: int,
) -> None:
    monkeypatch.setattr(records_module, "BATCH_CHUNK", chunk)
    rng = random.Random(11)
    s = store(redis_client, prefixes(f"big{cluster}"), 4, ManualClock(START), cluster=cluster)
    pool = [rng.randbytes(8) for _ in range(15_000)]
    chosen = [rng.choice(pool) for _ in range(20_000)]  # about 4,000 repeats
    entries = [(n, rng.randbytes(4)) for n in chosen]
    model: dict[bytes, bytes] = {}
    want = []
    for n, v in entries:
        want.append((n not in model, model.setdefault(n, v)))
    assert s.claim_many(entries) == want
    unseen = [rng.randbytes(8) for _ in range(100)]
    assert s.get_many(chosen + unseen) == [model[n] for n in chosen] + [None] * 100
    swaps = [(n, model[n], n[:4]) for n in chosen]  # each name swaps once, repeats fail
    first = {n: i for i, n in reversed(list(enumerate(chosen)))}
    assert s.swap_many(swaps) == [first[n] == i for i, n in enumerate(chosen)]
    assert s.get_many(chosen) == [n[:4] for n in chosen]


def test_a_script_missing_on_the_server_is_loaded_and_run(
    redis_client: redis.Redis, prefixes: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    s = store(redis_client, prefixes("noscript"), 4, ManualClock(START))
    s._batch.sha = "0" * 40  # as after SCRIPT FLUSH or a failover (without flushing)
    assert s.claim_many([(b"a", b"1"), (b"a", b"2")]) == [(True, b"1"), (False, b"1")]
    monkeypatch.setattr(records_module, "BATCH_CHUNK", 1)  # pipelined calls
    s._batch.sha = "0" * 40
    assert s.get_many([b"a", b"b", b"a"]) == [b"1", None, b"1"]
    s._batch.sha = "0" * 40
    assert s.swap_many([(b"a", b"1", b"3"), (b"a", b"1", b"4")]) == [True, False]
    s._batch.sha = "0" * 40
    assert s.run_many([Get(b"a"), Claim(b"b", b"5"), Swap(b"a", b"3", b"6")]) == [
        b"3",
        (True, b"5"),
        True,
    ]


@pytest.mark.parametrize("chunk", [1000, 1])
@pytest.mark.parametrize("cluster", [False, True])
def test_an_unreachable_redis_is_retryable(
    monkeypatch: pytest.MonkeyPatch, chunk: int, cluster: bool
) -> None:
    monkeypatch.setattr(records_module, "BATCH_CHUNK", chunk)
    client = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    s = store(client, "dmzwatch-test-unreachable:", 4, ManualClock(START), cluster=cluster)
    with pytest.raises(RetryableError):
        s.claim_many([(b"a", b"1"), (b"b", b"1")])
    with pytest.raises(RetryableError):
        s.get_many([b"a", b"b"])
    with pytest.raises(RetryableError):
        s.swap_many([(b"a", b"1", b"2"), (b"b", b"1", b"2")])
