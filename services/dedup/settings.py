"""Dedup settings (``DMZWATCH_*``; see the README's configuration table)."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from dmzwatch.dedup.signature import DEFAULT_THRESHOLD
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
    story_window_seconds: int = Field(
        72 * 3600,
        ge=60,
        description="How long a story gathers copies and outlets (DMZWATCH_STORY_WINDOW_SECONDS)",
    )
    near_duplicates: bool = Field(
        True,
        description="Match rewrites by MinHash of title and lead, not only verbatim copies "
        "(DMZWATCH_NEAR_DUPLICATES)",
    )
    similarity_threshold: float = Field(
        DEFAULT_THRESHOLD,
        gt=0,
        le=1,
        description="Least estimated Jaccard similarity (word 3-shingles of title and lead) "
        "with a story's first article to join it (DMZWATCH_SIMILARITY_THRESHOLD)",
    )
    dedup_shards: int = Field(
        1024,
        ge=1,
        le=65536,
        description="Hashes per time bucket for exact-match records; keep (articles per "
        "bucket × 3 / shards) under Redis' hash-max-listpack-entries (DMZWATCH_DEDUP_SHARDS)",
    )
    dedup_declare_keys: bool = Field(
        False,
        description="Name every Redis key a batch script touches in its KEYS, as a proxy that "
        "routes by declared keys (twemproxy, Envoy) needs; off: a batch script on a standalone "
        "Redis builds its key names itself, ~5x fewer arguments (DMZWATCH_DEDUP_DECLARE_KEYS)",
    )
    outlet_aliases: dict[str, str] = Field(
        default_factory=dict,
        description='JSON map of host or domain to the outlet it belongs to, e.g. {"yonhapnews.'
        'co.kr": "yna.co.kr"} (DMZWATCH_OUTLET_ALIASES)',
    )
