"""One request being handled: what arrived, where to answer, and the server's shared state."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from .._clock import Clock
from ._asgi import PauseOutcome, Receive, Request, Send, cut, json_body, pause, respond
from ._ledger import Ledger
from ._state import Recorder

__all__ = ["PROBLEMS", "Call"]

PROBLEMS = "https://chaos.invalid/problems/"
"""Prefix of the ``type`` URIs of the chaos server's own problem documents."""


@dataclass(frozen=True, slots=True)
class Call:
    """A request under a scenario ``name``; ``attempt`` is its 1-based number there and
    ``segments`` the path segments after the name."""

    request: Request
    name: str
    attempt: int
    segments: tuple[str, ...]
    send: Send
    receive: Receive
    clock: Clock
    stop: asyncio.Event
    recorder: Recorder
    ledger: Ledger

    async def answer(
        self,
        status: int,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        *,
        content_length: int | None = None,
        more_body: bool = False,
    ) -> None:
        """Send the whole response (see :func:`respond` for the truncation knobs)."""
        await respond(
            self.send,
            status,
            body,
            headers,
            now=self.clock.wall(),
            content_length=content_length,
            more_body=more_body,
        )

    async def json(
        self,
        status: int,
        value: object,
        headers: Mapping[str, str] | None = None,
        *,
        content_type: str = "application/json",
    ) -> None:
        """Answer ``value`` as JSON."""
        await self.answer(
            status, json_body(value), {"content-type": content_type, **(headers or {})}
        )

    async def problem(self, status: int, slug: str, title: str, detail: str) -> None:
        """Answer an RFC 9457 problem about the chaos server's own rules."""
        body = {
            "type": PROBLEMS + slug,
            "title": title,
            "status": status,
            "detail": detail,
            "instance": self.request.path,
        }
        await self.json(status, body, content_type="application/problem+json")

    async def wait(self, seconds: float, *, watch_client: bool = True) -> PauseOutcome:
        """Wait ``seconds``, ending early when the server stops or (``watch_client``) when
        the client goes away."""
        return await pause(
            seconds,
            sleep=self.clock.asleep,
            stop=self.stop,
            receive=self.receive if watch_client else None,
        )

    async def cut(self) -> None:
        """Abort the connection without (another) response byte."""
        await cut(self.send, self.receive)

    async def abandon(self, outcome: PauseOutcome) -> None:
        """End a wait that did not elapse: on server stop drop the connection (the client
        sees it lost); a client that left needs nothing."""
        if outcome == "stopping":
            await self.cut()
