"""The classifier's batch path gives what one article after another gives."""

import pytest
from prometheus_client import CollectorRegistry

from dmzwatch.classifier.handler import ClassifierHandler
from dmzwatch.classifier.ledger import AlertLedger, MemoryAlertLedger
from dmzwatch.classifier.metrics import ClassifierMetrics
from dmzwatch.shared.clock import ManualClock
from dmzwatch.shared.errors import RetryableError
from dmzwatch.shared.runner import Context
from tests.unit.classifier.test_classifier_corroboration import TOPICS, alerts, copy, harness


def batch(n: int):
    # story u0: five copies (alerts: first one, then the corroboration at the third outlet)
    # interleaved with articles that fire nothing.
    items = []
    for i in range(n):
        article = copy(i) if i % 2 == 0 else copy(i, text="Rain is expected.")
        items.append((article, Context("u", 0, i, article.article_id, 0)))
    return items


def dump(outputs) -> list[tuple[str, str | None, str]]:
    return [(o.topic, o.key, o.value.model_dump_json()) for o in outputs]


def test_handle_batch_equals_handle_one_by_one(classifier) -> None:
    one, _ = harness(classifier)
    many, _ = harness(classifier)
    items = batch(5)
    expected = [dump(one.handle(m, c)) for m, c in items]
    got = [dump(r) for r in many.handle_batch(items)]  # type: ignore[arg-type]
    assert got == expected
    sent = [alerts(r) for r in many.handle_batch(items)]  # re-delivered: the same alerts again
    assert [len(a) for a in sent] == [len(alerts(one.handle(m, c))) for m, c in items]
    assert sum(len(a) for a in sent) == 2


class _Broken(MemoryAlertLedger):
    """Fails the corroboration of article u2 only, or is down as a whole."""

    def __init__(self, down: bool = False) -> None:
        super().__init__()
        self.down = down

    def corroborate(self, story_id, categories, article_id):
        if self.down:
            raise RetryableError("redis unavailable: test")
        if article_id == "u2":
            raise ValueError("WRONGTYPE")
        return super().corroborate(story_id, categories, article_id)


def _with_ledger(classifier, ledger: AlertLedger) -> ClassifierHandler:
    metrics = ClassifierMetrics(classifier.categories, CollectorRegistry())
    return ClassifierHandler(classifier, ledger, TOPICS, metrics, ManualClock(), 3)


def test_a_failed_ledger_call_fails_its_article_only(classifier) -> None:
    handler = _with_ledger(classifier, _Broken())
    results = handler.handle_batch(batch(4))
    assert isinstance(results[2], ValueError)
    assert [isinstance(r, Exception) for r in results] == [False, False, True, False]
    assert len(alerts(results[0])) == 1  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="WRONGTYPE"):
        handler.handle(*batch(3)[2])


def test_a_ledger_that_is_down_retries_the_whole_batch(classifier) -> None:
    handler = _with_ledger(classifier, _Broken(down=True))
    with pytest.raises(RetryableError):
        handler.handle_batch(batch(4))
