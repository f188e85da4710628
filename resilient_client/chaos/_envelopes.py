"""Error bodies in the envelopes real APIs use (standards.md §1-2), for any status.

Each builder returns headers and body bytes; the status line is the caller's. Codes are
chosen per status the way each API family does (Google 503 → ``UNAVAILABLE``, OpenAI 429 →
``rate_limit_error``, Stripe 402 → ``card_error``/``card_declined``, …). Everything is
derived from the arguments, so the same call always returns the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus

__all__ = ["FORMATS", "envelope", "reason_phrase"]

_PROBLEMS = "https://chaos.invalid/problems/"
_DEFAULT_RETRY_INFO = 0.1  # seconds; short so suites using Google bodies stay fast
_EXTRA_PHRASES = {294: "Partial Success", 499: "Client Closed Request", 529: "Site Overloaded"}

Headers = dict[str, str]
_Builder = Callable[[int, str, float | None], tuple[Headers, bytes]]


def reason_phrase(status: int) -> str:
    """The status's reason phrase ("Service Unavailable"), "Unknown" when unregistered."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return _EXTRA_PHRASES.get(status, "Unknown")


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _slug(status: int) -> str:
    return reason_phrase(status).lower().replace(" ", "-").replace("'", "")


def _snake(status: int) -> str:
    return _slug(status).replace("-", "_")


def _duration(seconds: float) -> str:
    # proto3 JSON Duration: 0, 3, 6 or 9 fractional digits, then "s".
    for digits in (0, 3, 6):
        if round(seconds, digits) == seconds:
            return f"{seconds:.{digits}f}s"
    return f"{seconds:.9f}s"


def _by_status(table: dict[int, tuple[str, ...]], status: int) -> tuple[str, ...]:
    if status in table:
        return table[status]
    return table[500] if status >= 500 else table[400]


# --- RFC 9457 -------------------------------------------------------------------------


def _rfc9457(status: int, request_id: str, retry_after: float | None) -> tuple[Headers, bytes]:
    body: dict[str, object] = {
        "type": _PROBLEMS + _slug(status),
        "title": reason_phrase(status),
        "status": status,
        "detail": f"The chaos upstream answered {status} on purpose.",
        "instance": f"urn:chaos:request:{request_id}",
        "code": _snake(status),  # an extension member, as APIs add
        "request_id": request_id,
    }
    if status in (400, 422):
        body["invalid-params"] = [
            {"name": "amount", "reason": "must be a positive integer"},
            {"name": "currency", "reason": "must be a 3-letter ISO 4217 code"},
        ]
    return {"content-type": "application/problem+json"}, _json(body)


# --- Google (AIP-193, google.rpc.Status) --------------------------------------------------

_GOOGLE: dict[int, tuple[str, ...]] = {
    400: ("INVALID_ARGUMENT", "INVALID_FIELD"),
    401: ("UNAUTHENTICATED", "ACCESS_TOKEN_EXPIRED"),
    403: ("PERMISSION_DENIED", "IAM_PERMISSION_DENIED"),
    404: ("NOT_FOUND", "RESOURCE_NOT_FOUND"),
    409: ("ABORTED", "CONCURRENT_MODIFICATION"),
    412: ("FAILED_PRECONDITION", "PRECONDITION_NOT_MET"),
    429: ("RESOURCE_EXHAUSTED", "RATE_LIMIT_EXCEEDED"),
    499: ("CANCELLED", "CLIENT_CANCELLED"),
    500: ("INTERNAL", "BACKEND_ERROR"),
    501: ("UNIMPLEMENTED", "METHOD_NOT_IMPLEMENTED"),
    503: ("UNAVAILABLE", "SERVICE_UNAVAILABLE"),
    504: ("DEADLINE_EXCEEDED", "BACKEND_DEADLINE_EXCEEDED"),
}


def _google(status: int, request_id: str, retry_after: float | None) -> tuple[Headers, bytes]:
    enum, reason = _by_status(_GOOGLE, status)
    details: list[dict[str, object]] = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": "chaos.invalid",
            "metadata": {"service": "chaos.invalid", "requestId": request_id},
        }
    ]
    if status in (429, 503):
        delay = _DEFAULT_RETRY_INFO if retry_after is None else retry_after
        details.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": _duration(delay)}
        )
    if status == 400:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [
                    {"field": "payment.amount", "description": "must be a positive integer"}
                ],
            }
        )
    body = {
        "error": {
            "code": status,
            "message": f"{reason_phrase(status)} (chaos upstream).",
            "status": enum,
            "details": details,
        }
    }
    return {"content-type": "application/json; charset=UTF-8"}, _json(body)


