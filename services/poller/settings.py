"""Poller settings (``DMZWATCH_*``; see the README's configuration table)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import NoDecode

from dmzwatch.poller.ssrf import parse_allow_list
from dmzwatch.shared.settings import CommonSettings


def _default_replica_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


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
    # NoDecode: the variable is a plain comma-separated list, not the JSON pydantic-settings
    # expects for a tuple.
    fetch_allow_networks: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Non-public networks fetches may connect to (DMZWATCH_FETCH_ALLOW_NETWORKS):"
        " comma-separated CIDRs or addresses, each optionally with one port, e.g."
        " '10.0.0.0/8, 127.0.0.1:8080, [fd00::/8]:443'. Cloud metadata is never allowed.",
    )

    fetch_per_host: int = Field(
        2, ge=1, le=64, description="Fetches at once to one host (DMZWATCH_FETCH_PER_HOST)"
    )
    # Replicas: several pollers share the feed list through leases in Redis (leases.py).
    poller_leases: bool = Field(
        True,
        description="Share the feed list with other poller replicas through leases in Redis"
        " (DMZWATCH_POLLER_LEASES); false: this process polls every feed, without Redis",
    )
    poller_replica_id: str = Field(
        default_factory=_default_replica_id,
        min_length=1,
        description="This replica's name in leases (DMZWATCH_POLLER_REPLICA_ID): hostname-pid",
    )
    poller_takeover_grace_seconds: float = Field(
        5.0,
        ge=0,
        description="How long a due feed is left to its preferred live replica before another"
        " takes it (DMZWATCH_POLLER_TAKEOVER_GRACE_SECONDS)",
    )
    poller_replica_alive_seconds: float = Field(
        30.0,
        gt=0,
        description="A replica silent this long counts as dead"
        " (DMZWATCH_POLLER_REPLICA_ALIVE_SECONDS)",
    )
    min_interval_seconds: float = Field(
        60.0, gt=0, description="Shortest adapted poll interval (DMZWATCH_MIN_INTERVAL_SECONDS)"
    )
    max_interval_seconds: float = Field(
        86400.0, gt=0, description="Longest adapted poll interval (DMZWATCH_MAX_INTERVAL_SECONDS)"
    )

    # WebSub (off unless a callback URL is set): hubs POST new entries to the callback server.
    websub_callback_url: str | None = Field(
        None,
        description="Public base URL hubs reach the WebSub callback server at, e.g."
        " 'https://poller.example.org/websub' (DMZWATCH_WEBSUB_CALLBACK_URL); unset: no WebSub",
    )
    websub_listen_host: str = Field(
        "127.0.0.1", description="Address the callback server binds (DMZWATCH_WEBSUB_LISTEN_HOST)"
    )
    websub_listen_port: int = Field(
        9111,
        ge=0,
        le=65535,
        description="Port of the callback server (DMZWATCH_WEBSUB_LISTEN_PORT)",
    )
    websub_lease_seconds: int = Field(
        86400,
        gt=0,
        description="Lease asked of hubs, renewed at 80% (DMZWATCH_WEBSUB_LEASE_SECONDS)",
    )
    websub_poll_interval_seconds: float = Field(
        3600.0,
        gt=0,
        description="Poll interval of a pushed feed (DMZWATCH_WEBSUB_POLL_INTERVAL_SECONDS)",
    )

    @field_validator("websub_callback_url")
    @classmethod
    def _http_callback(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("DMZWATCH_WEBSUB_CALLBACK_URL must be an http(s) URL")
        return value or None

    @field_validator("fetch_allow_networks", mode="before")
    @classmethod
    def _split_allow_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("fetch_allow_networks")
    @classmethod
    def _valid_allow_list(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """Every entry is checked at start-up and kept in its canonical spelling."""
        return tuple(str(rule) for rule in parse_allow_list(value))
