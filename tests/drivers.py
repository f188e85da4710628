"""Running a resilient client, sync or async, over httpx or httpx2, behind one interface."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import httpx

import resilient_client as rc
from resilient_client._call._events import AttemptEnded, Event


class Responses:
    """An observer keeping every attempt's response (None for one that raised), in order."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def on_event(self, call: object, event: Event) -> None:
        if isinstance(event, AttemptEnded):
            self.seen.append(event.response)


class Driver:
    """Runs a resilient client, sync or async, behind one synchronous interface.

    ``driver.client(**kwargs)`` builds the client; ``driver.request(client, method, url,
    **kwargs)`` makes a call. The async flavour runs on one event loop per test.
    """

    def __init__(self, kind: str, library: str = "httpx") -> None:
        self.kind = kind
        self.library = library
        self._runner = asyncio.Runner() if kind == "async" else None
        self._clients: list[Any] = []
        if library == "httpx2":
            import httpx2

            from resilient_client import httpx2 as namespace

            self.lib: Any = httpx2
            self.ns: Any = namespace  # the resilient classes and exceptions of this library
        else:
            self.lib = httpx
            self.ns = rc

    @property
    def is_async(self) -> bool:
        return self._runner is not None

    def client(self, **kwargs: Any) -> Any:
        cls = self.ns.AsyncResilientClient if self.is_async else self.ns.ResilientClient
        client = cls(**kwargs)
        self._clients.append(client)
        return client

    def transport(self, inner: Any = None, **kwargs: Any) -> Any:
        cls = self.ns.AsyncResilientTransport if self.is_async else self.ns.ResilientTransport
        return cls(inner, **kwargs)

    def plain_client(self, **kwargs: Any) -> Any:
        lib = self.lib
        client = lib.AsyncClient(**kwargs) if self.is_async else lib.Client(**kwargs)
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
            if isinstance(client, self.lib.AsyncClient):
                assert self._runner is not None
                self._runner.run(client.aclose())
            else:
                client.close()
        if self._runner is not None:
            self._runner.close()


async def _identity(value: Any) -> Any:
    return await value
