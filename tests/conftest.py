"""Shared fixtures: one parametrised way to run a test against the sync and async clients,
and the real upstream (the chaos ASGI app under uvicorn on 127.0.0.1) for the session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from drivers import Driver
from hypothesis import settings
from otel_support import Otel

from resilient_client.chaos import ChaosApp, RunningServer, serve

# No per-example deadline on a noisy 2-core machine; in CI, the same examples every run
# (a property that fails should fail where it can be reproduced, not by luck of the draw).
settings.register_profile("local", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "local")


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


@pytest.fixture
def otel() -> Iterator[Otel]:
    """An OpenTelemetry SDK writing spans and metrics to memory, for one test."""
    instance = Otel()
    yield instance
    instance.shutdown()
