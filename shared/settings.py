"""Typed settings, read once at start-up (after quix-streams' ``utils/settings``).

Every setting is an environment variable ``DMZWATCH_<NAME>`` (also read from a ``.env`` file in
the working directory); services subclass :class:`CommonSettings` and add their own. Secrets are
``SecretStr`` so they print as ``**********``. Nothing else in dmzwatch reads ``os.environ``.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dmzwatch.shared.topics import DEFAULT_PREFIX, TopicCatalogue


class CommonSettings(BaseSettings):
    """Settings every service reads."""

    model_config = SettingsConfigDict(
        env_prefix="DMZWATCH_", env_file=".env", extra="ignore", frozen=True
    )

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated host:port"
    )
    redis_url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"),
        description="Redis URL (may hold a password, so it is masked in logs)",
    )
    redis_key_prefix: str = Field("dmzwatch:", description="Prefix of every Redis key")
    topic_prefix: str = Field(DEFAULT_PREFIX, description="Prefix of every Kafka topic name")
    consumer_group_prefix: str = Field(
        "dmzwatch", description="Consumer groups are <prefix>-<stage>"
    )
    session_timeout_ms: int = Field(
        10_000, ge=1000, description="Kafka consumer session timeout; group joins take ~half"
    )
    heartbeat_interval_ms: int = Field(3_000, ge=100)
    max_poll_records: int = Field(500, ge=1, description="Largest batch handled per poll")
    linger_ms: int = Field(5, ge=0, description="Producer batching delay")
    fetch_max_wait_ms: int = Field(
        10,
        ge=0,
        description="Longest a consumer's fetch waits for records; Tansu answers only when it "
        "ends, so it bounds each hop's latency (Kafka answers as soon as records arrive)",
    )
    retry_backoff_max_seconds: float = Field(
        30.0, gt=0, description="Cap of the backoff after a retryable failure"
    )
    metrics_host: str = Field(
        "127.0.0.1", description="Address of the /metrics, /healthz, /readyz server"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = Field(
        "json", description="json for machines, console for people"
    )

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _servers_present(cls, value: str) -> str:
        servers = [s.strip() for s in value.split(",") if s.strip()]
        if not servers or any(":" not in s for s in servers):
            raise ValueError("expected host:port[,host:port...]")
        return ",".join(servers)

    @property
    def bootstrap_servers(self) -> list[str]:
        return self.kafka_bootstrap_servers.split(",")

    def topics(self, categories: tuple[str, ...] | None = None) -> TopicCatalogue:
        base = TopicCatalogue(prefix=self.topic_prefix)
        return base if categories is None else base.with_categories(categories)

    def group_id(self, stage: str) -> str:
        return f"{self.consumer_group_prefix}-{stage}"

    def masked_redis_url(self) -> str:
        return mask_url(self.redis_url.get_secret_value())


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for logs and errors)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, ""))
