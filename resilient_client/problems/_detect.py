"""Which envelope a body is, and which parser reads it (standards §2.8, amended).

1. The media type, when the body fits it: ``application/problem+json`` and a JSON object →
   RFC 9457; ``application/vnd.api+json`` with an ``errors`` array → JSON:API;
   ``application/graphql-response+json`` with an ``errors`` array → GraphQL. A body that
   does not fit its media type falls through to the shape tests.
2. The shape of a JSON object:

   - ``error`` is an object: ``"type": "error"`` beside it → Anthropic (``openai``);
     ``error.status`` a string, a detail with ``@type``, or a number ``error.code``
     without ``type`` (OpenAI-compatible servers send numbers too) → Google;
     ``innererror`` / ``innerError`` / ``target`` or an ``x-ms-error-code`` header →
     Microsoft; a Stripe-only member or type, or a ``Stripe-Should-Retry`` header →
     Stripe; a string ``type`` → OpenAI; a string ``code`` (and no ``type``) →
     Microsoft's minimal form; a string ``message`` alone → OpenAI.
   - two well-typed RFC 9457 members → RFC 9457 (problems sent as ``application/json``).
   - ``errors`` is a non-empty array of objects: JSON:API when the first has a JSON:API
     member (``status``, ``title``, ``detail``, ``source``, ``id``, ``links``, ``meta``)
     and no GraphQL one (``message``, ``path``, ``locations``), otherwise GraphQL.

3. Anything else is ``unstructured``.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import (
    _google,
    _graphql,
    _jsonapi,
    _microsoft,
    _openai,
    _rfc9457,
    _stripe,
    _unstructured,
)
from ._model import Draft
from ._values import JsonObject, as_dict, as_int, objects

__all__ = ["draft_for_json"]

_PROBLEM_JSON = "application/problem+json"
_JSONAPI = "application/vnd.api+json"
_GRAPHQL = "application/graphql-response+json"
_JSONAPI_MEMBERS = frozenset({"status", "title", "detail", "source", "id", "links", "meta"})
_GRAPHQL_MEMBERS = frozenset({"message", "path", "locations"})
_MICROSOFT_MEMBERS = frozenset({"innererror", "innerError", "target"})


def draft_for_json(
    status: int, media_type: str, value: object, headers: Mapping[str, str]
) -> Draft:
    """The draft for a parsed JSON ``value`` received with ``media_type`` (lower case,
    without parameters)."""
    if not isinstance(value, dict):  # as_dict(), inlined: a frame per parse
        return _unstructured.from_json(status, value)
    body: JsonObject = value
    if media_type == _PROBLEM_JSON:
        return _rfc9457.parse(body, status)
    errors = objects(body.get("errors"))
    if errors and media_type == _JSONAPI:
        return _jsonapi.parse(body, errors)
    if errors and media_type == _GRAPHQL:
        return _graphql.parse(errors)

    error = as_dict(body.get("error"))
    if error is not None:
        return _vendor(status, body, error, headers)
    if _rfc9457.looks_like_problem(body):
        return _rfc9457.parse(body, status)
    if errors:
        keys = errors[0].keys()
        if _JSONAPI_MEMBERS.isdisjoint(keys) or not _GRAPHQL_MEMBERS.isdisjoint(keys):
            return _graphql.parse(errors)
        return _jsonapi.parse(body, errors)
    return _unstructured.from_json(status, body)


def _vendor(status: int, body: JsonObject, error: JsonObject, headers: Mapping[str, str]) -> Draft:
    if body.get("type") == "error":
        return _openai.parse(error, body)
    if (
        isinstance(error.get("status"), str)
        or (as_int(error.get("code")) is not None and "type" not in error)
        or any("@type" in detail for detail in objects(error.get("details")))
    ):
        return _google.parse(error, status)
    if not _MICROSOFT_MEMBERS.isdisjoint(error) or "x-ms-error-code" in headers:
        return _microsoft.parse(error)
    kind = error.get("type")
    if (
        (isinstance(kind, str) and kind in _stripe.STRIPE_ONLY_TYPES)
        or not _stripe.STRIPE_ONLY_MEMBERS.isdisjoint(error)
        or "stripe-should-retry" in headers
    ):
        return _stripe.parse(error)
    if isinstance(kind, str):
        return _openai.parse(error, body)
    if isinstance(error.get("code"), str):
        return _microsoft.parse(error)
    if isinstance(error.get("message"), str):
        return _openai.parse(error, body)
    return _unstructured.from_json(status, body)
