"""The handler schedules durably and never sends; subscriptions filter alerts."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from dmzwatch.notifier.handler import NotifierHandler
from dmzwatch.notifier.metrics import NotifierMetrics
from dmzwatch.notifier.outbox import Idle, MemoryOutbox
from dmzwatch.notifier.subscriptions import Subscription, parse_subscriptions
from dmzwatch.shared.clock import ManualClock
from dmzwatch.shared.errors import ConfigurationError
from dmzwatch.shared.runner import Context
from tests.notifier_support import make_alert, route, subscription

CTX = Context("dmzwatch.alerts.purge", 2, 5, "s1", 0)


def make(routes):
    registry = CollectorRegistry()
    outbox = MemoryOutbox()
    woken: list[str] = []
    handler = NotifierHandler(
        lambda: routes, outbox, NotifierMetrics(registry), ManualClock(), wake=woken.append
    )
    return handler, outbox, registry, woken


def test_each_matching_subscription_gets_one_pending_delivery_and_no_request() -> None:
    routes = [route("a"), route("b", categories=["summit"]), route("c", min_score=0.95)]
    handler, outbox, registry, woken = make(routes)
    assert handler.handle(make_alert(), CTX) == []
    assert handler.handle(make_alert(), CTX) == []  # re-delivered by Kafka: already scheduled
    assert outbox.state("a", "id-1", 1) == "queued" and woken == ["a"]
    assert outbox.state("b", "id-1", 1) is None and outbox.state("c", "id-1", 1) is None
    assert routes[0].channel.attempts == []  # type: ignore[attr-defined]
    sample = registry.get_sample_value
    labels = {"channel": "webhook", "subscription": "a"}
    assert sample("dmzwatch_notifier_scheduled_total", {**labels, "mode": "immediate"}) == 1
    assert sample("dmzwatch_notifier_deliveries_total", {**labels, "outcome": "duplicate"}) == 1


def test_a_new_version_of_an_alert_is_a_new_delivery() -> None:
    handler, outbox, _, _ = make([route("a")])
    handler.handle(make_alert(version=1), CTX)
    handler.handle(make_alert(version=2, status="corroborated"), CTX)
    assert outbox.state("a", "id-1", 1) == "queued" and outbox.state("a", "id-1", 2) == "queued"
    assert outbox.depth("a") == 2


def test_digest_subscriptions_collect_alerts_in_the_open_window() -> None:
    handler, outbox, _, _ = make([route("d", mode="digest", digest_minutes=10)])
    for i in range(3):
        handler.handle(make_alert(f"id-{i}"), CTX)
    assert outbox.depth("d") == 1  # one window item
    claim = outbox.claim("d", now=ManualClock().now().timestamp(), **_limits())
    assert isinstance(claim, Idle) and claim.wait_seconds == 600.0  # due when the window ends


def _limits() -> dict[str, float]:
    return {"lease_seconds": 60, "interval_seconds": 1, "burst": 5}


@pytest.mark.parametrize(
    ("fields", "alert_kw", "wanted"),
    [
        ({"statuses": ["corroborated"]}, {"status": "reported"}, False),
        ({"statuses": ["corroborated"]}, {"status": "corroborated"}, True),
        ({"keywords": ["politburo"]}, {}, True),
        ({"keywords": ["POLITBURO"]}, {}, True),  # case-insensitive
        ({"keywords": ["polit"]}, {}, False),  # whole words only
        ({"keywords": ["firing squad"]}, {}, True),  # the evidence counts too
        ({"keywords": ["summit"]}, {}, False),
        ({"entities": ["kim jong un"]}, {}, True),
        ({"entities": ["KPA"]}, {}, True),  # organisations
        ({"entities": ["Moon Jae-in"]}, {}, False),
        ({"entities": ["Moon Jae-in"], "keywords": ["politburo"]}, {}, True),  # either one
        ({"feed_tags": ["official"]}, {"feed_tags": ("Official", "kr")}, True),
        ({"feed_tags": ["official"]}, {}, False),
        ({"categories": ["purge"], "min_score": 0.9}, {"score": 0.9}, True),
        ({"categories": ["purge"], "min_score": 0.9}, {"score": 0.89}, False),
    ],
)
def test_filters(fields: dict, alert_kw: dict, wanted: bool) -> None:
    assert subscription("s", **fields).wants(make_alert(**alert_kw)) is wanted


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ({"name": "Bad Name"}, "should match pattern"),
        ({"webhook": {}}, "exactly one of url"),
        ({"slack": {"url": "http://127.0.0.1/x"}}, "exactly one destination"),
        ({"mode": "hourly"}, "immediate"),
        ({"statuses": ["rumoured"]}, "reported"),
        ({"rate_limit": {"per_minute": 0}}, "greater than 0"),
        ({"webhook": {"url": "http://x", "secret": "a", "secret_env": "B"}}, "at most one"),
    ],
)
def test_subscriptions_are_validated(bad: dict, why: str) -> None:
    body = {"name": "ok", "webhook": {"url": "http://127.0.0.1/x"}, **bad}
    with pytest.raises(ValueError, match=why):
        Subscription.model_validate(body)


def test_a_bad_file_names_the_problem_and_never_the_secret() -> None:
    text = (
        "subscriptions:\n  - name: a\n"
        "    webhook: {url: 'https://h.example/T0K3N', secret: s3cr3t}\n"
        "    min_score: 7\n"
    )
    with pytest.raises(ConfigurationError, match=r"min_score") as caught:
        parse_subscriptions(text)
    assert "T0K3N" not in str(caught.value) and "s3cr3t" not in str(caught.value)
    names = [s.name for s in parse_subscriptions("subscriptions: []")]
    assert names == []
