"""What the observer keeps between events: per route, and per call.

A :class:`Route` is built on the first call of a method, endpoint and origin and reused by
the calls after it; a :class:`CallState` lives in ``call.observation`` from the call's
start to its end. Plain slotted records, kept apart from the event handlers
(``_observer.py``) that fill and read them, and from the caches that hold the routes
(``_observer_base.py``).
"""

from __future__ import annotations

from contextvars import Token
from typing import Any

import httpx
from opentelemetry import context, trace
from opentelemetry.util.types import AttributeValue

from . import _semconv as sc

__all__ = ["Attrs", "CallState", "Route"]

Attrs = dict[str, AttributeValue]


class Route:
    """What the calls of one method, endpoint and origin share: the span name and the
    attributes that do not change from call to call, built on the first call.

    Attribute dicts kept here are handed to the SDK, which copies them, and never
    modified after they are built.
    """

    __slots__ = ("attempts", "calls", "method", "metric", "name", "other")

    def __init__(self, methods: frozenset[str], method: str, key: str, url: Any) -> None:
        known = method if method in methods else "_OTHER"
        template = sc.url_template(key)
        prefix = "HTTP" if known == "_OTHER" else known
        self.name = prefix if template is None else f"{prefix} {template}"
        self.method = known
        self.other = known == "_OTHER"  # http.request.method_original is recorded
        metric: Attrs = {sc.HTTP_REQUEST_METHOD: known, sc.SERVER_ADDRESS: url.host}
        port = sc.server_port(url)
        if port is not None:
            metric[sc.SERVER_PORT] = port
        if template is not None:
            metric[sc.URL_TEMPLATE] = template
        self.metric = metric  # http.client.request.duration's, and the attempt spans'
        # Completed metric attributes by outcome: of attempts by (status code, protocol
        # version, error type), of calls by (outcome, error type).
        self.attempts: dict[tuple[int | None, str | None, str | None], Attrs] = {}
        self.calls: dict[tuple[str, str | None], Attrs] = {}


class CallState:
    """What the observer keeps for one call, in ``call.observation``."""

    __slots__ = (
        "attach",
        "attempt_attributes",
        "attempt_span",
        "context",
        "ended",
        "hedge_spans",
        "last_request_id",
        "last_response",
        "metered",
        "recording",
        "rejected",
        "route",
        "span",
        "token",
    )

    def __init__(
        self, span: trace.Span, route: Route | None, recording: bool, metered: bool
    ) -> None:
        self.span = span
        self.route = route
        self.recording = recording
        self.metered = metered
        self.context: context.Context | None = None
        self.attempt_attributes: Attrs = {}
        self.attempt_span: trace.Span | None = None
        # Hedges' spans by attempt, while they run beside the attempt they hedge.
        self.hedge_spans: dict[int, trace.Span] | None = None
        self.token: Token[context.Context] | None = None
        self.rejected: str | None = None
        self.ended = False
        self.attach = False
        self.last_response: httpx.Response | None = None  # the last attempt's, for its id
        self.last_request_id: str | None = None
