"""A chaos upstream: a real HTTP server that fails on purpose, deterministically.

The SDK's integration tests, demo and benchmarks run against it, and integrators can point
their own tests at it. It is a raw ASGI application (no framework) served by uvicorn on
127.0.0.1; everything it received is introspectable from the test's thread::

    from . import serve

    with serve() as server:                       # uvicorn on a background thread
        httpx.get(f"{server.url}/flaky/demo?fail=2")   # 503, then 503, then 200
        server.app.scenario("demo").attempts      # requests the name "demo" received

Endpoints (``{name}`` is a scenario id of the test's choosing, so tests don't interfere):

======================================  ================================================
``/ok/{name}``                          200; ``size=N`` bytes; ``delay=S`` seconds first
``/flaky/{name}?fail=N&status=503``     first N answer ``status``, then 200
``/status/{name}/{code}``               always ``code``
``/stall/{name}?seconds=S&times=N``     first N wait S before any byte
``/drop/{name}?when=before|mid&times=N`` first N lose the connection
``/echo/{name}``                        200 with what the server received
``/slow/{name}?seconds=S``              wait S, then 200 (concurrency probes)
``/redirect/{name}?to=PATH&status=307``  a redirect to PATH on this server
``/outage/{name}``                      fails per :meth:`ChaosApp.set_failure_plan`
``/problem/{name}/{format}?status=N``   an error in one of :data:`FORMATS`
``/limited/{name}?limit=N&window=S``    N requests per S-second window, 429 past it,
``&family=ietf|x|openai|anthropic``     with that family's rate-limit headers
``POST /payments/{name}``               idempotent payments (Idempotency-Key draft)
``/vendor/{name}/openai/v1/...``        OpenAI / Anthropic look-alikes (POST) for their
``/vendor/{name}/anthropic/v1/...``     SDKs, scripted by name suffix or x-chaos-script
``/__stats/{name}``, ``POST /__reset``  introspection for out-of-process servers
======================================  ================================================

Failures from ``/flaky``, ``/status``, ``/outage`` and ``/problem`` take ``retry_after``,
``retry_after_date``, ``retry_after_ms``, ``should_retry``, ``format`` and ``request_id``.
``python -m resilient_client.chaos --port N`` serves out of process.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._app import ChaosApp
    from ._envelopes import FORMATS, envelope, reason_phrase
    from ._inject import Chaos
    from ._server import RunningServer, SubprocessServer, main, serve, serve_in_subprocess
    from ._state import FailurePlan, RecordedRequest, ScenarioStats

# Loaded on first use (PEP 562): the pipeline imports the fault injection of ``_inject``
# with every client, and must not pay for the server's modules to do so.
_HOMES = {
    "ChaosApp": "._app",
    "Chaos": "._inject",
    "FORMATS": "._envelopes",
    "envelope": "._envelopes",
    "reason_phrase": "._envelopes",
    "RunningServer": "._server",
    "SubprocessServer": "._server",
    "main": "._server",
    "serve": "._server",
    "serve_in_subprocess": "._server",
    "FailurePlan": "._state",
    "RecordedRequest": "._state",
    "ScenarioStats": "._state",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home, __name__), name)


__all__ = [
    "FORMATS",
    "Chaos",
    "ChaosApp",
    "FailurePlan",
    "RecordedRequest",
    "RunningServer",
    "ScenarioStats",
    "SubprocessServer",
    "envelope",
    "main",
    "reason_phrase",
    "serve",
    "serve_in_subprocess",
]
