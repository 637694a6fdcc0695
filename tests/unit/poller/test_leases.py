"""The FeedLeases contract, run here on the in-memory leases and in
``tests/integration/poller/test_leases_redis.py`` on Redis (which re-uses these tests with its
own ``new_leases`` fixture)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dmzwatch.poller.fetch import Validators
from dmzwatch.poller.leases import (
    FeedLeases,
    MemoryFeedLeases,
    MemoryLeaseStore,
    preferred_replica,
)

NewLeases = Callable[[str], FeedLeases]
T0 = 1_772_366_400.0  # a Unix time, as the replicas' clocks give


@pytest.fixture
def new_leases() -> NewLeases:
    """Leases of replica ``id`` in one shared (simulated) deployment."""
    store = MemoryLeaseStore()
    return lambda replica_id: MemoryFeedLeases(replica_id, store)


def test_a_free_feed_is_won_until_the_given_time(new_leases: NewLeases) -> None:
    a = new_leases("a")
    outcome = a.claim({"f1": T0 + 300}, T0)["f1"]
    assert outcome.won
    assert (outcome.lease.owner, outcome.lease.until) == ("a", T0 + 300)
    assert outcome.lease.validators == Validators()


def test_a_held_feed_is_lost_to_others_until_its_lease_ends(new_leases: NewLeases) -> None:
    a, b = new_leases("a"), new_leases("b")
    a.claim({"f1": T0 + 300}, T0)
    lost = b.claim({"f1": T0 + 600}, T0 + 299.5)["f1"]
    assert not lost.won
    assert (lost.lease.owner, lost.lease.until) == ("a", T0 + 300)
    assert b.claim({"f1": T0 + 600}, T0 + 300)["f1"].won  # ended: free again
    assert not a.claim({"f1": T0 + 600}, T0 + 300)["f1"].won


def test_the_holder_may_claim_its_own_feed_again(new_leases: NewLeases) -> None:
    a = new_leases("a")
    a.claim({"f1": T0 + 300}, T0)
    again = a.claim({"f1": T0 + 400}, T0 + 100)["f1"]
    assert again.won
    assert again.lease.until == T0 + 400


def test_renew_moves_the_end_and_stores_validators_for_the_next_owner(
    new_leases: NewLeases,
) -> None:
    a, b = new_leases("a"), new_leases("b")
    a.claim({"f1": T0 + 300, "f2": T0 + 300}, T0)
    validators = Validators(etag='W/"v1"', last_modified="Sun, 01 Mar 2026 12:00:00 GMT")
    assert a.renew({"f1": (T0 + 900, validators)}, T0 + 1) == set()
    assert not b.claim({"f1": T0 + 1000}, T0 + 600)["f1"].won  # moved from 300 to 900
    taken = b.claim({"f1": T0 + 1200}, T0 + 900)["f1"]
    assert taken.won
    assert taken.lease.validators == validators
    # a no longer holds f1: its renewal is refused and changes nothing.
    assert a.renew({"f1": (T0 + 5000, Validators())}, T0 + 901) == {"f1"}
    assert not a.claim({"f1": T0 + 2000}, T0 + 1100)["f1"].won


def test_renew_of_a_feed_never_claimed_is_refused(new_leases: NewLeases) -> None:
    assert new_leases("a").renew({"nope": (T0 + 10, Validators())}, T0) == {"nope"}


def test_of_replicas_claiming_at_once_exactly_one_wins_each_feed(new_leases: NewLeases) -> None:
    replicas = [new_leases(name) for name in ("a", "b", "c")]
    feeds = {f"f{i}": T0 + 300 for i in range(40)}
    results = [r.claim(feeds, T0) for r in replicas]
    for feed_id in feeds:
        assert sum(result[feed_id].won for result in results) == 1


def test_heartbeat_lists_live_replicas_and_forgets_dead_ones(new_leases: NewLeases) -> None:
    a, b = new_leases("a"), new_leases("b")
    assert a.heartbeat(T0, 30) == ("a",)
    assert b.heartbeat(T0 + 10, 30) == ("a", "b")
    assert b.heartbeat(T0 + 31, 30) == ("b",)  # a's last beat said alive until T0 + 30
    b.leave()
    assert a.heartbeat(T0 + 32, 30) == ("a",)


def test_replica_id_must_not_be_empty() -> None:
    with pytest.raises(ValueError, match="replica_id"):
        MemoryFeedLeases("")


def test_preferred_replica_is_stable_and_spreads_feeds() -> None:
    replicas = ("a", "b", "c")
    feeds = [f"feed-{i}" for i in range(300)]
    owners = [preferred_replica(f, replicas) for f in feeds]
    assert owners == [preferred_replica(f, tuple(reversed(replicas))) for f in feeds]
    assert all(owners.count(r) > 60 for r in replicas)
    # When c leaves, only c's feeds move.
    after = [preferred_replica(f, ("a", "b")) for f in feeds]
    assert all(old == new for old, new in zip(owners, after, strict=True) if old != "c")
    assert preferred_replica("x", ()) is None
