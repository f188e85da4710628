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
    WriteParked: type[_exceptions.WriteParkedMixin]
    RateLimited: type[_exceptions.RateLimitedMixin]

    @classmethod
    def of(
        cls, lib: Any, tree: Any, use_client_default: object, api_error_class: Callable[[int], Any]
    ) -> Flavor:
        """The flavor of the HTTP library ``lib`` (the module ``httpx`` or ``httpx2``),
        whose pipeline exceptions are the attributes of ``tree`` of the same names."""
        same_names = {name: getattr(lib, name) for name in _LIBRARY_NAMES}
        same_names.update((name, getattr(tree, name)) for name in _TREE_NAMES)
        return cls(
            name=lib.__name__,
            use_client_default=use_client_default,
            default_transport=lib.HTTPTransport,
            default_async_transport=lib.AsyncHTTPTransport,
            api_error_class=api_error_class,
            **same_names,
        )


# The fields a flavor takes from its library, and from its exception tree, by name.
_LIBRARY_NAMES = ("URL", "TimeoutException", "RequestNotRead")
_TREE_NAMES = (
    "CircuitOpenError",
    "BulkheadFull",
    "LoadShedError",
    "DeadlineExceeded",
    "AttemptTimeout",
    "WriteParked",
    "RateLimited",
)


def _httpx_use_client_default() -> object:
    from httpx._client import USE_CLIENT_DEFAULT

    return USE_CLIENT_DEFAULT


HTTPX = Flavor.of(httpx, _exceptions, _httpx_use_client_default(), _exceptions.api_error_class)
