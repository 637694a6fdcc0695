"""Kafka clients configured the dmzwatch way, and topic administration.

Consumers: manual commits, ``earliest`` reset, a group per stage. Producers: idempotent
(set explicitly), ``acks=all``, small linger for batching. Works against Apache Kafka and the
Tansu broker used for local runs and tests.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog
import yaml
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from dmzwatch.shared.errors import ConfigurationError
from dmzwatch.shared.settings import CommonSettings
from dmzwatch.shared.topics import DEFAULT_PARTITIONS, TopicCatalogue

log = structlog.get_logger(__name__)


def broker_probe(bootstrap_servers: list[str], timeout_seconds: float = 1.0) -> None:
    """Readiness probe: returns when a TCP connection to any bootstrap server succeeds.

    kafka-python keeps reconnecting on its own and exposes no public "connected" state, so
    readiness asks the network directly; a refused or timed-out connection raises ``OSError``.
    """
    errors = []
    for server in bootstrap_servers:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_seconds):
                return
        except OSError as exc:
            errors.append(f"{server}: {exc.strerror or exc}")
    raise OSError("broker unreachable: " + "; ".join(errors))


def make_producer(settings: CommonSettings, client_id: str) -> KafkaProducer:
    """An idempotent producer: a retried send never writes a record twice."""
    return KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=settings.linger_ms,
        batch_size=128 * 1024,
        max_in_flight_requests_per_connection=5,
        retries=2**31 - 1,
        delivery_timeout_ms=120_000,
        request_timeout_ms=30_000,
    )


def make_consumer(
    settings: CommonSettings, stage: str, topics: Iterable[str], pattern: str | None = None
) -> KafkaConsumer:
    """A group consumer that never commits on its own: the runner commits after outputs land."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"dmzwatch-{stage}",
        group_id=settings.group_id(stage),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        max_poll_records=settings.max_poll_records,
        max_poll_interval_ms=300_000,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
    )
    if pattern is not None:
        consumer.subscribe(pattern=pattern)
    else:
        consumer.subscribe(list(topics))
    return consumer


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int = DEFAULT_PARTITIONS
    replication_factor: int = 1
    config: Mapping[str, str] | None = None


def load_topic_specs(path: Path | None, catalogue: TopicCatalogue) -> list[TopicSpec]:
    """Topic specs from ``deploy/kafka/topics.yaml`` (names relative to the prefix).

    Every catalogue topic gets a spec (the file's, or the defaults); the file may not name a
    topic the catalogue does not know, since nothing would read or write it.
    """
    defaults: dict[str, object] = {}
    per_topic: dict[str, dict[str, object]] = {}
    if path is not None and path.exists():
        doc = yaml.safe_load(path.read_text()) or {}
        defaults = dict(doc.get("defaults") or {})
        per_topic = {str(k): dict(v or {}) for k, v in (doc.get("topics") or {}).items()}
    names = {name.removeprefix(catalogue.prefix + "."): name for name in catalogue.all()}
    known_patterns = set(names) | {"alerts.*"}
    unknown = set(per_topic) - known_patterns
    if unknown:
        raise ConfigurationError(f"{path}: topics not in the catalogue: {sorted(unknown)}")
    specs = []
    for short, full in names.items():
        entry = {**defaults, **per_topic.get("alerts.*" if short.startswith("alerts.") else "", {})}
        entry.update(per_topic.get(short, {}))
        specs.append(
            TopicSpec(
                name=full,
                partitions=int(str(entry.get("partitions", DEFAULT_PARTITIONS))),
                replication_factor=int(str(entry.get("replication_factor", 1))),
                config=_string_map(entry.get("config")),
            )
        )
    return specs


def _string_map(value: object) -> dict[str, str] | None:
    if not isinstance(value, dict) or not value:
        return None
    return {str(k): str(v) for k, v in value.items()}


def create_topics(settings: CommonSettings, specs: Iterable[TopicSpec]) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, client_id="dmzwatch-admin"
    )
    try:
        existing = set(admin.list_topics())
        wanted = [s for s in specs if s.name not in existing]
        created: list[str] = []
        for spec in wanted:
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            spec.name,
                            spec.partitions,
                            spec.replication_factor,
                            topic_configs=dict(spec.config or {}),
                        )
                    ]
                )
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass  # created concurrently by another process: what we wanted
        log.info("topics_ensured", created=created, existing=len(existing))
        return created
    finally:
        admin.close()
