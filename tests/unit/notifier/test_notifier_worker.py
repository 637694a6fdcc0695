"""Delivery workers on the in-memory outbox: retries, Retry-After, budget, digests, rate limit."""

from __future__ import annotations

import itertools
import json
import random
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry

from dmzwatch.notifier.channels import DeliveryError, delivery_id
from dmzwatch.notifier.deadletters import MemoryDeadLetters
from dmzwatch.notifier.handler import NotifierHandler
from dmzwatch.notifier.metrics import NotifierMetrics
from dmzwatch.notifier.outbox import MemoryOutbox
from dmzwatch.notifier.policy import RetryPolicy, parse_retry_after
from dmzwatch.notifier.routes import Route
from dmzwatch.notifier.worker import DestinationWorker, WorkerOptions
from dmzwatch.shared.clock import ManualClock
from dmzwatch.shared.errors import RetryableError
from dmzwatch.shared.messages import DeadLetter
from dmzwatch.shared.runner import Context
from tests.notifier_support import ScriptedChannel, make_alert, route

CTX = Context("dmzwatch.alerts.purge", 3, 41, "s1", 0)


class Rig:
    """A handler and one worker sharing an in-memory outbox and a manual clock."""

    def __init__(self, the_route: Route, attempts: int = 4) -> None:
        self.route = the_route
        self.channel: ScriptedChannel = the_route.channel  # type: ignore[assignment]
        self.clock = ManualClock()
        self.outbox = MemoryOutbox()
        self.registry = CollectorRegistry()
        self.metrics = NotifierMetrics(self.registry)
        self.letters = MemoryDeadLetters()
        self.handler = NotifierHandler(lambda: [the_route], self.outbox, self.metrics, self.clock)
        self.worker = DestinationWorker(
            the_route,
            self.outbox,
            self.letters,
            self.metrics,
            self.clock,
            WorkerOptions(
                policy=RetryPolicy(attempts=attempts, initial_seconds=1, max_seconds=8),
                idle_poll_seconds=3600,  # single process: no other replica to look out for
            ),
            random.Random(7),
        )

    def drain(self, max_steps: int = 200) -> None:
        """Run the worker, moving the clock over its waits, until its queue is empty."""
        name = self.route.subscription.name
        for _ in range(max_steps):
            wait = self.worker.run_once()
            if self.outbox.depth(name) == 0:
                return
            self.clock.advance(wait)
        raise AssertionError("queue never drained")

    def value(self, metric: str, **labels: str) -> float:
        return self.registry.get_sample_value(metric, labels) or 0.0


def server_error() -> DeliveryError:
    return DeliveryError("HTTP 500 from http://127.0.0.1/***", reason="server_error")


def test_transient_failures_are_retried_with_growing_jittered_backoff_then_delivered() -> None:
    rig = Rig(route("f", ScriptedChannel([server_error(), server_error()])))
    rig.handler.handle(make_alert(), CTX)
    times: list[float] = []
    rig.channel.send = _stamping(rig.channel.send, rig.clock, times)  # type: ignore[method-assign]
    rig.drain()
    assert len(rig.channel.delivered) == 1 and len(rig.channel.attempts) == 3
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert 0.5 <= gaps[0] <= 1.0 + 1e-6 and 1.0 <= gaps[1] <= 2.0 + 1e-6  # equal jitter
    # Every attempt carried the same message id: receivers can de-duplicate on it.
    assert {d.message_id for d in rig.channel.attempts} == {delivery_id("f", "a:1:id-1")}
    assert rig.outbox.state("f", "id-1", 1) == "delivered"
    labels = {"channel": "webhook", "subscription": "f"}
    assert rig.value("dmzwatch_notifier_retries_total", **labels, reason="server_error") == 2
    assert rig.value("dmzwatch_notifier_deliveries_total", **labels, outcome="delivered") == 1


def _stamping(send, clock, times):
    def wrapped(delivery):
        times.append(clock.now().timestamp())
        return send(delivery)

    return wrapped


def test_retry_after_is_honoured_and_pauses_the_whole_destination() -> None:
    limited = DeliveryError("HTTP 429", reason="rate_limited", retry_after="2")
    rig = Rig(route("r", ScriptedChannel([limited])))
    rig.handler.handle(make_alert("first"), CTX)
    times: list[float] = []
    rig.channel.send = _stamping(rig.channel.send, rig.clock, times)  # type: ignore[method-assign]
    rig.worker.run_once()  # the 429
    rig.handler.handle(make_alert("second"), CTX)
    rig.drain()
    assert sorted(d.alerts[0].id for d in rig.channel.delivered) == ["first", "second"]
    # Nothing went to the destination until its Retry-After had passed, not even a new alert.
    assert times[1] - times[0] >= 2.0 and times[2] - times[0] >= 2.0


def test_parse_retry_after_reads_seconds_and_http_dates() -> None:
    now = ManualClock().now()
    assert parse_retry_after("2", now) == 2.0
    http_date = (now + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(http_date, now) == 30.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now) == 0.0  # in the past
    assert parse_retry_after("soon", now) is None and parse_retry_after(None, now) is None


def test_retry_after_is_capped() -> None:
    policy = RetryPolicy(attempts=3, initial_seconds=1, max_seconds=10, retry_after_max_seconds=60)
    assert policy.delay(1, 86400, random.Random(1)) == 60


