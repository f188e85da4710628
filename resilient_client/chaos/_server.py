"""Run a ChaosApp under uvicorn: in a background thread, or in a child process.

uvicorn is imported only here, and only when a server starts, so the envelopes and the app
itself import without it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from .._clock import SERVER_CLOCK
from ._app import ChaosApp
from ._asgi import Receive, Scope, Send

__all__ = ["BACKLOG", "RunningServer", "SubprocessServer", "main", "serve", "serve_in_subprocess"]

BACKLOG = 2048
"""Listen backlog: room for 100+ clients connecting at once."""

# Graceful-shutdown backstop (seconds, uvicorn wants an int): handlers that outlive it are
# cancelled. stop_waits() normally ends them far sooner.
_GRACE = 1
# uvicorn closes idle keep-alive connections after this many seconds. Long, because a
# client reusing a connection the server is closing that instant sees a spurious drop.
_KEEP_ALIVE = 600


@dataclass(frozen=True, slots=True)
class RunningServer:
    """A chaos server serving ``app`` at ``url`` (``http://host:port``, no trailing slash)."""

    url: str
    app: ChaosApp
    host: str
    port: int


def _listening_socket(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio turns Nagle off only for sockets whose proto says
    # TCP, and with Nagle on a response written in two parts waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


class _LoopTap:
    """Passes everything to the app, noting the server's event loop at lifespan startup
    so the thread that started the server can reach that loop later."""

    def __init__(self, app: ChaosApp) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            self.loop = asyncio.get_running_loop()
        await self.app(scope, receive, send)


@contextmanager
def serve(
    app: ChaosApp | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 10.0,
    shutdown_timeout: float = 5.0,
) -> Iterator[RunningServer]:
    """Serve ``app`` (a new :class:`ChaosApp` when None) with uvicorn on a daemon thread.

    ``port=0`` picks a free port; the yielded :class:`RunningServer` tells which. On exit
    every stalled handler is cut (see :meth:`ChaosApp.stop_waits`) and the server stops,
    usually within ~0.3 s.

    Raises ``RuntimeError`` when the server thread dies during startup, ``TimeoutError``
    when it is not serving after ``startup_timeout`` seconds, ``OSError`` when the address
    cannot be bound. A server still running ``shutdown_timeout`` seconds after exit is
    left to die with the process, with a ``RuntimeWarning``.
    """
    import uvicorn

    app = app if app is not None else ChaosApp()
    sock = _listening_socket(host, port)
    bound_port = int(sock.getsockname()[1])
    tap = _LoopTap(app)
    config = uvicorn.Config(
        tap,
        lifespan="on",
        interface="asgi3",
        ws="none",
        log_level="warning",
        log_config=None,  # leave the host application's logging setup alone
        access_log=False,
        proxy_headers=False,
        server_header=False,
        date_header=False,  # the app sends its own Date, exact to the second
        backlog=BACKLOG,
        limit_concurrency=None,
        timeout_keep_alive=_KEEP_ALIVE,
        timeout_graceful_shutdown=_GRACE,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run,
        kwargs={"sockets": [sock]},
        name=f"chaos-server-{bound_port}",
        daemon=True,
    )
    thread.start()
    try:
        deadline = SERVER_CLOCK.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"chaos server on {host}:{bound_port} failed to start")
            if SERVER_CLOCK.monotonic() > deadline:
                raise TimeoutError(
                    f"chaos server on {host}:{bound_port} not serving after {startup_timeout} s"
                )
            SERVER_CLOCK.sleep(0.005)
        yield RunningServer(f"http://{host}:{bound_port}", app, host, bound_port)
    finally:
        server.should_exit = True
        if tap.loop is not None:
            app.stop_waits(tap.loop)
        thread.join(shutdown_timeout)
        sock.close()
        if thread.is_alive():
            warnings.warn(
                f"chaos server on {host}:{bound_port} still running {shutdown_timeout} s "
                "after shutdown was requested",
                RuntimeWarning,
                stacklevel=3,
            )


# --- out of process -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubprocessServer:
    """A chaos server in a child process (read its state over ``/__stats/{name}``)."""

    url: str
    host: str
    port: int
    process: subprocess.Popen[str]


def _first_line(process: subprocess.Popen[str], timeout: float) -> str | None:
    lines: list[str] = []
    stdout = process.stdout
    if stdout is None:
        return None
    reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return lines[0].strip() if lines and lines[0] else None


@contextmanager
def serve_in_subprocess(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 15.0,
    shutdown_timeout: float = 5.0,
) -> Iterator[SubprocessServer]:
    """Run ``python -m resilient_client.chaos`` in a child process for the duration.

    For benchmarks that must not share the client's interpreter. The child gets this
    package on its ``PYTHONPATH``; its stderr is inherited. On exit it gets SIGTERM, and
    SIGKILL after ``shutdown_timeout`` seconds.

    Raises ``RuntimeError`` when the child does not print its URL within
    ``startup_timeout`` seconds.
    """
    env = dict(os.environ)
    source_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source_root, env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "resilient_client.chaos", "--host", host, "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        url = _first_line(process, startup_timeout)
        if url is None or not url.startswith("http://"):
            status = process.poll()
            why = "is silent" if status is None else f"exited with status {status}"
            raise RuntimeError(
                f"chaos subprocess {why} instead of printing its URL (see its stderr)"
            )
        yield SubprocessServer(url, host, int(url.rsplit(":", 1)[1]), process)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(shutdown_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m resilient_client.chaos [--host H] [--port N]``: print the URL on one
    line, then serve until SIGTERM or SIGINT. Returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m resilient_client.chaos", description="Serve the chaos upstream."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (0 = any free one)")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with serve(host=args.host, port=args.port) as running:
            print(running.url, flush=True)
            # A timed wait, so signals are handled promptly on every platform.
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
