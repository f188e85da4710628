"""Names (semantic conventions and our own, under one prefix) and the pure functions that
turn a request, a response or an exception into attribute values.

Stable HTTP client conventions (semconv v1.44) where they exist; everything the
conventions do not cover (retries, breakers, budgets - semconv has no resilience
conventions yet) lives under ``resilient_client.`` so it cannot collide with future ones.
"""

from __future__ import annotations

import os
import sys
from typing import Final

import httpx

__all__ = [
    "DURATION_BUCKETS",
    "KNOWN_METHODS",
    "call_outcome",
    "error_type",
    "error_type_of",
    "is_cancellation",
    "known_methods",
    "protocol_version",
    "server_port",
    "url_template",
]

# -- semantic conventions (stable) -------------------------------------------------------
HTTP_REQUEST_METHOD: Final = "http.request.method"
HTTP_REQUEST_METHOD_ORIGINAL: Final = "http.request.method_original"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
HTTP_REQUEST_RESEND_COUNT: Final = "http.request.resend_count"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
URL_FULL: Final = "url.full"
URL_TEMPLATE: Final = "url.template"  # opt-in, development
ERROR_TYPE: Final = "error.type"
NETWORK_PROTOCOL_VERSION: Final = "network.protocol.version"
REQUEST_HEADER_PREFIX: Final = "http.request.header."
RESPONSE_HEADER_PREFIX: Final = "http.response.header."

# -- ours ----------------------------------------------------------------------------------
ENDPOINT: Final = "resilient_client.endpoint"
ATTEMPT: Final = "resilient_client.attempt"
ATTEMPTS: Final = "resilient_client.attempts"
OUTCOME: Final = "resilient_client.outcome"
STOP_REASON: Final = "resilient_client.stop_reason"
RETRY_REASON: Final = "resilient_client.retry.reason"
RETRY_REASONS: Final = "resilient_client.retry.reasons"
RETRY_DELAY: Final = "resilient_client.retry.delay"
REFUSED_BY: Final = "resilient_client.retry.refused_by"
REJECTED_BY: Final = "resilient_client.rejected_by"
CORRELATION_ID: Final = "resilient_client.correlation_id"
REQUEST_ID: Final = "resilient_client.request_id"
# The problem an attempt's error answer carried (its code neutralised: a server's text),
# and its category (rc.ErrorCategory: a closed set, fit for a metric attribute).
PROBLEM_CODE: Final = "resilient_client.problem.code"
PROBLEM_CATEGORY: Final = "resilient_client.problem.category"
# The fault rc.Chaos put in place of an attempt ("503", "reset", "timeout").
CHAOS_FAULT: Final = "resilient_client.chaos.fault"
# An attempt that was a hedge (rc.Hedging); on the call span, how many there were.
HEDGE: Final = "resilient_client.hedge"
HEDGES: Final = "resilient_client.hedges"
FAILURES: Final = "resilient_client.failures"
IDEMPOTENCY_KEY: Final = "resilient_client.idempotency_key"
BREAKER_STATE: Final = "resilient_client.breaker.state"
BREAKER_PREVIOUS_STATE: Final = "resilient_client.breaker.previous_state"

# -- span events -------------------------------------------------------------------------------
EVENT_RETRY: Final = "resilient_client.retry"
EVENT_RETRY_REFUSED: Final = "resilient_client.retry_refused"
EVENT_REJECTED: Final = "resilient_client.rejected"

# -- metrics ------------------------------------------------------------------------------------
HTTP_CLIENT_REQUEST_DURATION: Final = "http.client.request.duration"
CALL_DURATION: Final = "resilient_client.call.duration"
RETRIES: Final = "resilient_client.retries"
RETRY_REFUSALS: Final = "resilient_client.retry.refusals"
REJECTIONS: Final = "resilient_client.rejections"
BREAKER_STATE_METRIC: Final = "resilient_client.breaker.state"
BREAKER_TRANSITIONS: Final = "resilient_client.breaker.transitions"

DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
"""The conventions' advisory boundaries for ``http.client.request.duration`` (seconds)."""

