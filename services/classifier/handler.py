"""Classifier handler: unique article in; a decision, and an alert per new story label, out."""

from __future__ import annotations

from collections.abc import Sequence

from dmzwatch.classifier.alerts import AlertLedger, build_alert
from dmzwatch.classifier.engine import Classifier
from dmzwatch.classifier.metrics import ClassifierMetrics
from dmzwatch.shared.clock import Clock
from dmzwatch.shared.messages import Decision, Entities, UniqueArticle
from dmzwatch.shared.runner import Context, Handler, Output
from dmzwatch.shared.topics import TopicCatalogue


class ClassifierHandler(Handler[UniqueArticle]):
    def __init__(
        self,
        classifier: Classifier,
        ledger: AlertLedger,
        topics: TopicCatalogue,
        metrics: ClassifierMetrics,
        clock: Clock,
    ) -> None:
        self._classifier = classifier
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
        decision = self.decide(message)
        outputs = [Output(self._topics.decisions, message.article_id, decision)]
        for label in decision.labels or ("none",):
            self._metrics.decisions[label].inc()
        for label in decision.labels:
            if not self._ledger.claim(message.story_id, label, message.article_id):
                self._metrics.suppressed[label].inc()
                continue
            now = self._clock.now()
            alert = build_alert(message, decision, label, now)
            outputs.append(Output(self._topics.alert(label), message.story_id, alert))
            self._metrics.alerts[label].inc()
            self._metrics.latency.from_fetch.labels(label).observe(
                max(0.0, (now - message.fetched_at).total_seconds())
            )
            if message.published_at is not None:
                self._metrics.latency.from_publish.labels(label).observe(
                    max(0.0, (now - message.published_at).total_seconds())
                )
        return outputs
