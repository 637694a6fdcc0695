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


def store(shards: int, cluster: bool, declare: bool = True) -> RedisRecords:
    client = redis.Redis(host="127.0.0.1", port=1)  # never connected
    layout = KeyLayout("p:", shards)
    clock = ManualClock(NOW)
    return RedisRecords(client, layout, "x", LIFETIME, clock, cluster=cluster, declare_keys=declare)


def entries(count: int, seed: int = 3) -> list[tuple[bytes, bytes]]:
    rng = random.Random(seed)
    pool = [rng.randbytes(6) for _ in range(count // 2 + 1)]
    return [(rng.choice(pool), rng.randbytes(2)) for _ in range(count)]


def unpack(head: int, args: list[bytes | int | str]) -> list[tuple[int, tuple[object, ...]]]:
    """(shard, entry) per entry of a call, read from its descriptor (ARGV[4]: an arity byte
    and a 3-byte shard per entry) and its arguments after ``head`` values."""
    desc = args[3]
    assert isinstance(desc, bytes)
    out, j = [], head
    for d in range(0, len(desc), 4):
        width = desc[d]
        assert width in (1, 2, 3)
        out.append((int.from_bytes(desc[d + 1 : d + 4], "big"), tuple(args[j : j + width])))
        j += width
    assert j == len(args)
    return out


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
    for positions, keys, args in s._calls(batch, 99, now):
        assert args[:3] == [nb, 99, ""]
        assert len(positions) <= chunk
        assert len(keys) % nb == 0
        for i, (slot, entry) in zip(positions, unpack(4, args), strict=True):
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
        assert len(s._calls(batch, 99, now)) == -(-len(batch) // chunk)


def test_a_standalone_batch_is_one_call_naming_each_shard_once() -> None:
    s, batch = store(1024, cluster=False), entries(500)
    calls = s._calls(batch, 99, NOW.timestamp())
    assert len(calls) == 1
    _, keys, _ = calls[0]
    assert len(keys) == len(set(keys))  # each shard's buckets declared once
    assert len(keys) == 9 * len({KeyLayout("p:", 1024).shard(n) for n, _ in batch})


@pytest.mark.parametrize("chunk", [1000, 7])
def test_an_undeclared_standalone_batch_sends_the_prefix_buckets_and_shard_numbers(
    monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(records_module, "BATCH_CHUNK", chunk)
    s, layout = store(1024, cluster=False, declare=False), KeyLayout("p:", 1024)
    batch: list[tuple[bytes, ...]] = [  # gets, claims and swaps
        (n, v, v)[: 1 + k % 3] for k, (n, v) in enumerate(entries(300))
    ]
    now = NOW.timestamp()
    live = Buckets(LIFETIME).live(now)
    seen: list[int] = []
    for positions, keys, args in s._calls(batch, 99, now):
        assert keys == []  # named by the script
        assert args[:3] == [len(live), 99, "p:x"]
        assert args[4 : 4 + len(live)] == [f"{b:x}" for b in live]
        for i, (shard, entry) in zip(positions, unpack(4 + len(live), args), strict=True):
            assert entry == batch[i]
            assert shard == layout.shard(batch[i][0])
            # the names the script makes are the layout's
            assert [f"p:x{{{shard:x}}}:{b:x}" for b in live] == [
                layout.records("x", layout.shard(batch[i][0]), b) for b in live
            ]
        seen.extend(positions)
    assert seen == list(range(len(batch)))


def test_a_cluster_client_groups_by_shard_unless_told_otherwise() -> None:
    cluster_client = RedisCluster.__new__(RedisCluster)  # no connection: only its type counts
    cluster_client.register_script = redis.Redis(port=1).register_script  # type: ignore[method-assign]
    layout = KeyLayout("p:", 4)
    clock = ManualClock(NOW)
    assert RedisRecords(cluster_client, layout, "x", LIFETIME, clock)._cluster
    assert not RedisRecords(redis.Redis(port=1), layout, "x", LIFETIME, clock)._cluster
    assert RedisRecords(redis.Redis(port=1), layout, "x", LIFETIME, clock, cluster=True)._cluster


@pytest.mark.parametrize("declare", [False, True])
def test_conditions_travel_in_the_descriptor_of_one_call(declare: bool) -> None:
    s = store(1024, cluster=False, declare=declare)
    batch: list[tuple[bytes, ...]] = [(n, v) for n, v in entries(40)]
    deps = [k - 1 if k % 3 == 2 else -1 for k in range(len(batch))]  # on the one before
    now = NOW.timestamp()
    ((positions, _, args),) = s._calls(batch, 99, now, deps)
    assert list(positions) == list(range(len(batch)))
    desc = args[3]
    assert isinstance(desc, bytes)
    d, found = 0, []
    for entry, dep in zip(batch, deps, strict=True):
        assert desc[d] & 0x7F == len(entry)
        if dep >= 0:
            assert desc[d] & 0x80
            found.append(int.from_bytes(desc[d + 4 : d + 7], "big") - 1)  # 1-based in the call
            d += 7
        else:
            assert not desc[d] & 0x80
            d += 4
    assert d == len(desc)
    assert found == [dep for dep in deps if dep >= 0]


def test_conditions_are_refused_where_one_call_cannot_take_the_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch: list[tuple[bytes, ...]] = [(n, v) for n, v in entries(10)]
    deps = [-1] + [0] * 9
    with pytest.raises(ValueError, match="one script call"):
        store(8, cluster=True)._calls(batch, 99, NOW.timestamp(), deps)
    monkeypatch.setattr(records_module, "BATCH_CHUNK", 5)
    with pytest.raises(ValueError, match="one script call"):
        store(8, cluster=False)._calls(batch, 99, NOW.timestamp(), deps)
