"""Feed leases on the real Redis: the FeedLeases contract of the in-memory leases, and three
poller replicas sharing a feed list on a manual clock (once per interval, takeover)."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

import pytest
import redis

from dmzwatch.poller.leases import RedisFeedLeases
from tests.unit.poller.test_leases import (  # noqa: F401  (the contract, run on Redis here)
    NewLeases,
    test_a_free_feed_is_won_until_the_given_time,
    test_a_held_feed_is_lost_to_others_until_its_lease_ends,
    test_heartbeat_lists_live_replicas_and_forgets_dead_ones,
    test_of_replicas_claiming_at_once_exactly_one_wins_each_feed,
    test_renew_moves_the_end_and_stores_validators_for_the_next_owner,
    test_renew_of_a_feed_never_claimed_is_refused,
    test_the_holder_may_claim_its_own_feed_again,
)
from tests.unit.poller.test_leases_takeover import GRACE, INTERVAL, Fleet, feeds


@pytest.fixture
def new_leases(redis_client: redis.Redis, key_prefix: str) -> NewLeases:
    return lambda replica_id: RedisFeedLeases(redis_client, key_prefix, replica_id)


def test_keys_share_one_cluster_slot_and_expire(redis_client: redis.Redis, key_prefix: str) -> None:
    leases = RedisFeedLeases(redis_client, key_prefix, "a", gc_seconds=60)
    leases.claim({"f1": 1000.0 + 300}, 1000.0)
    leases.heartbeat(1000.0, 30)
    keys = sorted(k.decode() for k in redis_client.scan_iter(match=key_prefix + "*"))
    assert keys == [f"{key_prefix}{{poller}}:lease:f1", f"{key_prefix}{{poller}}:replicas"]
    # Garbage collection only: the lease's own end is in its value, the TTL adds gc_seconds.
    assert 300 < redis_client.ttl(keys[0]) <= 360
    assert 0 < redis_client.ttl(keys[1]) <= 60


def test_a_redis_outage_is_a_retryable_error() -> None:
    from dmzwatch.shared.errors import RetryableError

    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    leases = RedisFeedLeases(dead, "dmzwatch-test:nowhere:", "a")
    with pytest.raises(RetryableError, match="redis unavailable"):
        leases.claim({"f1": 10.0}, 0.0)
    with pytest.raises(RetryableError):
        leases.heartbeat(0.0, 30)


def test_three_replicas_share_the_feeds_and_survivors_take_over_a_dead_one(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    fleet = Fleet(feeds(45))
    for name in ("a", "b", "c"):
        fleet.add(RedisFeedLeases(redis_client, key_prefix, name))
    try:
        fleet.run_until(3 * INTERVAL)
        fleet.assert_once_per_interval(windows=3)
        shares = Counter(f.replica for f in fleet.log if INTERVAL <= f.at < 2 * INTERVAL)
        assert sorted(shares) == ["a", "b", "c"]
        assert all(n >= 5 for n in shares.values()), shares
        held_by_c = {f.feed_id for f in fleet.log if f.replica == "c" and f.at >= 2 * INTERVAL}

        death = 4 * INTERVAL - 1  # just before its next due time: still counted alive then
        fleet.run_until(death)
        fleet.kill("c")
        fleet.run_until(6 * INTERVAL)
        for feed_id, times in fleet.times().items():
            gaps = [b - a for a, b in pairwise(times)]
            assert all(INTERVAL <= gap <= INTERVAL + GRACE for gap in gaps), (feed_id, times)
            assert times[-1] >= 5 * INTERVAL
        after = [f for f in fleet.log if f.at >= death]
        assert {f.replica for f in after} == {"a", "b"}
        assert held_by_c <= {f.feed_id for f in after}
        assert all(f.validators.etag == f'"etag-{f.feed_id}"' for f in after)
        owned = [fleet.sample(r, "dmzwatch_poller_feeds_owned") or 0 for r in ("a", "b")]
        assert sum(owned) == 45
    finally:
        fleet.close()
