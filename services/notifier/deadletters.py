"""Where deliveries given up on go: ``dmzwatch.deadletter``, written by the delivery workers.

Workers run beside the Kafka runner, not inside it, so they publish with their own producer and
wait for the broker's acknowledgement before the outbox marks the delivery dead (a crash in
between publishes the letter twice, never zero times).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable

from kafka.errors import KafkaError

from dmzwatch.shared.errors import RetryableError
from dmzwatch.shared.messages import DeadLetter, encode
from dmzwatch.shared.runner import ProducerPort


class DeadLetterSink(ABC):
    """Publishes dead letters.

    ``publish`` returns once the letter is stored durably and raises :class:`RetryableError`
    when it could not be (the worker tries again later). Safe to call from several threads.
    ``close`` is called once, at shutdown.
    """

    @abstractmethod
    def publish(self, letter: DeadLetter, key: str | None) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""


class KafkaDeadLetters(DeadLetterSink):
    """Produces to the dead-letter topic; the producer is made on first use."""

    def __init__(
        self, topic: str, make_producer: Callable[[], ProducerPort], timeout_seconds: float = 30.0
    ) -> None:
        self._topic = topic
        self._make_producer = make_producer
        self._timeout = timeout_seconds
        self._producer: ProducerPort | None = None
        self._lock = threading.Lock()

    def publish(self, letter: DeadLetter, key: str | None) -> None:
        with self._lock:
            try:
                if self._producer is None:
                    self._producer = self._make_producer()
                future = self._producer.send(
                    self._topic, value=encode(letter), key=key.encode() if key else None
                )
                future.get(timeout=self._timeout)
            except KafkaError as exc:
                raise RetryableError(f"dead letter not acknowledged: {exc!r}") from exc

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=self._timeout)
                self._producer = None


class MemoryDeadLetters(DeadLetterSink):
    """Keeps dead letters in a list (unit tests)."""

    def __init__(self) -> None:
        self.letters: list[tuple[str | None, DeadLetter]] = []
        self._lock = threading.Lock()

    def publish(self, letter: DeadLetter, key: str | None) -> None:
        with self._lock:
            self.letters.append((key, letter))
