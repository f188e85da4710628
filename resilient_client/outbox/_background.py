"""``Outbox.start(client)``: replay in the background, a thread or an asyncio task.

Each round asks the client which endpoints' breakers are open, replays the due entries
of the others, and waits until the next entry is due (or ``interval``). The wait is on
an event rather than the clock's sleep, so ``stop()`` ends it at once; deterministic
tests drive :meth:`Outbox.replay` with a fake clock instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from types import TracebackType
from typing import Any

import anyio.to_thread

from ._model import ReplayResult
from ._store import OutboxStoreError

__all__ = ["AsyncReplayWorker", "ReplayWorker"]

logger = logging.getLogger("resilient_client.outbox")


class ReplayWorker:
    """A daemon thread replaying an outbox through a sync client, until :meth:`stop`.

    ``rounds`` counts the rounds done; ``last`` is the last round's result.
    """

    def __init__(self, outbox: Any, client: Any, interval: float) -> None:
        self._outbox = outbox
        self._client = client
        self._interval = interval
        self._stopping = threading.Event()
        self.rounds = 0
        self.last: ReplayResult | None = None
        self._thread = threading.Thread(
            target=self._run, name="resilient-client-outbox", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        outbox = self._outbox
        while not self._stopping.is_set():
            wait = self._interval
            try:
                run = outbox._pass(None, outbox._held(self._client))
                self.last = outbox._replay(self._client, run)
                wait = outbox._wait(self._interval)
            except Exception as exc:  # a store or client failure: try again next round
                logger.warning("outbox background replay failed: %s", _safe(exc))
            self.rounds += 1
            self._stopping.wait(wait)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop after the entry being sent now, waiting at most ``timeout`` seconds."""
        self._stopping.set()
        self._thread.join(timeout)

    def __enter__(self) -> ReplayWorker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class AsyncReplayWorker:
    """An asyncio task replaying an outbox through an async client, until :meth:`stop`.

    Made inside a running event loop (``RuntimeError`` otherwise). ``rounds`` and
    ``last`` as for :class:`ReplayWorker`.
    """

    def __init__(self, outbox: Any, client: Any, interval: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "Outbox.start() with an async client must be called in its event loop"
            ) from None
        self._outbox = outbox
        self._client = client
        self._interval = interval
        self._stopping = asyncio.Event()
        self.rounds = 0
        self.last: ReplayResult | None = None
        self._task = loop.create_task(self._run(), name="resilient-client-outbox")

    async def _run(self) -> None:
        outbox = self._outbox
        while not self._stopping.is_set():
            wait = self._interval
            try:
                run = outbox._pass(None, outbox._held(self._client))
                self.last = await outbox._areplay(self._client, run)
                wait = await anyio.to_thread.run_sync(outbox._wait, self._interval)
            except Exception as exc:
                logger.warning("outbox background replay failed: %s", _safe(exc))
            self.rounds += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), wait)

    @property
    def running(self) -> bool:
        return not self._task.done()

    async def stop(self) -> None:
        """Stop after the entry being sent now, and wait for the task to end."""
        self._stopping.set()
        await self._task

    async def __aenter__(self) -> AsyncReplayWorker:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def _safe(exc: Exception) -> str:
    # A store error's message is written to be logged; others may quote a URL.
    return str(exc) if isinstance(exc, OutboxStoreError) else type(exc).__name__
