"""Category and retryability of an error response: a pure function of what was read.

Precedence, strongest first (standards §8.4):

1. An explicit server verdict, ``x-should-retry`` / ``Stripe-Should-Retry`` (``true`` or
   ``false``), decides ``retryable`` whatever else says; the category is kept.
2. A hard quota (a daily or monthly Google ``QuotaFailure``, OpenAI ``insufficient_quota``)
   is ``THROTTLED`` and not retryable: it refills in hours, and retries may cost money.
3. A body retry hint (Google ``RetryInfo``) makes the problem retryable.
4. The body's machine code, most specific first (see ``_CODES``). A *strong* code sets
   both category and verdict. A *weak* one (a vendor's catch-all such as
   ``invalid_request_error`` or ``api_error``) sets the verdict, and replaces the status'
   category only when the two disagree on retrying: a 404 of type
   ``invalid_request_error`` stays ``NOT_FOUND``, a 500 of that type becomes
   ``INVALID_REQUEST``.
5. The status:

   ======================================  =================  =========
   status                                  category           retryable
   ======================================  =================  =========
   408, 421, 425                           TRANSIENT          yes
   429                                     THROTTLED          yes
   413 with a Retry-After hint             TRANSIENT          yes
   400, 422                                INVALID_REQUEST    no
   401                                     UNAUTHENTICATED    no
   403                                     FORBIDDEN          no
   404, 410                                NOT_FOUND          no
   409, 412                                CONFLICT           no [#]_
   501, 505                                PERSISTENT         no
   any other 5xx (500, 502-504, 529, ...)  TRANSIENT          yes
   any other status                        PERSISTENT         no
   ======================================  =================  =========

   .. [#] The pipeline separately retries a 409 answered to a request carrying an
      idempotency key (the key's original request is still in flight).

Deliberate departures from AIP-194 for Google codes: ``DEADLINE_EXCEEDED`` is retryable
(over HTTP it is the server's own 504, and our pipeline keeps its own deadline), and
``INTERNAL`` / ``UNKNOWN`` follow the 500 row (the pipeline only retries idempotent or
keyed requests anyway). ``RESOURCE_EXHAUSTED`` is retryable unless the quota is hard.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._model import ErrorCategory

__all__ = ["classify", "status_category"]

_T = ErrorCategory.TRANSIENT
_THR = ErrorCategory.THROTTLED
_INV = ErrorCategory.INVALID_REQUEST
_AUTH = ErrorCategory.UNAUTHENTICATED
_FORB = ErrorCategory.FORBIDDEN
_NF = ErrorCategory.NOT_FOUND
_CONF = ErrorCategory.CONFLICT
_PERS = ErrorCategory.PERSISTENT

_STATUS: dict[int, tuple[ErrorCategory, bool]] = {
    400: (_INV, False),
    401: (_AUTH, False),
    403: (_FORB, False),
    404: (_NF, False),
    408: (_T, True),
    409: (_CONF, False),
    410: (_NF, False),
    412: (_CONF, False),
    421: (_T, True),
    422: (_INV, False),
    425: (_T, True),
    429: (_THR, True),
    501: (_PERS, False),
    505: (_PERS, False),
}

_STRONG, _WEAK = True, False

# Lower-cased machine codes -> (category, retryable, strong). One table for every
# envelope: the vocabularies barely overlap, and where they do they agree.
_CODES: dict[str, tuple[ErrorCategory, bool, bool]] = {
    # google.rpc.Code names (Google; also Apollo GraphQL's upper-case codes)
    "unavailable": (_T, True, _STRONG),
    "deadline_exceeded": (_T, True, _STRONG),
    "resource_exhausted": (_THR, True, _STRONG),
    "aborted": (_CONF, True, _STRONG),
    "internal": (_T, True, _WEAK),
    "unknown": (_T, True, _WEAK),
    "data_loss": (_PERS, False, _STRONG),
    "cancelled": (_PERS, False, _STRONG),
    "invalid_argument": (_INV, False, _STRONG),
    "out_of_range": (_INV, False, _STRONG),
    "failed_precondition": (_INV, False, _STRONG),
    "unauthenticated": (_AUTH, False, _STRONG),
    "permission_denied": (_FORB, False, _STRONG),
    "not_found": (_NF, False, _STRONG),
    "already_exists": (_CONF, False, _STRONG),
    "unimplemented": (_PERS, False, _STRONG),
    # OpenAI / Anthropic error types and codes
    "rate_limit_error": (_THR, True, _STRONG),
    "rate_limit_exceeded": (_THR, True, _STRONG),
    "overloaded_error": (_T, True, _STRONG),
    "timeout_error": (_T, True, _STRONG),
    "api_error": (_T, True, _WEAK),  # Stripe's too
    "server_error": (_T, True, _WEAK),
    "invalid_request_error": (_INV, False, _WEAK),  # Stripe's too
    "request_too_large": (_INV, False, _WEAK),
    "authentication_error": (_AUTH, False, _STRONG),
    "permission_error": (_FORB, False, _STRONG),
    "not_found_error": (_NF, False, _STRONG),
    "billing_error": (_PERS, False, _STRONG),
    "insufficient_quota": (_THR, False, _STRONG),
    # Stripe types and codes
    "card_error": (_PERS, False, _STRONG),
    "idempotency_error": (_INV, False, _STRONG),
    "rate_limit": (_THR, True, _STRONG),  # older Stripe: a 400 with this code
    "lock_timeout": (_CONF, True, _STRONG),
    "idempotency_key_in_use": (_CONF, True, _STRONG),
    "api_connection_error": (_T, True, _STRONG),
    # Microsoft (Azure PascalCase, Graph camelCase: both lower-case to these)
    "toomanyrequests": (_THR, True, _STRONG),
    "serverbusy": (_THR, True, _STRONG),
    "activitylimitreached": (_THR, True, _STRONG),
    "serviceunavailable": (_T, True, _STRONG),
    "servicenotavailable": (_T, True, _STRONG),
    "internalservererror": (_T, True, _WEAK),
    # GraphQL (Apollo conventions)
    "forbidden": (_FORB, False, _STRONG),
    "bad_user_input": (_INV, False, _STRONG),
    "graphql_parse_failed": (_INV, False, _STRONG),
    "graphql_validation_failed": (_INV, False, _STRONG),
    # RFC 9457 IANA problem types (the fragment of their registry URI)
    "quota-exceeded": (_THR, True, _STRONG),
    "temporary-reduced-capacity": (_T, True, _STRONG),
}


def status_category(status: int, *, retry_after: bool = False) -> tuple[ErrorCategory, bool]:
    """The status row of the table: (category, retryable). ``retry_after`` says whether
    the response carried a wait hint (it makes a 413 temporary)."""
    row = _STATUS.get(status)
    if row is not None:
        return row
    if status == 413 and retry_after:
        return _T, True
    if 500 <= status <= 599:
        return _T, True
    return _PERS, False


def classify(
    status: int,
    *,
    signals: Iterable[str | None] = (),
    hard_quota: bool = False,
    body_retry_hint: bool = False,
    server_hint: bool | None = None,
    retry_after: bool = False,
) -> tuple[ErrorCategory, bool]:
    """(category, retryable) for an error response, per the module's decision table.

    ``signals``: the body's machine codes, most specific first (None entries skipped);
    ``body_retry_hint``: the body said when to retry; ``server_hint``: the
    ``x-should-retry``-style verdict, None when absent; ``retry_after``: any wait hint.
    """
    category, retryable = status_category(status, retry_after=retry_after)
    for signal in signals:
        entry = _CODES.get(signal.lower()) if signal else None
        if entry is not None:
            code_category, code_retryable, strong = entry
            if strong or code_retryable != retryable:
                category = code_category
            retryable = code_retryable
            break
    if hard_quota:
        category, retryable = _THR, False
    elif body_retry_hint:
        retryable = True
    if server_hint is not None:
        retryable = server_hint
    return category, retryable
