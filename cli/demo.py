"""``dmzwatch demo``: one pass over the demo feeds through the whole pipeline.

Real Redis and a real Kafka-protocol broker (Tansu unless one is configured); the stages run in
this process, each with its own Kafka clients, as they would as services. Every run uses fresh
topic and key prefixes and removes its Redis keys afterwards, so it can be repeated.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

from prometheus_client import CollectorRegistry

from dmzwatch.classifier import app as classifier_app
from dmzwatch.classifier.engine import Classifier
from dmzwatch.classifier.settings import ClassifierSettings
from dmzwatch.dedup import app as dedup_app
from dmzwatch.dedup.settings import DedupSettings
from dmzwatch.feedserver import FeedServer
from dmzwatch.notifier import app as notifier_app
from dmzwatch.notifier.settings import NotifierSettings
from dmzwatch.poller.feeds import load_feeds
from dmzwatch.poller.fetch import HttpFeedFetcher
from dmzwatch.poller.metrics import PollerMetrics
from dmzwatch.poller.schedule import Schedule
from dmzwatch.poller.service import PollerSource
from dmzwatch.poller.ssrf import AddressPolicy
from dmzwatch.shared.broker import TansuBroker
from dmzwatch.shared.claims import connect_redis
from dmzwatch.shared.clock import SystemClock
from dmzwatch.shared.health import Health
from dmzwatch.shared.kafka import TopicSpec, create_topics, make_consumer, make_producer
from dmzwatch.shared.messages import Alert
from dmzwatch.shared.metrics import StageMetrics
from dmzwatch.shared.runner import ConsumerDefinition, Runner, RunnerOptions
from dmzwatch.shared.settings import CommonSettings
from dmzwatch.tail import format_alert


class WebhookReceiver:
    """A local HTTP endpoint that records what is POSTed to it."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class DemoResult:
    feeds: int = 0
    polls: int = 0
    raw: int = 0
    duplicates: dict[str, int] = field(default_factory=dict)
    unique: int = 0
    syndicated: int = 0
    decisions: int = 0
    alerts: list[Alert] = field(default_factory=list)
    deliveries: int = 0
    deadletters: int = 0
    complete: bool = False
    seconds: float = 0.0


@dataclass
class _Stage:
    name: str
    registry: CollectorRegistry
    runner: Runner[Any]
    thread: threading.Thread

    def value(self, metric: str, **labels: str) -> float:
        return self.registry.get_sample_value(metric, labels) or 0.0


def run_demo(settings: CommonSettings, polls: int = 2, timeout: float = 90.0) -> DemoResult:
    """Run the pipeline once over the demo feeds and return what it did."""
    started = time.monotonic()
    run_id = uuid.uuid4().hex[:8]
    prefix = f"dmzwatch-demo-{run_id}"
    key_prefix = f"dmzwatch-demo:{run_id}:"
    external = "kafka_bootstrap_servers" in settings.model_fields_set
    with ExitStack() as stack:
        bootstrap = settings.kafka_bootstrap_servers
        if not external:
            bootstrap = stack.enter_context(TansuBroker()).bootstrap_servers
        common: dict[str, Any] = {
            "kafka_bootstrap_servers": bootstrap,
            "redis_url": settings.redis_url,
            "topic_prefix": prefix,
            "consumer_group_prefix": prefix,
            "redis_key_prefix": key_prefix,
            "session_timeout_ms": 6000,
            "heartbeat_interval_ms": 1000,
        }
        client = connect_redis(settings.redis_url.get_secret_value())
        stack.callback(_delete_keys, client, key_prefix)
        classifier = Classifier.from_taxonomy()
        base = CommonSettings(**common)
        topics = base.topics(classifier.categories)
        create_topics(base, [TopicSpec(name) for name in topics.all()])

        # Like many publishers, ignore validators: the second poll re-sends every article and
        # dedup has to drop them.
        feed_server = FeedServer(conditional=False).start()
        stack.callback(feed_server.stop)
        receiver = WebhookReceiver()
        stack.callback(receiver.stop)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dmzwatch-demo-")))
        feeds_file = feed_server.render_feed_list(tmp / "feeds.yaml")
        subscriptions = tmp / "subscriptions.yaml"
        subscriptions.write_text(
            f"subscriptions:\n  - name: demo-webhook\n    webhook:\n      url: {receiver.url}\n"
        )

        clock = SystemClock()
        builders: list[tuple[str, Callable[[CollectorRegistry], ConsumerDefinition[Any]]]] = [
            ("dedup", lambda r: dedup_app.build(DedupSettings(**common), client, r, clock)),
            (
                "classifier",
                lambda r: classifier_app.build(
                    ClassifierSettings(**common), client, r, clock, classifier
                ),
            ),
            (
                "notifier",
                lambda r: notifier_app.build(
                    NotifierSettings(**common, subscriptions_file=subscriptions), client, r, clock
                ),
            ),
        ]
        stages = {name: _start_stage(name, build, base, clock) for name, build in builders}
        stack.callback(_stop_stages, stages)

        result = DemoResult(polls=polls)
        feeds = load_feeds(feeds_file)
        result.feeds = len(feeds)
        # The SSRF guard refuses loopback: open exactly the demo feed server's port.
        local = (feed_server.base_url.removeprefix("http://"),)
        with _poller(base, feeds, clock, topics.articles_raw, local) as poller:
            for _ in range(polls):
                result.raw += poller.poll_all().articles

        def balanced() -> bool:
            d, c, n = stages["dedup"], stages["classifier"], stages["notifier"]
            alerts = sum(
                c.value("dmzwatch_alerts_total", category=cat) for cat in classifier.categories
            )
            return (
                d.value("dmzwatch_messages_total", stage="dedup", outcome="in") >= result.raw
                and c.value("dmzwatch_messages_total", stage="classifier", outcome="in")
                >= d.value("dmzwatch_messages_total", stage="dedup", outcome="out")
                and n.value("dmzwatch_messages_total", stage="notifier", outcome="in") >= alerts
                and len(receiver.received) >= alerts
            )

        # Counters move while a message is being handled, so "balanced" must also hold still.
        deadline = time.monotonic() + timeout
        stable_since: float | None = None
        while time.monotonic() < deadline:
            snapshot = _snapshot(stages)
            if balanced():
                if stable_since is None:
                    stable_since, stable_snapshot = time.monotonic(), snapshot
                elif snapshot != stable_snapshot:
                    stable_since = None
                elif time.monotonic() - stable_since >= 1.0:
                    result.complete = True
                    break
            else:
                stable_since = None
            time.sleep(0.2)

        d, c = stages["dedup"], stages["classifier"]
        result.duplicates = {
            kind: int(d.value("dmzwatch_dedup_duplicates_total", kind=kind))
            for kind in ("url", "guid", "id", "content")
        }
        result.unique = int(d.value("dmzwatch_dedup_unique_total", syndicated="false"))
        result.syndicated = int(d.value("dmzwatch_dedup_unique_total", syndicated="true"))
        result.decisions = int(c.value("dmzwatch_messages_total", stage="classifier", outcome="in"))
        result.alerts = [Alert.model_validate(body) for body in receiver.received]
        result.deliveries = len(receiver.received)
        result.deadletters = int(
            sum(
                s.value("dmzwatch_messages_total", stage=s.name, outcome="deadlettered")
                for s in stages.values()
            )
        )
    result.seconds = time.monotonic() - started
    return result


