"""Response headers the error model reads besides ``Retry-After``: request ids and the
servers' explicit retry verdicts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import TypeGuard, cast

import httpx

from .._headers import LOWER_NAME, triples

__all__ = [
    "REQUEST_ID_HEADERS",
    "RETRY_HINT_HEADERS",
    "fields_naming",
    "first_values",
    "is_headers",
    "request_id_from_headers",
    "response_request_id",
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

RETRY_HINT_HEADERS: tuple[str, ...] = ("x-should-retry", "stripe-should-retry")
"""Headers carrying a server's explicit retry verdict: exactly ``true`` or ``false``
(OpenAI and Anthropic; Stripe). Anything else is ignored, as the vendors' SDKs do."""

# A request id ends up in log lines and exception messages: keep only ids made of visible
# ASCII, of a sane length, so a hostile server cannot inject lines or escape sequences.
_SAFE_ID = re.compile(r"[!-~]{1,200}")


def safe_request_id(value: str | None) -> str | None:
    """``value`` if it is 1-200 visible ASCII characters, else None."""
    return value if value is not None and _SAFE_ID.fullmatch(value) else None


def is_headers(headers: object) -> TypeGuard[httpx.Headers]:
    """Whether ``headers`` is httpx's or httpx2's ``Headers`` rather than a plain mapping
    such as :func:`first_values` returns. Asks the type, not the object: ``Headers.raw``
    is a property that builds a list."""
    return hasattr(type(headers), "raw")


def first_values(headers: httpx.Headers) -> dict[str, str]:
    """Lower-case name -> value of its first copy, in one pass over the raw pairs.

    The parser asks for about a dozen names, most of them absent, and each
    ``httpx.Headers`` lookup is a scan of its own (a miss also raises and catches a
    ``KeyError``): one dict makes them all cheap. Values are decoded as Latin-1, which
    never fails; every value read here is ASCII when it is valid at all.
    """
    found: dict[str, str] = {}
    stored = getattr(headers, "_list", None)  # triples(), inlined: a frame per response
    for _, lower_name, raw_value in triples(headers) if stored is None else stored:
        name = lower_name.decode("latin-1")
        if name not in found:
            found[name] = raw_value.decode("latin-1")
    return found


def request_id_from_headers(headers: httpx.Headers | Mapping[str, str]) -> str | None:
    """The well-formed request id of the first of :data:`REQUEST_ID_HEADERS` that has
    one, or None.

    ``headers``: the response's ``httpx.Headers`` (every copy of a repeated field is
    considered, see :func:`response_request_id`), or :func:`first_values` of them (the
    first copy only).
    """
    if is_headers(headers):
        return response_request_id(headers)
    for name in REQUEST_ID_HEADERS:
        value = safe_request_id(headers.get(name))
        if value is not None:
            return value
    return None


_Ranks = tuple[dict[bytes, int], frozenset[bytes]]


def _ranks_of(names: tuple[str, ...]) -> _Ranks:
    """Lower-cased encoded name -> its place in ``names`` (the first, for a name given
    twice), and the set of those names. A name that is not Latin-1 names no header."""
    rank: dict[bytes, int] = {}
    for index, name in enumerate(names):
        try:
            rank.setdefault(name.lower().encode("latin-1"), index)
        except UnicodeEncodeError:
            continue
    return rank, frozenset(rank)


_DEFAULT_RANKS = _ranks_of(REQUEST_ID_HEADERS)
_ranks = lru_cache(maxsize=64)(_ranks_of)


def response_request_id(
    headers: httpx.Headers, *, names: tuple[str, ...] = REQUEST_ID_HEADERS
) -> str | None:
    """The request id in ``headers`` (httpx's or httpx2's ``Headers``): of the names in
    ``names`` (case-insensitive, tried in order; :data:`REQUEST_ID_HEADERS` by default),
    the first that has a well-formed value (see :func:`safe_request_id`) in any of its
    copies; of a repeated field, its first well-formed copy. None when there is none.

    The one lookup behind ``Problem.request_id``, ``ResilienceInfo.request_id`` and
    telemetry's ``resilient_client.request_id``, so the three agree.
    """
    # One pass over httpx's own triples: the pipeline calls this for every response, and
    # six Headers.get() scans cost ~10 us (building first_values, ~3 us more than this).
    rank_of, wanted = _DEFAULT_RANKS if names is REQUEST_ID_HEADERS else _ranks(names)
    stored = getattr(headers, "_list", None)  # triples(), inlined: a frame per response
    if stored is None:
        stored = triples(headers)
    if wanted.isdisjoint(map(LOWER_NAME, stored)):  # map over itemgetter: all in C
        return None  # the common answer, found without a Python step per header
    best_rank, best = len(names), None
    for _, lower_name, raw_value in stored:
        rank = rank_of.get(lower_name)
        if rank is not None and rank < best_rank:
            value = safe_request_id(raw_value.decode("latin-1"))
            if value is not None:
                best_rank, best = rank, value
    return best


def fields_naming(
    headers: httpx.Headers | Mapping[str, str], names: frozenset[bytes]
) -> Mapping[str, str] | None:
    """``headers`` to read by lower-case name (:func:`first_values` of httpx's
    ``Headers``; a plain mapping as it is), or None when httpx's ``Headers`` hold none of
    ``names`` (lower-case bytes): that is looked for in C, and most responses hold none of
    the hints asked for."""
    if not hasattr(type(headers), "raw"):  # is_headers(), inlined: asked of every response
        return headers
    stored = getattr(headers, "_list", None)  # triples(), inlined likewise
    if names.isdisjoint(map(LOWER_NAME, triples(headers) if stored is None else stored)):
        return None
    return first_values(cast(httpx.Headers, headers))


_HINT_NAMES = frozenset(name.encode("latin-1") for name in RETRY_HINT_HEADERS)


def server_retry_hint(headers: httpx.Headers | Mapping[str, str]) -> bool | None:
    """True / False when the server said explicitly whether to retry, else None.

    ``headers``: the response's ``httpx.Headers``, or :func:`first_values` of them; of a
    repeated field, the first copy counts.
    """
    fields = fields_naming(headers, _HINT_NAMES)
    if fields is None:
        return None  # most responses carry no hint
    for name in RETRY_HINT_HEADERS:
        value = fields.get(name)
        if value == "true":
            return True
        if value == "false":
            return False
    return None
