"""In-memory stand-ins for the Kafka clients the runner uses (unit tier)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka.errors import KafkaTimeoutError
from kafka.structs import OffsetAndMetadata, TopicPartition


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int | None = 0


class FakeConsumer:
    """Partitions as lists; ``poll`` hands out records from each position."""

    def __init__(self) -> None:
        self.log: dict[TopicPartition, list[Record]] = {}
        self.position: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}
        self.closed = False

    def append(
        self, topic: str, value: bytes | None, key: bytes | None = None, partition: int = 0
    ) -> None:
        tp = TopicPartition(topic, partition)
        records = self.log.setdefault(tp, [])
        records.append(Record(topic, partition, len(records), key, value))
        self.position.setdefault(tp, 0)

    def poll(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> Mapping[TopicPartition, Sequence[Any]]:
        batch = {}
        for tp, records in self.log.items():
            pending = records[self.position[tp] :][: max_records or None]
            if pending:
                batch[tp] = pending
                self.position[tp] += len(pending)
        return batch

    def commit(self, offsets: Mapping[TopicPartition, OffsetAndMetadata]) -> None:
        for tp, meta in offsets.items():
            self.committed[tp] = meta.offset

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.position[partition] = offset

    def highwater(self, partition: TopicPartition) -> int | None:
        return len(self.log.get(partition, []))

    def close(self) -> None:
        self.closed = True


class FakeFuture:
    def __init__(self, error: Exception | None) -> None:
        self._error = error

    def get(self, timeout: float | None = None) -> None:
        if self._error is not None:
            raise self._error


@dataclass
class FakeProducer:
    sent: list[tuple[str, bytes | None, bytes | None]] = field(default_factory=list)
    fail_next: int = 0
    closed: bool = False

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None) -> FakeFuture:
        if self.fail_next:
            self.fail_next -= 1
            return FakeFuture(KafkaTimeoutError("no ack"))
        self.sent.append((topic, key, value))
        return FakeFuture(None)

    def flush(self, timeout: float | None = None) -> None:
        return None

    def close(self, timeout: float | None = None) -> None:
        self.closed = True

    def on(self, topic: str) -> list[bytes | None]:
        return [value for t, _, value in self.sent if t == topic]
