"""The resilient pipeline over ``httpx2`` (``pip install 'resilient-client[httpx2]'``).

The official ``openai`` (3.x) and ``anthropic`` (2.x) SDKs moved from httpx to httpx2,
pydantic's API-compatible continuation; their ``http_client=`` wants an ``httpx2`` client.
This namespace offers the same four classes as the top level - subclasses of httpx2's -
and the same exceptions, catchable as ``httpx2.HTTPError``. Policies, problems, breaker
storages and telemetry are the top level's own objects, shared, not copies::

    import resilient_client as rc
    from resilient_client import httpx2 as rc2

    client = rc2.ResilientClient(policy=rc.Policy(...))          # an httpx2.Client
    openai.OpenAI(http_client=client, max_retries=0)             # one retry layer, ours

Importing ``resilient_client`` never imports httpx2; importing this module does.
"""

from __future__ import annotations

import sys
from functools import partial
from typing import Any

try:
    import httpx2
    from httpx2._client import USE_CLIENT_DEFAULT
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "resilient_client.httpx2 needs the httpx2 package: pip install 'resilient-client[httpx2]'"
    ) from exc

from .. import problems as _problems
from .._client import AsyncSendMixin, ClientMixin, SyncSendMixin
from .._exceptions import (
    ApiErrorMixin,
    AttemptTimeoutMixin,
    BulkheadFullMixin,
    CircuitOpenMixin,
    DeadlineExceededMixin,
    LoadShedMixin,
    RateLimitedMixin,
    WriteParkedMixin,
    mirror_tree,
)
from .._exceptions import api_error_class as _top_level_class
from .._flavor import Flavor
from .._transport import AsyncDriver, SyncDriver

__all__ = [
    "ApiError",
    "AsyncResilientClient",
    "AsyncResilientTransport",
    "AttemptTimeout",
    "AuthenticationError",
    "BadRequestError",
    "BulkheadFull",
    "CircuitOpenError",
    "ConflictError",
    "DeadlineExceeded",
    "HTTPX2",
    "LoadShedError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RateLimited",
    "ResilientClient",
    "ResilientTransport",
    "ServerError",
    "ServiceUnavailableError",
    "WriteParked",
    "raise_for_error",
]

# The exception tree over httpx2's classes: the top level's, mirrored (same names, mixins
# and places; only the httpx bases are httpx2's), so ``except httpx2.HTTPError`` catches
# them. Each name is spelt out for the type checker.
_tree = mirror_tree(httpx2, __name__)

CircuitOpenError: type[CircuitOpenMixin] = _tree["CircuitOpenError"]
BulkheadFull: type[BulkheadFullMixin] = _tree["BulkheadFull"]
LoadShedError: type[LoadShedMixin] = _tree["LoadShedError"]
RateLimited: type[RateLimitedMixin] = _tree["RateLimited"]
WriteParked: type[WriteParkedMixin] = _tree["WriteParked"]
DeadlineExceeded: type[DeadlineExceededMixin] = _tree["DeadlineExceeded"]
AttemptTimeout: type[AttemptTimeoutMixin] = _tree["AttemptTimeout"]
ApiError: type[ApiErrorMixin] = _tree["ApiError"]
BadRequestError: type[ApiErrorMixin] = _tree["BadRequestError"]
AuthenticationError: type[ApiErrorMixin] = _tree["AuthenticationError"]
PermissionDeniedError: type[ApiErrorMixin] = _tree["PermissionDeniedError"]
NotFoundError: type[ApiErrorMixin] = _tree["NotFoundError"]
ConflictError: type[ApiErrorMixin] = _tree["ConflictError"]
RateLimitError: type[ApiErrorMixin] = _tree["RateLimitError"]
ServerError: type[ApiErrorMixin] = _tree["ServerError"]
ServiceUnavailableError: type[ApiErrorMixin] = _tree["ServiceUnavailableError"]


def api_error_class(status: int) -> type[ApiErrorMixin]:
    """The most specific :class:`ApiError` subclass of this tree for an HTTP status."""
    cls: type[ApiErrorMixin] = _tree[_top_level_class(status).__name__]
    return cls


HTTPX2 = Flavor.of(httpx2, sys.modules[__name__], USE_CLIENT_DEFAULT, api_error_class)

# The drivers and mixins are typed against httpx; httpx2's classes are the same shapes.


class ResilientTransport(SyncDriver, httpx2.BaseTransport):  # type: ignore[misc]
    """An ``httpx2.BaseTransport`` running the resilience pipeline (see the top level's)."""

    _flavor = HTTPX2


class AsyncResilientTransport(AsyncDriver, httpx2.AsyncBaseTransport):  # type: ignore[misc]
    """An ``httpx2.AsyncBaseTransport`` running the resilience pipeline."""

    _flavor = HTTPX2


class ResilientClient(ClientMixin, SyncSendMixin, httpx2.Client):  # type: ignore[misc]
    """An ``httpx2.Client`` whose every request runs through the pipeline."""

    _flavor = HTTPX2
    _driver = ResilientTransport


class AsyncResilientClient(ClientMixin, AsyncSendMixin, httpx2.AsyncClient):  # type: ignore[misc]
    """An ``httpx2.AsyncClient`` whose every request runs through the pipeline."""

    _flavor = HTTPX2
    _driver = AsyncResilientTransport


raise_for_error: Any = partial(_problems.raise_for_error, error_class=api_error_class)
"""``rc.raise_for_error`` raising this tree's ``ApiError`` subclasses."""
