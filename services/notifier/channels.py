"""Delivery channels: the :class:`Channel` seam, generic signed webhooks and Slack.

A channel makes one HTTP request per :meth:`Channel.send` and never retries by itself: retries,
backoff, rate limits and dead letters belong to the worker, which sees every attempt.
"""

from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.error import URLError

import httpx
from slack_sdk.webhook import WebhookClient
from standardwebhooks import Webhook

from dmzwatch.notifier.blocks import alert_message, digest_message
from dmzwatch.notifier.credentials import Scrubber, redact_url
from dmzwatch.shared.clock import Clock
from dmzwatch.shared.messages import Alert, encode

FailureReason = Literal["network", "timeout", "server_error", "rate_limited", "rejected"]
"""Why an attempt failed (a bounded metric label). Only ``rejected`` is not worth retrying."""


class DeliveryError(Exception):
    """One attempt failed. ``retryable`` says whether trying again may help; ``retry_after`` is
    the receiver's ``Retry-After`` header, verbatim. The message never holds a secret."""

    def __init__(
        self,
        message: str,
        *,
        reason: FailureReason,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(message)
        self.reason: FailureReason = reason
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.reason != "rejected"


def delivery_id(subscription: str, item: str) -> str:
    """The ``webhook-id`` of a delivery: the same for every attempt, replica and restart.

    ``item`` names the alert id and version (or the digest window), so an update of an alert
    (a new version) is a new message while a retry of the same one is not.
    """
    digest = hashlib.sha256(f"{subscription}\0{item}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one request carries: one alert, or a digest window's alerts."""

    subscription: str
    message_id: str
    alerts: tuple[Alert, ...]
    window: tuple[datetime, datetime] | None = None  # set for a digest

    @property
    def is_digest(self) -> bool:
        return self.window is not None


class Channel(ABC):
    """Sends a delivery to one destination.

    ``send`` returns when the destination accepted it (2xx) and raises :class:`DeliveryError`
    otherwise: network error, timeout, non-2xx. It may be called again with the same delivery
    after a failure, from one thread at a time. ``close`` releases connections; called once.
    """

    kind: Literal["slack", "webhook"]

    @abstractmethod
    def send(self, delivery: Delivery) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook: most channels hold nothing
        """Release resources (connections)."""


def _status_error(status: int, where: str, retry_after: str | None) -> DeliveryError:
    if status == 429:
        return DeliveryError(
            f"HTTP 429 from {where}", reason="rate_limited", retry_after=retry_after
        )
    if status >= 500 or status == 408:
        return DeliveryError(
            f"HTTP {status} from {where}", reason="server_error", retry_after=retry_after
        )
    return DeliveryError(f"HTTP {status} from {where}", reason="rejected")


class WebhookChannel(Channel):
    """POSTs the alert CloudEvent (a digest: a CloudEvents JSON batch), signed per Standard
    Webhooks when a secret is configured: ``webhook-id`` (stable across retries),
    ``webhook-timestamp`` (this attempt) and ``webhook-signature`` (``v1,`` HMAC-SHA256)."""

    kind: Literal["slack", "webhook"] = "webhook"

    def __init__(self, url: str, secret: str | None, clock: Clock, timeout_seconds: float) -> None:
        self._url = url
        self._where = redact_url(url)
        self._signer = Webhook(secret) if secret is not None else None
        self._clock = clock
        self._client = httpx.Client(timeout=timeout_seconds, follow_redirects=False)
        self._scrub = Scrubber({url: self._where, **({secret: "***"} if secret else {})})

    def send(self, delivery: Delivery) -> None:
        if delivery.is_digest:
            body = b"[" + b",".join(encode(a) for a in delivery.alerts) + b"]"
            content_type = "application/cloudevents-batch+json"
        else:
            body = encode(delivery.alerts[0])
            content_type = "application/cloudevents+json"
        headers = {"Content-Type": content_type, "webhook-id": delivery.message_id}
        if self._signer is not None:
            now = self._clock.now()
            headers["webhook-timestamp"] = str(int(now.timestamp()))
            headers["webhook-signature"] = self._signer.sign(
                delivery.message_id, now, body.decode()
            )
        try:
            response = self._client.post(self._url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise DeliveryError(f"timeout posting to {self._where}", reason="timeout") from None
        except httpx.HTTPError as exc:
            raise DeliveryError(
                self._scrub(f"{type(exc).__name__} posting to {self._where}: {exc}"),
                reason="network",
            ) from None
        if not 200 <= response.status_code < 300:
            raise _status_error(
                response.status_code, self._where, response.headers.get("Retry-After")
            )

    def close(self) -> None:
        self._client.close()


class SlackChannel(Channel):
    """Posts a Block Kit message through slack_sdk's ``WebhookClient`` (its own retries off)."""

    kind: Literal["slack", "webhook"] = "slack"

    def __init__(self, url: str, timeout_seconds: float) -> None:
        self._where = redact_url(url)
        self._scrub = Scrubber({url: self._where})
        # slack_sdk logs the URL (the secret) at DEBUG: give it a logger that never does.
        quiet = logging.getLogger("dmzwatch.notifier.slack_sdk")
        quiet.setLevel(logging.WARNING)
        self._client = WebhookClient(
            url, timeout=max(1, round(timeout_seconds)), retry_handlers=[], logger=quiet
        )

    def send(self, delivery: Delivery) -> None:
        if delivery.window is not None:
            text, blocks = digest_message(delivery.alerts, delivery.window)
        else:
            text, blocks = alert_message(delivery.alerts[0])
        try:
            response = self._client.send(
                text=text,
                blocks=blocks,
                unfurl_links=False,
                unfurl_media=False,
                headers={"X-Dmzwatch-Delivery-Id": delivery.message_id},
            )
        except TimeoutError:
            raise DeliveryError(f"timeout posting to {self._where}", reason="timeout") from None
        except (URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise DeliveryError(f"timeout posting to {self._where}", reason="timeout") from None
            raise DeliveryError(
                self._scrub(f"{type(exc).__name__} posting to {self._where}: {reason}"),
                reason="network",
            ) from None
        except Exception as exc:  # e.g. an http.client error: always a transport failure
            raise DeliveryError(
                self._scrub(f"{type(exc).__name__} posting to {self._where}"), reason="network"
            ) from None
        if not 200 <= response.status_code < 300:
            headers = response.headers or {}
            retry_after = headers.get("Retry-After") or headers.get("retry-after")
            raise _status_error(response.status_code, self._where, retry_after)
