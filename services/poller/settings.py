"""Poller settings (``DMZWATCH_*``; see the README's configuration table)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field

from dmzwatch.shared.settings import CommonSettings


class PollerSettings(CommonSettings):
    metrics_port: int = Field(
        9101, validation_alias=AliasChoices("DMZWATCH_POLLER_PORT"), description="Port"
    )
    feeds_file: Path = Field(Path("feeds.yaml"), description="Feed list YAML (DMZWATCH_FEEDS_FILE)")
    fetch_timeout_seconds: float = Field(
        10.0, gt=0, description="Total deadline of one fetch, body included"
    )
    max_feed_bytes: int = Field(10 * 1024 * 1024, gt=0, description="Largest feed body read")
    fetch_concurrency: int = Field(8, ge=1, le=256, description="Feeds fetched at once")
    max_backoff_seconds: float = Field(
        6 * 3600.0, gt=0, description="Cap of the retry delay of a failing feed"
    )
