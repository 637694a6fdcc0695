"""`dmzwatch stack` (what `make run` runs): everything up, `tail` shows alerts, Ctrl-C leaves
no process behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis

from dmzwatch.shared.broker import free_port
from tests.conftest import REDIS_URL

DMZWATCH = [sys.executable, "-m", "dmzwatch"]


def children_of(pid: int) -> set[int]:
    """Every descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


def test_stack_runs_everything_tail_shows_alerts_and_ctrl_c_stops_all(tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DMZWATCH_")}
    env.update(
        {
            "DMZWATCH_TOPIC_PREFIX": f"stack-{run}",
            "DMZWATCH_CONSUMER_GROUP_PREFIX": f"stack-{run}",
            "DMZWATCH_REDIS_KEY_PREFIX": f"dmzwatch-test:stack-{run}:",
            "DMZWATCH_REDIS_URL": REDIS_URL,
            "DMZWATCH_SESSION_TIMEOUT_MS": "6000",
            **{
                f"DMZWATCH_{s}_PORT": str(free_port())
                for s in ("POLLER", "DEDUP", "CLASSIFIER", "NOTIFIER")
            },
        }
    )
    log = open(tmp_path / "stack.log", "w+")
    stack = subprocess.Popen(
        DMZWATCH + ["stack"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        deadline = time.monotonic() + 90
        broker = None
        while broker is None:
            assert stack.poll() is None, (tmp_path / "stack.log").read_text()
            assert time.monotonic() < deadline, (
                "stack not ready:\n" + (tmp_path / "stack.log").read_text()
            )
            match = re.search(
                r"dmzwatch is running: broker (\S+),", (tmp_path / "stack.log").read_text()
            )
            broker = match.group(1) if match else None
            time.sleep(0.3)
        descendants = children_of(stack.pid)
        assert len(descendants) >= 5, "broker and four services"

        tail = subprocess.run(
            DMZWATCH + ["tail", "--from-beginning", "--max-alerts", "7", "--idle-timeout", "60"],
            env={**env, "DMZWATCH_KAFKA_BOOTSTRAP_SERVERS": broker},
            capture_output=True,
            text=True,
            timeout=120,
        )
        shown = [line for line in tail.stdout.splitlines() if line.startswith("[")]
        assert len(shown) == 7, tail.stdout + tail.stderr
        assert {line.split("]")[0][1:] for line in shown} == {"PURGE", "SUMMIT", "DEFECTION"}
    finally:
        os.killpg(stack.pid, signal.SIGINT)  # what Ctrl-C sends: to the whole group
        stack.wait(60)
        log.close()
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"dmzwatch-test:stack-{run}:*"))
        if keys:
            client.delete(*keys)
    assert stack.returncode == 0
    time.sleep(0.5)
    assert [pid for pid in descendants if alive(pid)] == [], "processes left behind"
    # the services stop before the broker, so none of them meets a broker that is gone
    # (kafka-python's own close may still log a race on its closed socket: not ours to judge)
    text = (tmp_path / "stack.log").read_text()
    stopping = text[text.index("stop_signal") :]
    assert stopping.count("runner_stopped") == 3, stopping[-3000:]  # the consuming services
    assert stopping.rindex("runner_stopped") < stopping.index("broker_stopped"), stopping[-3000:]
    assert "ECONNREFUSED" not in stopping, stopping[-3000:]
