"""What differs between httpx and httpx2: the library's classes and our exceptions over them.

The core never names ``httpx`` where the choice matters; it asks its :class:`Flavor`.
``resilient_client.httpx2`` builds the other flavor. Everything else - policies, routing,
decisions, state, telemetry - is the same objects for both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from . import _exceptions

__all__ = ["HTTPX", "Flavor"]


@dataclass(frozen=True, slots=True)
class Flavor:
    """One HTTP library, as the pipeline needs to see it."""

    name: str
    URL: Callable[[Any], Any]
    TimeoutException: type[BaseException]
    RequestNotRead: type[BaseException]
    use_client_default: object
    default_transport: Callable[[], Any]
    default_async_transport: Callable[[], Any]
    CircuitOpenError: type[_exceptions.CircuitOpenMixin]
    BulkheadFull: type[_exceptions.BulkheadFullMixin]
    LoadShedError: type[_exceptions.LoadShedMixin]
    DeadlineExceeded: type[_exceptions.DeadlineExceededMixin]
    AttemptTimeout: type[_exceptions.AttemptTimeoutMixin]
    api_error_class: Callable[[int], type[Any]]
    # Defaulted (unlike the classes above) only so that a flavor built before the outbox
    # existed still constructs: httpx2's must pass its own.
    WriteParked: type[_exceptions.WriteParkedMixin] = _exceptions.WriteParked


def _httpx_use_client_default() -> object:
    from httpx._client import USE_CLIENT_DEFAULT

    return USE_CLIENT_DEFAULT


HTTPX = Flavor(
    name="httpx",
    URL=httpx.URL,
    TimeoutException=httpx.TimeoutException,
    RequestNotRead=httpx.RequestNotRead,
    use_client_default=_httpx_use_client_default(),
    default_transport=httpx.HTTPTransport,
    default_async_transport=httpx.AsyncHTTPTransport,
    CircuitOpenError=_exceptions.CircuitOpenError,
    BulkheadFull=_exceptions.BulkheadFull,
    LoadShedError=_exceptions.LoadShedError,
    DeadlineExceeded=_exceptions.DeadlineExceeded,
    AttemptTimeout=_exceptions.AttemptTimeout,
    api_error_class=_exceptions.api_error_class,
    WriteParked=_exceptions.WriteParked,
)
