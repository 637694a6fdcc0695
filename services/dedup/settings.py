"""Dedup settings (``DMZWATCH_*``; see the README's configuration table)."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from dmzwatch.shared.settings import CommonSettings


class DedupSettings(CommonSettings):
    metrics_port: int = Field(
        9102, validation_alias=AliasChoices("DMZWATCH_DEDUP_PORT"), description="Dedup's port"
    )
    dedup_ttl_seconds: int = Field(
        14 * 86400,
        ge=60,
        description="How long an article is remembered (DMZWATCH_DEDUP_TTL_SECONDS)",
    )
