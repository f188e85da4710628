"""Response headers the error model reads besides ``Retry-After``: request ids and the
servers' explicit retry verdicts."""

from __future__ import annotations

import re
from collections.abc import Mapping

import httpx

from .._headers import lower_names, triples

__all__ = [
    "REQUEST_ID_HEADERS",
    "RETRY_HINT_HEADERS",
    "first_values",
    "request_id_from_headers",
    "safe_request_id",
    "server_retry_hint",
]

REQUEST_ID_HEADERS: tuple[str, ...] = (
    "x-request-id",  # the de-facto convention; OpenAI
    "request-id",  # Stripe, Anthropic
    "x-ms-request-id",  # Azure (server-generated; x-ms-client-request-id is only our echo)
    "x-amzn-requestid",  # AWS API Gateway, Lambda
    "x-amz-request-id",  # S3
    "x-github-request-id",  # GitHub
)
"""Response headers that carry a server-assigned request id, in the order they are tried.

Not included on purpose: ``cf-ray`` and ``x-amzn-trace-id`` (tracing, not one request),
``x-correlation-id`` and ``x-ms-client-request-id`` (ids the client itself sent).
"""

_REQUEST_ID_RANK = {name.encode(): rank for rank, name in enumerate(REQUEST_ID_HEADERS)}
_REQUEST_ID_NAMES = frozenset(_REQUEST_ID_RANK)

RETRY_HINT_HEADERS: tuple[str, ...] = ("x-should-retry", "stripe-should-retry")
"""Headers carrying a server's explicit retry verdict: exactly ``true`` or ``false``
(OpenAI and Anthropic; Stripe). Anything else is ignored, as the vendors' SDKs do."""

# A request id ends up in log lines and exception messages: keep only ids made of visible
# ASCII, of a sane length, so a hostile server cannot inject lines or escape sequences.
_SAFE_ID = re.compile(r"[!-~]{1,200}")


def safe_request_id(value: str | None) -> str | None:
    """``value`` if it is 1-200 visible ASCII characters, else None."""
    return value if value is not None and _SAFE_ID.fullmatch(value) else None


def first_values(headers: httpx.Headers) -> dict[str, str]:
    """Lower-case name -> value of its first copy, in one pass over the raw pairs.

    The parser asks for about a dozen names, most of them absent, and each
    ``httpx.Headers`` lookup is a scan of its own (a miss also raises and catches a
    ``KeyError``): one dict makes them all cheap. Values are decoded as Latin-1, which
    never fails; every value read here is ASCII when it is valid at all.
    """
    found: dict[str, str] = {}
    for _, lower_name, raw_value in triples(headers):
        name = lower_name.decode("latin-1")
        if name not in found:
            found[name] = raw_value.decode("latin-1")
    return found


def request_id_from_headers(headers: httpx.Headers | Mapping[str, str]) -> str | None:
    """The first well-formed request id among :data:`REQUEST_ID_HEADERS`, or None.

    ``headers``: the response's ``httpx.Headers``, or :func:`first_values` of them.
    """
    if hasattr(type(headers), "raw"):  # httpx's or httpx2's Headers (not: build .raw)
        return response_request_id(headers)  # type: ignore[arg-type]
    for name in REQUEST_ID_HEADERS:
        value = safe_request_id(headers.get(name))
        if value is not None:
            return value
    return None


def response_request_id(headers: httpx.Headers) -> str | None:
    """:func:`request_id_from_headers` for an ``httpx.Headers`` (or httpx2's)."""
    # One pass over httpx's own triples: the pipeline calls this for every response, and
    # six Headers.get() scans cost ~10 us (building first_values, ~3 us more than this).
    stored = triples(headers)
    if _REQUEST_ID_NAMES.isdisjoint(lower_names(stored)):
        return None  # the common answer, found without a Python step per header
    best_rank, best = len(REQUEST_ID_HEADERS), None
    for _, lower_name, raw_value in stored:
        rank = _REQUEST_ID_RANK.get(lower_name)
        if rank is not None and rank < best_rank:
            value = safe_request_id(raw_value.decode("latin-1"))
            if value is not None:
                best_rank, best = rank, value
    return best


def server_retry_hint(headers: httpx.Headers | Mapping[str, str]) -> bool | None:
    """True / False when the server said explicitly whether to retry, else None.

    ``headers``: the response's ``httpx.Headers``, or :func:`first_values` of them (two
    lookups: not worth building the dict for).
    """
    for name in RETRY_HINT_HEADERS:
        value = headers.get(name)
        if value == "true":
            return True
        if value == "false":
            return False
    return None
