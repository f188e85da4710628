"""ChaosApp: the ASGI application, its routing table and its introspection API."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Awaitable, Callable

from .._clock import SERVER_CLOCK, Clock
from . import _handlers
from ._asgi import BadParam, Receive, Request, Scope, Send, json_body, read_body, respond
from ._call import Call
from ._ledger import Ledger
from ._payments import payments
from ._state import FailurePlan, Recorder, ScenarioStats
from ._vendors import vendor

__all__ = ["ChaosApp"]

Handler = Callable[[Call], Awaitable[None]]

# First path segment → (segments after the scenario name, handler); None: any number, the
# handler checks them (a vendor's API paths vary in depth).
_ROUTES: dict[str, tuple[int | None, Handler]] = {
    "drop": (0, _handlers.drop),
    "echo": (0, _handlers.echo),
    "flaky": (0, _handlers.flaky),
    "limited": (0, _handlers.limited),
    "ok": (0, _handlers.ok),
    "outage": (0, _handlers.outage),
    "payments": (0, payments),
    "problem": (1, _handlers.problem),
    "redirect": (0, _handlers.redirect),
    "slow": (0, _handlers.slow),
    "stall": (0, _handlers.stall),
    "status": (1, _handlers.status),
    "vendor": (None, vendor),
}


class ChaosApp:
    """A deterministic fault-injecting upstream, as a raw ASGI 3 application.

    Endpoints (``{name}`` is a scenario id; every request under a name is recorded there):
    ``/ok``, ``/flaky``, ``/status/{name}/{code}``, ``/stall``, ``/drop``, ``/echo``,
    ``/slow``, ``/outage``, ``/limited``, ``/problem/{name}/{format}``, ``/payments``
    (POST), the vendor look-alikes ``/vendor/{name}/openai/...`` and
    ``/vendor/{name}/anthropic/...``, plus
    ``/__stats/{name}`` and ``POST /__reset`` for out-of-process use. Each handler's
    docstring in ``_handlers`` / ``_payments`` states its query parameters.

    State is guarded by a ``threading.Lock``: read it from any thread while the server runs
    on its own. ``clock`` supplies the monotonic arrival times, the ``Date`` headers and
    the waits (default: the real clock, whose waits testing mode leaves real).
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SERVER_CLOCK
        self._recorder = Recorder()
        self._ledger = Ledger()
        self._lock = threading.Lock()
        # Weak keys: a finished server's loop must not be kept alive by the app.
        self._stops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Event] = (
            weakref.WeakKeyDictionary()
        )

    # --- introspection ---------------------------------------------------------------

    def scenario(self, name: str) -> ScenarioStats:
        """A frozen snapshot of what ``name`` received (zeros for an unseen name)."""
        return self._recorder.snapshot(name)

    def effects(self, name: str | None = None) -> int:
        """Payments committed under ``name`` (None: under every name)."""
        return self._ledger.effects(name)

    def set_failure_plan(self, name: str, *, rate: float, status: int = 503, seed: int = 0) -> None:
        """Make ``/outage/{name}`` fail a ``rate`` share (0..1; 1.0 = full outage) of calls
        with ``status``, drawn from ``random.Random(seed)``, until changed or reset.

        Raises ``ValueError`` for a rate outside [0, 1] or a status outside 200..599.
        """
        self._recorder.set_plan(name, FailurePlan(rate=rate, status=status, seed=seed))

    def reset(self) -> None:
        """Forget every scenario, failure plan, idempotency key and effect."""
        self._recorder.reset()
        self._ledger.reset()

    def stop_waits(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """End every stall, delay and payment work now, and all later ones, on ``loop``'s
        server (every loop when None). Those handlers drop their connection.

        :func:`serve` calls this on exit so shutdown never waits for a stall. Thread-safe.
        """
        with self._lock:
            targets = [
                (lp, event)
                for lp, event in self._stops.items()
                if (loop is None or lp is loop) and not lp.is_closed()
            ]
        for target_loop, event in targets:
            # A loop that closed in between has nothing left to wake.
            with contextlib.suppress(RuntimeError):
                target_loop.call_soon_threadsafe(event.set)

    def _stop_event(self) -> asyncio.Event:
        loop = asyncio.get_running_loop()
        with self._lock:
            event = self._stops.get(loop)
            if event is None:
                event = self._stops[loop] = asyncio.Event()
            return event

    # --- ASGI ------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        # Other scope types (websocket) are not served: returning closes them.

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._stop_event()  # registers this loop, so stop_waits() reaches it
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        arrived = self.clock.monotonic()
        body = await read_body(receive)
        if body is None:
            return
        request = Request.from_scope(scope, body)
        segments = tuple(s for s in request.path.split("/") if s)
        route = segments[0] if segments else ""
        if route == "__reset" and len(segments) == 1:
            return await self._reset_endpoint(request, send)
        if route == "__stats" and len(segments) == 2:
            return await self._stats_endpoint(segments[1], send)
        entry = _ROUTES.get(route)
        if entry is None or len(segments) < 2:
            return await self._not_found(request, send)
        if entry[0] is not None and len(segments) != 2 + entry[0]:
            return await self._not_found(request, send)
        visit = self._recorder.enter(segments[1], request, arrived)
        call = Call(
            request=request,
            name=segments[1],
            attempt=visit.attempt,
            segments=segments[2:],
            send=send,
            receive=receive,
            clock=self.clock,
            stop=self._stop_event(),
            recorder=self._recorder,
            ledger=self._ledger,
        )
        try:
            await entry[1](call)
        except BadParam as exc:
            await call.problem(400, "bad-parameter", f"Bad parameter {exc.param!r}", str(exc))
        finally:
            self._recorder.leave(visit)

    async def _json(self, send: Send, status: int, value: object, media: str) -> None:
        headers = {"content-type": media}
        await respond(send, status, json_body(value), headers, now=self.clock.wall())

    async def _not_found(self, request: Request, send: Send) -> None:
        problem = {
            "type": "https://chaos.invalid/problems/no-such-endpoint",
            "title": "No such chaos endpoint",
            "status": 404,
            "detail": f"Nothing is served at {request.path}; endpoints: {sorted(_ROUTES)}.",
        }
        await self._json(send, 404, problem, "application/problem+json")

    async def _stats_endpoint(self, name: str, send: Send) -> None:
        stats = self.scenario(name)
        value = {
            "name": stats.name,
            "attempts": stats.attempts,
            "in_flight": stats.in_flight,
            "peak_concurrency": stats.peak_concurrency,
            "effects": self.effects(name),
            "requests": [r.as_json() for r in stats.requests],
        }
        await self._json(send, 200, value, "application/json")

    async def _reset_endpoint(self, request: Request, send: Send) -> None:
        if request.method != "POST":
            now = self.clock.wall()
            return await respond(send, 405, b"", {"allow": "POST"}, now=now)
        self.reset()
        await self._json(send, 200, {"ok": True}, "application/json")
