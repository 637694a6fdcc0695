"""Classifier handler: unique article in; a decision, an alert per new story label, and the
alert's corroboration update once the story has enough independent outlets, out."""

from __future__ import annotations

from collections.abc import Sequence

from dmzwatch.classifier.alerts import build_alert, corroborated
from dmzwatch.classifier.engine import Classifier
from dmzwatch.classifier.ledger import AlertLedger
from dmzwatch.classifier.metrics import ClassifierMetrics
from dmzwatch.shared.clock import Clock
from dmzwatch.shared.messages import Alert, Decision, Entities, UniqueArticle, decode, encode
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
        decision = self.decide(message)
        outputs = [Output(self._topics.decisions, message.article_id, decision)]
        for label in decision.labels or ("none",):
            self._metrics.decisions[label].inc()
        outlets = message.story_outlets or (message.source,)
        for label in decision.labels:
            now = self._clock.now()
            alert = build_alert(message, decision, label, now, outlets)
            if not self._ledger.raise_alert(
                message.story_id, label, message.article_id, encode(alert)
            ):
                self._metrics.suppressed[label].inc()
                continue
            outputs.append(Output(self._topics.alert(label), message.story_id, alert))
            self._metrics.alerts[label].inc()
            self._metrics.latency.from_fetch.labels(label).observe(
                max(0.0, (now - message.fetched_at).total_seconds())
            )
            if message.published_at is not None:
                self._metrics.latency.from_publish.labels(label).observe(
                    max(0.0, (now - message.published_at).total_seconds())
                )
        if len(outlets) >= self._sources:
            # Any article of the story counts, whether or not it fires the label itself.
            won = self._ledger.corroborate(
                message.story_id, self._topics.categories, message.article_id
            )
            for category, body in won.items():
                update = corroborated(decode(Alert, body), outlets, self._clock.now())
                outputs.append(Output(self._topics.alert(category), message.story_id, update))
                self._metrics.corroborated[category].inc()
        return outputs
