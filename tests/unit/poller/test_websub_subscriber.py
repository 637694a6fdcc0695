"""The WebSub subscription state machine on a manual clock: subscribe, verify, renew before the
lease ends, denial, failures and expiry falling back to polling, and push handling."""

from __future__ import annotations

import hashlib
import hmac
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pytest
from kafka.errors import KafkaTimeoutError
from prometheus_client import CollectorRegistry

from dmzwatch.poller import metrics as poller_metrics
from dmzwatch.poller.metrics import WebSubMetrics
from dmzwatch.poller.websub import (
    PUSH_OUTCOMES,
    SUBSCRIPTION_STATES,
    HubClient,
    HubReply,
    PushSink,
    SinkOutcome,
    WebSubPolicy,
    WebSubSubscriber,
)
from dmzwatch.poller.websub_discovery import Advert
from dmzwatch.shared.clock import ManualClock

HUB = "https://hub.example/"
TOPIC = "https://news.example/feed.xml"
BASE = "https://poller.example/websub"
POLICY = WebSubPolicy(
    lease_seconds=1000,
    renew_fraction=0.8,
    verify_timeout_seconds=30,
    retry_initial_seconds=60,
    retry_max_seconds=600,
    safety_interval_seconds=3600,
)


@dataclass
class FakeHub(HubClient):
    """Records requests; answers with ``reply`` (or runs ``during`` first, as a hub verifying
    synchronously would)."""

    reply: HubReply = field(default_factory=lambda: HubReply(True, "accepted", 202))
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    during: Callable[[dict[str, str]], None] | None = None

    def request(self, hub: str, form: Mapping[str, str]) -> HubReply:
        self.requests.append((hub, dict(form)))
        if self.during is not None:
            self.during(dict(form))
        return self.reply


@dataclass
class FakeSink(PushSink):
    received: list[tuple[str, bytes, str | None]] = field(default_factory=list)
    outcome: SinkOutcome = "ok"
    error: Exception | None = None

    def receive(self, feed_id: str, body: bytes, content_type: str | None) -> SinkOutcome:
        if self.error is not None:
            raise self.error
        self.received.append((feed_id, body, content_type))
        return self.outcome


