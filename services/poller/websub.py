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

Replicas: subscriptions live in a :class:`~dmzwatch.poller.websub_store.SubscriptionStore`
(this process' memory, or Redis shared by the replicas), so whichever replica a hub's request
reaches answers it: a verification updates the stored state; a verified push is published by
the receiving replica through its own poller. That replica's memory of entries already sent is
not the owner's, so a push carrying the whole feed may republish entries the owner had sent:
dedup drops them by article id. Each subscription has one ``owner``, the only replica that
sends its requests and renewals: the holder of the feed's poll lease (``held``). When the lease
moves, the new holder finds the subscription in the store and takes it over (same callback,
same secret; no new subscription); the old holder stops renewing and unsubscribes nothing.
Of two replicas that both believe they hold the lease, the one that won it later owns it.

Thread-safe: the poll thread calls ``observe``/``poll_floor``/``take_fallbacks``, the HTTP
server's threads ``verify``/``push``, the maintenance thread ``tick``. Hub requests are made
outside the lock. Time is the injected :class:`~dmzwatch.shared.clock.Clock`: monotonic with
the in-memory store, Unix time with a shared one (:meth:`SubscriptionStore.time`).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace

import structlog

from dmzwatch.poller import websub_lifecycle as lifecycle
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
from dmzwatch.poller.websub_store import MemorySubscriptionStore, Subscription, SubscriptionStore
from dmzwatch.shared.clock import Clock
from dmzwatch.shared.errors import RetryableError

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
    "SubscriptionStore",
    "WebSubPolicy",
    "WebSubSubscriber",
    "signature_valid",
]


