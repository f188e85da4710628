"""A real ``redis-server`` on a free 127.0.0.1 port, for tests and benchmarks.

::

    with redis_server() as server:          # raises RedisServerUnavailable without redis-server
        storage = rc.RedisBreakerStorage(server.url)
        server.stop()                       # Redis "goes down"
        server.start()                      # back, same port, empty

The server keeps nothing on disk (no RDB, no AOF) and lives in its own temporary
directory; it is stopped (SIGTERM, then SIGKILL) when the block exits.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["RedisServer", "RedisServerUnavailable", "redis_server"]

_START_TIMEOUT = 10.0


class RedisServerUnavailable(RuntimeError):
    """``redis-server`` is not installed, or did not start."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process; :meth:`stop` and :meth:`start` keep the port."""

    def __init__(self, directory: Path, binary: str) -> None:
        self.host = "127.0.0.1"
        self.port = _free_port()
        self._directory = directory
        self._binary = binary
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server (empty) and wait until it answers PING."""
        if self.running:
            return
        self._process = subprocess.Popen(
            [
                self._binary,
                "--port", str(self.port),
                "--bind", self.host,
                "--dir", str(self._directory),
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
                "--protected-mode", "no",
                "--loglevel", "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + _START_TIMEOUT
        while not _ping(self.port):
            if self._process.poll() is not None:
                err = (
                    self._process.stderr.read().decode(errors="replace")
                    if self._process.stderr
                    else ""
                )
                raise RedisServerUnavailable(f"redis-server exited at start: {err.strip()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RedisServerUnavailable(
                    f"redis-server did not answer within {_START_TIMEOUT}s"
                )
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop the server (SIGTERM, SIGKILL after 5 s) and wait for it to exit."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr is not None:
            process.stderr.close()


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A started :class:`RedisServer`, stopped (and its directory removed) on exit.

    Raises :class:`RedisServerUnavailable` if ``redis-server`` is not on ``PATH``
    (``apt-get install redis-server``) or does not start.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisServerUnavailable(
            "redis-server is not on PATH; install it (e.g. `apt-get install redis-server`)"
        )
    with tempfile.TemporaryDirectory(prefix="rc-redis-") as directory:
        server = RedisServer(Path(directory), binary)
        server.start()
        try:
            yield server
        finally:
            server.stop()


def running_redis() -> Iterator[RedisServer]:
    """The body of a test module's redis fixture (``server =
    pytest.fixture(scope="module")(running_redis)``): a real redis-server for the module.
    CI installs redis-server, so one that cannot start fails the test, saying why."""
    import pytest

    try:
        with redis_server() as running:
            yield running
    except RedisServerUnavailable as exc:
        pytest.fail(str(exc))
