"""Notifier settings (``DMZWATCH_*``; see the README's configuration table)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, model_validator

from dmzwatch.notifier.policy import RetryPolicy
from dmzwatch.notifier.worker import WorkerOptions
from dmzwatch.shared.settings import CommonSettings


class NotifierSettings(CommonSettings):
    metrics_port: int = Field(
        9104, validation_alias=AliasChoices("DMZWATCH_NOTIFIER_PORT"), description="Port"
    )
    subscriptions_file: Path | None = Field(
        None, description="Subscriptions YAML (DMZWATCH_SUBSCRIPTIONS_FILE); none: log only"
    )
    subscriptions_reload_seconds: float = Field(
        5.0, gt=0, description="How often the subscriptions file is checked for changes"
    )
    webhook_timeout_seconds: float = Field(10.0, gt=0, description="Per-request timeout")
    delivery_attempts: int = Field(8, ge=1, description="Attempts before a dead letter")
    retry_initial_seconds: float = Field(1.0, gt=0, description="First retry delay (doubles)")
    retry_max_seconds: float = Field(300.0, gt=0, description="Cap of the retry delay")
    retry_after_max_seconds: float = Field(
        600.0, gt=0, description="Cap of a receiver's Retry-After"
    )
    delivery_lease_seconds: float = Field(
        60.0, gt=0, description="A claimed delivery is retried after this if its worker died"
    )
    delivery_poll_seconds: float = Field(
        1.0, gt=0, description="Idle workers look for work (other replicas') this often"
    )
    delivery_ledger_days: int = Field(
        30, ge=1, description="How long delivered/dead records are kept to refuse duplicates"
    )

    @model_validator(mode="after")
    def _lease_outlives_a_request(self) -> NotifierSettings:
        if self.delivery_lease_seconds <= self.webhook_timeout_seconds:
            raise ValueError("delivery_lease_seconds must exceed webhook_timeout_seconds")
        if self.retry_initial_seconds > self.retry_max_seconds:
            raise ValueError("retry_initial_seconds may not exceed retry_max_seconds")
        return self

    def worker_options(self) -> WorkerOptions:
        return WorkerOptions(
            policy=RetryPolicy(
                attempts=self.delivery_attempts,
                initial_seconds=self.retry_initial_seconds,
                max_seconds=self.retry_max_seconds,
                retry_after_max_seconds=self.retry_after_max_seconds,
            ),
            lease_seconds=self.delivery_lease_seconds,
            ledger_ttl_seconds=self.delivery_ledger_days * 86400,
            idle_poll_seconds=self.delivery_poll_seconds,
        )
