import json
import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter

from dmzwatch.shared.clock import ManualClock
from dmzwatch.shared.health import Health, HealthServer
from dmzwatch.shared.kafka import broker_probe


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.fixture
def served():
    clock = ManualClock()
    health = Health(clock, stall_seconds=60)
    registry = CollectorRegistry()
    Counter("dmzwatch_example_total", "x", registry=registry).inc(3)
    server = HealthServer(health, registry, "127.0.0.1", 0).start()
    yield health, clock, f"http://127.0.0.1:{server.port}"
    server.stop()


def test_metrics_are_served_in_the_prometheus_format(served) -> None:
    _, _, base = served
    status, body = get(base + "/metrics")
    assert status == 200 and b"dmzwatch_example_total 3.0" in body


def test_readyz_reports_every_failing_condition_and_probe(served) -> None:
    health, _, base = served
    assert get(base + "/readyz")[0] == 200
    health.set("broker", False, "poll failed")

    def redis_down() -> None:
        raise ConnectionError("refused")

    health.add_probe("redis", redis_down)
    status, body = get(base + "/readyz")
    assert status == 503
    assert json.loads(body)["problems"] == {
        "broker": "poll failed",
        "redis": "ConnectionError: refused",
    }


def test_healthz_fails_when_the_loop_stops_beating(served) -> None:
    health, clock, base = served
    assert get(base + "/healthz")[0] == 200
    clock.advance(61)
    assert get(base + "/healthz")[0] == 503
    health.beat()
    assert get(base + "/healthz")[0] == 200


def test_broker_probe_says_which_server_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
            broker_probe([f"127.0.0.1:{port}"])
        sock.listen()
        broker_probe([f"127.0.0.1:{port}"])
