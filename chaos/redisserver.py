"""A redis-server process of our own (never the shared one), for the chaos run and the tests.

Append-only file with ``fsync always`` in ``directory``, so a SIGKILL loses no acknowledged
write and :meth:`RedisServer.start` after :meth:`RedisServer.kill` comes back with the data, on
the same free port.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis

from dmzwatch.shared.broker import free_port, stop_process


def redis_server_binary() -> str | None:
    """The redis-server on PATH, else the Debian one if present."""
    found = shutil.which("redis-server")
    if found is None and Path("/usr/bin/redis-server").exists():
        found = "/usr/bin/redis-server"
    return found


class RedisServer:
    def __init__(self, directory: Path, log: Path | None = None) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None
        self._log = log

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)

    def start(self, timeout: float = 20.0) -> None:
        """Launch and wait until it answers PING (its append-only file loaded)."""
        binary = redis_server_binary()
        if binary is None:
            raise FileNotFoundError("redis-server is not installed")
        output = open(self._log, "ab") if self._log is not None else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(  # noqa: S603 - a fixed binary, our own arguments
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--dir",
                str(self.directory),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        client = self.client()
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    client.ping()
                    return
                except (redis.ConnectionError, redis.BusyLoadingError):
                    if time.monotonic() > deadline or self.process.poll() is not None:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def signal(self, sig: int) -> None:
        if self.process is not None:
            self.process.send_signal(sig)

    def kill(self) -> None:
        """A crash: SIGKILL (a paused server is resumed first so that it dies at once)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, 10)
