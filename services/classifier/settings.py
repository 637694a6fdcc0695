"""Classifier settings (``DMZWATCH_*``; see the README's configuration table)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field

from dmzwatch.shared.settings import CommonSettings


class ClassifierSettings(CommonSettings):
    metrics_port: int = Field(
        9103, validation_alias=AliasChoices("DMZWATCH_CLASSIFIER_PORT"), description="Port"
    )
    taxonomy_file: Path | None = Field(
        None, description="Taxonomy YAML (DMZWATCH_TAXONOMY_FILE); default: the bundled one"
    )
    alert_ttl_seconds: int = Field(
        14 * 86400, ge=60, description="How long a story remembers its alerts"
    )
    corroboration_sources: int = Field(
        3,
        ge=1,
        description="Independent outlets that corroborate a story: its alerts then get one "
        "update with status corroborated (DMZWATCH_CORROBORATION_SOURCES)",
    )
