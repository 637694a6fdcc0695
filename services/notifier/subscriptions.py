"""Subscriptions: who gets which alerts, how and how often, loaded from a YAML file.

```yaml
subscriptions:
  - name: newsroom-slack        # unique, [a-z0-9_-]; used in metrics, Redis keys, webhook ids
    slack:
      url_env: NEWSROOM_SLACK_URL          # or url: ..., or url_file: /run/secrets/slack
    categories: [purge, defection]         # default: every category
    min_score: 0.6                         # default: 0
    statuses: [corroborated]               # default: reported and corroborated
    keywords: [Choe Son Hui, politburo]    # with entities: the alert must mention one of them
    entities: [Kim Jong Un]
    feed_tags: [official]                  # default: any feed
    mode: digest                           # immediate (default) or digest
    digest_minutes: 15
    rate_limit: {per_minute: 60, burst: 5}
  - name: partner
    webhook:
      url: https://partner.example/hooks/dmzwatch
      secret_env: PARTNER_WEBHOOK_SECRET   # whsec_... key; or secret / secret_file
```
Every filter that is given must hold; a list matches when any of its items does. ``keywords``
and ``entities`` together are one filter: a keyword in the title or evidence (whole words,
case-insensitive) or an entity among the alert's people, places and organisations.
URLs and secrets are masked in logs and errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    model_validator,
)

from dmzwatch.notifier.credentials import SecretSource, resolve_secret
from dmzwatch.shared.errors import ConfigurationError
from dmzwatch.shared.messages import Alert


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SlackTarget(SecretSource):
    """A Slack incoming webhook (its URL is the secret)."""

    @model_validator(mode="after")
    def _one_source(self) -> SlackTarget:
        self._check_url_source()
        return self


class WebhookTarget(SecretSource):
    """A generic webhook: the URL, and optionally a Standard Webhooks signing secret."""

    secret: SecretStr | None = None
    secret_env: str | None = None
    secret_file: Path | None = None

    @model_validator(mode="after")
    def _sources(self) -> WebhookTarget:
        self._check_url_source()
        if len([x for x in (self.secret, self.secret_env, self.secret_file) if x]) > 1:
            raise ValueError("give at most one of secret, secret_env, secret_file")
        return self

    def resolve_secret(self, environ: Mapping[str, str]) -> str | None:
        """The signing secret, or None for an unsigned webhook."""
        return resolve_secret("secret", self.secret, self.secret_env, self.secret_file, environ)


class RateLimit(_Frozen):
    """At most ``per_minute`` requests a minute to the destination, ``burst`` back to back."""

    per_minute: float = Field(60.0, gt=0, le=6000)
    burst: int = Field(5, ge=1, le=100)

    @property
    def interval_seconds(self) -> float:
        return 60.0 / self.per_minute


Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,64}$")]
Term = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Subscription(_Frozen):
    """One destination and the alerts it wants; ``wants`` is pure and cheap."""

    name: Name
    slack: SlackTarget | None = None
    webhook: WebhookTarget | None = None
    categories: tuple[str, ...] | None = None
    min_score: float = Field(0.0, ge=0, le=1)
    statuses: tuple[Literal["reported", "corroborated"], ...] = ("reported", "corroborated")
    keywords: tuple[Term, ...] = ()
    entities: tuple[Term, ...] = ()
    feed_tags: tuple[Term, ...] | None = None
    mode: Literal["immediate", "digest"] = "immediate"
    digest_minutes: int = Field(15, ge=1, le=1440)
    rate_limit: RateLimit = RateLimit()

    @model_validator(mode="after")
    def _one_destination(self) -> Subscription:
        if (self.slack is None) == (self.webhook is None):
            raise ValueError("give exactly one destination: slack or webhook")
        if not self.statuses:
            raise ValueError("statuses may not be empty")
        return self

    @property
    def channel(self) -> Literal["slack", "webhook"]:
        return "slack" if self.slack is not None else "webhook"

    @property
    def digest_seconds(self) -> int:
        """The digest window; 0 for immediate delivery."""
        return self.digest_minutes * 60 if self.mode == "digest" else 0

    @cached_property
    def _keyword_pattern(self) -> re.Pattern[str] | None:
        if not self.keywords:
            return None
        words = "|".join(re.escape(k) for k in sorted(self.keywords, key=len, reverse=True))
        return re.compile(rf"(?<!\w)(?:{words})(?!\w)", re.IGNORECASE)

    def wants(self, alert: Alert) -> bool:
        """Whether ``alert`` passes every filter of this subscription."""
        data = alert.data
        if self.categories is not None and data.category not in self.categories:
            return False
        if data.score < self.min_score or data.status not in self.statuses:
            return False
        if self.feed_tags is not None:
            wanted = {t.casefold() for t in self.feed_tags}
            if not wanted.intersection(t.casefold() for t in data.feed_tags):
                return False
        if self.keywords or self.entities:
            return self._mentions(alert)
        return True

    def _mentions(self, alert: Alert) -> bool:
        data = alert.data
        named = {e.casefold() for e in (*data.entities.people, *data.entities.places)}
        named.update(o.casefold() for o in data.entities.organisations)
        if any(e.casefold() in named for e in self.entities):
            return True
        pattern = self._keyword_pattern
        return pattern is not None and any(
            pattern.search(text) for text in (data.title, *data.evidence)
        )


class SubscriptionFile(_Frozen):
    subscriptions: tuple[Subscription, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> SubscriptionFile:
        names = [s.name for s in self.subscriptions]
        if len(names) != len(set(names)):
            raise ValueError("subscription names must be unique")
        return self


def parse_subscriptions(text: str, origin: str = "subscriptions") -> tuple[Subscription, ...]:
    """The subscriptions of a YAML document; raises :class:`ConfigurationError` saying what is
    wrong (pydantic's messages, which never echo a secret's value)."""
    try:
        doc = yaml.safe_load(text) or {}
        return SubscriptionFile.model_validate(doc).subscriptions
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigurationError(f"{origin}: {problems}") from None
    except (yaml.YAMLError, ValueError) as exc:
        raise ConfigurationError(f"{origin}: {exc}") from None


def load_subscriptions(path: Path | None) -> tuple[Subscription, ...]:
    """The subscriptions in ``path`` (none when no file is configured)."""
    if path is None:
        return ()
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigurationError(f"subscriptions file {path}: {exc.strerror}") from None
    return parse_subscriptions(text, f"subscriptions file {path}")
