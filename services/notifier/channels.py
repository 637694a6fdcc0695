"""Delivery channels: the :class:`Channel` seam and the generic webhook."""

from __future__ import annotations

from abc import ABC, abstractmethod

import httpx

from dmzwatch.shared.messages import Alert, encode
from dmzwatch.shared.settings import mask_url


class DeliveryError(Exception):
    """A delivery failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Channel(ABC):
    """Sends one alert to one destination.

    ``deliver`` returns when the destination accepted the alert and raises
    :class:`DeliveryError` otherwise (network error, timeout, non-2xx); messages never contain
    the destination's secret URL. It may be called again for the same alert after a failure.
    """

    name: str

    @abstractmethod
    def deliver(self, alert: Alert) -> None: ...


class WebhookChannel(Channel):
    """POSTs the alert CloudEvent (structured JSON mode) to a URL."""

    def __init__(self, name: str, url: str, client: httpx.Client) -> None:
        self.name = name
        self._url = url
        self._client = client

    def deliver(self, alert: Alert) -> None:
        try:
            response = self._client.post(
                self._url,
                content=encode(alert),
                headers={"Content-Type": "application/cloudevents+json"},
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(
                f"{type(exc).__name__} posting to {mask_url(self._url)}", retryable=True
            ) from None
        if response.status_code >= 300:
            retryable = response.status_code >= 500 or response.status_code in (408, 429)
            raise DeliveryError(
                f"HTTP {response.status_code} from {mask_url(self._url)}", retryable=retryable
            )
