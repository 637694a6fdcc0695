"""The one Kafka loop: services supply a definition (topics, message type, handler).

The runner polls, decodes, calls the handler, produces its outputs, waits for the broker to
acknowledge them, and only then commits the batch's offsets (at-least-once: a crash anywhere
re-delivers, never loses). What an exception means is decided by its type (``errors.py``):
retryable failures rewind and back off; invalid and unexpected ones dead-letter the message and
go on. ``stop()`` (SIGTERM) finishes the batch in hand, flushes, commits and leaves the group.

Commits happen in the poll loop, never from a rebalance listener: kafka-python 3 raises
RuntimeError when a synchronous listener commits. Since a batch is committed before the next
poll, nothing is left uncommitted when partitions move; a commit refused because the group
rebalanced meanwhile only means the new owner re-processes the batch, which handlers tolerate.
"""

from __future__ import annotations

import base64
import threading
import traceback
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol

import structlog
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition

from dmzwatch.shared.clock import Clock
from dmzwatch.shared.errors import InvalidMessage, RetryableError
from dmzwatch.shared.health import Health
from dmzwatch.shared.messages import DeadLetter, M, Message, decode, encode
from dmzwatch.shared.metrics import StageMetrics

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Output:
    """One message a handler wants produced; the runner serialises and sends it."""

    topic: str
    key: str | None
    value: Message


@dataclass(frozen=True, slots=True)
class Context:
    """Where the message being handled came from."""

    topic: str
    partition: int
    offset: int
    key: str | None
    timestamp_ms: int | None

    @property
    def token(self) -> str:
        """Unique to this record and the same on every re-delivery of it.

        Handlers store it with the side effects they claim (e.g. a Redis ``SET NX``), so that a
        re-delivered record recognises its own earlier claim instead of taking it for someone
        else's.
        """
        return f"{self.topic}/{self.partition}/{self.offset}"


def dead_letter(
    deadletter_topic: str,
    stage: str,
    context: Context,
    raw: bytes | None,
    error: str,
    error_type: str,
    now: datetime,
) -> Output:
    """The dead-letter output for a record: its origin, the error, and its value byte for byte."""
    raw = raw or b""
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    letter = DeadLetter(
        stage=stage,
        error=error[:2000],
        error_type=error_type,
        topic=context.topic,
        partition=context.partition,
        offset=context.offset,
        key=context.key,
        value_text=text,
        value_base64=base64.b64encode(raw).decode("ascii"),
        failed_at=now,
    )
    return Output(deadletter_topic, context.key, letter)


class Handler(ABC, Generic[M]):
    """A stage's business logic for one message type.

    ``handle`` is called once per decoded message, in partition order, from the runner's thread.
    It may be called again for the same record after a crash, a retry or a rebalance, so its
    effects must be idempotent (see :attr:`Context.token`). It returns the outputs to produce;
    it raises :class:`RetryableError` when a dependency is unavailable (the record is retried
    later) and :class:`InvalidMessage` when the message can never be handled (dead-lettered).
    ``close`` is called once when the runner stops.
    """

    @abstractmethod
    def handle(self, message: M, context: Context) -> Sequence[Output]: ...

    def close(self) -> None:
        """Release resources; called once after the last ``handle``."""


Result = Sequence[Output] | Exception
"""What a batch handler concluded for one message: its outputs, or the exception it met."""


class BatchHandler(Handler[M]):
    """A handler that can also take a poll's decoded messages at once (e.g. to pipeline its
    calls to a store); the runner then calls :meth:`handle_batch` instead of ``handle``.

    ``handle_batch`` gets the batch's messages in poll order (each partition's in offset order)
    and returns one result per message, in the same order: the outputs, or the exception that
    message met. Semantics are per message, as with ``handle``: an :class:`InvalidMessage` (or
    any unexpected exception) dead-letters that message only; a retryable exception leaves that
    message and the later ones of its partition uncommitted, to be handled again after a
    backoff (their results are dropped, so effects must be idempotent as for ``handle``). If
    ``handle_batch`` itself raises a retryable exception the whole batch is retried; any other
    exception makes the runner handle the batch again one message at a time with ``handle``,
    so that only the bad message is dead-lettered.
    """

    @abstractmethod
    def handle_batch(self, items: Sequence[tuple[M, Context]]) -> Sequence[Result]: ...


