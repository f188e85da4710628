"""Integration tests run every ``driver`` test four ways: sync and async, httpx and httpx2."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from drivers import Driver


@pytest.fixture(
    params=[("sync", "httpx"), ("async", "httpx"), ("sync", "httpx2"), ("async", "httpx2")],
    ids=["sync-httpx", "async-httpx", "sync-httpx2", "async-httpx2"],
)
def driver(request: pytest.FixtureRequest) -> Iterator[Driver]:
    instance = Driver(*request.param)
    yield instance
    instance.close()