@dataclass
class Rig:
    subscriber: WebSubSubscriber
    hub: FakeHub
    sink: FakeSink
    clock: ManualClock
    registry: CollectorRegistry

    def sample(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)

    def state(self, feed_id: str = "f") -> str | None:
        sub = self.subscriber.subscription(feed_id)
        return None if sub is None else sub.state

    def last_form(self) -> dict[str, str]:
        return self.hub.requests[-1][1]

    def callback_id(self, feed_id: str = "f") -> str:
        sub = self.subscriber.subscription(feed_id)
        assert sub is not None
        return sub.callback_id

    def confirm(self, lease: int | None = None, challenge: str = "c-123") -> tuple[int, bytes]:
        query = {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.challenge": challenge}
        if lease is not None:
            query["hub.lease_seconds"] = str(lease)
        answer = self.subscriber.verify(self.callback_id(), query)
        return answer.status, answer.body

    def push(self, body: bytes, signature: str | None, callback: str | None = None) -> int:
        headers = {"content-type": "application/rss+xml"}
        if signature is not None:
            headers["x-hub-signature"] = signature
        return self.subscriber.push(callback or self.callback_id(), body, headers).status

    def sign(self, body: bytes, method: str = "sha256") -> str:
        sub = self.subscriber.subscription("f")
        assert sub is not None
        return f"{method}={hmac.new(sub.secret.encode(), body, method).hexdigest()}"


def rig(hub: FakeHub | None = None) -> Rig:
    clock = ManualClock()
    registry = CollectorRegistry()
    counter = itertools.count()
    sink = FakeSink()
    hub = hub or FakeHub()
    subscriber = WebSubSubscriber(
        callback_base=BASE + "/",
        hub_client=hub,
        metrics=WebSubMetrics(registry),
        clock=clock,
        policy=POLICY,
        token=lambda n: f"tok{next(counter)}-{n}",
    )
    subscriber.attach(sink)
    return Rig(subscriber, hub, sink, clock, registry)


def active_rig() -> Rig:
    r = rig()
    r.subscriber.advertised("f", Advert(HUB, TOPIC))
    r.subscriber.tick()
    assert r.confirm() == (200, b"c-123")
    return r


def test_the_metric_label_sets_match_the_states_and_outcomes() -> None:
    assert poller_metrics.WEBSUB_STATES == SUBSCRIPTION_STATES
    assert poller_metrics.WEBSUB_PUSH_OUTCOMES == PUSH_OUTCOMES


def test_an_advertised_hub_gets_a_subscribe_request_with_callback_lease_and_secret() -> None:
    r = rig()
    r.subscriber.advertised("f", Advert(HUB, TOPIC))
    assert r.state() == "requesting" and r.hub.requests == []
    r.subscriber.tick()
    hub, form = r.hub.requests[0]
    assert hub == HUB
    assert form["hub.mode"] == "subscribe" and form["hub.topic"] == TOPIC
    assert form["hub.callback"] == f"{BASE}/{r.callback_id()}"
    assert form["hub.lease_seconds"] == "1000"
    assert 0 < len(form["hub.secret"]) < 200
    assert r.state() == "pending"
    assert r.sample("dmzwatch_poller_websub_requests_total", outcome="accepted") == 1
    assert r.sample("dmzwatch_poller_websub_subscriptions", state="pending") == 1
    # Not verified yet: the feed is polled at its normal interval.
    assert r.subscriber.poll_floor("f") is None


def test_the_same_advert_again_keeps_the_subscription() -> None:
    r = active_rig()
    before = r.callback_id()
    r.subscriber.advertised("f", Advert(HUB, TOPIC))
    r.subscriber.tick()
    assert r.callback_id() == before and r.state() == "active" and len(r.hub.requests) == 1


def test_verification_echoes_the_challenge_and_activates_the_lease() -> None:
    r = rig()
    r.subscriber.advertised("f", Advert(HUB, TOPIC))
    r.subscriber.tick()
    assert r.confirm(lease=500) == (200, b"c-123")
    sub = r.subscriber.subscription("f")
    assert sub is not None and sub.state == "active"
    assert sub.expires_at == 500 and sub.renew_at == 400  # the hub's lease wins
    assert r.subscriber.poll_floor("f") == 3600
    assert r.sample("dmzwatch_poller_websub_verifications_total", outcome="confirmed") == 1
    assert r.sample("dmzwatch_poller_websub_subscriptions", state="active") == 1
    assert r.sample("dmzwatch_poller_websub_subscriptions", state="pending") == 0


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.topic": "https://other.example/", "hub.challenge": "x"},
        {"hub.mode": "unsubscribe", "hub.topic": TOPIC, "hub.challenge": "x"},
        {"hub.mode": "subscribe", "hub.topic": TOPIC},
        {"hub.mode": "bogus", "hub.topic": TOPIC, "hub.challenge": "x"},
    ],
)
def test_verification_of_anything_not_requested_is_refused(query: dict[str, str]) -> None:
    r = rig()
    r.subscriber.advertised("f", Advert(HUB, TOPIC))
    r.subscriber.tick()
    answer = r.subscriber.verify(r.callback_id(), query)
    assert answer.status == 404 and b"x" not in answer.body
    assert r.state() == "pending"
    assert r.sample("dmzwatch_poller_websub_verifications_total", outcome="rejected") == 1


