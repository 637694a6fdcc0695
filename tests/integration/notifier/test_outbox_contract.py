"""One contract, two outboxes: the in-memory one the unit tests trust behaves like Redis."""

from __future__ import annotations

import pytest

from dmzwatch.notifier.outbox import Claimed, Idle, MemoryOutbox, Outbox
from dmzwatch.notifier.redis_outbox import RedisOutbox

NOW = 1_800_000_000.0
LIMITS = {"lease_seconds": 30.0, "interval_seconds": 1.0, "burst": 2}


@pytest.fixture(params=["memory", "redis"])
def outbox(request) -> Outbox:
    if request.param == "memory":
        return MemoryOutbox()
    return RedisOutbox(
        request.getfixturevalue("redis_client"), request.getfixturevalue("key_prefix")
    )


def test_scheduling_is_idempotent_and_a_claim_is_a_lease(outbox: Outbox) -> None:
    first = outbox.schedule("s", "id", 1, b'{"a":1}', now=NOW, origin="t/0/5", key="k")
    again = outbox.schedule("s", "id", 1, b'{"a":1}', now=NOW + 1)
    assert first.created and not again.created and first.item == "a:1:id"
    claim = outbox.claim("s", now=NOW, **LIMITS)
    assert claim == Claimed("a:1:id", 1)
    assert outbox.claim("s", now=NOW + 1, **LIMITS) == Idle(29.0)  # leased to someone
    assert outbox.claim("s", now=NOW + 31, **LIMITS) == Claimed("a:1:id", 2)  # lease ran out
    pending = outbox.load("s", "a:1:id")
    assert pending.bodies == (b'{"a":1}',) and pending.origin == "t/0/5" and pending.key == "k"
    outbox.finish("s", "a:1:id", "delivered", 3600)
    assert outbox.depth("s") == 0 and outbox.load("s", "a:1:id").bodies == ()
    assert not outbox.schedule("s", "id", 1, b"{}", now=NOW + 40).created  # the ledger
    assert outbox.claim("s", now=NOW + 50, **LIMITS) == Idle(None)


def test_the_rate_limit_and_a_pause_hold_the_destination(outbox: Outbox) -> None:
    for i in range(4):
        outbox.schedule("s", f"id{i}", 1, b"{}", now=NOW)
    got = [outbox.claim("s", now=NOW, **LIMITS) for _ in range(3)]
    assert [type(c) for c in got] == [Claimed, Claimed, Idle]  # burst of two
    assert got[2] == Idle(1.0)
    claim = outbox.claim("s", now=NOW + 1, **LIMITS)
    assert isinstance(claim, Claimed)
    outbox.retry("s", claim.item, due=NOW + 2, pause_until=NOW + 10, error="HTTP 429")
    assert outbox.claim("s", now=NOW + 5, **LIMITS) == Idle(5.0)
    assert isinstance(outbox.claim("s", now=NOW + 10, **LIMITS), Claimed)


def test_digest_windows_collect_alerts_and_close_when_claimed(outbox: Outbox) -> None:
    window = int(NOW // 300) * 300
    for i in range(3):
        outbox.schedule("d", f"id{i}", 1, f'{{"i":{i}}}'.encode(), now=NOW + i, digest_seconds=300)
    assert outbox.depth("d") == 1
    due = window + 300
    assert outbox.claim("d", now=due - 10, **LIMITS) == Idle(10.0)
    claim = outbox.claim("d", now=due, **LIMITS)
    assert claim == Claimed(f"d:{window}", 1)
    assert len(outbox.load("d", claim.item).bodies) == 3
    late = outbox.schedule("d", "late", 1, b"{}", now=due - 1, digest_seconds=300)
    assert late.item == f"d:{window + 300}"  # the claimed window is closed
    outbox.finish("d", claim.item, "delivered", 3600)
    assert outbox.depth("d") == 1 and outbox.load("d", late.item).bodies == (b"{}",)