@dataclass(frozen=True)
class ConsumerDefinition(Generic[M]):
    """What a consuming service is: its stage name, inputs, message type and handler.

    ``retryable`` lists exception types that mean "a dependency is down, try again" besides
    :class:`RetryableError` (e.g. ``redis.ConnectionError``). ``pattern`` (a regular
    expression), when set, subscribes to every matching topic instead of ``topics``, so that a
    stage follows topics added later (e.g. the alert topic of a new category).
    """

    stage: str
    topics: tuple[str, ...]
    message_type: type[M]
    handler: Handler[M]
    retryable: tuple[type[BaseException], ...] = ()
    pattern: str | None = None


class RecordLike(Protocol):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int | None


class FutureLike(Protocol):
    def get(self, timeout: float | None = None) -> Any: ...


class ConsumerPort(Protocol):
    """The part of ``kafka.KafkaConsumer`` the runner uses (an in-memory fake in unit tests)."""

    def poll(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> Mapping[TopicPartition, Sequence[Any]]: ...

    def commit(self, offsets: Mapping[TopicPartition, OffsetAndMetadata]) -> None: ...

    def seek(self, partition: TopicPartition, offset: int) -> None: ...

    def highwater(self, partition: TopicPartition) -> int | None: ...

    def close(self) -> None: ...


class ProducerPort(Protocol):
    """The part of ``kafka.KafkaProducer`` the runner uses."""

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None) -> Any: ...

    def flush(self, timeout: float | None = None) -> None: ...

    def close(self, timeout: float | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class RunnerOptions:
    poll_timeout_ms: int = 500
    max_records: int = 500
    flush_timeout_seconds: float = 60.0
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 30.0


class Backoff:
    """Exponential backoff, doubled per consecutive failure, capped, reset on success."""

    def __init__(self, initial: float, cap: float) -> None:
        self._initial = initial
        self._cap = cap
        self._next = initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self._cap, self._next * 2)
        return delay

    def reset(self) -> None:
        self._next = self._initial


