"""A hostile HTTP/1.1 server on 127.0.0.1, written on raw sockets: it trickles, bombs, stalls
and lies where a well-behaved test server cannot. Used by the other ``test_hostile_*``
modules (``from test_hostile_kit import Hostile``); its own tests check it misbehaves as
promised.

Paths (query parameters tune them):

- ``/ok``: 200, a small body; ``X-Echo`` echoes the request's ``X-Echo`` header.
- ``/trickle-body?every=S&bytes=N``: 200 headers at once, then N body bytes, one every S s.
- ``/trickle-headers?every=S``: the status line and headers one byte every S seconds.
- ``/bomb``: a 500 whose body is :data:`Hostile.bomb` with ``Content-Encoding: gzip,
  gzip`` (a few kilobytes inflating to :data:`BOMB_SIZE` bytes).
- ``/slow?delay=S``: 200 after S seconds.
- ``/retry-after?value=V``: 503 with ``Retry-After: V``.
- ``/echo-error``: 401 whose problem ``detail`` quotes the request's ``X-Api-Key``.
- ``/deep?depth=N``: a 500 problem+json with an extension nested N levels deep.
- ``/redirect-next``: 302 to the same path on the next loopback address (127.0.x.y,
  where nothing listens: the hop fails to connect, at once).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
import zlib
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

BOMB_SIZE = 256 * 1024 * 1024
"""What the bomb inflates to: far past the 16 MB the memory tests allow."""


def make_bomb(size: int = BOMB_SIZE) -> bytes:
    """``size`` zero bytes, gzipped twice: a few kilobytes."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = bytes(1024 * 1024)
    inner = b"".join(compressor.compress(block) for _ in range(size // len(block)))
    inner += compressor.flush()
    return gzip.compress(inner, compresslevel=9)


class Hostile:
    """The server, running in a thread of its own for the duration of a ``with``."""

    bomb: bytes = b""

    def __init__(self) -> None:
        self.port = 0
        self.requests = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._next_host = 0

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def __enter__(self) -> Hostile:
        if not Hostile.bomb:
            Hostile.bomb = make_bomb()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        assert self._thread is not None
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=4096)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
            server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                _, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                if length:
                    await reader.readexactly(length)
                self.requests += 1
                await self._answer(writer, target, headers)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:  # the server stopping
            pass
        finally:
            writer.close()

    async def _answer(
        self, writer: asyncio.StreamWriter, target: str, headers: dict[str, str]
    ) -> None:
        parts = urlsplit(target)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        path = parts.path
        echo = headers.get("x-echo", "")
        if path == "/trickle-body":
            every, size = float(query.get("every", "1")), int(query.get("bytes", "100"))
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
            await writer.drain()
            for _ in range(size):
                await asyncio.sleep(every)
                writer.write(b"x")
                await writer.drain()
        elif path == "/trickle-headers":
            every = float(query.get("every", "1"))
            head = "HTTP/1.1 200 OK\r\nX-Padding: " + "p" * 200 + "\r\nContent-Length: 2\r\n\r\nok"
            for byte in head.encode():
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(every)
        elif path == "/bomb":
            body = Hostile.bomb
            writer.write(
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                b"Content-Encoding: gzip, gzip\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
        elif path == "/slow":
            await asyncio.sleep(float(query.get("delay", "1")))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        elif path == "/retry-after":
            value = query.get("value", "-5")
            writer.write(
                f"HTTP/1.1 503 Service Unavailable\r\nRetry-After: {value}\r\n"
                "Content-Length: 0\r\n\r\n".encode()
            )
        elif path == "/echo-error":
            body = json.dumps(
                {"title": "Unauthorized", "detail": f"no such key: {headers.get('x-api-key')}"}
            ).encode()
            writer.write(
                b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/problem+json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
        elif path == "/deep":
            deep: object = {}
            for _ in range(int(query.get("depth", "950"))):
                deep = {"a": deep}
            body = json.dumps({"title": "Deep", "status": 500, "nested": deep}).encode()
            writer.write(
                b"HTTP/1.1 500 Internal Server Error\r\n"
                b"Content-Type: application/problem+json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
        elif path == "/redirect-next":
            self._next_host += 1
            host = f"127.0.{1 + self._next_host // 250}.{1 + self._next_host % 250}"
            writer.write(
                f"HTTP/1.1 302 Found\r\nLocation: http://{host}:{self.port}/redirect-next\r\n"
                "Content-Length: 0\r\n\r\n".encode()
            )
        else:
            body = f"ok {echo}".encode()
            writer.write(
                f"HTTP/1.1 200 OK\r\nX-Echo: {echo}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
        await writer.drain()


def serving() -> Iterator[Hostile]:
    """The server for a module's tests: ``hostile = pytest.fixture(scope="module",
    name="hostile")(serving)``."""
    with Hostile() as server:
        yield server


hostile = pytest.fixture(scope="module", name="hostile")(serving)


def test_the_bomb_is_small_and_inflates_past_the_memory_bound() -> None:
    bomb = make_bomb(64 * 1024 * 1024)
    inflated = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(
        zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(bomb), 32 * 1024 * 1024
    )

    assert len(bomb) < 4096
    assert len(inflated) == 32 * 1024 * 1024


def test_the_trickling_server_takes_its_time(hostile: Hostile) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", hostile.port)) as sock:
        sock.sendall(b"GET /trickle-body?every=0.05&bytes=4 HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        received = b""
        while not received.endswith(b"xxxx"):
            received += sock.recv(100)

    assert time.monotonic() - started >= 0.15