def test_verification_for_an_unknown_callback_is_refused() -> None:
    r = rig()
    query = {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.challenge": "x"}
    assert r.subscriber.verify("nobody", query).status == 404


def test_verification_before_the_request_was_sent_is_refused() -> None:
    r = rig()
    r.subscriber.advertised("f", Advert(HUB, TOPIC))
    assert r.confirm()[0] == 404 and r.state() == "requesting"


def test_a_hub_that_verifies_before_answering_the_request_is_understood() -> None:
    r = rig()

    def verify_now(form: dict[str, str]) -> None:
        callback = form["hub.callback"].rsplit("/", 1)[-1]
        query = {"hub.mode": "subscribe", "hub.topic": form["hub.topic"], "hub.challenge": "s"}
        assert r.subscriber.verify(callback, query).body == b"s"

    r.hub.during = verify_now
    r.subscriber.advertised("f", Advert(HUB, TOPIC))
    r.subscriber.tick()
    assert r.state() == "active"


def test_the_lease_is_renewed_before_it_expires_with_the_same_callback_and_secret() -> None:
    r = active_rig()
    first = r.last_form()
    r.clock.advance(799)
    r.subscriber.tick()
    assert len(r.hub.requests) == 1
    r.clock.advance(1)
    r.subscriber.tick()
    assert len(r.hub.requests) == 2
    renewal = r.last_form()
    assert renewal["hub.callback"] == first["hub.callback"]
    assert renewal["hub.secret"] == first["hub.secret"]
    assert r.state() == "active"  # still pushed to while the renewal is verified
    r.clock.advance(5)
    assert r.confirm() == (200, b"c-123")
    sub = r.subscriber.subscription("f")
    assert sub is not None and sub.expires_at == 805 + 1000
    r.clock.advance(300)
    r.subscriber.tick()
    assert len(r.hub.requests) == 2 and r.subscriber.take_fallbacks() == set()


def test_a_failed_renewal_is_retried_before_the_lease_ends() -> None:
    r = active_rig()
    r.hub.reply = HubReply(False, "rejected", 500, "HTTP 500")
    r.clock.advance(800)
    r.subscriber.tick()
    assert len(r.hub.requests) == 2 and r.state() == "active"
    sub = r.subscriber.subscription("f")
    assert sub is not None and sub.renew_at is not None and 800 < sub.renew_at < 1000
    r.clock.advance(sub.renew_at - 800)
    r.subscriber.tick()
    assert len(r.hub.requests) == 3


def test_an_expired_lease_falls_back_to_polling_and_resubscribes() -> None:
    r = active_rig()
    r.hub.reply = HubReply(False, "error", None, "cannot connect")
    # Renewals keep failing until the lease ends.
    for _ in range(20):
        r.clock.advance(50)
        r.subscriber.tick()
    assert r.state() != "active"
    assert r.subscriber.take_fallbacks() == {"f"}
    assert r.subscriber.take_fallbacks() == set()  # handed over once
    assert r.subscriber.poll_floor("f") is None
    r.hub.reply = HubReply(True, "accepted", 202)
    r.clock.advance(600)
    r.subscriber.tick()
    assert r.state() == "pending"
    assert r.confirm()[0] == 200 and r.state() == "active"


def test_expiry_is_its_own_state_then_a_new_request_follows_at_once() -> None:
    r = active_rig()
    r.hub.reply = HubReply(True, "accepted", 202)  # accepted, but the hub never verifies
    r.clock.advance(800)
    r.subscriber.tick()  # renewal sent
    r.clock.advance(200)
    r.subscriber.tick()  # lease over
    assert r.state() == "expired"
    assert r.sample("dmzwatch_poller_websub_subscriptions", state="expired") == 1
    assert r.subscriber.take_fallbacks() == {"f"}
    r.subscriber.tick()
    assert r.state() == "pending" and len(r.hub.requests) == 3


def test_denial_falls_back_to_polling_and_retries_after_a_backoff() -> None:
    r = active_rig()
    answer = r.subscriber.verify(
        r.callback_id(), {"hub.mode": "denied", "hub.topic": TOPIC, "hub.reason": "no"}
    )
    assert answer.status == 200
    assert r.state() == "denied" and r.subscriber.poll_floor("f") is None
    assert r.subscriber.take_fallbacks() == {"f"}
    assert r.sample("dmzwatch_poller_websub_verifications_total", outcome="denied") == 1
    r.clock.advance(59)
    r.subscriber.tick()
    assert len(r.hub.requests) == 1
    r.clock.advance(1)
    r.subscriber.tick()
    assert len(r.hub.requests) == 2 and r.state() == "pending"


def test_a_rejected_request_fails_and_backs_off_doubling() -> None:
    r = rig(FakeHub(reply=HubReply(False, "rejected", 400, "HTTP 400")))
    r.subscriber.advertised("f", Advert(HUB, TOPIC))
    r.subscriber.tick()
    assert r.state() == "failed"
    assert r.sample("dmzwatch_poller_websub_requests_total", outcome="rejected") == 1
    waits = []
    for _ in range(5):
        sub = r.subscriber.subscription("f")
        assert sub is not None
        waits.append(sub.next_attempt - r.clock.monotonic())
        r.clock.advance(waits[-1])
        r.subscriber.tick()
    assert waits == [60, 120, 240, 480, 600]


def test_an_unverified_request_times_out_as_failed() -> None:
    r = rig()
    r.subscriber.advertised("f", Advert(HUB, TOPIC))
    r.subscriber.tick()
    r.clock.advance(29)
    r.subscriber.tick()
    assert r.state() == "pending"
    r.clock.advance(1)
    r.subscriber.tick()
    assert r.state() == "failed"
    assert r.subscriber.take_fallbacks() == set()  # it was never pushed to: polling all along


def test_a_changed_hub_starts_a_new_subscription_and_the_old_callback_is_gone() -> None:
    r = active_rig()
    old = r.callback_id()
    r.subscriber.advertised("f", Advert("https://hub2.example/", TOPIC))
    assert r.callback_id() != old and r.state() == "requesting"
    assert r.subscriber.take_fallbacks() == {"f"}
    assert r.push(b"x", None, callback=old) == 410


def test_a_feed_that_stops_advertising_a_hub_is_polled_again() -> None:
    r = active_rig()
    r.subscriber.advertised("f", None)
    assert r.subscriber.subscription("f") is None
    assert r.subscriber.take_fallbacks() == {"f"}
    assert r.sample("dmzwatch_poller_websub_subscriptions", state="active") == 0


def test_a_signed_push_reaches_the_sink() -> None:
    r = active_rig()
    body = b"<rss/>"
    assert r.push(body, r.sign(body)) == 200
    assert r.sink.received == [("f", body, "application/rss+xml")]
    assert r.sample("dmzwatch_poller_websub_pushes_total", outcome="ok") == 1


@pytest.mark.parametrize(
    "signature",
    [None, "sha256=00", "md5=abc", "garbage", "sha256=" + "0" * 64],
)
def test_a_push_with_a_bad_signature_is_dropped_but_acknowledged(signature: str | None) -> None:
    r = active_rig()
    assert r.push(b"<rss/>", signature) == 202
    assert r.sink.received == []
    assert r.sample("dmzwatch_poller_websub_pushes_total", outcome="bad_signature") == 1


def test_a_push_signed_for_another_body_is_dropped() -> None:
    r = active_rig()
    assert r.push(b"<rss>forged</rss>", r.sign(b"<rss/>")) == 202
    assert r.sink.received == []


def test_a_push_to_an_unknown_or_unverified_callback_is_gone() -> None:
    r = rig()
    assert r.push(b"x", None, callback="nobody") == 410
    r.subscriber.advertised("f", Advert(HUB, TOPIC))
    r.subscriber.tick()
    body = b"<rss/>"
    assert r.push(body, r.sign(body)) == 410
    assert r.sink.received == []
    assert r.sample("dmzwatch_poller_websub_pushes_total", outcome="unknown_topic") == 2


def test_an_unparsable_push_is_counted() -> None:
    r = active_rig()
    r.sink.outcome = "parse_error"
    body = b"not a feed"
    assert r.push(body, r.sign(body)) == 202
    assert r.sample("dmzwatch_poller_websub_pushes_total", outcome="parse_error") == 1


def test_a_push_the_broker_did_not_ack_asks_the_hub_to_retry() -> None:
    r = active_rig()
    r.sink.error = KafkaTimeoutError("no ack")
    body = b"<rss/>"
    assert r.push(body, r.sign(body)) == 503
    assert r.sample("dmzwatch_poller_websub_pushes_total", outcome="publish_failed") == 1


@pytest.mark.parametrize("method", ["sha1", "sha256", "sha384", "sha512"])
def test_every_signature_method_of_the_recommendation_is_accepted(method: str) -> None:
    r = active_rig()
    body = b"<feed/>"
    assert r.push(body, r.sign(body, method)) == 200
    assert r.push(body, r.sign(body, method).upper().replace(method.upper(), method)) == 200


def test_signature_check_uses_the_subscription_secret() -> None:
    from dmzwatch.poller.websub import signature_valid

    body = b"payload"
    good = "sha512=" + hmac.new(b"s3cret", body, hashlib.sha512).hexdigest()
    assert signature_valid("s3cret", body, good)
    assert not signature_valid("other", body, good)
    assert not signature_valid("s3cret", body + b" ", good)
    assert not signature_valid("s3cret", body, None)


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="renew_fraction"):
        WebSubPolicy(renew_fraction=1.0)
    with pytest.raises(ValueError, match="retry_initial_seconds"):
        WebSubPolicy(retry_initial_seconds=10, retry_max_seconds=5)