class Runner(Generic[M]):
    """Runs one :class:`ConsumerDefinition` until :meth:`stop`."""

    def __init__(
        self,
        definition: ConsumerDefinition[M],
        consumer: ConsumerPort,
        producer: ProducerPort,
        *,
        deadletter_topic: str,
        metrics: StageMetrics,
        health: Health,
        clock: Clock,
        options: RunnerOptions = RunnerOptions(),
    ) -> None:
        self._definition = definition
        self._consumer = consumer
        self._producer = producer
        self._deadletter_topic = deadletter_topic
        self._metrics = metrics
        self._health = health
        self._clock = clock
        self._options = options
        self._retryable: tuple[type[BaseException], ...] = (
            RetryableError,
            *definition.retryable,
        )
        self._stopping = threading.Event()
        self._backoff = Backoff(options.backoff_initial_seconds, options.backoff_max_seconds)
        self._log = log.bind(stage=definition.stage)

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand and exit; safe from a signal handler."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run(self) -> None:
        self._log.info("runner_started", topics=list(self._definition.topics))
        self._health.set("broker", False, "no successful poll yet")
        try:
            while not self._stopping.is_set():
                self.run_once()
        finally:
            self._shutdown()

    def run_once(self) -> None:
        """One poll and the handling of its batch (public for tests)."""
        self._health.beat()
        try:
            batch = self._consumer.poll(
                timeout_ms=self._options.poll_timeout_ms, max_records=self._options.max_records
            )
        except KafkaError as exc:
            self._health.set("broker", False, f"poll failed: {exc!r}")
            self._log.warning("poll_failed", error=repr(exc))
            self._pause(self._backoff.next())
            return
        self._health.set("broker", True)
        if batch:
            self._process(batch)

    def _process(self, batch: Mapping[TopicPartition, Sequence[RecordLike]]) -> None:
        pending: list[FutureLike] = []
        commit: dict[TopicPartition, int] = {}
        rewind: dict[TopicPartition, int] = {}
        failure: BaseException | None = None
        if isinstance(self._definition.handler, BatchHandler):
            failure = self._process_batch(self._definition.handler, batch, pending, commit, rewind)
        for tp, records in batch.items():
            if not records or tp in commit or tp in rewind:
                continue
            if failure is not None:
                rewind[tp] = records[0].offset
                continue
            for record in records:
                try:
                    outputs = self._handle(record)
                except self._retryable as exc:
                    failure = exc
                    rewind[tp] = record.offset
                    break
                pending.extend(self._send(output) for output in outputs)
                commit[tp] = record.offset + 1
            self._observe_lag(tp, records[-1].offset + 1)

        started = self._clock.monotonic()
        try:
            self._producer.flush(timeout=self._options.flush_timeout_seconds)
            for future in pending:
                future.get(timeout=self._options.flush_timeout_seconds)
        except KafkaError as exc:
            # Some outputs were not acknowledged: commit nothing of this batch and redo it.
            self._health.set("broker", False, f"produce failed: {exc!r}")
            self._log.warning("produce_failed", error=repr(exc), outputs=len(pending))
            for tp, records in batch.items():
                if records:
                    self._consumer.seek(tp, records[0].offset)
            self._metrics.retried.inc()
            self._pause(self._backoff.next())
            return
        self._metrics.produced.inc(len(pending))
        committed = self._commit(commit)
        self._metrics.commit_wait.observe(self._clock.monotonic() - started)
        for tp, offset in rewind.items():
            self._consumer.seek(tp, offset)
        if failure is not None:
            self._metrics.retried.inc()
            self._health.set("dependencies", False, f"{type(failure).__name__}: {failure}")
            delay = self._backoff.next()
            self._log.warning(
                "handler_retrying",
                error=repr(failure),
                error_type=type(failure).__name__,
                backoff_seconds=delay,
            )
            self._pause(delay)
        else:
            self._health.set("dependencies", True)
            if committed:
                self._backoff.reset()
            else:
                self._pause(self._backoff.next())

    def _process_batch(
        self,
        handler: BatchHandler[M],
        batch: Mapping[TopicPartition, Sequence[RecordLike]],
        pending: list[FutureLike],
        commit: dict[TopicPartition, int],
        rewind: dict[TopicPartition, int],
    ) -> BaseException | None:
        """Hand the batch's decodable messages to ``handle_batch`` at once; fill ``commit`` and
        ``rewind`` for every partition it settled and return the retryable failure met, if any.
        Partitions left out of both (the batch call failed unexpectedly) are handled one by one.
        """
        started = self._clock.monotonic()
        items: list[tuple[M, Context]] = []
        # per record of the poll: its index in ``items``, or why it could not be decoded
        slots: list[int | InvalidMessage] = []
        flat = [r for rs in batch.values() for r in rs]
        for record in flat:
            key = record.key.decode("utf-8", "replace") if record.key is not None else None
            context = Context(record.topic, record.partition, record.offset, key, record.timestamp)
            try:
                items.append((decode(self._definition.message_type, record.value), context))
                slots.append(len(items) - 1)
            except InvalidMessage as exc:
                slots.append(exc)
        try:
            answers = handler.handle_batch(items) if items else []
            if len(answers) != len(items):
                raise RuntimeError(f"handle_batch gave {len(answers)} results for {len(items)}")
        except self._retryable as exc:
            self._metrics.consumed.inc(len(flat))
            for tp, rs in batch.items():
                if rs:
                    rewind[tp] = rs[0].offset
            return exc
        except Exception as exc:
            self._log.error(
                "batch_handler_failed",
                error=repr(exc),
                records=len(flat),
                traceback=traceback.format_exc(),
            )
            return None  # the caller handles every partition one message at a time
        self._metrics.consumed.inc(len(flat))
        per_message = (self._clock.monotonic() - started) / max(1, len(flat))
        for _ in flat:
            self._metrics.processing.observe(per_message)
        failure: BaseException | None = None
        for record, slot in zip(flat, slots, strict=True):
            tp = TopicPartition(record.topic, record.partition)
            if tp in rewind:
                continue  # after a retryable failure in its partition
            answer = slot if isinstance(slot, InvalidMessage) else answers[slot]
            if isinstance(answer, self._retryable):
                failure = failure or answer
                rewind[tp] = record.offset
                continue
            if isinstance(answer, Exception):
                key = record.key.decode("utf-8", "replace") if record.key is not None else None
                if not isinstance(answer, InvalidMessage):
                    self._log.error(
                        "handler_failed",
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                        error=repr(answer),
                    )
                answer = [self._dead_letter(record, key, answer)]
            pending.extend(self._send(output) for output in answer)
            commit[tp] = record.offset + 1
        for tp, rs in batch.items():
            if rs:
                self._observe_lag(tp, rs[-1].offset + 1)
        return failure

    def _handle(self, record: RecordLike) -> Sequence[Output]:
        """The outputs for one record: the handler's, or a dead letter."""
        self._metrics.consumed.inc()
        started = self._clock.monotonic()
        key = record.key.decode("utf-8", "replace") if record.key is not None else None
        context = Context(record.topic, record.partition, record.offset, key, record.timestamp)
        try:
            message = decode(self._definition.message_type, record.value)
            return self._definition.handler.handle(message, context)
        except self._retryable:
            raise
        except InvalidMessage as exc:
            return [self._dead_letter(record, key, exc)]
        except Exception as exc:
            # A bug met by this one message: keep it for replay, do not wedge the partition.
            self._log.error(
                "handler_failed",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                error=repr(exc),
                traceback=traceback.format_exc(),
            )
            return [self._dead_letter(record, key, exc)]
        finally:
            self._metrics.processing.observe(self._clock.monotonic() - started)

    def _dead_letter(self, record: RecordLike, key: str | None, exc: Exception) -> Output:
        self._metrics.deadlettered.inc()
        self._log.warning(
            "message_dead_lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error=str(exc),
            error_type=type(exc).__name__,
        )
        context = Context(record.topic, record.partition, record.offset, key, record.timestamp)
        return dead_letter(
            self._deadletter_topic,
            self._definition.stage,
            context,
            record.value,
            str(exc),
            type(exc).__name__,
            self._clock.now(),
        )

    def _send(self, output: Output) -> FutureLike:
        key = output.key.encode() if output.key is not None else None
        future: FutureLike = self._producer.send(output.topic, value=encode(output.value), key=key)
        return future

    def _commit(self, offsets: Mapping[TopicPartition, int]) -> bool:
        """Commit ``offsets``; False (counted, logged, broker marked not ready) if refused.

        Any Kafka error counts, whatever its ``retriable`` flag (a rebalance, a lost coordinator,
        a timeout): the outputs are already acknowledged, so the records are only redelivered
        (to us or a new owner, if no later commit covers them) and the stages are idempotent.
        """
        if not offsets:
            return True
        try:
            self._consumer.commit(
                {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()}
            )
        except KafkaError as exc:
            self._metrics.commit_failures.inc()
            self._health.set("broker", False, f"commit failed: {exc!r}")
            self._log.warning(
                "commit_failed",
                error=repr(exc),
                error_type=type(exc).__name__,
                retriable=exc.retriable,
            )
            return False
        return True

    def _observe_lag(self, tp: TopicPartition, position: int) -> None:
        highwater = self._consumer.highwater(tp)
        if highwater is not None:
            self._metrics.lag.labels(self._definition.stage, tp.topic, str(tp.partition)).set(
                max(0, highwater - position)
            )

    def _pause(self, seconds: float) -> None:
        """Sleep in short steps so that ``stop()`` is honoured promptly."""
        deadline = self._clock.monotonic() + seconds
        while not self._stopping.is_set():
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                return
            self._clock.sleep(min(0.2, remaining))
            self._health.beat()

    def _shutdown(self) -> None:
        self._log.info("runner_stopping")
        try:
            self._producer.flush(timeout=self._options.flush_timeout_seconds)
        except KafkaError as exc:
            self._log.error("final_flush_failed", error=repr(exc))
        try:
            self._definition.handler.close()
        finally:
            self._consumer.close()
            self._producer.close(timeout=self._options.flush_timeout_seconds)
            self._log.info("runner_stopped")
