"""Raw ASGI plumbing: read a request, answer it, stall it, or cut the connection.

No framework on purpose: the demo must run with the package and ``uvicorn`` alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl

__all__ = [
    "BadParam",
    "ConnectionCutUnsupported",
    "Message",
    "PauseOutcome",
    "Receive",
    "Request",
    "Scope",
    "Send",
    "cut",
    "http_date",
    "join_headers",
    "json_body",
    "parse_param",
    "pause",
    "read_body",
    "respond",
    "until_disconnect",
]

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PauseOutcome = Literal["elapsed", "disconnected", "stopping"]
# A stop outranks the rest: the server is going away whatever else happened.
_PRECEDENCE: tuple[PauseOutcome, ...] = ("stopping", "disconnected", "elapsed")

# After an abort the server needs a loop turn to notice the lost connection; past this we
# stop waiting for it rather than hang a handler.
_DISCONNECT_GRACE = 1.0

_T = TypeVar("_T")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class BadParam(ValueError):
    """A query parameter or path segment the chaos server cannot use (answered with 400)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param


def parse_param(name: str, raw: str, parse: Callable[[str], _T], kind: str) -> _T:
    """``parse(raw)``, ``raw`` being parameter ``name``'s value. Raises :class:`BadParam`
    ("expected <kind>, got <raw>") when ``parse`` raises ``ValueError``."""
    try:
        return parse(raw)
    except ValueError:
        raise BadParam(name, f"expected {kind}, got {raw!r}") from None


def join_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lower-cased header names to values; a repeated header's values are joined with ", "."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in raw:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


@dataclass(frozen=True, slots=True)
class Request:
    """What the server received, body included (read whole before any handler runs)."""

    method: str
    path: str
    query: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes

    @classmethod
    def from_scope(cls, scope: Scope, body: bytes) -> Request:
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        return cls(
            method=str(scope["method"]).upper(),
            path=str(scope["path"]),
            query=query,
            # The last value wins when a parameter repeats.
            params=dict(parse_qsl(query, keep_blank_values=True)),
            headers=join_headers(scope.get("headers", ())),
            body=body,
        )

    def text(self, name: str) -> str | None:
        """The parameter's value, or None when absent."""
        return self.params.get(name)

    def number(self, name: str, default: float | None = None) -> float | None:
        """A finite, non-negative float parameter; ``default`` when absent.

        Raises :class:`BadParam` when present but not such a number.
        """
        raw = self.params.get(name)
        if raw is None:
            return default
        value = parse_param(name, raw, float, "a number")
        if not math.isfinite(value) or value < 0:
            raise BadParam(name, f"expected a finite number >= 0, got {raw!r}")
        return value

    def integer(self, name: str, default: int | None = None) -> int | None:
        """A non-negative int parameter; ``default`` when absent. Raises :class:`BadParam`."""
        raw = self.params.get(name)
        if raw is None:
            return default
        value = parse_param(name, raw, int, "an integer")
        if value < 0:
            raise BadParam(name, f"expected an integer >= 0, got {raw!r}")
        return value

    def flag(self, name: str) -> bool | None:
        """A boolean parameter (true/false, 1/0, yes/no, on/off); None when absent."""
        raw = self.params.get(name)
        if raw is None:
            return None
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise BadParam(name, f"expected true or false, got {raw!r}")


def http_date(epoch_seconds: float) -> str:
    """An IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``), truncated to the whole second."""
    return formatdate(math.floor(epoch_seconds), usegmt=True)


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(bytes(message.get("body", b"")))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def until_disconnect(receive: Receive) -> None:
    """Return once the client has gone (call only after the body was read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def _header_list(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


async def respond(
    send: Send,
    status: int,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    *,
    now: float,
    content_length: int | None = None,
    more_body: bool = False,
) -> None:
    """Send a response: status, headers (plus ``date`` and ``content-length``), body.

    ``now`` is the wall-clock time (epoch seconds) for the ``date`` header, unless
    ``headers`` already carries one. ``content_length`` overrides the body's length, and
    ``more_body=True`` leaves the response open: both serve the truncated-body faults.
    """
    merged = {k.lower(): v for k, v in (headers or {}).items()}
    merged.setdefault("date", http_date(now))
    merged["content-length"] = str(len(body) if content_length is None else content_length)
    await send({"type": "http.response.start", "status": status, "headers": _header_list(merged)})
    await send({"type": "http.response.body", "body": body, "more_body": more_body})


def json_body(value: object) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _transport_of(send: Send) -> asyncio.BaseTransport | None:
    # uvicorn's h11, httptools and zttp implementations all hand the app the bound
    # ``send`` of a RequestResponseCycle that holds the connection's transport; uvicorn's
    # own middlewares pass ``send`` through unwrapped (proxy_headers is off in serve()).
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    return transport if isinstance(transport, asyncio.BaseTransport) else None


class ConnectionCutUnsupported(RuntimeError):
    """The ASGI server gives no way to reach the connection's transport."""


async def cut(send: Send, receive: Receive) -> None:
    """Abort the connection now: nothing more reaches the client, pending writes included.

    Bytes already handed to the kernel still arrive, so a cut after a partial body gives
    the client a truncated response, and a cut before any byte gives "server disconnected
    without sending a response". Waits (at most ~1 s) until the server has noticed, so it
    does not answer a 500 on the handler's behalf.

    Raises :class:`ConnectionCutUnsupported` under an ASGI server whose ``send`` does not
    lead to its transport: the server then answers 500 instead of dropping (the only
    fallback an ASGI app has).
    """
    transport = _transport_of(send)
    if transport is None:
        raise ConnectionCutUnsupported("cannot reach the connection's transport to abort it")
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()
    else:  # pragma: no cover - every uvicorn HTTP transport is a WriteTransport
        transport.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(until_disconnect(receive), _DISCONNECT_GRACE)


async def pause(
    seconds: float,
    *,
    sleep: Callable[[float], Awaitable[None]],
    stop: asyncio.Event,
    receive: Receive | None,
) -> PauseOutcome:
    """Wait ``seconds``, ending early when the server stops or, given ``receive``, when the
    client disconnects. Returns which of the three happened first."""
    waits: dict[asyncio.Future[Any], PauseOutcome] = {
        asyncio.ensure_future(sleep(seconds)): "elapsed",
        asyncio.ensure_future(stop.wait()): "stopping",
    }
    if receive is not None:
        waits[asyncio.ensure_future(until_disconnect(receive))] = "disconnected"
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in waits:
            future.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
    for outcome in _PRECEDENCE:
        if any(waits[f] == outcome for f in done):
            return outcome
    raise AssertionError("unreachable")  # pragma: no cover
