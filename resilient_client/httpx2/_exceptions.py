"""The exception tree over httpx2's classes: the same names and behaviour as the top level.

What each exception does lives once, in the mixins of ``resilient_client._exceptions``;
here the classes only take httpx2's bases, so ``except httpx2.HTTPError`` catches them.
"""

from __future__ import annotations

import httpx2

from .._exceptions import (
    ApiErrorMixin,
    AttemptTimeoutMixin,
    BulkheadFullMixin,
    CircuitOpenMixin,
    DeadlineExceededMixin,
    LoadShedMixin,
    by_status,
    status_table,
)

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
    "ServerError",
    "ServiceUnavailableError",
    "api_error_class",
]


class CircuitOpenError(CircuitOpenMixin, httpx2.TransportError):
    __doc__ = CircuitOpenMixin.__doc__


class BulkheadFull(BulkheadFullMixin, httpx2.TransportError):
    __doc__ = BulkheadFullMixin.__doc__


class LoadShedError(LoadShedMixin, httpx2.TransportError):
    __doc__ = LoadShedMixin.__doc__


class DeadlineExceeded(DeadlineExceededMixin, httpx2.TimeoutException):
    __doc__ = DeadlineExceededMixin.__doc__


class AttemptTimeout(AttemptTimeoutMixin, httpx2.TimeoutException):
    __doc__ = AttemptTimeoutMixin.__doc__


class ApiError(ApiErrorMixin, httpx2.HTTPStatusError):
    __doc__ = ApiErrorMixin.__doc__


class BadRequestError(ApiError):
    """400 or 422."""


class AuthenticationError(ApiError):
    """401."""


class PermissionDeniedError(ApiError):
    """403."""


class NotFoundError(ApiError):
    """404 or 410."""


class ConflictError(ApiError):
    """409 or 412."""


class RateLimitError(ApiError):
    """429."""


class ServerError(ApiError):
    """5xx."""


class ServiceUnavailableError(ServerError):
    """503."""


api_error_class = status_table(
    ApiError,
    ServerError,
    by_status(
        BadRequestError,
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        ConflictError,
        RateLimitError,
        ServiceUnavailableError,
    ),
)
