"""MemoryRecords' mixed batches (``run_many``) answer and leave what the calls one by one do."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from dmzwatch.dedup.records import Claim, Get, MemoryRecords, Op, Reply, Swap
from dmzwatch.shared.clock import ManualClock

LIFETIME = 100
VALUES = [b"v0", b"v1", b"v2"]


def one_by_one(s: MemoryRecords, op: Op) -> Reply:
    if isinstance(op, Claim):
        return s.claim(op.name, op.value)
    if isinstance(op, Get):
        return s.get(op.name)
    return s.swap(op.name, op.expected, op.new)


def test_a_mixed_batch_answers_as_its_operations_one_by_one() -> None:
    rng = random.Random(5)
    clock = ManualClock(datetime(2026, 5, 1, tzinfo=UTC))
    reference, batched = MemoryRecords(LIFETIME, clock), MemoryRecords(LIFETIME, clock)
    pool = [bytes([n]) for n in range(12)]
    seen = {"won": 0, "held": 0, "found": 0, "missing": 0, "swapped": 0, "refused": 0}
    for _ in range(300):
        clock.advance(rng.choice([0, 1, 30, LIFETIME + 1]))
        ops: list[Op] = []
        for _ in range(rng.choice([0, 1, 5, 20])):
            name = rng.choice(pool)
            ops.append(
                rng.choice(
                    [
                        Claim(name, rng.choice(VALUES)),
                        Get(name),
                        Swap(name, rng.choice(VALUES), rng.choice(VALUES)),
                    ]
                )
            )
        want = [one_by_one(reference, op) for op in ops]
        assert batched.run_many(ops) == want
        for op, reply in zip(ops, want, strict=True):
            if isinstance(op, Claim):
                seen["won" if reply == (True, op.value) else "held"] += 1
            elif isinstance(op, Get):
                seen["found" if reply is not None else "missing"] += 1
            else:
                seen["swapped" if reply else "refused"] += 1
    assert all(seen.values()), seen  # every kind of answer was compared
    assert {n: batched.get(n) for n in pool} == {n: reference.get(n) for n in pool}
