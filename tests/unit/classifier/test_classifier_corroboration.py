"""One alert per story and category; one corroboration update once enough outlets carry it."""

from datetime import UTC, datetime

import jsonschema
from prometheus_client import CollectorRegistry

from dmzwatch.classifier.alerts import alert_id
from dmzwatch.classifier.handler import ClassifierHandler
from dmzwatch.classifier.ledger import MemoryAlertLedger
from dmzwatch.classifier.metrics import ClassifierMetrics
from dmzwatch.shared.clock import ManualClock
from dmzwatch.shared.messages import Alert, UniqueArticle, alert_json_schema
from dmzwatch.shared.runner import Context
from dmzwatch.shared.topics import TopicCatalogue
from tests.conftest import make_article
from tests.stories import STORIES

TOPICS = TopicCatalogue()
PURGE = STORIES[0]
OUTLETS = ("korea-wire.example", "asia-desk.example", "seoul-times.example", "a.example", "b.ex")


def copy(n: int, text: str | None = None) -> UniqueArticle:
    base = make_article(
        article_id=f"u{n}",
        source=OUTLETS[n],
        url=f"https://{OUTLETS[n]}/{n}",
        title=PURGE.title if text is None else "Weather",
        summary=" ".join(PURGE.lead) if text is None else text,
    )
    return UniqueArticle(
        **base.model_dump(),
        story_id="u0",
        first_seen_at=datetime(2026, 11, 1, tzinfo=UTC),
        story_outlets=OUTLETS[: n + 1],
    )


def harness(classifier, sources: int = 3):
    registry = CollectorRegistry()
    handler = ClassifierHandler(
        classifier,
        MemoryAlertLedger(),
        TOPICS,
        ClassifierMetrics(classifier.categories, registry),
        ManualClock(),
        sources,
    )
    return handler, registry


def alerts(outputs) -> list[Alert]:
    return [o.value for o in outputs if o.topic in TOPICS.alerts]


def test_five_copies_make_one_reported_alert_then_one_corroborated_update(classifier) -> None:
    handler, registry = harness(classifier)
    sent = [alerts(handler.handle(copy(n), Context("u", 0, n, f"u{n}", 0))) for n in range(5)]
    assert [len(a) for a in sent] == [1, 0, 1, 0, 0]
    first, update = sent[0][0], sent[2][0]
    assert first.id == update.id == alert_id("u0", "purge")
    assert (first.data.status, first.data.version) == ("reported", 1)
    assert (update.data.status, update.data.version) == ("corroborated", 2)
    assert update.data.corroboration.sources == 3
    assert update.data.corroboration.outlets == OUTLETS[:3]
    assert update.data.title == first.data.title and update.data.url == first.data.url
    schema = alert_json_schema()
    for alert in (first, update):
        jsonschema.validate(alert.model_dump(mode="json"), schema)
    counted = registry.get_sample_value("dmzwatch_alerts_corroborated_total", {"category": "purge"})
    assert counted == 1


def test_a_copy_that_does_not_fire_the_label_still_corroborates(classifier) -> None:
    handler, _ = harness(classifier)
    handler.handle(copy(0), Context("u", 0, 0, "u0", 0))
    handler.handle(copy(1, text="Rain is expected."), Context("u", 0, 1, "u1", 0))
    [update] = alerts(handler.handle(copy(2, text="Rain is expected."), Context("u", 0, 2, "", 0)))
    assert update.data.status == "corroborated" and update.data.category == "purge"


def test_a_redelivered_corroborating_copy_sends_the_same_update_and_no_one_else_does(
    classifier,
) -> None:
    handler, _ = harness(classifier)
    for n in range(3):
        handler.handle(copy(n), Context("u", 0, n, f"u{n}", 0))
    again = alerts(handler.handle(copy(2), Context("u", 0, 2, "u2", 0)))
    assert [a.data.version for a in again] == [2]
    assert alerts(handler.handle(copy(3), Context("u", 0, 3, "u3", 0))) == []


def test_an_alert_raised_when_already_corroborated_is_followed_at_once(classifier) -> None:
    handler, _ = harness(classifier)
    handler.handle(copy(1, text="Rain."), Context("u", 0, 1, "u1", 0))
    sent = alerts(handler.handle(copy(2), Context("u", 0, 2, "u2", 0)))
    assert [(a.data.version, a.data.status) for a in sent] == [(1, "reported"), (2, "corroborated")]
    assert sent[0].data.corroboration.sources == 3


def test_no_corroboration_below_the_threshold(classifier) -> None:
    handler, _ = harness(classifier, sources=4)
    sent = [alerts(handler.handle(copy(n), Context("u", 0, n, f"u{n}", 0))) for n in range(3)]
    assert [len(a) for a in sent] == [1, 0, 0]
