"""The seams and values of the WebSub subscriber (:mod:`~dmzwatch.poller.websub`): the hub
client, where pushes go, what the poll loop asks, the timing policy and the signature check."""

from __future__ import annotations

import hashlib
import hmac
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from dmzwatch.poller.fetch import FetchResult

SubscriptionState = Literal["requesting", "pending", "active", "denied", "failed", "expired"]
SUBSCRIPTION_STATES: tuple[SubscriptionState, ...] = typing.get_args(SubscriptionState)
PushOutcome = Literal["ok", "bad_signature", "unknown_topic", "parse_error", "publish_failed"]
PUSH_OUTCOMES: tuple[PushOutcome, ...] = typing.get_args(PushOutcome)
SinkOutcome = Literal["ok", "parse_error"]

_DIGESTS: dict[str, Callable[[], typing.Any]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}


def signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` (``X-Hub-Signature: method=hex``) is the HMAC of ``body`` under
    ``secret`` with one of the recommendation's methods (sha1, sha256, sha384, sha512)."""
    if not header or "=" not in header:
        return False
    method, _, given = header.strip().partition("=")
    digest = _DIGESTS.get(method.strip().lower())
    if digest is None:
        return False
    expected = hmac.new(secret.encode(), body, digest).hexdigest()
    return hmac.compare_digest(expected, given.strip().lower())


@dataclass(frozen=True, slots=True)
class HubReply:
    """What a hub said to a (un)subscribe request: ``accepted`` for a 2xx; else ``outcome``
    (``rejected`` for another status, ``blocked`` by the SSRF guard, ``error``) and a message."""

    accepted: bool
    outcome: str
    status_code: int | None = None
    error: str | None = None


class HubClient(ABC):
    """Sends subscription requests to hubs.

    ``request`` POSTs ``form`` (``application/x-www-form-urlencoded``) to ``hub`` and returns a
    :class:`HubReply` for every network, address-policy and HTTP outcome; it raises only on a
    bug. It is called from the maintenance thread, outside the subscriber's lock, so a hub that
    verifies synchronously (calling the callback before answering) works. ``close`` is called
    once at shutdown.
    """

    @abstractmethod
    def request(self, hub: str, form: Mapping[str, str]) -> HubReply: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class PushSink(ABC):
    """Where pushed documents go: the poller, which publishes their new entries.

    ``receive`` is called from an HTTP server thread with a verified document of feed
    ``feed_id``; it returns once the new entries are acknowledged by the broker: ``ok``, or
    ``parse_error`` when the body held no entry. It raises ``KafkaError`` when the broker did not
    acknowledge (nothing is remembered; the hub is asked to retry).
    """

    @abstractmethod
    def receive(self, feed_id: str, body: bytes, content_type: str | None) -> SinkOutcome: ...


class FeedSubscriptions(ABC):
    """What the poll loop asks of push subscriptions.

    ``observe`` is called from the poll thread with every fetch that brought a new body (it
    sends no hub request; it may read and write the subscription store); ``poll_floor`` gives
    the shortest delay to the next poll of a feed (None: the normal schedule);
    ``take_fallbacks`` returns, once, the feeds that just lost their push subscription and
    should be polled now.
    """

    @abstractmethod
    def observe(self, feed_id: str, result: FetchResult) -> None: ...

    @abstractmethod
    def poll_floor(self, feed_id: str) -> float | None: ...

    @abstractmethod
    def take_fallbacks(self) -> set[str]: ...


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer for the callback server: status, body and the outcome counted."""

    status: int
    body: bytes = b""
    outcome: str = ""


@dataclass(frozen=True, slots=True)
class WebSubPolicy:
    """Timing of subscriptions, in seconds. ``lease_seconds`` is what we ask for (the hub's
    ``hub.lease_seconds`` at verification wins); renewal starts after ``renew_fraction`` of the
    granted lease; failures are retried after ``retry_initial_seconds`` doubling up to
    ``retry_max_seconds``; a subscribed feed is polled every ``safety_interval_seconds``."""

    lease_seconds: int = 86400
    renew_fraction: float = 0.8
    verify_timeout_seconds: float = 120.0
    retry_initial_seconds: float = 60.0
    retry_max_seconds: float = 3600.0
    safety_interval_seconds: float = 3600.0

    def __post_init__(self) -> None:
        if self.lease_seconds <= 0 or not 0 < self.renew_fraction < 1:
            raise ValueError("need lease_seconds > 0 and 0 < renew_fraction < 1")
        if not 0 < self.retry_initial_seconds <= self.retry_max_seconds:
            raise ValueError("need 0 < retry_initial_seconds <= retry_max_seconds")
        if self.verify_timeout_seconds <= 0 or self.safety_interval_seconds <= 0:
            raise ValueError("verify_timeout_seconds and safety_interval_seconds must be > 0")

    def backoff(self, failures: int) -> float:
        return min(
            self.retry_max_seconds, self.retry_initial_seconds * 2.0 ** min(failures - 1, 30)
        )
