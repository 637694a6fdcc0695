from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from dmzwatch.notifier.channels import Channel, DeliveryError
from dmzwatch.notifier.handler import DeliveryPolicy, NotifierHandler, Route
from dmzwatch.notifier.metrics import NotifierMetrics
from dmzwatch.notifier.subscriptions import Subscription, WebhookTarget
from dmzwatch.shared.claims import MemoryClaims
from dmzwatch.shared.clock import ManualClock
from dmzwatch.shared.messages import Alert, AlertData, Corroboration, DeadLetter, Entities
from dmzwatch.shared.runner import Context

T = datetime(2026, 11, 1, tzinfo=UTC)


def alert(category: str = "purge", score: float = 0.9, alert_id: str = "id-1") -> Alert:
    return Alert(
        id=alert_id,
        type=f"org.dmzwatch.alert.{category}",
        subject="s1",
        time=T,
        data=AlertData(
            category=category,
            story_id="s1",
            article_id="a1",
            title="T",
            url="https://x.example/",
            source="x.example",
            published_at=T,
            fetched_at=T,
            score=score,
            evidence=("e",),
            entities=Entities(),
            corroboration=Corroboration(sources=1, outlets=("x.example",)),
            classifier_version="test",
        ),
    )


class Scripted(Channel):
    def __init__(self, name: str, failures: list[DeliveryError]) -> None:
        self.name = name
        self.failures = failures
        self.delivered: list[str] = []

    def deliver(self, alert: Alert) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.delivered.append(alert.id)


def sub(name: str, **kw) -> Subscription:
    return Subscription(name=name, webhook=WebhookTarget(url="http://127.0.0.1:1/x"), **kw)


def make(routes, registry=None):
    registry = registry or CollectorRegistry()
    clock = ManualClock()
    handler = NotifierHandler(
        routes, MemoryClaims(), "dlq", NotifierMetrics(registry), clock, DeliveryPolicy(attempts=3)
    )
    return handler, registry, clock


CTX = Context("alerts.purge", 0, 5, "s1", 0)


def test_each_matching_subscription_gets_the_alert_once() -> None:
    a, b, c = Scripted("a", []), Scripted("b", []), Scripted("c", [])
    handler, _, _ = make(
        [
            Route(sub("a"), a),
            Route(sub("b", categories=("summit",)), b),
            Route(sub("c", min_score=0.95), c),
        ]
    )
    assert handler.handle(alert(), CTX) == []
    assert handler.handle(alert(), CTX) == []  # re-delivered: the ledger says done
    assert a.delivered == ["id-1"] and b.delivered == [] and c.delivered == []


def test_transient_failures_are_retried_with_backoff() -> None:
    flaky = Scripted("f", [DeliveryError("HTTP 500", retryable=True)] * 2)
    handler, registry, clock = make([Route(sub("f"), flaky)])
    assert handler.handle(alert(), CTX) == []
    assert flaky.delivered == ["id-1"] and clock.sleeps == [0.5, 1.0]
    assert registry.get_sample_value("dmzwatch_notifier_retries_total", {"channel": "f"}) == 2


def test_a_dead_receiver_ends_in_a_dead_letter_and_spares_the_others() -> None:
    dead = Scripted("dead", [DeliveryError("ConnectError", retryable=True)] * 10)
    fine = Scripted("fine", [])
    handler, registry, _ = make([Route(sub("dead"), dead), Route(sub("fine"), fine)])
    [out] = handler.handle(alert(), CTX)
    assert out.topic == "dlq" and isinstance(out.value, DeadLetter)
    assert "delivery to dead failed" in out.value.error and out.value.offset == 5
    assert fine.delivered == ["id-1"]
    assert (
        registry.get_sample_value(
            "dmzwatch_notifier_deliveries_total", {"channel": "dead", "outcome": "failed"}
        )
        == 1
    )


def test_a_permanent_refusal_is_not_retried() -> None:
    gone = Scripted("gone", [DeliveryError("HTTP 404", retryable=False)])
    handler, _, clock = make([Route(sub("gone"), gone)])
    assert len(handler.handle(alert(), CTX)) == 1 and clock.sleeps == []


@pytest.mark.parametrize(
    ("bad", "why"),
    [({"name": "Bad Name"}, "should match pattern"), ({"name": "x", "webhook": {}}, "exactly one")],
)
def test_subscriptions_are_validated(bad, why: str) -> None:
    body = {"name": "ok", "webhook": {"url": "http://127.0.0.1/x"}, **bad}
    with pytest.raises(ValueError, match=why):
        Subscription.model_validate(body)