def test_a_dead_receiver_ends_in_a_dead_letter_after_the_budget_with_metrics() -> None:
    rig = Rig(route("dead", ScriptedChannel([server_error()] * 10)), attempts=4)
    rig.handler.handle(make_alert(), CTX)
    rig.drain()
    assert len(rig.channel.attempts) == 4 and rig.channel.delivered == []
    [(key, letter)] = rig.letters.letters
    assert isinstance(letter, DeadLetter) and key == "s1"
    assert "delivery to dead gave up (exhausted) after 4 attempt(s): HTTP 500" in letter.error
    assert (letter.topic, letter.partition, letter.offset) == ("dmzwatch.alerts.purge", 3, 41)
    assert json.loads(letter.value_text or "")["id"] == "id-1"
    assert rig.outbox.state("dead", "id-1", 1) == "dead"
    labels = {"channel": "webhook", "subscription": "dead"}
    assert rig.value("dmzwatch_notifier_deadletters_total", **labels, reason="exhausted") == 1
    assert rig.value("dmzwatch_notifier_deliveries_total", **labels, outcome="deadlettered") == 1
    assert rig.value("dmzwatch_notifier_retries_total", **labels, reason="server_error") == 3


def test_a_permanent_refusal_is_dead_lettered_at_once() -> None:
    gone = DeliveryError("HTTP 404", reason="rejected")
    rig = Rig(route("gone", ScriptedChannel([gone])))
    rig.handler.handle(make_alert(), CTX)
    rig.drain()
    assert len(rig.channel.attempts) == 1 and "(rejected)" in rig.letters.letters[0][1].error


def test_attempts_interrupted_by_crashes_count_against_the_budget() -> None:
    rig = Rig(route("c"), attempts=2)
    rig.handler.handle(make_alert(), CTX)
    now = rig.clock.now().timestamp()
    for _ in range(2):  # two workers died holding the item: their leases run out
        rig.outbox.claim("c", now=now, lease_seconds=60, interval_seconds=0.001, burst=1)
        now += 61
    rig.clock.advance(122)
    rig.drain()
    assert rig.channel.attempts == [] and len(rig.letters.letters) == 1


def test_a_dead_letter_that_cannot_be_published_keeps_the_delivery() -> None:
    class Down(MemoryDeadLetters):
        def publish(self, letter, key):
            raise RetryableError("broker down")

    rig = Rig(route("x", ScriptedChannel([DeliveryError("HTTP 400", reason="rejected")])))
    rig.worker._deadletters = Down()  # type: ignore[attr-defined]
    rig.handler.handle(make_alert(), CTX)
    rig.worker.run_once()
    assert rig.outbox.depth("x") == 1 and rig.outbox.state("x", "id-1", 1) == "queued"


def test_digest_mode_sends_one_message_per_window_with_all_its_alerts() -> None:
    rig = Rig(route("d", mode="digest", digest_minutes=15))
    for i in range(3):
        rig.handler.handle(make_alert(f"w1-{i}"), CTX)
        rig.clock.advance(60)
    assert rig.worker.run_once() > 0 and rig.channel.attempts == []  # window still open
    rig.clock.advance(15 * 60)  # into the next window
    rig.handler.handle(make_alert("w2-0"), CTX)
    rig.drain()
    windows = [sorted(a.id for a in d.alerts) for d in rig.channel.delivered]
    assert windows == [["w1-0", "w1-1", "w1-2"], ["w2-0"]]
    first = rig.channel.delivered[0]
    assert first.is_digest and first.window is not None
    assert first.window[1] - first.window[0] == timedelta(minutes=15)
    labels = {"channel": "webhook", "subscription": "d", "outcome": "delivered"}
    assert rig.value("dmzwatch_notifier_deliveries_total", **labels) == 2


def test_an_alert_arriving_while_its_window_is_being_sent_goes_to_the_next() -> None:
    rig = Rig(route("d", mode="digest", digest_minutes=5))
    rig.handler.handle(make_alert("early"), CTX)
    rig.clock.advance(300)
    claimed = rig.outbox.claim(
        "d", now=rig.clock.now().timestamp(), lease_seconds=60, interval_seconds=1, burst=1
    )
    # A replica with a slow clock still thinks it is in the first window.
    rig.outbox.schedule(
        "d", "late", 1, b"{}", now=rig.clock.now().timestamp() - 1, digest_seconds=300
    )
    assert rig.outbox.depth("d") == 2 and claimed


@pytest.mark.parametrize(("per_minute", "burst"), [(60, 1), (120, 3)])
def test_the_rate_limit_spaces_requests_to_a_destination(per_minute: int, burst: int) -> None:
    rig = Rig(route("rl", rate_limit={"per_minute": per_minute, "burst": burst}))
    times: list[float] = []
    rig.channel.send = _stamping(rig.channel.send, rig.clock, times)  # type: ignore[method-assign]
    for i in range(8):
        rig.handler.handle(make_alert(f"id-{i}"), CTX)
    rig.drain()
    interval = 60 / per_minute
    assert len(times) == 8
    assert times[burst - 1] - times[0] < 1e-6  # the burst goes at once
    for a, b in zip(times[burst:], times[burst + 1 :], strict=False):
        assert b - a >= interval - 1e-6


def test_a_reload_switches_channels_between_deliveries_and_closes_the_old() -> None:
    rig = Rig(route("s"))
    new = ScriptedChannel()
    rig.worker.replace(route("s", new))
    rig.handler.handle(make_alert(), CTX)
    rig.drain()
    assert rig.channel.closed and len(new.delivered) == 1
