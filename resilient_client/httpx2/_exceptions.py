"""The exception tree over httpx2's classes: the top level's tree, mirrored.

Each class has the same name, mixin and place in the tree as at the top level; only its
httpx base is httpx2's, so ``except httpx2.HTTPError`` catches them
(:func:`resilient_client._exceptions.mirror_tree`).
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
    WriteParkedMixin,
    mirror_tree,
)
from .._exceptions import api_error_class as _top_level_class

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
    "WriteParked",
    "api_error_class",
]

_tree = mirror_tree(httpx2, __name__)

CircuitOpenError: type[CircuitOpenMixin] = _tree["CircuitOpenError"]
BulkheadFull: type[BulkheadFullMixin] = _tree["BulkheadFull"]
LoadShedError: type[LoadShedMixin] = _tree["LoadShedError"]
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