KNOWN_METHODS: frozenset[str] = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE", "QUERY"}
)
"""RFC 9110 methods, PATCH and QUERY; any other is reported as ``_OTHER``."""

BREAKER_STATES: tuple[str, ...] = ("closed", "open", "half_open")


def known_methods() -> frozenset[str]:
    """:data:`KNOWN_METHODS`, or ``OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`` (comma-separated,
    a full replacement) when that variable is set, as the conventions say."""
    configured = os.environ.get("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS")
    if configured is None:
        return KNOWN_METHODS
    return frozenset(name.strip().upper() for name in configured.split(",") if name.strip())


def server_port(url: httpx.URL) -> int | None:
    """The port the request goes to: explicit, else the scheme's default (None if unknown)."""
    port = url.port
    if port is not None:
        return port
    return {"https": 443, "http": 80}.get(url.scheme)


def url_template(endpoint_key: str) -> str | None:
    """The path template of a configured endpoint key (``"GET /v1/users/{id}"`` →
    ``"/v1/users/{id}"``); ``None`` for a host's default endpoint (``"* host:port"``),
    which has no template - a raw path could hold ids, so none is made up."""
    path = endpoint_key.partition(" ")[2]
    return path if path.startswith("/") else None


# httpx's http_version extension values -> network.protocol.version.
_VERSIONS: dict[object, str] = {b"HTTP/1.1": "1.1", b"HTTP/2": "2", b"HTTP/1.0": "1.0"}


def protocol_version(response: httpx.Response) -> str | None:
    """``network.protocol.version`` from httpx's ``"HTTP/1.1"``, ``"HTTP/2"``...

    Asked once per attempt: the usual values of an ``httpx.Response`` (which keeps the
    version as bytes in ``extensions`` and decodes it on each ``http_version`` read) come
    from a table."""
    if type(response) is httpx.Response:
        raw = response.extensions.get("http_version", b"HTTP/1.1")
        if type(raw) is bytes and raw in _VERSIONS:
            return _VERSIONS[raw]
    version = response.http_version
    if version.startswith("HTTP/"):
        return version[5:]
    return None


def is_cancellation(error: BaseException) -> bool:
    """Whether an attempt ended because the caller cancelled it (not an error, per the
    conventions): asyncio's and trio's cancellations and interrupts are
    ``BaseException``s outside ``Exception``."""
    return not isinstance(error, Exception)


_ERROR_TYPES: dict[type[BaseException], str] = {}


def error_type(error: BaseException) -> str:
    """``error.type`` for an exception: its fully qualified name, spelt as the shallowest
    public package exporting it spells it (``httpx.ConnectError``,
    ``resilient_client.AttemptTimeout``, ``resilient_client.httpx2.BulkheadFull``), not by
    the private module that defines it. Cached per type, so bounded by the types raised."""
    kind = type(error)
    name = _ERROR_TYPES.get(kind)
    if name is None:
        module, qualname = kind.__module__, kind.__qualname__
        name = qualname if module == "builtins" else f"{module}.{qualname}"
        parts = module.split(".")
        for depth in range(1, len(parts)):
            if parts[depth - 1].startswith("_"):
                break
            package = ".".join(parts[:depth])
            if getattr(sys.modules.get(package), qualname, None) is kind:
                name = f"{package}.{qualname}"
                break
        _ERROR_TYPES[kind] = name
    return name


def error_type_of(status: int | None, error: BaseException | None) -> str | None:
    """``error.type`` of an outcome: the exception's type, or the status code as text for
    4xx/5xx; ``None`` on success and on cancellation (a deliberate cancel is not an error,
    semconv 1.41+)."""
    if error is not None:
        return None if is_cancellation(error) else error_type(error)
    if status is not None and status >= 400:
        return str(status)
    return None


def call_outcome(
    error_type: str | None, error: BaseException | None, rejected: bool, fallback: bool
) -> str:
    """``resilient_client.outcome``: ``fallback``, ``cancelled``, ``rejected``, ``failure``
    or ``success``, the first that applies."""
    if fallback:
        return "fallback"
    if error is not None and is_cancellation(error):
        return "cancelled"
    if rejected:
        return "rejected"
    return "failure" if error_type is not None else "success"
