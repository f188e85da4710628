"""Shared fixtures: one parametrised way to run a test against the sync and async clients,
and the real upstream (the chaos ASGI app under uvicorn on 127.0.0.1) for the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from drivers import Driver

from resilient_client.chaos import ChaosApp, RunningServer, serve


@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest) -> Iterator[Driver]:
    """Sync and async clients over httpx (integration tests add httpx2: see there)."""
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
