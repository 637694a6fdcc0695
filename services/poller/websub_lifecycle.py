"""How a WebSub subscription's state moves (see :mod:`~dmzwatch.poller.websub` for the states):
pure functions of the stored :class:`Subscription`, the time on the store's scale and the
:class:`WebSubPolicy`. The subscriber applies them atomically through the store, so they may
run more than once when replicas race."""

from __future__ import annotations

from dataclasses import replace

from dmzwatch.poller.websub_contract import WebSubPolicy
from dmzwatch.poller.websub_store import Subscription


def due(
    sub: Subscription, now: float, policy: WebSubPolicy
) -> tuple[Subscription | None, bool, str | None]:
    """What ``sub`` becomes at ``now`` (None: unchanged), whether a subscribe request is to be
    sent, and why it failed when it just did."""
    if sub.state == "pending" and sub.requested_at is not None:
        if now - sub.requested_at >= policy.verify_timeout_seconds:
            return failed(sub, now, policy), False, "no verification from the hub"
        return None, False, None
    if sub.state == "active":
        assert sub.expires_at is not None
        assert sub.renew_at is not None
        if now >= sub.expires_at:
            return replace(sub, state="expired", renewing=False, next_attempt=now), False, None
        renew_at, failures = sub.renew_at, sub.failures
        if sub.renewing and sub.requested_at is not None:
            if now - sub.requested_at < policy.verify_timeout_seconds:
                return None, False, None
            # The renewal was not verified: try again, still before the lease ends.
            failures += 1
            renew_at = min(now + policy.backoff(failures), midway(now, sub.expires_at))
            if now < renew_at:
                return (
                    replace(sub, renewing=False, failures=failures, renew_at=renew_at),
                    False,
                    None,
                )
        elif now < renew_at:
            return None, False, None
        renewal = replace(
            sub, renewing=True, requested_at=now, failures=failures, renew_at=renew_at
        )
        return renewal, True, None
    if now < sub.next_attempt:
        return None, False, None
    # requesting, denied, failed, expired: (re)subscribe. Pending before the request is sent: a
    # hub may verify synchronously, before it answers the request.
    return replace(sub, state="pending", requested_at=now), True, None


def refused(sub: Subscription, now: float, policy: WebSubPolicy) -> Subscription | None:
    """After the hub refused a request (or it failed): a renewal is retried before the lease
    ends, a first request fails; None when neither was under way (verified meanwhile)."""
    if sub.state == "active" and sub.renewing:
        assert sub.expires_at is not None
        failures = sub.failures + 1
        renew_at = min(now + policy.backoff(failures), midway(now, sub.expires_at))
        return replace(sub, renewing=False, failures=failures, renew_at=renew_at)
    if sub.state == "pending":
        return failed(sub, now, policy)
    return None


def failed(sub: Subscription, now: float, policy: WebSubPolicy) -> Subscription:
    failures = sub.failures + 1
    return replace(
        sub,
        failures=failures,
        state="failed",
        renewing=False,
        next_attempt=now + policy.backoff(failures),
    )


def confirmed(
    sub: Subscription, now: float, lease: int, policy: WebSubPolicy
) -> Subscription | None:
    """Verified by the hub for ``lease`` seconds; None when no request was under way."""
    if sub.state not in ("pending", "active"):
        return None
    return replace(
        sub,
        state="active",
        verified=True,
        renewing=False,
        failures=0,
        expires_at=now + lease,
        renew_at=now + lease * policy.renew_fraction,
    )


def denied(sub: Subscription, now: float, policy: WebSubPolicy) -> Subscription:
    failures = sub.failures + 1
    return replace(
        sub,
        state="denied",
        failures=failures,
        renewing=False,
        next_attempt=now + policy.backoff(failures),
    )


def granted_lease(value: str | None, default: int) -> int:
    """The hub's ``hub.lease_seconds``, or ``default`` when it is missing or nonsense."""
    try:
        lease = int(value) if value else default
    except ValueError:
        return default
    return lease if lease > 0 else default


def midway(now: float, expires_at: float) -> float:
    """Half-way to the lease's end: a renewal retry never waits past it."""
    return now + max(0.0, expires_at - now) / 2
