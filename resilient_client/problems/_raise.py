"""``raise_for_error``: turn an error response into the :class:`ApiError` subclass for its
status, carrying the parsed :class:`Problem`.

The message is ``problem.summary()``: one line with the status and reason phrase, the
code, the detail (collapsed and cut at 200 characters) and the request id; never the URL,
another header's value or any of the body beyond ``detail``, and in the detail e-mail
addresses, card numbers and tokens are masked (``[email]``, ``[card]``, ``[token]``): a
provider's error text can quote what the caller sent. ``.problem`` keeps the detail as
the server wrote it, for code that needs it. A reused idempotency key (422, or Stripe's
``idempotency_error``) is said in so many words.

A server may echo the caller's credential in its error text ("invalid api key
'k-123...'") in no shape the masking knows. So the secrets the request itself carried -
its URL's password, the values of its sensitive query parameters and of its sensitive
headers (``Authorization``'s credentials, ``X-Api-Key``...; see
:class:`~resilient_client.telemetry.Redaction`) - are replaced with ``[token]`` in the
message wherever they appear, and where the message was cut in the middle of one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

import httpx

from .._exceptions import ApiErrorMixin, api_error_class
from .._redact import DEFAULT_REDACTION
from ._model import Problem
from ._parse import DEFAULT_MAX_BODY_BYTES, aparse_problem, parse_problem

__all__ = ["araise_for_error", "raise_for_error"]


ErrorClass = Callable[[int], type[ApiErrorMixin]]


def raise_for_error(
    response: httpx.Response,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    error_class: ErrorClass = api_error_class,
    problem: Problem | None = None,
) -> httpx.Response:
    """Return ``response`` when its status is below 400; otherwise raise the
    :class:`~resilient_client.ApiError` subclass for the status (``api_error_class``), with
    ``.problem`` set to ``problem``, or when that is None (the default) to
    ``parse_problem(response, max_body_bytes=...)``.

    ``problem``: the response's problem when the caller has parsed it already (with its
    own clock, say); the body is then not read again. Raises ``RuntimeError`` (as httpx's
    ``raise_for_status`` does) when the response has no request attached.
    ``error_class`` maps a status to the exception class (the httpx2 namespace passes its
    own tree).
    """
    if response.status_code < 400:
        return response
    if problem is None:
        problem = parse_problem(response, max_body_bytes=max_body_bytes)
    _raise(response, problem, error_class)


async def araise_for_error(
    response: httpx.Response,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    error_class: ErrorClass = api_error_class,
    problem: Problem | None = None,
) -> httpx.Response:
    """:func:`raise_for_error` for an unread async streaming response."""
    if response.status_code < 400:
        return response
    if problem is None:
        problem = await aparse_problem(response, max_body_bytes=max_body_bytes)
    _raise(response, problem, error_class)


def _raise(response: httpx.Response, problem: Problem, error_class: ErrorClass) -> NoReturn:
    cls = error_class(response.status_code)
    request = response.request
    message = without_secrets(problem.summary(), request_secrets(request))
    raise cls(message, problem=problem, request=request, response=response)


# Shorter values are not searched for: "1" or "on" would mask half a message, and a
# secret that short protects nothing anyway.
_MIN_SECRET = 6
_TOKEN = "[token]"


def request_secrets(request: httpx.Request) -> list[str]:
    """The credentials ``request`` carried (see the module docstring), longest first."""
    redaction = DEFAULT_REDACTION
    found: set[str] = set()
    url = request.url
    if url.password:
        found.add(url.password)
    for name, value in url.params.multi_items():
        if redaction.is_sensitive_query_parameter(name):
            found.add(value)
    for name, value in request.headers.items():
        if redaction.is_sensitive_header(name):
            found.add(value)
            scheme, _, credentials = value.partition(" ")
            if credentials and scheme.isalpha():  # "Bearer <token>", "Basic <base64>"
                found.add(credentials.strip())
    return sorted((value for value in found if len(value) >= _MIN_SECRET), key=len, reverse=True)


def without_secrets(message: str, secrets: list[str]) -> str:
    """``message`` with each of ``secrets`` replaced by ``[token]``, and a cut one
    (``...abc12…``, at least 6 of its characters before the ellipsis) too."""
    for secret in secrets:
        message = message.replace(secret, _TOKEN)
    if message.endswith("…"):
        body = message[:-1]
        for secret in secrets:
            for size in range(min(len(secret), len(body)), _MIN_SECRET - 1, -1):
                if body.endswith(secret[:size]):
                    return body[:-size] + _TOKEN + "…"
    return message
