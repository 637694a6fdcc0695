"""``dmzwatch notify test DESTINATION``: send one sample alert to a subscription, now.

The sample goes straight through the subscription's channel (same URL, secret, signing and
Block Kit as real alerts), once, with no retry, outbox or ledger: it answers "does this
destination work?" and says why not.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from dmzwatch.notifier.channels import Delivery, DeliveryError
from dmzwatch.notifier.routes import make_channel
from dmzwatch.notifier.settings import NotifierSettings
from dmzwatch.notifier.subscriptions import load_subscriptions
from dmzwatch.shared.clock import Clock
from dmzwatch.shared.errors import ConfigurationError
from dmzwatch.shared.messages import Alert, AlertData, Corroboration, Entities


def sample_alert(clock: Clock, category: str = "purge") -> Alert:
    """An alert that says it is a test, valid against the public schema."""
    now = clock.now()
    marker = uuid.uuid4().hex[:12]
    return Alert(
        id=f"dmzwatch-test-{marker}",
        type=f"org.dmzwatch.alert.{category}",
        subject=f"test-{marker}",
        time=now,
        data=AlertData(
            category=category,
            story_id=f"test-{marker}",
            article_id=f"test-{marker}",
            title="dmzwatch test notification: not a real alert",
            url="https://dmzwatch.github.io/",
            source="dmzwatch.test",
            published_at=now,
            fetched_at=now,
            score=1.0,
            evidence=("This is a test message sent by `dmzwatch notify test`.",),
            entities=Entities(places=("Panmunjom",)),
            corroboration=Corroboration(sources=1, outlets=("dmzwatch.test",)),
            classifier_version="notify-test",
        ),
    )


def send_test(
    settings: NotifierSettings, destination: str, environ: Mapping[str, str], clock: Clock
) -> dict[str, Any]:
    """Send the sample to subscription ``destination``; the result as a JSON-ready dict
    (``delivered``, ``channel``, ``error`` masked, ``seconds``). Raises
    :class:`ConfigurationError` when there is no such subscription or its secrets are missing."""
    subscriptions = {s.name: s for s in load_subscriptions(settings.subscriptions_file)}
    if destination not in subscriptions:
        known = ", ".join(sorted(subscriptions)) or "none"
        raise ConfigurationError(f"no subscription named {destination!r} (known: {known})")
    subscription = subscriptions[destination]
    channel = make_channel(subscription, environ, clock, settings.webhook_timeout_seconds)
    category = subscription.categories[0] if subscription.categories else "purge"
    alert = sample_alert(clock, category)
    delivery = Delivery(destination, f"msg_test_{uuid.uuid4().hex}", (alert,))
    started = clock.monotonic()
    result: dict[str, Any] = {"destination": destination, "channel": channel.kind}
    try:
        channel.send(delivery)
        result.update(delivered=True, error=None)
    except DeliveryError as exc:
        result.update(delivered=False, error=str(exc), reason=exc.reason)
    finally:
        channel.close()
    result["seconds"] = round(clock.monotonic() - started, 3)
    return result
