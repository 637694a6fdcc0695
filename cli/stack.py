"""The whole pipeline on one machine: broker (Tansu, unless one is configured), Redis (already
running), the demo feed server and the four services as separate processes.

Used by ``dmzwatch stack`` (``make run``) and by the end-to-end tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import structlog
from pydantic import Field

from dmzwatch.feedserver import FeedServer
from dmzwatch.shared.broker import TansuBroker, port_is_free, stop_process
from dmzwatch.shared.kafka import create_topics, load_topic_specs
from dmzwatch.shared.settings import CommonSettings
from dmzwatch.shared.topics import TopicCatalogue

log = structlog.get_logger(__name__)

SERVICES = ("poller", "dedup", "classifier", "notifier")
DEFAULT_PORTS = {"poller": 9101, "dedup": 9102, "classifier": 9103, "notifier": 9104}
TOPICS_FILE = Path("deploy/kafka/topics.yaml")
LOCAL_BROKER_PORT = 9092


@dataclass
class StackConfig:
    """How to run the stack; ``bootstrap_servers=None`` starts a Tansu broker."""

    bootstrap_servers: str | None = None
    redis_url: str = "redis://127.0.0.1:6379/0"
    topic_prefix: str = "dmzwatch"
    redis_key_prefix: str = "dmzwatch:"
    feeds_file: Path | None = None  # None: the bundled demo feeds, served locally
    subscriptions_file: Path | None = None
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    log_dir: Path | None = None  # None: services log to this terminal
    log_format: str = "console"
    session_timeout_ms: int = 10_000
    categories: tuple[str, ...] = ("purge", "summit", "defection")
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: StackSettings) -> StackConfig:
        configured = "kafka_bootstrap_servers" in settings.model_fields_set
        return cls(
            bootstrap_servers=settings.kafka_bootstrap_servers if configured else None,
            redis_url=settings.redis_url.get_secret_value(),
            topic_prefix=settings.topic_prefix,
            redis_key_prefix=settings.redis_key_prefix,
            feeds_file=settings.feeds_file,
            subscriptions_file=settings.subscriptions_file,
            ports={
                "poller": settings.poller_port,
                "dedup": settings.dedup_port,
                "classifier": settings.classifier_port,
                "notifier": settings.notifier_port,
            },
            session_timeout_ms=settings.session_timeout_ms,
        )


class StackSettings(CommonSettings):
    """What ``dmzwatch stack`` reads: the common settings plus each service's port and files.

    Without ``DMZWATCH_KAFKA_BOOTSTRAP_SERVERS`` it starts Tansu; without
    ``DMZWATCH_FEEDS_FILE`` it serves the bundled demo feeds.
    """

    poller_port: int = Field(DEFAULT_PORTS["poller"], ge=1, le=65535)
    dedup_port: int = Field(DEFAULT_PORTS["dedup"], ge=1, le=65535)
    classifier_port: int = Field(DEFAULT_PORTS["classifier"], ge=1, le=65535)
    notifier_port: int = Field(DEFAULT_PORTS["notifier"], ge=1, le=65535)
    feeds_file: Path | None = None
    subscriptions_file: Path | None = None


class LocalStack:
    """Starts and stops everything; leaves no process behind."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.broker: TansuBroker | None = None
        self.feed_server: FeedServer | None = None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="dmzwatch-stack-")
        self.bootstrap_servers = config.bootstrap_servers or ""
        self.feeds_file = config.feeds_file

    @property
    def catalogue(self) -> TopicCatalogue:
        return TopicCatalogue(self.config.topic_prefix, self.config.categories)

    def start(self) -> LocalStack:
        try:
            if not self.bootstrap_servers:
                log_path = self.config.log_dir / "tansu.log" if self.config.log_dir else None
                # Kafka's usual port when it is free, so `dmzwatch tail` finds it by default.
                port = LOCAL_BROKER_PORT if port_is_free(LOCAL_BROKER_PORT) else None
                # Its own session: Ctrl-C stops the services first, then ``stop`` the broker,
                # instead of all at once (every client logging the broker's disappearance).
                self.broker = TansuBroker(port=port, log_path=log_path, own_session=True).start()
                self.bootstrap_servers = self.broker.bootstrap_servers
            self.create_topics()
            if self.feeds_file is None:
                self.feed_server = FeedServer().start()
                self.feeds_file = self.feed_server.render_feed_list(
                    Path(self._tmp.name) / "feeds.yaml"
                )
                log.info("demo_feeds_served", base_url=self.feed_server.base_url)
            for name in SERVICES:
                self.start_service(name)
        except BaseException:
            self.stop()
            raise
        return self

    def create_topics(self) -> None:
        settings = CommonSettings(kafka_bootstrap_servers=self.bootstrap_servers)
        specs = load_topic_specs(TOPICS_FILE if TOPICS_FILE.exists() else None, self.catalogue)
        create_topics(settings, specs)

    def env(self, name: str) -> dict[str, str]:
        config = self.config
        env = dict(os.environ)
        env.update(
            {
                "DMZWATCH_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
                "DMZWATCH_REDIS_URL": config.redis_url,
                "DMZWATCH_TOPIC_PREFIX": config.topic_prefix,
                "DMZWATCH_REDIS_KEY_PREFIX": config.redis_key_prefix,
                "DMZWATCH_CONSUMER_GROUP_PREFIX": config.topic_prefix,
                "DMZWATCH_LOG_FORMAT": config.log_format,
                "DMZWATCH_SESSION_TIMEOUT_MS": str(config.session_timeout_ms),
                "DMZWATCH_HEARTBEAT_INTERVAL_MS": str(max(100, config.session_timeout_ms // 5)),
                f"DMZWATCH_{name.upper()}_PORT": str(config.ports[name]),
            }
        )
        if self.feeds_file is not None:
            env["DMZWATCH_FEEDS_FILE"] = str(self.feeds_file)
        if self.feed_server is not None:  # the poller's SSRF guard refuses loopback otherwise
            env["DMZWATCH_FETCH_ALLOW_NETWORKS"] = self.feed_server.base_url.removeprefix("http://")
        if config.subscriptions_file is not None:
            env["DMZWATCH_SUBSCRIPTIONS_FILE"] = str(config.subscriptions_file)
        env.update(config.extra_env)
        return env

    def start_service(self, name: str) -> subprocess.Popen[bytes]:
        """Start (or restart) one service process."""
        out = None
        if self.config.log_dir is not None:
            out = open(self.config.log_dir / f"{name}.log", "ab")  # noqa: SIM115
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "dmzwatch", name],
            env=self.env(name),
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            stdin=subprocess.DEVNULL,
        )
        if out is not None:
            out.close()
        self.processes[name] = process
        log.info("service_started", service=name, pid=process.pid, port=self.config.ports[name])
        return process

    def url(self, name: str, path: str) -> str:
        return f"http://127.0.0.1:{self.config.ports[name]}{path}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Return when every service answers 200 on /readyz; ``TimeoutError`` otherwise."""
        deadline = time.monotonic() + timeout
        waiting = set(self.processes)
        while waiting:
            for name in sorted(waiting):
                process = self.processes[name]
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}")
                try:
                    with urllib.request.urlopen(self.url(name, "/readyz"), timeout=1) as resp:  # noqa: S310
                        if resp.status == 200:
                            waiting.discard(name)
                except OSError:
                    pass
            if waiting and time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout}s: {sorted(waiting)}")
            time.sleep(0.2)

    def stop_service(self, name: str, timeout: float = 15.0) -> int | None:
        process = self.processes.get(name)
        if process is None:
            return None
        if stop_process(process, timeout):
            log.warning("service_killed", service=name, pid=process.pid)
        return process.returncode

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            if self.processes[name].poll() is None:
                self.processes[name].terminate()
        for name in list(self.processes):
            self.stop_service(name)
        if self.feed_server is not None:
            self.feed_server.stop()
            self.feed_server = None
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        self._tmp.cleanup()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
