"""Turning a decision into alerts: deterministic ids, the first report and its corroboration."""

from __future__ import annotations

import uuid
from datetime import datetime

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


def build_alert(
    article: UniqueArticle,
    decision: Decision,
    category: str,
    now: datetime,
    outlets: tuple[str, ...] = (),
) -> Alert:
    """The CloudEvent announcing ``category`` for ``article``'s story (version 1, reported);
    ``outlets``: the story's independent outlets so far (default: the article's own)."""
    outlets = outlets or (article.source,)
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
            corroboration=Corroboration(sources=len(outlets), outlets=outlets),
            feed_tags=article.feed_tags,
            classifier_version=decision.classifier_version,
        ),
    )


def corroborated(alert: Alert, outlets: tuple[str, ...], now: datetime) -> Alert:
    """The one update of ``alert``: same id, version 2, status corroborated, the outlets filled;
    everything else as first reported."""
    data = alert.data.model_copy(
        update={
            "status": "corroborated",
            "version": 2,
            "corroboration": Corroboration(sources=len(outlets), outlets=outlets),
        }
    )
    return alert.model_copy(update={"time": now, "data": data})