# --- Microsoft REST API guidelines (Azure) -------------------------------------------------

_MICROSOFT: dict[int, tuple[str, ...]] = {
    400: ("InvalidRequestContent", "InvalidPropertyValue"),
    401: ("AuthenticationFailed", "TokenExpired"),
    403: ("AuthorizationFailed", "MissingRoleAssignment"),
    404: ("ResourceNotFound", "PaymentNotFound"),
    409: ("Conflict", "ConcurrentUpdate"),
    429: ("TooManyRequests", "SubscriptionThrottled"),
    500: ("InternalServerError", "UnexpectedFailure"),
    503: ("ServiceUnavailable", "BackendOverloaded"),
    504: ("GatewayTimeout", "BackendTimeout"),
}


def _microsoft(status: int, request_id: str, retry_after: float | None) -> tuple[Headers, bytes]:
    code, inner = _by_status(_MICROSOFT, status)
    body = {
        "error": {
            "code": code,
            "message": f"{reason_phrase(status)} (chaos upstream).",
            "target": "payment",
            "details": [
                {"code": inner, "message": "See innererror.", "target": "properties.amount"}
            ],
            "innererror": {"code": inner, "innererror": {"code": f"{inner}Detail"}},
        }
    }
    headers = {
        "content-type": "application/json; charset=utf-8",
        # Azure requires the header to equal error.code.
        "x-ms-error-code": code,
        "x-ms-request-id": request_id,
    }
    return headers, _json(body)


# --- JSON:API ----------------------------------------------------------------------------


def _jsonapi(status: int, request_id: str, retry_after: float | None) -> tuple[Headers, bytes]:
    code = _snake(status)
    body = {
        "errors": [
            {
                "id": request_id,
                "status": str(status),  # a string, per JSON:API
                "code": code,
                "title": reason_phrase(status),
                "detail": f"The chaos upstream answered {status} on purpose.",
                "source": {"pointer": "/data/attributes/amount"},
                "links": {"type": f"https://chaos.invalid/docs/errors/{code}"},
                "meta": {"requestId": request_id},
            }
        ]
    }
    return {"content-type": "application/vnd.api+json"}, _json(body)


# --- OpenAI / Anthropic ----------------------------------------------------------------------

_OPENAI: dict[int, tuple[str, ...]] = {
    400: ("invalid_request_error", "invalid_value", "temperature"),
    401: ("authentication_error", "invalid_api_key", ""),
    403: ("permission_error", "unsupported_country_region_territory", ""),
    404: ("invalid_request_error", "model_not_found", "model"),
    409: ("invalid_request_error", "conflict", ""),
    422: ("invalid_request_error", "unprocessable_entity", ""),
    429: ("rate_limit_error", "rate_limit_exceeded", ""),
    500: ("server_error", "", ""),
    503: ("server_error", "service_unavailable", ""),
}


def _openai(status: int, request_id: str, retry_after: float | None) -> tuple[Headers, bytes]:
    kind, code, param = _by_status(_OPENAI, status)
    body = {
        "error": {
            "message": f"{reason_phrase(status)} (chaos upstream).",
            "type": kind,
            "param": param or None,
            "code": code or None,
        }
    }
    return {"content-type": "application/json", "x-request-id": request_id}, _json(body)


_ANTHROPIC: dict[int, tuple[str, ...]] = {
    400: ("invalid_request_error",),
    401: ("authentication_error",),
    402: ("billing_error",),
    403: ("permission_error",),
    404: ("not_found_error",),
    413: ("request_too_large",),
    429: ("rate_limit_error",),
    500: ("api_error",),
    504: ("timeout_error",),
    529: ("overloaded_error",),
}


def _anthropic(status: int, request_id: str, retry_after: float | None) -> tuple[Headers, bytes]:
    (kind,) = _by_status(_ANTHROPIC, status)
    message = "Overloaded" if kind == "overloaded_error" else f"{reason_phrase(status)} (chaos)."
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}
    return {"content-type": "application/json", "request-id": request_id}, _json(body)


# --- Stripe ----------------------------------------------------------------------------------

