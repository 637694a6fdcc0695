"""A route is a subscription with the channel that reaches it; this is where secrets are read."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass

from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError

from dmzwatch.notifier.channels import Channel, SlackChannel, WebhookChannel
from dmzwatch.notifier.subscriptions import Subscription
from dmzwatch.shared.clock import Clock
from dmzwatch.shared.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class Route:
    subscription: Subscription
    channel: Channel


def make_channel(
    subscription: Subscription, environ: Mapping[str, str], clock: Clock, timeout_seconds: float
) -> Channel:
    """The channel of a subscription, its secrets resolved from ``environ`` or files.

    Raises :class:`ConfigurationError` (naming the subscription and the source, never the
    secret) when a secret is missing or malformed.
    """
    try:
        if subscription.slack is not None:
            return SlackChannel(subscription.slack.resolve(environ), timeout_seconds)
        assert subscription.webhook is not None
        url = subscription.webhook.resolve(environ)
        secret = subscription.webhook.resolve_secret(environ)
        if secret is not None:
            _check_signing_key(secret)
        return WebhookChannel(url, secret, clock, timeout_seconds)
    except ConfigurationError as exc:
        raise ConfigurationError(f"subscription {subscription.name}: {exc}") from None


def _check_signing_key(secret: str) -> None:
    """Standard Webhooks keys are base64 (optionally ``whsec_``-prefixed), 24 to 64 bytes."""
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        Webhook(secret)
    except (ValueError, EmptyWebhookSecretError):
        key = b""
    if not 24 <= len(key) <= 64:
        raise ConfigurationError(
            "secret: not a Standard Webhooks key (24-64 bytes of base64, optionally whsec_...)"
        )


def make_routes(
    subscriptions: tuple[Subscription, ...],
    environ: Mapping[str, str],
    clock: Clock,
    timeout_seconds: float,
) -> tuple[Route, ...]:
    """A route per subscription; closes what it opened and raises if any secret is wrong."""
    routes: list[Route] = []
    try:
        for subscription in subscriptions:
            channel = make_channel(subscription, environ, clock, timeout_seconds)
            routes.append(Route(subscription, channel))
    except ConfigurationError:
        for route in routes:
            route.channel.close()
        raise
    return tuple(routes)
