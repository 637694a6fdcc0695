"""Notifier settings (``DMZWATCH_*``; see the README's configuration table)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field

from dmzwatch.shared.settings import CommonSettings


class NotifierSettings(CommonSettings):
    metrics_port: int = Field(
        9104, validation_alias=AliasChoices("DMZWATCH_NOTIFIER_PORT"), description="Port"
    )
    subscriptions_file: Path | None = Field(
        None, description="Subscriptions YAML (DMZWATCH_SUBSCRIPTIONS_FILE); none: log only"
    )
    webhook_timeout_seconds: float = Field(10.0, gt=0, description="Per-request timeout")
    delivery_attempts: int = Field(4, ge=1, description="Attempts before a dead letter")
