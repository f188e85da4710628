"""Shared fixtures: one parametrised way to run a test against the sync and async clients,
and the real upstream (the chaos ASGI app under uvicorn on 127.0.0.1) for the session."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import resilient_client as rc
from resilient_client.chaos import ChaosApp, RunningServer, serve


class Driver:
    """Runs a resilient client, sync or async, behind one synchronous interface.

    ``driver.client(**kwargs)`` builds the client; ``driver.request(client, method, url,
    **kwargs)`` makes a call. The async flavour runs on one event loop per test.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._runner = asyncio.Runner() if kind == "async" else None
        self._clients: list[Any] = []

    @property
    def is_async(self) -> bool:
        return self._runner is not None

    def client(self, **kwargs: Any) -> Any:
        cls = rc.AsyncResilientClient if self.is_async else rc.ResilientClient
        client = cls(**kwargs)
        self._clients.append(client)
        return client

    def transport(self, inner: Any = None, **kwargs: Any) -> Any:
        cls = rc.AsyncResilientTransport if self.is_async else rc.ResilientTransport
        return cls(inner, **kwargs)

    def plain_client(self, **kwargs: Any) -> Any:
        client = httpx.AsyncClient(**kwargs) if self.is_async else httpx.Client(**kwargs)
        self._clients.append(client)
        return client

    def run(self, value: Any) -> Any:
        """Await ``value`` on the async flavour; return it as is on the sync one."""
        if self._runner is None:
            return value
        # The caller's context, so context variables set by the test reach the call.
        return self._runner.run(_identity(value), context=contextvars.copy_context())

    def request(self, client: Any, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.run(client.request(method, url, **kwargs))  # type: ignore[no-any-return]

    def stream_read(self, client: Any, method: str, url: str, **kwargs: Any) -> bytes:
        """Open a streamed response, read it chunk by chunk, return the body."""
        if self._runner is None:
            with client.stream(method, url, **kwargs) as response:
                return b"".join(response.iter_bytes())

        async def read() -> bytes:
            async with client.stream(method, url, **kwargs) as response:
                return b"".join([chunk async for chunk in response.aiter_bytes()])

        return self._runner.run(read(), context=contextvars.copy_context())

    def close(self) -> None:
        for client in self._clients:
            if isinstance(client, httpx.AsyncClient):
                assert self._runner is not None
                self._runner.run(client.aclose())
            else:
                client.close()
        if self._runner is not None:
            self._runner.close()


async def _identity(value: Any) -> Any:
    return await value


@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest) -> Iterator[Driver]:
    instance = Driver(request.param)
    yield instance
    instance.close()


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[RunningServer]:
    with serve(ChaosApp()) as server:
        yield server


@pytest.fixture
def upstream(upstream_server: RunningServer) -> RunningServer:
    upstream_server.app.reset()
    return upstream_server
