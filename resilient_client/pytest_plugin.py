"""pytest fixtures for testing code built on resilient_client, registered on install.

The ``pytest11`` entry point loads this module in every pytest run of an environment
where resilient-client is installed (``-p no:resilient_client`` turns it off). Fixtures:

- ``rc_clock``: a :class:`~resilient_client.testing.FakeClock` that every client and
  transport built during the test uses when given no ``clock=``, so backoff, deadlines
  and breaker timeouts are instant and deterministic; ``rc_clock.advance(s)`` moves time.
- ``rc_no_waits``: testing mode for the test (:func:`~resilient_client.testing.no_waits`);
  yields the record of the skipped waits (``rc_no_waits.delays``, seconds).
- ``rc_scripted``: ``rc_scripted(script, library="httpx", latency=0.0)`` builds a
  :class:`~resilient_client.testing.ScriptedTransport` (an httpx2 one for
  ``library="httpx2"``); under ``rc_clock`` its latency advances that clock.
- ``rc_chaos``: the chaos upstream (:mod:`resilient_client.chaos`), a real HTTP server on
  127.0.0.1 started once per session and reset before each test: ``.url``, ``.key`` (a
  scenario name for this test), ``.stats(key)``, ``.effects(key)`` and ``.app``
  (``ChaosApp``, e.g. ``.app.set_failure_plan(key, rate=1.0)``). Needs uvicorn
  (``pip install 'resilient-client[demo]'``).

All fixtures are plain (sync) fixtures: they serve sync tests and async ones alike, under
pytest-asyncio, anyio's plugin (asyncio or trio) or pytest-trio. ``rc_clock`` and
``rc_no_waits`` are process-wide while the test runs, as the pipeline may run on any
thread or event loop; clients built before the test (in a wider-scoped fixture) keep the
clock they were built with.

Imports of the package happen inside the fixtures, so merely having the plugin installed
costs a pytest run nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .chaos import ChaosApp, RunningServer, ScenarioStats
    from .testing import FakeClock, Step, Waits

__all__ = ["ChaosUpstream", "rc_chaos", "rc_clock", "rc_no_waits", "rc_scripted"]


@pytest.fixture
def rc_clock() -> Iterator[FakeClock]:
    """A ``FakeClock`` every pipeline built during the test takes as its default clock."""
    from ._clock import clock_override
    from .testing import FakeClock

    clock = FakeClock()
    with clock_override(clock):
        yield clock


@pytest.fixture
def rc_no_waits() -> Iterator[Waits]:
    """Testing mode for the test: every wait skipped; yields their record (``.delays``)."""
    from .testing import no_waits

    with no_waits() as waits:
        yield waits


ScriptedFactory = Callable[..., Any]


@pytest.fixture
def rc_scripted() -> ScriptedFactory:
    """``rc_scripted(script=(), *, library="httpx", clock=None, latency=0.0)``: a scripted
    inner transport; ``clock`` defaults to the ``rc_clock`` in force, if any."""
    from ._clock import default_clock
    from .testing import FakeClock, scripted_transport

    def make(
        script: Iterable[Step] = (),
        *,
        library: str = "httpx",
        clock: FakeClock | None = None,
        latency: float = 0.0,
    ) -> Any:
        if clock is None:
            current = default_clock()
            clock = current if isinstance(current, FakeClock) else None
        return scripted_transport(script, library=library, clock=clock, latency=latency)  # type: ignore[arg-type]

    return make


class ChaosUpstream:
    """The session's chaos upstream, seen from one test.

    ``url`` is ``http://127.0.0.1:<port>``; ``key`` a scenario name unique to the test
    (``f"{rc_chaos.url}/flaky/{rc_chaos.key}?fail=2"``); ``app`` the ``ChaosApp``.
    """

    def __init__(self, server: RunningServer, key: str) -> None:
        self.url = server.url
        self.app: ChaosApp = server.app
        self.key = key

    def stats(self, key: str | None = None) -> ScenarioStats:
        """What the server received under ``key`` (default: this test's key): attempts,
        each request's method, path, headers and arrival, concurrency."""
        return self.app.scenario(self.key if key is None else key)

    def effects(self, key: str | None = None) -> int:
        """Payments committed under ``key`` (default: this test's key) by ``/payments``."""
        return self.app.effects(self.key if key is None else key)

    def __repr__(self) -> str:
        return f"ChaosUpstream(url={self.url!r}, key={self.key!r})"


@pytest.fixture(scope="session")
def _rc_chaos_server() -> Iterator[RunningServer]:
    try:
        import uvicorn  # noqa: F401  (checked here for a clear message)
    except ImportError:
        pytest.fail("rc_chaos needs uvicorn: pip install 'resilient-client[demo]'", pytrace=False)
    from .chaos import ChaosApp, serve

    with serve(ChaosApp()) as server:
        yield server


@pytest.fixture
def rc_chaos(_rc_chaos_server: RunningServer, request: pytest.FixtureRequest) -> ChaosUpstream:
    """The chaos upstream on 127.0.0.1 (one per session, reset for each test)."""
    _rc_chaos_server.app.reset()
    # A path segment: the test's name without brackets, slashes or spaces.
    key = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")[:100] or "test"
    return ChaosUpstream(_rc_chaos_server, key)
