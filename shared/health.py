"""``/metrics``, ``/healthz`` and ``/readyz`` on one small HTTP server per process.

- ``/healthz`` (alive): 200 while the main loop keeps beating; 503 when it has not beaten for
  ``stall_seconds`` (a wedged loop), so a supervisor restarts the process.
- ``/readyz`` (ready): 200 when every condition holds (connected to the broker, Redis answers…),
  else 503 with the reasons as JSON.
- ``/metrics``: the Prometheus text format of the process' registry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from dmzwatch.shared.clock import Clock

log = structlog.get_logger(__name__)

Probe = Callable[[], None]
"""A readiness probe: returns when the dependency answers, raises with the reason otherwise."""


class Health:
    """Liveness heartbeat and readiness conditions, shared by the loop and the HTTP server.

    Thread-safe: the loop calls :meth:`beat` and :meth:`set`; the server thread reads.
    """

    def __init__(self, clock: Clock, stall_seconds: float = 120.0) -> None:
        self._clock = clock
        self._stall_seconds = stall_seconds
        self._lock = threading.Lock()
        self._last_beat = clock.monotonic()
        self._conditions: dict[str, str | None] = {}
        self._probes: dict[str, Probe] = {}
        self._probe_problems: dict[str, str | None] = {}
        self.on_change: Callable[[bool], None] | None = None

    def beat(self) -> None:
        with self._lock:
            self._last_beat = self._clock.monotonic()

    def set(self, name: str, ok: bool, reason: str | None = None) -> None:
        """Record a condition; ``reason`` says why it does not hold."""
        with self._lock:
            before = self._conditions.get(name, "unset")
            self._conditions[name] = None if ok else (reason or "not ready")
            changed = (before is None) != ok
        if changed:
            if ok:
                log.info("condition_ready", condition=name)
            else:
                log.warning("condition_not_ready", condition=name, reason=reason)
            if self.on_change is not None:
                self.on_change(self.ready()[0])

    def add_probe(self, name: str, probe: Probe) -> None:
        """A dependency checked on every ``/readyz`` request (keep it fast, with a timeout)."""
        with self._lock:
            self._probes[name] = probe

    def alive(self) -> bool:
        with self._lock:
            return self._clock.monotonic() - self._last_beat < self._stall_seconds

    def ready(self) -> tuple[bool, dict[str, str]]:
        with self._lock:
            problems = {k: v for k, v in self._conditions.items() if v is not None}
            probes = dict(self._probes)
        for name, probe in probes.items():
            problem = None
            try:
                probe()
            except Exception as exc:  # a probe failing is the answer, not an error
                problem = problems[name] = f"{type(exc).__name__}: {exc}"
            self._log_probe(name, problem)
        return (not problems, problems)

    def _log_probe(self, name: str, problem: str | None) -> None:
        """Log a probe's changes of state, so that the log says why the stage is not ready."""
        with self._lock:
            before = self._probe_problems.get(name, None)
            self._probe_problems[name] = problem
        if (before is None) == (problem is None):
            return
        if problem is None:
            log.info("probe_ready", probe=name)
        else:
            log.warning("probe_not_ready", probe=name, reason=problem)


class HealthServer:
    """Serves a :class:`Health` and a registry on ``host:port`` from a daemon thread."""

    def __init__(self, health: Health, registry: CollectorRegistry, host: str, port: int) -> None:
        handler = _handler_class(health, registry)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health-server", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_class(health: Health, registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                ok = health.alive()
                self._send(200 if ok else 503, b"ok\n" if ok else b"stalled\n", "text/plain")
            elif path == "/readyz":
                ok, problems = health.ready()
                body = orjson.dumps({"ready": ok, "problems": problems})
                self._send(200 if ok else 503, body, "application/json")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            # Scrapes every few seconds would drown the structured log.
            return

    return Handler
