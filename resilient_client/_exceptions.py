"""The exception tree. Everything raised on the network path is an ``httpx.HTTPError``.

::

    httpx.HTTPError
    ├── httpx.TransportError
    │   ├── CircuitOpenError          the endpoint's breaker rejected the call
    │   ├── BulkheadFull              no concurrency slot within the bulkhead's wait
    │   ├── LoadShedError             the adaptive throttle rejected the call locally
    │   └── httpx.TimeoutException
    │       ├── DeadlineExceeded      the call's total deadline ran out
    │       └── AttemptTimeout        one attempt ran past ``Timeouts.attempt``
    └── httpx.HTTPStatusError
        └── ApiError                  an error response, with its ``.problem``
            ├── BadRequestError           400, 422
            ├── AuthenticationError       401
            ├── PermissionDeniedError     403
            ├── NotFoundError             404, 410
            ├── ConflictError             409, 412
            ├── RateLimitError            429
            └── ServerError               5xx
                └── ServiceUnavailableError   503

Every class also derives from :class:`ResilienceError`, a plain ``Exception`` mixin, so
code that serves both httpx and httpx2 can catch the SDK's own errors in one clause.
Misuse (a bad policy, a malformed endpoint key) is a ``ValueError`` or a pydantic
``ValidationError``, raised at construction, never one of these.

Messages are one line and carry no URL, header value or body excerpt beyond the
problem's own ``detail``: they end up in logs and error trackers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from .problems import Problem

__all__ = [
    "ApiError",
    "AttemptTimeout",
    "AuthenticationError",
    "BadRequestError",
    "BulkheadFull",
    "CircuitOpenError",
    "ConflictError",
    "DeadlineExceeded",
    "LoadShedError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResilienceError",
    "ServerError",
    "ServiceUnavailableError",
    "api_error_class",
]


class ResilienceError(Exception):
    """Mixin base of every exception this SDK raises itself."""


class CircuitOpenError(ResilienceError, httpx.TransportError):
    """The endpoint's breaker is open (or its half-open probes are taken).

    ``endpoint`` is the endpoint key; ``retry_at`` the ``time.monotonic()`` instant at
    which the breaker lets a probe through again.
    """

    def __init__(
        self, endpoint: str, retry_at: float, *, request: httpx.Request | None = None
    ) -> None:
        super().__init__(f"circuit open for endpoint {endpoint!r}", request=request)
        self.endpoint = endpoint
        self.retry_at = retry_at


class BulkheadFull(ResilienceError, httpx.TransportError):
    """The endpoint already has ``max_concurrent`` calls in flight past ``max_wait``."""

    def __init__(self, endpoint: str, *, request: httpx.Request | None = None) -> None:
        super().__init__(f"bulkhead full for endpoint {endpoint!r}", request=request)
        self.endpoint = endpoint


class LoadShedError(ResilienceError, httpx.TransportError):
    """The adaptive throttle rejected the call before it reached the network."""

    def __init__(self, endpoint: str, *, request: httpx.Request | None = None) -> None:
        super().__init__(
            f"call shed locally: endpoint {endpoint!r} is rejecting most calls",
            request=request,
        )
        self.endpoint = endpoint


class DeadlineExceeded(ResilienceError, httpx.TimeoutException):
    """The call's ``Timeouts.total`` deadline ran out; ``attempts`` were made."""

    def __init__(
        self,
        endpoint: str,
        attempts: int,
        total: float,
        *,
        request: httpx.Request | None = None,
    ) -> None:
        super().__init__(
            f"deadline of {total:g}s exceeded for endpoint {endpoint!r} "
            f"after {attempts} attempt{'s' if attempts != 1 else ''}",
            request=request,
        )
        self.endpoint = endpoint
        self.attempts = attempts
        self.total = total


class AttemptTimeout(ResilienceError, httpx.TimeoutException):
    """One attempt ran past ``Timeouts.attempt``; retried like any other timeout."""

    def __init__(self, cap: float, *, request: httpx.Request | None = None) -> None:
        super().__init__(f"attempt exceeded its {cap:g}s cap", request=request)
        self.cap = cap


class ApiError(ResilienceError, httpx.HTTPStatusError):
    """An error response (4xx/5xx), normalized into :attr:`problem`."""

    def __init__(
        self,
        message: str,
        *,
        problem: Problem,
        request: httpx.Request,
        response: httpx.Response,
    ) -> None:
        super().__init__(message, request=request, response=response)
        self.problem = problem

    @property
    def status_code(self) -> int:
        return self.response.status_code


class BadRequestError(ApiError):
    """400 or 422: the request itself is wrong; do not retry it unchanged."""


class AuthenticationError(ApiError):
    """401: credentials missing or rejected."""


class PermissionDeniedError(ApiError):
    """403: authenticated, but not allowed."""


class NotFoundError(ApiError):
    """404 or 410."""


class ConflictError(ApiError):
    """409 or 412."""


class RateLimitError(ApiError):
    """429: slow down; ``problem.retry_after`` says for how long when the server said."""


class ServerError(ApiError):
    """5xx."""


class ServiceUnavailableError(ServerError):
    """503."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    422: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    410: NotFoundError,
    409: ConflictError,
    412: ConflictError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


def api_error_class(status: int) -> type[ApiError]:
    """The most specific :class:`ApiError` subclass for an HTTP status."""
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls
    return ServerError if status >= 500 else ApiError