_STRIPE: dict[int, tuple[str, ...]] = {
    400: ("invalid_request_error", "parameter_missing", "amount"),
    401: ("invalid_request_error", "api_key_invalid", ""),
    402: ("card_error", "card_declined", "payment_method"),
    403: ("invalid_request_error", "secret_key_required", ""),
    404: ("invalid_request_error", "resource_missing", "id"),
    409: ("idempotency_error", "idempotency_key_in_use", ""),
    429: ("invalid_request_error", "rate_limit", ""),
    500: ("api_error", "", ""),
}


def _stripe(status: int, request_id: str, retry_after: float | None) -> tuple[Headers, bytes]:
    kind, code, param = _by_status(_STRIPE, status)
    error: dict[str, object] = {"type": kind, "message": f"{reason_phrase(status)} (chaos)."}
    if code:
        error["code"] = code
        error["doc_url"] = "https://stripe.com/docs/error-codes/" + code.replace("_", "-")
    if kind == "card_error":
        error["decline_code"] = "insufficient_funds"
    if param:
        error["param"] = param
    error["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
    return {"content-type": "application/json", "request-id": request_id}, _json({"error": error})


# --- GraphQL -----------------------------------------------------------------------------

_GRAPHQL: dict[int, tuple[str, ...]] = {
    200: ("INTERNAL_SERVER_ERROR",),
    400: ("BAD_USER_INPUT",),
    401: ("UNAUTHENTICATED",),
    403: ("FORBIDDEN",),
    404: ("NOT_FOUND",),
    429: ("RATE_LIMITED",),
    500: ("INTERNAL_SERVER_ERROR",),
    503: ("SERVICE_UNAVAILABLE",),
}


def _graphql(status: int, request_id: str, retry_after: float | None) -> tuple[Headers, bytes]:
    (code,) = _by_status(_GRAPHQL, status)
    message = (
        "Cannot resolve field 'amount' (chaos upstream)."
        if status < 400
        else f"{reason_phrase(status)} (chaos upstream)."
    )
    body = {
        "data": None,
        "errors": [
            {
                "message": message,
                "locations": [{"line": 2, "column": 3}],
                "path": ["payment", "amount"],
                "extensions": {"code": code, "requestId": request_id},
            }
        ],
    }
    # Legacy application/json: errors ride on a 200 or on the request error's status.
    return {"content-type": "application/json"}, _json(body)


# --- Unstructured --------------------------------------------------------------------------


def _html(status: int, request_id: str, retry_after: float | None) -> tuple[Headers, bytes]:
    title = f"{status} {reason_phrase(status)}"
    page = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
    return {"content-type": "text/html; charset=utf-8"}, page.encode()


def _text(status: int, request_id: str, retry_after: float | None) -> tuple[Headers, bytes]:
    line = f"{status} {reason_phrase(status)}: upstream request failed\n"
    return {"content-type": "text/plain; charset=utf-8"}, line.encode()


def _empty(status: int, request_id: str, retry_after: float | None) -> tuple[Headers, bytes]:
    return {}, b""


_BUILDERS: dict[str, _Builder] = {
    "anthropic": _anthropic,
    "empty": _empty,
    "google": _google,
    "graphql": _graphql,
    "html": _html,
    "jsonapi": _jsonapi,
    "microsoft": _microsoft,
    "openai": _openai,
    "rfc9457": _rfc9457,
    "stripe": _stripe,
    "text": _text,
}

FORMATS: tuple[str, ...] = tuple(sorted(_BUILDERS))
"""Every envelope name :func:`envelope` accepts."""


def envelope(
    format: str,
    status: int,
    *,
    request_id: str | None = None,
    retry_after: float | None = None,
) -> tuple[dict[str, str], bytes]:
    """Headers and body of an error response in envelope ``format`` for ``status``.

    ``format`` is one of :data:`FORMATS`. ``request_id`` goes where the format carries one
    (body and/or its request-id header); None uses ``req_chaos_<status>``. ``retry_after``
    (seconds) fills the body's own retry hint where the format has one (Google's
    ``RetryInfo`` on 429/503; None there means 0.1 s); ``Retry-After`` headers are the
    caller's business. Header names are lower-case; ``empty`` has no content-type.

    Raises ``ValueError`` for an unknown format or a status outside 100..599.
    """
    builder = _BUILDERS.get(format)
    if builder is None:
        raise ValueError(f"unknown envelope format {format!r}; expected one of {FORMATS}")
    if not 100 <= status <= 599:
        raise ValueError(f"status must be within 100..599, got {status!r}")
    return builder(status, request_id or f"req_chaos_{status}", retry_after)