def print_result(result: DemoResult, out: TextIO) -> None:
    print(f"dmzwatch demo: {len(result.alerts)} alert(s)\n", file=out)
    for alert in sorted(result.alerts, key=lambda a: (a.data.category, a.data.title)):
        print(format_alert(alert), file=out)
    by_category: dict[str, int] = {}
    for alert in result.alerts:
        by_category[alert.data.category] = by_category.get(alert.data.category, 0) + 1
    dropped = sum(result.duplicates.values())
    kinds = ", ".join(f"{k} {v}" for k, v in result.duplicates.items() if v) or "none"
    cats = ", ".join(f"{k} {v}" for k, v in sorted(by_category.items())) or "none"
    print(
        "\nsummary\n"
        f"  feeds polled            {result.feeds} feeds x {result.polls} polls\n"
        f"  raw articles published  {result.raw}\n"
        f"  duplicates dropped      {dropped} ({kinds})\n"
        f"  unique articles         {result.unique + result.syndicated}"
        f" ({result.syndicated} syndicated cop{'y' if result.syndicated == 1 else 'ies'})\n"
        f"  decisions               {result.decisions}\n"
        f"  alerts                  {len(result.alerts)} ({cats})\n"
        f"  webhook deliveries      {result.deliveries}\n"
        f"  dead letters            {result.deadletters}\n"
        f"  pipeline complete       {'yes' if result.complete else 'NO (timed out)'}"
        f" in {result.seconds:.1f}s",
        file=out,
    )


def _snapshot(stages: dict[str, _Stage]) -> tuple[float, ...]:
    return tuple(
        stage.value("dmzwatch_messages_total", stage=stage.name, outcome=outcome)
        for stage in stages.values()
        for outcome in ("in", "out")
    )


def _start_stage(
    name: str,
    build: Callable[[CollectorRegistry], ConsumerDefinition[Any]],
    settings: CommonSettings,
    clock: SystemClock,
) -> _Stage:
    registry = CollectorRegistry()
    definition = build(registry)
    runner: Runner[Any] = Runner(
        definition,
        make_consumer(settings, name, definition.topics, definition.pattern),
        make_producer(settings, client_id=f"demo-{name}"),
        deadletter_topic=settings.topics().deadletter,
        metrics=StageMetrics(name, registry),
        health=Health(clock),
        clock=clock,
        options=RunnerOptions(poll_timeout_ms=100),
    )
    thread = threading.Thread(target=runner.run, name=f"demo-{name}", daemon=True)
    thread.start()
    return _Stage(name, registry, runner, thread)


def _stop_stages(stages: dict[str, _Stage]) -> None:
    for stage in stages.values():
        stage.runner.stop()
    for stage in stages.values():
        stage.thread.join(timeout=30)


@contextmanager
def _poller(
    settings: CommonSettings, feeds: Any, clock: SystemClock, topic: str, allow: tuple[str, ...]
) -> Iterator[PollerSource]:
    registry = CollectorRegistry()
    fetcher = HttpFeedFetcher(timeout_seconds=10, address_policy=AddressPolicy.from_entries(allow))
    producer = make_producer(settings, client_id="demo-poller")
    source = PollerSource(
        feeds=feeds,
        fetcher=fetcher,
        producer=producer,
        topic=topic,
        schedule=Schedule(feeds),
        metrics=PollerMetrics(registry),
        stage_metrics=StageMetrics("poller", registry),
        health=Health(clock),
        clock=clock,
    )
    try:
        yield source
    finally:
        source.close()
        producer.close()
        fetcher.close()


def _delete_keys(client: Any, prefix: str) -> None:
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
