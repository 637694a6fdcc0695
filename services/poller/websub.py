"""WebSub subscriber (W3C WebSub recommendation, subscriber side): pushes instead of polls.

A poll that finds a hub (:mod:`~dmzwatch.poller.websub_discovery`) hands it to
:meth:`WebSubSubscriber.observe`; :meth:`~WebSubSubscriber.tick` (a maintenance thread, about
once a second) then asks the hub to subscribe the topic to a callback URL of its own, with a
lease and a secret. The hub verifies the intent by calling the callback
(:meth:`~WebSubSubscriber.verify`) and from then on POSTs each new version of the feed to it
(:meth:`~WebSubSubscriber.push`), which publishes its new entries exactly as a poll would
(:class:`PushSink`, i.e. the poller itself: same de-duplication, same articles, same acks).

Each feed's subscription moves through these states (``dmzwatch_poller_websub_subscriptions``):

- ``requesting``: a subscribe request is due (new hub, or retrying after a failure);
- ``pending``: the request was sent; the hub has not verified it yet;
- ``active``: verified; the lease runs until ``expires_at``. It is renewed (the same request
  again, same callback and secret) once ``renew_fraction`` of the lease has passed;
- ``denied``: the hub refused (``hub.mode=denied``); retried after a backoff;
- ``failed``: the request failed (network, SSRF guard, non-2xx) or was not verified within
  ``verify_timeout_seconds``; retried after a backoff;
- ``expired``: the lease ran out without a verified renewal; a new request follows at once.

Only ``active`` feeds are pushed to; every other state means polling at the feed's normal
interval. A feed that leaves ``active`` is handed back to the poll loop at once
(:meth:`~WebSubSubscriber.take_fallbacks`), and an ``active`` feed is still polled, at the
slower ``safety_interval_seconds``, in case a push is lost.

Callbacks are unguessable per-subscription paths (``<callback base>/<token>``); a callback that
names no subscription is answered 404 (verification) or 410 Gone (content, so the hub stops).
A push whose ``X-Hub-Signature`` does not match the secret is dropped (logged, counted) but
still answered 2xx, as the recommendation allows, so that the sender learns nothing.

Thread-safe: the poll thread calls ``observe``/``poll_floor``/``take_fallbacks``, the HTTP
server's threads ``verify``/``push``, the maintenance thread ``tick``. Hub requests are made
outside the lock. Time is the injected :class:`~dmzwatch.shared.clock.Clock` (monotonic).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import structlog

from dmzwatch.poller.fetch import FetchResult
from dmzwatch.poller.metrics import WebSubMetrics
from dmzwatch.poller.websub_contract import (
    PUSH_OUTCOMES,
    SUBSCRIPTION_STATES,
    Answer,
    FeedSubscriptions,
    HubClient,
    HubReply,
    PushOutcome,
    PushSink,
    SinkOutcome,
    SubscriptionState,
    WebSubPolicy,
    signature_valid,
)
from dmzwatch.poller.websub_discovery import Advert, discover
from dmzwatch.shared.clock import Clock

log = structlog.get_logger(__name__)

__all__ = [
    "PUSH_OUTCOMES",
    "SUBSCRIPTION_STATES",
    "Answer",
    "FeedSubscriptions",
    "HubClient",
    "HubReply",
    "PushOutcome",
    "PushSink",
    "SinkOutcome",
    "Subscription",
    "SubscriptionState",
    "WebSubPolicy",
    "WebSubSubscriber",
    "signature_valid",
]


@dataclass(slots=True)
class Subscription:
    """One feed's subscription (mutable; owned by the subscriber, read under its lock)."""

    feed_id: str
    hub: str
    topic: str
    callback_id: str
    secret: str
    state: SubscriptionState = "requesting"
    next_attempt: float = 0.0
    requested_at: float | None = None
    expires_at: float | None = None
    renew_at: float | None = None
    renewing: bool = False
    verified: bool = False
    failures: int = 0


@dataclass(slots=True)
class _Request:
    subscription: Subscription
    form: dict[str, str] = field(default_factory=dict)