def test_websub_is_off_unless_a_callback_url_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from dmzwatch.poller.settings import PollerSettings

    monkeypatch.delenv("DMZWATCH_WEBSUB_CALLBACK_URL", raising=False)
    assert PollerSettings(_env_file=None).websub_callback_url is None
    monkeypatch.setenv("DMZWATCH_WEBSUB_CALLBACK_URL", "")
    assert PollerSettings(_env_file=None).websub_callback_url is None
    monkeypatch.setenv("DMZWATCH_WEBSUB_CALLBACK_URL", "https://poller.example/websub")
    monkeypatch.setenv("DMZWATCH_WEBSUB_LEASE_SECONDS", "600")
    settings = PollerSettings(_env_file=None)
    assert settings.websub_callback_url == "https://poller.example/websub"
    assert settings.websub_lease_seconds == 600
    monkeypatch.setenv("DMZWATCH_WEBSUB_CALLBACK_URL", "ftp://poller.example/")
    with pytest.raises(ValueError, match="http"):
        PollerSettings(_env_file=None)


def test_the_time_from_push_to_ack_is_observed() -> None:
    r = active_rig()
    body = b"<rss/>"
    r.push(body, r.sign(body))
    r.push(body, None)
    assert r.sample("dmzwatch_poller_websub_push_seconds_count") == 1
