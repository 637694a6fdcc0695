"""Turning a decision into alerts: deterministic ids and the one-alert-per-story ledger."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from datetime import datetime

from dmzwatch.shared.claims import Claims
from dmzwatch.shared.messages import (
    ALERT_TYPE_PREFIX,
    Alert,
    AlertData,
    Corroboration,
    Decision,
    UniqueArticle,
)

# Alert ids are UUIDv5 in this namespace: same story and category, same id, on every replica.
ALERT_NAMESPACE = uuid.UUID("6f0c1d4e-2b8a-5c3e-9d7f-0a1b2c3d4e5f")


def alert_id(story_id: str, category: str) -> str:
    return str(uuid.uuid5(ALERT_NAMESPACE, f"{story_id}/{category}"))


class AlertLedger(ABC):
    """Decides which article of a story raises the story's alert for a category.

    ``claim`` returns True for the first article of the story to fire the category, and again
    for that same article if it is re-delivered (so a crash before the alert was produced does
    not lose it); False for any later copy. Raises :class:`RetryableError` when its store is down.
    """

    @abstractmethod
    def claim(self, story_id: str, category: str, article_id: str) -> bool: ...


class ClaimAlertLedger(AlertLedger):
    def __init__(self, claims: Claims, ttl_seconds: int) -> None:
        self._claims = claims
        self._ttl = ttl_seconds

    def claim(self, story_id: str, category: str, article_id: str) -> bool:
        key = self._claims.key("alert", story_id, category)
        return self._claims.claim(key, article_id, self._ttl).won


def build_alert(article: UniqueArticle, decision: Decision, category: str, now: datetime) -> Alert:
    """The CloudEvent announcing ``category`` for ``article``'s story."""
    return Alert(
        id=alert_id(article.story_id, category),
        type=ALERT_TYPE_PREFIX + category,
        subject=article.story_id,
        time=now,
        data=AlertData(
            category=category,
            story_id=article.story_id,
            article_id=article.article_id,
            title=article.title,
            url=article.url,
            source=article.source,
            published_at=article.published_at,
            fetched_at=article.fetched_at,
            score=decision.scores.get(category, 0.0),
            certainty=decision.certainty.get(category, "confirmed"),
            evidence=decision.evidence.get(category, ()),
            entities=decision.entities,
            corroboration=Corroboration(sources=1, outlets=(article.source,)),
            feed_tags=article.feed_tags,
            classifier_version=decision.classifier_version,
        ),
    )