class WebSubSubscriber(FeedSubscriptions):
    """Subscriptions of every feed that advertises a hub; see the module docstring.

    ``callback_base`` is the public URL hubs reach the callback server at; each subscription's
    callback is ``<callback_base>/<token>``. ``token`` makes callback tokens and secrets (tests
    pass a predictable one). ``store`` holds the subscriptions (default: this process' memory);
    with replicas it is shared, ``replica_id`` names this one and ``held`` returns the feeds
    whose poll lease it holds, each with the Unix time it won that lease (thread-safe).
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
        store: SubscriptionStore | None = None,
        replica_id: str = "local",
        held: Callable[[], Mapping[str, float]] | None = None,
    ) -> None:
        self._base = callback_base.rstrip("/")
        self._hub = hub_client
        self._metrics = metrics
        self._clock = clock
        self.policy = policy or WebSubPolicy()
        self._token = token
        self._store = store or MemorySubscriptionStore()
        self.replica_id = replica_id
        self._held = held
        self._lock = threading.RLock()
        # The subscriptions this replica owns, as last read or written (metrics, poll floors).
        self._mine: dict[str, Subscription] = {}
        self._fallbacks: set[str] = set()
        self._sink: PushSink | None = None
        self._count_states()

    def attach(self, sink: PushSink) -> None:
        """Where verified pushes go (the poller; set once, before the callback server starts)."""
        self._sink = sink

    def callback_url(self, subscription: Subscription) -> str:
        return f"{self._base}/{subscription.callback_id}"

    def subscription(self, feed_id: str) -> Subscription | None:
        """The feed's subscription as stored, None when its feed advertises no hub."""
        return self._store.for_feeds([feed_id]).get(feed_id)

    # -- the poll loop ------------------------------------------------------------------------

    def observe(self, feed_id: str, result: FetchResult) -> None:
        advert = discover(result.body, result.url, result.headers, result.content_type)
        self.advertised(feed_id, advert)

    def advertised(self, feed_id: str, advert: Advert | None) -> None:
        """Record what the feed advertises now: a new or changed hub or topic starts a new
        subscription; no hub any more drops it (the hub's lease runs out; its pushes get 410).
        The same hub and topic keep the stored subscription, whoever subscribed it."""
        try:
            with self._lock:
                self._advertised(feed_id, advert)
        except RetryableError as exc:
            # The next fetch with a new body tries again; polling goes on meanwhile.
            log.warning("websub_store_unavailable", feed_id=feed_id, error=str(exc))

    def _advertised(self, feed_id: str, advert: Advert | None) -> None:
        current = self.subscription(feed_id)
        if current is not None and advert == Advert(current.hub, current.topic):
            return
        now = self._now()
        if current is not None:
            self._store.remove(current.callback_id)
            if current.state == "active":
                self._fallbacks.add(feed_id)
            self._mine.pop(feed_id, None)
            log.info("websub_hub_changed", feed_id=feed_id, hub=advert and advert.hub)
        if advert is not None:
            new = Subscription(
                feed_id=feed_id,
                hub=advert.hub,
                topic=advert.topic,
                callback_id=self._token(24),
                secret=self._token(32),
                next_attempt=now,
                owner=self.replica_id,
                owner_since=self._held_since(feed_id) or 0.0,
            )
            self._store.put(new, self._keep(new, now))
            self._remember(new)
            log.info("websub_hub_found", feed_id=feed_id, hub=advert.hub, topic=advert.topic)
        self._count_states()

    def poll_floor(self, feed_id: str) -> float | None:
        with self._lock:
            current = self._mine.get(feed_id)
            active = current is not None and current.state == "active"
        return self.policy.safety_interval_seconds if active else None

    def take_fallbacks(self) -> set[str]:
        with self._lock:
            taken, self._fallbacks = self._fallbacks, set()
        return taken

    # -- the maintenance thread ---------------------------------------------------------------

    def tick(self) -> None:
        """Send the subscribe requests that are due (new, retries and renewals), time out
        unverified requests and expire leases, for the subscriptions this replica owns. With
        ``held``, it owns those of the feeds whose poll lease it holds: it takes over one a
        replica that held the lease before subscribed, and leaves those whose lease it lost.
        Call about once a second."""
        held = None if self._held is None else dict(self._held())
        with self._lock:
            feed_ids = set(self._mine) | set(held or ())
            stored = self._store.for_feeds(feed_ids)
            requests: list[tuple[Subscription, dict[str, str]]] = []
            for feed_id in sorted(feed_ids):
                sub = self._claimed(feed_id, stored.get(feed_id), held)
                if sub is None:
                    continue
                request = self._step(sub)
                if request is not None:
                    requests.append(request)
            self._count_states()
        for sub, form in requests:
            reply = self._hub.request(sub.hub, form)
            self._metrics.requests[reply.outcome].inc()
            with self._lock:
                self._replied(sub, reply)
                self._count_states()

    def maintain(self, stopping: threading.Event, period_seconds: float = 1.0) -> None:
        """:meth:`tick` every ``period_seconds`` until ``stopping`` is set (a thread's body)."""
        while not stopping.wait(period_seconds):
            try:
                self.tick()
            except RetryableError as exc:
                log.warning("websub_store_unavailable", error=str(exc))
            except Exception:
                # A bug or a store outage here must not end push subscriptions silently:
                # polling goes on either way, and the next tick tries again.
                log.exception("websub_tick_failed")

    def _claimed(
        self, feed_id: str, sub: Subscription | None, held: Mapping[str, float] | None
    ) -> Subscription | None:
        """``sub`` when this replica is (or now becomes) its owner, else None (lock held)."""
        if sub is None:
            self._mine.pop(feed_id, None)  # forgotten by the replica that polled it last
            return None
        if held is None and sub.owner != self.replica_id:
            self._remember(sub)
            return None
        if held is None:
            return sub
        since = held.get(feed_id)
        if since is None:
            # The feed's lease moved on: its new holder renews; nothing is unsubscribed.
            self._mine.pop(feed_id, None)
            return None
        if sub.owner == self.replica_id:
            return sub
        if since <= sub.owner_since:
            self._remember(sub)  # won before the owner did: a stale lease of ours
            return None

        def take_over(current: Subscription) -> Subscription | None:
            if current.owner == self.replica_id or current.owner_since >= since:
                return None
            return replace(current, owner=self.replica_id, owner_since=since)

        now = self._now()
        taken = self._store.update(sub.callback_id, take_over, self._keep(sub, now))
        if taken is None or taken.owner != self.replica_id:
            if taken is not None:
                self._remember(taken)
            return None
        log.info(
            "websub_taken_over",
            feed_id=feed_id,
            hub=taken.hub,
            state=taken.state,
            previous_owner=sub.owner,
        )
        self._remember(taken)
        return taken

    def _step(self, sub: Subscription) -> tuple[Subscription, dict[str, str]] | None:
        """Store what ``sub`` needs now; the request to send, if any (lock held)."""
        now = self._now()
        outcome: list[tuple[bool, str | None]] = []

        def change(current: Subscription) -> Subscription | None:
            outcome.clear()
            if current.owner != self.replica_id:
                return None
            new, send, failure = lifecycle.due(current, now, self.policy)
            outcome.append((send, failure))
            return new

        new = self._store.update(sub.callback_id, change, self._keep(sub, now))
        if new is None:
            self._mine.pop(sub.feed_id, None)
            return None
        self._remember(new)
        send, failure = outcome[0] if outcome else (False, None)
        if failure is not None:
            self._log_failed(new, now, failure)
        return (new, self._form(new, "subscribe")) if send else None

    def _replied(self, sub: Subscription, reply: HubReply) -> None:
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
        now = self._now()

        def change(current: Subscription) -> Subscription | None:
            if current.owner != self.replica_id:
                return None
            return lifecycle.refused(current, now, self.policy)

        try:
            new = self._store.update(sub.callback_id, change, self._keep(sub, now))
        except RetryableError as exc:
            log.warning("websub_store_unavailable", feed_id=sub.feed_id, error=str(exc))
            return
        if new is None:
            return  # forgotten meanwhile (the feed's hub changed)
        if new.state == "failed" and sub.state == "pending":
            self._log_failed(new, now, reply.error or reply.outcome)
        self._remember(new)

    def _form(self, sub: Subscription, mode: str) -> dict[str, str]:
        return {
            "hub.mode": mode,
            "hub.topic": sub.topic,
            "hub.callback": self.callback_url(sub),
            "hub.lease_seconds": str(self.policy.lease_seconds),
            "hub.secret": sub.secret,
        }

    def _log_failed(self, sub: Subscription, now: float, reason: str) -> None:
        log.warning(
            "websub_subscribe_failed",
            feed_id=sub.feed_id,
            hub=sub.hub,
            reason=reason,
            retry_in_seconds=round(sub.next_attempt - now, 1),
        )

    def _remember(self, sub: Subscription) -> None:
        """Note ``sub`` as last seen (lock held): kept when this replica owns it; a feed whose
        subscription stops being active is handed back to the poll loop."""
        if sub.owner != self.replica_id:
            self._mine.pop(sub.feed_id, None)
            return
        before = self._mine.get(sub.feed_id)
        self._mine[sub.feed_id] = sub
        if before is not None and before.state == "active" and sub.state != "active":
            self._fallbacks.add(sub.feed_id)
            log.warning(
                "websub_fallback_to_polling", feed_id=sub.feed_id, hub=sub.hub, state=sub.state
            )

    def _now(self) -> float:
        return self._store.time(self._clock)

    def _held_since(self, feed_id: str) -> float | None:
        return None if self._held is None else self._held().get(feed_id)

    def _keep(self, sub: Subscription, now: float) -> float:
        """How long the store keeps a record written now: the lease plus a margin."""
        lease = max(float(self.policy.lease_seconds), (sub.expires_at or now) - now)
        return lease + self.policy.lease_seconds + self.policy.retry_max_seconds

    # -- the callback server ------------------------------------------------------------------

    def verify(self, callback_id: str, query: Mapping[str, str]) -> Answer:
        """Answer the hub's verification GET (``hub.mode`` subscribe, unsubscribe or denied),
        whichever replica subscribed: the state is updated in the store."""
        mode = query.get("hub.mode", "")
        topic = query.get("hub.topic", "")
        try:
            with self._lock:
                sub, answer = self._verify(callback_id, mode, topic, query)
                self._count_states()
        except RetryableError as exc:
            log.warning("websub_store_unavailable", error=str(exc))
            sub, answer = None, Answer(503, b"try again\n", "rejected")
        self._metrics.verifications[answer.outcome].inc()
        if answer.outcome == "rejected":
            log.warning("websub_verification_rejected", mode=mode, known_callback=sub is not None)
        return answer

    def _verify(
        self, callback_id: str, mode: str, topic: str, query: Mapping[str, str]
    ) -> tuple[Subscription | None, Answer]:
        sub = self._store.get(callback_id)
        if sub is None or sub.topic != topic:
            return sub, Answer(404, b"unknown subscription\n", "rejected")
        if mode == "subscribe" and query.get("hub.challenge"):
            return sub, self._confirm(sub, query)
        if mode == "denied":
            return sub, self._denied(sub, query.get("hub.reason", ""))
        # We never ask to unsubscribe a live callback: a forgotten one is unknown above.
        return sub, Answer(404, b"not requested\n", "rejected")

    def _confirm(self, sub: Subscription, query: Mapping[str, str]) -> Answer:
        now = self._now()
        lease = lifecycle.granted_lease(query.get("hub.lease_seconds"), self.policy.lease_seconds)
        confirmed: list[bool] = []

        def confirm(current: Subscription) -> Subscription | None:
            confirmed.clear()
            new = lifecycle.confirmed(current, now, lease, self.policy)
            confirmed.extend([True] if new is not None else [])
            return new

        keep = lease + self.policy.lease_seconds + self.policy.retry_max_seconds
        new = self._store.update(sub.callback_id, confirm, keep)
        if new is None or not confirmed:
            return Answer(404, b"not requested\n", "rejected")
        self._remember(new)
        log.info(
            "websub_subscribed",
            feed_id=new.feed_id,
            hub=new.hub,
            lease_seconds=lease,
            owner=new.owner,
        )
        return Answer(200, query["hub.challenge"].encode(), "confirmed")

    def _denied(self, sub: Subscription, reason: str) -> Answer:
        now = self._now()

        def deny(current: Subscription) -> Subscription:
            return lifecycle.denied(current, now, self.policy)

        new = self._store.update(sub.callback_id, deny, self._keep(sub, now))
        log.warning("websub_denied", feed_id=sub.feed_id, hub=sub.hub, reason=reason[:200])
        if new is not None:
            self._remember(new)
        return Answer(200, b"", "denied")

    def push(self, callback_id: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        """Handle a content distribution POST; ``headers`` have lower-case names. Any replica
        publishes a verified push itself, through its own poller (the owner's memory of entries
        sent is not shared: an entry it already sent is published again and dropped by dedup)."""
        try:
            sub = self._store.get(callback_id)
        except RetryableError as exc:
            log.warning("websub_store_unavailable", error=str(exc))
            return self._pushed("publish_failed", Answer(503, b"try again\n"), None)
        if sub is None or not sub.verified:
            feed_id = None if sub is None else sub.feed_id
            return self._pushed("unknown_topic", Answer(410, b"gone\n"), feed_id)
        feed_id = sub.feed_id
        if not signature_valid(sub.secret, body, headers.get("x-hub-signature")):
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
        """The gauge counts the subscriptions this replica owns (summed over replicas: all)."""
        counts = dict.fromkeys(SUBSCRIPTION_STATES, 0)
        for sub in self._mine.values():
            counts[sub.state] += 1
        for state, count in counts.items():
            self._metrics.subscriptions[state].set(count)

    def close(self) -> None:
        self._hub.close()
