"""What differs between httpx and httpx2: the library's classes and our exceptions over them.

The core never names ``httpx`` where the choice matters; it asks its :class:`Flavor`.
``resilient_client.httpx2`` builds the other flavor. Everything else - policies, routing,
decisions, state, telemetry - is the same objects for both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from . import _exceptions

__all__ = ["HTTPX", "ClientDefaultTimeout", "ClientDefaultTimeouts", "Flavor"]


class ClientDefaultTimeouts(dict[str, "float | None"]):
    """The per-phase timeout dict of a request that names no timeout of its own: the
    library put its client's default there, and the pipeline applies the policy's
    timeouts instead. Any other timeout dict on a request was chosen for it."""

    __slots__ = ()


class ClientDefaultTimeout:
    """Mixed into the library's ``Timeout`` for a client built without ``timeout=``: the
    library copies ``as_dict()`` onto every request that names no timeout, so the marked
    dict tells the pipeline so - without a ``build_request`` override on every call.

    Otherwise the library's own ``Timeout``: same fields, ``repr`` and equality.
    """

    __slots__ = ()
    connect: float | None
    read: float | None
    write: float | None
    pool: float | None
    _library_timeout: ClassVar[type[Any]]

    def as_dict(self) -> dict[str, float | None]:
        return ClientDefaultTimeouts(
            connect=self.connect, read=self.read, write=self.write, pool=self.pool
        )

    def __eq__(self, other: object) -> bool:
        # The library's __eq__ asks isinstance(other, type(self)): one way round only.
        return isinstance(other, self._library_timeout) and (
            (self.connect, self.read, self.write, self.pool)
            == (other.connect, other.read, other.write, other.pool)
        )

    __hash__ = None  # type: ignore[assignment] # as the library's


class _HttpxTimeout(ClientDefaultTimeout, httpx.Timeout):
    _library_timeout = httpx.Timeout


# Named as the library's, for reprs: the client's default timeout is still an httpx.Timeout.
_HttpxTimeout.__name__ = _HttpxTimeout.__qualname__ = "Timeout"


@dataclass(frozen=True, slots=True)
class Flavor:
    """One HTTP library, as the pipeline needs to see it."""

    name: str
    URL: Callable[[Any], Any]
    TimeoutException: type[BaseException]
    RequestNotRead: type[BaseException]
    use_client_default: object
    client_default_timeout: Callable[[Any], Any]  # the library's Timeout, marked (above)
    default_transport: Callable[[], Any]
    default_async_transport: Callable[[], Any]
    CircuitOpenError: type[_exceptions.CircuitOpenMixin]
    BulkheadFull: type[_exceptions.BulkheadFullMixin]
    LoadShedError: type[_exceptions.LoadShedMixin]
    DeadlineExceeded: type[_exceptions.DeadlineExceededMixin]
    AttemptTimeout: type[_exceptions.AttemptTimeoutMixin]
    api_error_class: Callable[[int], type[Any]]


def _httpx_use_client_default() -> object:
    from httpx._client import USE_CLIENT_DEFAULT

    return USE_CLIENT_DEFAULT


HTTPX = Flavor(
    name="httpx",
    URL=httpx.URL,
    TimeoutException=httpx.TimeoutException,
    RequestNotRead=httpx.RequestNotRead,
    use_client_default=_httpx_use_client_default(),
    client_default_timeout=_HttpxTimeout,
    default_transport=httpx.HTTPTransport,
    default_async_transport=httpx.AsyncHTTPTransport,
    CircuitOpenError=_exceptions.CircuitOpenError,
    BulkheadFull=_exceptions.BulkheadFull,
    LoadShedError=_exceptions.LoadShedError,
    DeadlineExceeded=_exceptions.DeadlineExceeded,
    AttemptTimeout=_exceptions.AttemptTimeout,
    api_error_class=_exceptions.api_error_class,
)
