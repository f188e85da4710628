"""Redaction for telemetry: the core's :mod:`resilient_client._redact`, under the names
telemetry has always used. It lives in the core because exception messages and log lines
need it too, and they must not import OpenTelemetry."""

from __future__ import annotations

from .._redact import (
    ALWAYS_SENSITIVE_HEADERS,
    DEFAULT_REDACTION,
    DEFAULT_SENSITIVE_HEADER_PATTERN,
    DEFAULT_SENSITIVE_HEADERS,
    DEFAULT_SENSITIVE_QUERY_PARAMETERS,
    REDACTED,
    SEMCONV_SENSITIVE_QUERY_PARAMETERS,
    Redaction,
    redact_text,
    redact_url,
)

__all__ = [
    "ALWAYS_SENSITIVE_HEADERS",
    "DEFAULT_REDACTION",
    "DEFAULT_SENSITIVE_HEADERS",
    "DEFAULT_SENSITIVE_HEADER_PATTERN",
    "DEFAULT_SENSITIVE_QUERY_PARAMETERS",
    "REDACTED",
    "SEMCONV_SENSITIVE_QUERY_PARAMETERS",
    "Redaction",
    "redact_text",
    "redact_url",
]
