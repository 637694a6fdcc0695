"""Builders shared by the notifier's unit and integration tests."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from dmzwatch.notifier.channels import Channel, Delivery, DeliveryError
from dmzwatch.notifier.routes import Route
from dmzwatch.notifier.subscriptions import Subscription
from dmzwatch.shared.messages import Alert, AlertData, Corroboration, Entities

T = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks spec's example key


def make_alert(
    alert_id: str = "id-1",
    *,
    category: str = "purge",
    score: float = 0.9,
    version: int = 1,
    status: Literal["reported", "corroborated"] = "reported",
    title: str = "Vice premier executed after politburo meeting",
    evidence: tuple[str, ...] = ("He was executed by firing squad, sources said.",),
    people: tuple[str, ...] = ("Kim Jong Un",),
    feed_tags: tuple[str, ...] = (),
    outlets: tuple[str, ...] = ("korea-wire.example", "seoul-daily.example"),
    url: str | None = "https://korea-wire.example/a/1",
) -> Alert:
    return Alert(
        id=alert_id,
        type=f"org.dmzwatch.alert.{category}",
        subject="s1",
        time=T,
        data=AlertData(
            category=category,
            status=status,
            version=version,
            story_id="s1",
            article_id="a1",
            title=title,
            url=url,
            source=outlets[0],
            published_at=T,
            fetched_at=T,
            score=score,
            evidence=evidence,
            entities=Entities(people=people, places=("Pyongyang",), organisations=("KPA",)),
            corroboration=Corroboration(sources=len(outlets), outlets=outlets),
            feed_tags=feed_tags,
            classifier_version="test",
        ),
    )


def subscription(name: str, **fields: Any) -> Subscription:
    """A webhook subscription (unless ``slack=`` is given) with the given fields."""
    if "slack" not in fields and "webhook" not in fields:
        fields["webhook"] = {"url": "http://127.0.0.1:9/hook"}
    return Subscription.model_validate({"name": name, **fields})


class ScriptedChannel(Channel):
    """Fails with the scripted errors first, then accepts; records every attempt."""

    def __init__(
        self,
        failures: Iterable[DeliveryError] = (),
        kind: Literal["slack", "webhook"] = "webhook",
    ) -> None:
        self.kind = kind
        self.failures = list(failures)
        self.attempts: list[Delivery] = []
        self.delivered: list[Delivery] = []
        self.closed = False

    def send(self, delivery: Delivery) -> None:
        self.attempts.append(delivery)
        if self.failures:
            raise self.failures.pop(0)
        self.delivered.append(delivery)

    def close(self) -> None:
        self.closed = True


def route(name: str, channel: Channel | None = None, **fields: Any) -> Route:
    return Route(subscription(name, **fields), channel or ScriptedChannel())
