"""Stripe's ``{"error": {type, code, decline_code, message, param, doc_url, ...}}``.

``type`` is ``error.type`` (``card_error``, ``invalid_request_error``, ``api_error``,
``idempotency_error``); ``code`` is ``error.code``; ``detail`` is ``error.message``; a
``param`` becomes a field error. Everything else (``decline_code``, ``doc_url``,
``request_log_url``, ``advice_code``, ``network_*``, the related objects) stays in
``extensions``. The request id comes from the ``Request-Id`` header.
"""

from __future__ import annotations

from ._model import Draft
from ._values import JsonObject, as_code, as_str, field_error

__all__ = ["STRIPE_ONLY_MEMBERS", "STRIPE_ONLY_TYPES", "parse"]

STRIPE_ONLY_MEMBERS = frozenset(
    {
        "decline_code",
        "doc_url",
        "request_log_url",
        "advice_code",
        "network_advice_code",
        "network_decline_code",
        "charge",
        "payment_intent",
        "payment_method",
        "payment_method_type",
        "setup_intent",
        "source",
    }
)
"""Members that mark an ``error`` object as Stripe's rather than OpenAI's look-alike."""

STRIPE_ONLY_TYPES = frozenset({"card_error", "idempotency_error"})

_MAPPED = frozenset({"type", "code", "message", "param"})


def parse(error: JsonObject) -> Draft:
    kind = as_str(error.get("type"))
    code = as_code(error.get("code"))
    message = as_str(error.get("message"))
    param = as_str(error.get("param"))
    return Draft(
        format="stripe",
        type=kind,
        detail=message,
        code=code,
        field_errors=[field_error(param, message, code)] if param else [],
        extensions={name: value for name, value in error.items() if name not in _MAPPED},
        signals=(code, kind),
    )
