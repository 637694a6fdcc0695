"""The feed list: a YAML file of feeds to poll.

```yaml
feeds:
  - id: yonhap-nk          # unique, [a-z0-9_-]; a metric label, so keep the list curated
    url: https://example.org/rss.xml
    tags: [korea, wire]    # copied to every article as feed_tags
    interval_seconds: 300  # default 300
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from dmzwatch.shared.errors import ConfigurationError


class FeedConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,64}$")]
    url: str
    tags: tuple[str, ...] = ()
    interval_seconds: float = Field(300.0, ge=1, le=86400)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("feed url must be http:// or https://")
        return value


class FeedList(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    feeds: tuple[FeedConfig, ...] = ()

    @model_validator(mode="after")
    def _unique_ids(self) -> FeedList:
        ids = [f.id for f in self.feeds]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate feed ids: {duplicates}")
        return self


def load_feeds(path: Path) -> tuple[FeedConfig, ...]:
    """The feeds in ``path``; raises ``ConfigurationError`` saying what is wrong."""
    try:
        doc = yaml.safe_load(path.read_text()) or {}
        return FeedList.model_validate(doc).feeds
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise ConfigurationError(f"feeds file {path}: {exc}") from exc
