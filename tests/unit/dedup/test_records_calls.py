"""How RedisRecords cuts a batch into script calls (nothing is sent: no Redis needed)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from dmzwatch.dedup import records as records_module
from dmzwatch.dedup.keys import Buckets, KeyLayout
from dmzwatch.dedup.records import RedisRecords
from dmzwatch.shared.clock import ManualClock

LIFETIME = 800
NOW = datetime(2026, 5, 1, tzinfo=UTC)


def store(shards: int, cluster: bool) -> RedisRecords:
    client = redis.Redis(host="127.0.0.1", port=1)  # never connected
    return RedisRecords(
        client, KeyLayout("p:", shards), "x", LIFETIME, ManualClock(NOW), cluster=cluster
    )


def entries(count: int, seed: int = 3) -> list[tuple[bytes, bytes]]:
    rng = random.Random(seed)
    pool = [rng.randbytes(6) for _ in range(count // 2 + 1)]
    return [(rng.choice(pool), rng.randbytes(2)) for _ in range(count)]


def unpack(head: int, args: list[bytes | int], width: int) -> list[tuple[int, tuple[object, ...]]]:
    """(shard position, entry) per entry of a call's ARGV (after nb and ``head`` values)."""
    body = args[1 + head :]
    return [(int(body[j]), tuple(body[j + 1 : j + width])) for j in range(0, len(body), width)]


@pytest.mark.parametrize("cluster", [False, True])
@pytest.mark.parametrize("chunk", [1000, 7])
def test_every_entry_goes_once_with_its_own_shards_keys(
    monkeypatch: pytest.MonkeyPatch, cluster: bool, chunk: int
) -> None:
    monkeypatch.setattr(records_module, "BATCH_CHUNK", chunk)
    s, batch = store(64, cluster), entries(300)
    layout, buckets = KeyLayout("p:", 64), Buckets(LIFETIME)
    now = NOW.timestamp()
    nb = len(buckets.live(now))
    seen: list[int] = []
    for positions, keys, args in s._calls(batch, [99], now):
        assert args[:2] == [nb, 99]
        assert len(positions) <= chunk
        assert len(keys) % nb == 0
        for i, (slot, entry) in zip(positions, unpack(1, args, 3), strict=True):
            assert entry == batch[i]
            shard = layout.shard(batch[i][0])
            assert keys[slot * nb : (slot + 1) * nb] == [
                layout.records("x", shard, b) for b in buckets.live(now)
            ]
        if cluster:  # one shard, one hash slot per call
            assert len(keys) == nb
            assert len({key_slot(k.encode()) for k in keys}) == 1
        seen.extend(positions)
    if cluster:  # grouped by shard, in batch order within each shard
        assert sorted(seen) == list(range(len(batch)))
        by_shard: dict[int, list[int]] = {}
        for i in seen:
            by_shard.setdefault(layout.shard(batch[i][0]), []).append(i)
        assert all(group == sorted(group) for group in by_shard.values())
    else:  # one call per chunk, in batch order
        assert seen == list(range(len(batch)))
        assert len(s._calls(batch, [99], now)) == -(-len(batch) // chunk)


def test_a_standalone_batch_is_one_call_naming_each_shard_once() -> None:
    s, batch = store(1024, cluster=False), entries(500)
    calls = s._calls(batch, [], NOW.timestamp())
    assert len(calls) == 1
    _, keys, _ = calls[0]
    assert len(keys) == len(set(keys))  # each shard's buckets declared once
    assert len(keys) == 9 * len({KeyLayout("p:", 1024).shard(n) for n, _ in batch})


def test_a_cluster_client_groups_by_shard_unless_told_otherwise() -> None:
    cluster_client = RedisCluster.__new__(RedisCluster)  # no connection: only its type counts
    cluster_client.register_script = redis.Redis(port=1).register_script  # type: ignore[method-assign]
    layout = KeyLayout("p:", 4)
    clock = ManualClock(NOW)
    assert RedisRecords(cluster_client, layout, "x", LIFETIME, clock)._cluster
    assert not RedisRecords(redis.Redis(port=1), layout, "x", LIFETIME, clock)._cluster
    assert RedisRecords(redis.Redis(port=1), layout, "x", LIFETIME, clock, cluster=True)._cluster