class WebSubSubscriber(FeedSubscriptions):
    """Subscriptions of every feed that advertises a hub; see the module docstring.

    ``callback_base`` is the public URL hubs reach the callback server at; each subscription's
    callback is ``<callback_base>/<token>``. ``token`` makes callback tokens and secrets (tests
    pass a predictable one).
    """

    def __init__(
        self,
        *,
        callback_base: str,
        hub_client: HubClient,
        metrics: WebSubMetrics,
        clock: Clock,
        policy: WebSubPolicy | None = None,
        token: Callable[[int], str] = secrets.token_urlsafe,
    ) -> None:
        self._base = callback_base.rstrip("/")
        self._hub = hub_client
        self._metrics = metrics
        self._clock = clock
        self.policy = policy or WebSubPolicy()
        self._token = token
        self._lock = threading.Lock()
        self._by_feed: dict[str, Subscription] = {}
        self._by_callback: dict[str, Subscription] = {}
        self._fallbacks: set[str] = set()
        self._sink: PushSink | None = None
        self._count_states()

    def attach(self, sink: PushSink) -> None:
        """Where verified pushes go (the poller; set once, before the callback server starts)."""
        self._sink = sink

    def callback_url(self, subscription: Subscription) -> str:
        return f"{self._base}/{subscription.callback_id}"

    def subscription(self, feed_id: str) -> Subscription | None:
        """A copy of the feed's subscription, None when its feed advertises no hub."""
        with self._lock:
            current = self._by_feed.get(feed_id)
            return None if current is None else replace(current)

    # -- the poll loop ------------------------------------------------------------------------

    def observe(self, feed_id: str, result: FetchResult) -> None:
        advert = discover(result.body, result.url, result.headers, result.content_type)
        self.advertised(feed_id, advert)

    def advertised(self, feed_id: str, advert: Advert | None) -> None:
        """Record what the feed advertises now: a new or changed hub or topic starts a new
        subscription; no hub any more drops it (the hub's lease runs out; its pushes get 410)."""
        with self._lock:
            current = self._by_feed.get(feed_id)
            if current is not None and advert == Advert(current.hub, current.topic):
                return
            if current is not None:
                self._forget(current)
                log.info("websub_hub_changed", feed_id=feed_id, hub=advert and advert.hub)
            if advert is not None:
                new = Subscription(
                    feed_id=feed_id,
                    hub=advert.hub,
                    topic=advert.topic,
                    callback_id=self._token(24),
                    secret=self._token(32),
                    next_attempt=self._clock.monotonic(),
                )
                self._by_feed[feed_id] = new
                self._by_callback[new.callback_id] = new
                log.info("websub_hub_found", feed_id=feed_id, hub=advert.hub, topic=advert.topic)
            self._count_states()

    def poll_floor(self, feed_id: str) -> float | None:
        with self._lock:
            current = self._by_feed.get(feed_id)
            active = current is not None and current.state == "active"
        return self.policy.safety_interval_seconds if active else None

    def take_fallbacks(self) -> set[str]:
        with self._lock:
            taken, self._fallbacks = self._fallbacks, set()
        return taken

    # -- the maintenance thread ---------------------------------------------------------------

    def tick(self) -> None:
        """Send the subscribe requests that are due (new, retries and renewals), time out
        unverified requests and expire leases. Call about once a second."""
        now = self._clock.monotonic()
        requests: list[_Request] = []
        with self._lock:
            for sub in self._by_feed.values():
                request = self._due(sub, now)
                if request is not None:
                    requests.append(request)
            self._count_states()
        for request in requests:
            sub = request.subscription
            reply = self._hub.request(sub.hub, request.form)
            self._metrics.requests[reply.outcome].inc()
            with self._lock:
                self._replied(sub, reply)
                self._count_states()

    def maintain(self, stopping: threading.Event, period_seconds: float = 1.0) -> None:
        """:meth:`tick` every ``period_seconds`` until ``stopping`` is set (a thread's body)."""
        while not stopping.wait(period_seconds):
            try:
                self.tick()
            except Exception:
                # A bug here must not end push subscriptions silently: polling goes on either
                # way, and the next tick tries again.
                log.exception("websub_tick_failed")

    def _due(self, sub: Subscription, now: float) -> _Request | None:
        """What ``sub`` needs at ``now`` (lock held): a request to send, or None."""
        policy = self.policy
        if sub.state == "pending" and sub.requested_at is not None:
            if now - sub.requested_at >= policy.verify_timeout_seconds:
                self._fail(sub, now, "no verification from the hub")
            return None
        if sub.state == "active":
            assert sub.expires_at is not None
            assert sub.renew_at is not None
            if now >= sub.expires_at:
                sub.state = "expired"
                sub.renewing = False
                sub.next_attempt = now
                self._fall_back(sub, "lease expired")
                return None
            if sub.renewing and sub.requested_at is not None:
                if now - sub.requested_at < policy.verify_timeout_seconds:
                    return None
                # The renewal was not verified: try again, still before the lease ends.
                sub.renewing = False
                sub.failures += 1
                sub.renew_at = min(now + policy.backoff(sub.failures), _midway(now, sub))
            if now < sub.renew_at:
                return None
            sub.renewing = True
            sub.requested_at = now
            log.info("websub_renewing", feed_id=sub.feed_id, hub=sub.hub)
            return _Request(sub, self._form(sub, "subscribe"))
        if now < sub.next_attempt:
            return None
        # requesting, denied, failed, expired: (re)subscribe. Pending before the request is
        # sent: a hub may verify synchronously, before it answers the request.
        sub.state = "pending"
        sub.requested_at = now
        return _Request(sub, self._form(sub, "subscribe"))

    def _replied(self, sub: Subscription, reply: HubReply) -> None:
        if self._by_callback.get(sub.callback_id) is not sub:
            return  # forgotten meanwhile (the feed's hub changed)
        now = self._clock.monotonic()
        if reply.accepted:
            log.info("websub_requested", feed_id=sub.feed_id, hub=sub.hub, state=sub.state)
            return
        log.warning(
            "websub_request_failed",
            feed_id=sub.feed_id,
            hub=sub.hub,
            outcome=reply.outcome,
            status=reply.status_code,
            error=reply.error,
        )
        if sub.state == "active" and sub.renewing:
            sub.renewing = False
            sub.failures += 1
            sub.renew_at = min(now + self.policy.backoff(sub.failures), _midway(now, sub))
        elif sub.state == "pending":
            self._fail(sub, now, reply.error or reply.outcome)

    def _form(self, sub: Subscription, mode: str) -> dict[str, str]:
        return {
            "hub.mode": mode,
            "hub.topic": sub.topic,
            "hub.callback": self.callback_url(sub),
            "hub.lease_seconds": str(self.policy.lease_seconds),
            "hub.secret": sub.secret,
        }

    def _fail(self, sub: Subscription, now: float, reason: str) -> None:
        sub.failures += 1
        sub.state = "failed"
        sub.next_attempt = now + self.policy.backoff(sub.failures)
        log.warning(
            "websub_subscribe_failed",
            feed_id=sub.feed_id,
            hub=sub.hub,
            reason=reason,
            retry_in_seconds=round(sub.next_attempt - now, 1),
        )

    def _fall_back(self, sub: Subscription, reason: str) -> None:
        self._fallbacks.add(sub.feed_id)
        log.warning("websub_fallback_to_polling", feed_id=sub.feed_id, hub=sub.hub, reason=reason)

    def _forget(self, sub: Subscription) -> None:
        if sub.state == "active":
            self._fallbacks.add(sub.feed_id)
        del self._by_feed[sub.feed_id]
        self._by_callback.pop(sub.callback_id, None)

    # -- the callback server ------------------------------------------------------------------

    def verify(self, callback_id: str, query: Mapping[str, str]) -> Answer:
        """Answer the hub's verification GET (``hub.mode`` subscribe, unsubscribe or denied)."""
        mode = query.get("hub.mode", "")
        topic = query.get("hub.topic", "")
        with self._lock:
            sub = self._by_callback.get(callback_id)
            known = sub is not None and sub.topic == topic
            if sub is None or not known:
                answer = Answer(404, b"unknown subscription\n", "rejected")
            elif mode == "subscribe" and query.get("hub.challenge"):
                answer = self._confirm(sub, query)
            elif mode == "denied":
                answer = self._denied(sub, query.get("hub.reason", ""))
            else:
                # We never ask to unsubscribe a live callback: a forgotten one is unknown above.
                answer = Answer(404, b"not requested\n", "rejected")
            self._count_states()
        self._metrics.verifications[answer.outcome].inc()
        if answer.outcome == "rejected":
            log.warning("websub_verification_rejected", mode=mode, known_callback=sub is not None)
        return answer

    def _confirm(self, sub: Subscription, query: Mapping[str, str]) -> Answer:
        if sub.state not in ("pending", "active"):
            return Answer(404, b"not requested\n", "rejected")
        now = self._clock.monotonic()
        lease = _lease(query.get("hub.lease_seconds"), self.policy.lease_seconds)
        sub.state = "active"
        sub.verified = True
        sub.renewing = False
        sub.failures = 0
        sub.expires_at = now + lease
        sub.renew_at = now + lease * self.policy.renew_fraction
        log.info("websub_subscribed", feed_id=sub.feed_id, hub=sub.hub, lease_seconds=lease)
        return Answer(200, query["hub.challenge"].encode(), "confirmed")

    def _denied(self, sub: Subscription, reason: str) -> Answer:
        now = self._clock.monotonic()
        was_active = sub.state == "active"
        sub.failures += 1
        sub.state = "denied"
        sub.renewing = False
        sub.next_attempt = now + self.policy.backoff(sub.failures)
        log.warning("websub_denied", feed_id=sub.feed_id, hub=sub.hub, reason=reason[:200])
        if was_active:
            self._fall_back(sub, "denied by the hub")
        return Answer(200, b"", "denied")

    def push(self, callback_id: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        """Handle a content distribution POST; ``headers`` have lower-case names."""
        with self._lock:
            sub = self._by_callback.get(callback_id)
            feed_id = None if sub is None else sub.feed_id
            verified = sub is not None and sub.verified
            secret = None if sub is None else sub.secret
        if sub is None or not verified or feed_id is None or secret is None:
            return self._pushed("unknown_topic", Answer(410, b"gone\n"), feed_id)
        if not signature_valid(secret, body, headers.get("x-hub-signature")):
            # Acknowledged all the same (the recommendation allows it): a forger learns nothing.
            return self._pushed("bad_signature", Answer(202), feed_id)
        if self._sink is None:
            raise RuntimeError("WebSubSubscriber.attach(sink) was not called")
        started = self._clock.monotonic()
        try:
            outcome = self._sink.receive(feed_id, body, headers.get("content-type"))
        except Exception as exc:  # KafkaError: the hub retries the delivery later
            log.warning("websub_push_not_published", feed_id=feed_id, error=repr(exc))
            return self._pushed("publish_failed", Answer(503, b"try again\n"), feed_id)
        if outcome == "ok":
            self._metrics.push_seconds.observe(self._clock.monotonic() - started)
        return self._pushed(outcome, Answer(200 if outcome == "ok" else 202), feed_id)

    def _pushed(self, outcome: PushOutcome, answer: Answer, feed_id: str | None) -> Answer:
        self._metrics.pushes[outcome].inc()
        if outcome != "ok":
            log.warning("websub_push_dropped", outcome=outcome, feed_id=feed_id)
        return Answer(answer.status, answer.body, outcome)

    def _count_states(self) -> None:
        counts = dict.fromkeys(SUBSCRIPTION_STATES, 0)
        for sub in self._by_feed.values():
            counts[sub.state] += 1
        for state, count in counts.items():
            self._metrics.subscriptions[state].set(count)

    def close(self) -> None:
        self._hub.close()


def _lease(value: str | None, default: int) -> int:
    try:
        lease = int(value) if value else default
    except ValueError:
        return default
    return lease if lease > 0 else default


def _midway(now: float, sub: Subscription) -> float:
    """Half-way to the lease's end: a renewal retry never waits past it."""
    assert sub.expires_at is not None
    return now + max(0.0, sub.expires_at - now) / 2
