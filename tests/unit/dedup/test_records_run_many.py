"""MemoryRecords' mixed batches (``run_many``, conditions too) answer and leave what the calls one
by one do."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from dmzwatch.dedup.records import Claim, Get, If, MemoryRecords, Op, Swap
from dmzwatch.shared.clock import ManualClock
from tests.record_ops import conditional, one_by_one

LIFETIME = 100
VALUES = [b"v0", b"v1", b"v2"]


def test_a_mixed_batch_answers_as_its_operations_one_by_one() -> None:
    rng = random.Random(5)
    clock = ManualClock(datetime(2026, 5, 1, tzinfo=UTC))
    reference, batched = MemoryRecords(LIFETIME, clock), MemoryRecords(LIFETIME, clock)
    pool = [bytes([n]) for n in range(12)]
    seen = {"won": 0, "held": 0, "found": 0, "missing": 0, "swapped": 0, "refused": 0}
    seen |= {"ran": 0, "not run": 0}
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
        if rng.random() < 0.5:
            ops = conditional(rng, ops)
        want = one_by_one(reference, ops)
        assert batched.run_many(ops) == want
        for op, reply in zip(ops, want, strict=True):
            if isinstance(op, If):
                seen["ran" if reply is not None else "not run"] += 1
                op = op.op
            if isinstance(op, Claim):
                seen["won" if reply == (True, op.value) else "held"] += 1
            elif isinstance(op, Get):
                seen["found" if reply is not None else "missing"] += 1
            else:
                seen["swapped" if reply else "refused"] += 1
    assert all(seen.values()), seen  # every kind of answer was compared
    assert {n: batched.get(n) for n in pool} == {n: reference.get(n) for n in pool}


def test_a_condition_must_name_an_earlier_operation() -> None:
    s = MemoryRecords(LIFETIME, ManualClock(datetime(2026, 5, 1, tzinfo=UTC)))
    with pytest.raises(ValueError, match="not an earlier one"):
        s.run_many([If(Get(b"a"), 0)])
    with pytest.raises(ValueError, match="not an earlier one"):
        s.run_many([Claim(b"a", b"1"), If(Get(b"a"), 2), Get(b"b")])
