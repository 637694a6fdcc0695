"""Subscriptions: who gets which alerts, loaded from a YAML file.

```yaml
subscriptions:
  - name: newsroom            # unique, [a-z0-9_-]; used in metrics and the delivery ledger
    webhook:
      url: https://example.org/hooks/dmzwatch   # or url_env: NAME, or url_file: /run/secrets/x
    categories: [purge, defection]               # default: every category
    min_score: 0.6                               # default: 0
```
URLs are secrets (they often embed a token): they are masked in logs and errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, model_validator

from dmzwatch.shared.errors import ConfigurationError
from dmzwatch.shared.messages import Alert


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WebhookTarget(_Frozen):
    url: SecretStr | None = None
    url_env: str | None = None
    url_file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> WebhookTarget:
        given = [x for x in (self.url, self.url_env, self.url_file) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of url, url_env, url_file")
        return self

    def resolve(self, environ: dict[str, str]) -> str:
        """The URL itself; raises ``ConfigurationError`` when its source is missing."""
        if self.url is not None:
            return self.url.get_secret_value()
        if self.url_env is not None:
            if self.url_env not in environ:
                raise ConfigurationError(f"environment variable {self.url_env} is not set")
            return environ[self.url_env]
        assert self.url_file is not None
        try:
            return self.url_file.read_text().strip()
        except OSError as exc:
            raise ConfigurationError(f"cannot read {self.url_file}: {exc}") from exc


class Subscription(_Frozen):
    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,64}$")]
    webhook: WebhookTarget
    categories: tuple[str, ...] | None = None
    min_score: float = Field(0.0, ge=0, le=1)

    def wants(self, alert: Alert) -> bool:
        data = alert.data
        if self.categories is not None and data.category not in self.categories:
            return False
        return data.score >= self.min_score


class SubscriptionFile(_Frozen):
    subscriptions: tuple[Subscription, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> SubscriptionFile:
        names = [s.name for s in self.subscriptions]
        if len(names) != len(set(names)):
            raise ValueError("subscription names must be unique")
        return self


def load_subscriptions(path: Path | None) -> tuple[Subscription, ...]:
    """The subscriptions in ``path`` (none when no file is configured)."""
    if path is None:
        return ()
    try:
        doc = yaml.safe_load(path.read_text()) or {}
        return SubscriptionFile.model_validate(doc).subscriptions
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise ConfigurationError(f"subscriptions file {path}: {exc}") from exc
