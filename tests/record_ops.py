"""The reference for RecordStore batches in the tests: their operations called one by one."""

from __future__ import annotations

import random

from dmzwatch.dedup.records import Claim, Get, If, Op, RecordStore, Reply


def one_by_one(s: RecordStore, ops: list[Op]) -> list[Reply]:
    """The answers of ``ops`` called one by one (an ``If`` runs when its claim was run and won)."""
    out: list[Reply] = []
    for op in ops:
        if isinstance(op, If):
            reply = out[op.claim]
            if not (isinstance(reply, tuple) and reply[0] is True):
                out.append(None)
                continue
            op = op.op
        if isinstance(op, Claim):
            out.append(s.claim(op.name, op.value))
        elif isinstance(op, Get):
            out.append(s.get(op.name))
        else:
            out.append(s.swap(op.name, op.expected, op.new))
    return out


def conditional(rng: random.Random, ops: list[Op]) -> list[Op]:
    """``ops`` with about a third made conditional on an earlier one (any kind)."""
    out: list[Op] = []
    for k, op in enumerate(ops):
        if k and rng.random() < 0.35:
            assert not isinstance(op, If)
            out.append(If(op, rng.randrange(k)))
        else:
            out.append(op)
    return out
