"""Classifier handler: unique article in; a decision, an alert per new story label, and the
alert's corroboration update once the story has enough independent outlets, out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from dmzwatch.classifier.alerts import build_alert, corroborated
from dmzwatch.classifier.engine import Classifier
from dmzwatch.classifier.ledger import (
    AlertLedger,
    Corroborate,
    LedgerAnswer,
    LedgerCall,
    RaiseAlert,
)
from dmzwatch.classifier.metrics import ClassifierMetrics
from dmzwatch.shared.clock import Clock
from dmzwatch.shared.errors import RetryableError
from dmzwatch.shared.messages import Alert, Decision, Entities, UniqueArticle, decode, encode
from dmzwatch.shared.runner import BatchHandler, Context, Output, Result
from dmzwatch.shared.topics import TopicCatalogue


class ClassifierHandler(BatchHandler[UniqueArticle]):
    def __init__(
        self,
        classifier: Classifier,
        ledger: AlertLedger,
        topics: TopicCatalogue,
        metrics: ClassifierMetrics,
        clock: Clock,
        corroboration_sources: int = 3,
    ) -> None:
        self._classifier = classifier
        self._sources = corroboration_sources
        self._ledger = ledger
        self._topics = topics
        self._metrics = metrics
        self._clock = clock

    def decide(self, article: UniqueArticle) -> Decision:
        result = self._classifier.classify(article.title, article.text)
        entities = result.entities
        return Decision(
            article_id=article.article_id,
            story_id=article.story_id,
            labels=result.labels,
            scores=dict(result.scores),
            evidence={label: tuple(ev) for label, ev in result.evidence.items()},
            certainty={
                label: "reported" if value == "reported" else "confirmed"
                for label, value in result.certainty.items()
            },
            entities=Entities(
                people=entities.people,
                places=entities.places,
                organisations=entities.organisations,
            ),
            classifier_version=self._classifier.version,
            decided_at=self._clock.now(),
        )

    def handle(self, message: UniqueArticle, context: Context) -> Sequence[Output]:
        (result,) = self.handle_batch([(message, context)])
        if isinstance(result, Exception):
            raise result
        return result

    def handle_batch(self, items: Sequence[tuple[UniqueArticle, Context]]) -> Sequence[Result]:
        """Classify every article, then make the batch's ledger calls in one round trip, in
        the order ``handle`` would make them one article after another (so a story's first
        alert-worthy article in the batch raises its alert and a later one in it does not)."""
        plans: list[_Plan | Exception] = []
        calls: list[LedgerCall] = []
        for message, _ in items:
            try:
                plans.append(self._plan(message, calls))
            except RetryableError:
                raise
            except Exception as exc:  # this article only: dead-lettered by the runner
                plans.append(exc)
        answers = self._ledger.run_many(calls)
        return [p if isinstance(p, Exception) else self._outputs(p, answers) for p in plans]

    def _plan(self, message: UniqueArticle, calls: list[LedgerCall]) -> _Plan:
        """Decide ``message`` and append the ledger calls its outputs depend on to ``calls``."""
        decision = self.decide(message)
        for label in decision.labels or ("none",):
            self._metrics.decisions[label].inc()
        outlets = message.story_outlets or (message.source,)
        now = self._clock.now()
        alerts: list[tuple[int, str, Alert]] = []
        for label in decision.labels:
            alert = build_alert(message, decision, label, now, outlets)
            alerts.append((len(calls), label, alert))
            calls.append(RaiseAlert(message.story_id, label, message.article_id, encode(alert)))
        corroboration = None
        if len(outlets) >= self._sources:
            # Any article of the story counts, whether or not it fires the label itself.
            corroboration = len(calls)
            calls.append(Corroborate(message.story_id, self._topics.categories, message.article_id))
        return _Plan(message, decision, outlets, now, alerts, corroboration)

    def _outputs(
        self, plan: _Plan, answers: Sequence[LedgerAnswer]
    ) -> Sequence[Output] | Exception:
        message = plan.message
        outputs = [Output(self._topics.decisions, message.article_id, plan.decision)]
        for at, label, alert in plan.alerts:
            raised = answers[at]
            if isinstance(raised, Exception):
                return raised
            if not raised:
                self._metrics.suppressed[label].inc()
                continue
            outputs.append(Output(self._topics.alert(label), message.story_id, alert))
            self._metrics.alerts[label].inc()
            self._metrics.latency.from_fetch.labels(label).observe(
                max(0.0, (plan.now - message.fetched_at).total_seconds())
            )
            if message.published_at is not None:
                self._metrics.latency.from_publish.labels(label).observe(
                    max(0.0, (plan.now - message.published_at).total_seconds())
                )
        if plan.corroboration is not None:
            won = answers[plan.corroboration]
            if isinstance(won, Exception):
                return won
            assert isinstance(won, dict)
            for category, body in won.items():
                update = corroborated(decode(Alert, body), plan.outlets, self._clock.now())
                outputs.append(Output(self._topics.alert(category), message.story_id, update))
                self._metrics.corroborated[category].inc()
        return outputs


@dataclass(frozen=True, slots=True)
class _Plan:
    """An article decided, with the positions of its ledger calls in the batch's calls."""

    message: UniqueArticle
    decision: Decision
    outlets: tuple[str, ...]
    now: datetime
    alerts: list[tuple[int, str, Alert]]  # (position of its RaiseAlert, label, the alert)
    corroboration: int | None  # position of its Corroborate
