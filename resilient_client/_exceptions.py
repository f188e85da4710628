"""The exception tree. Everything raised on the network path is an ``httpx.HTTPError``.

::

    httpx.HTTPError
    ├── httpx.TransportError
    │   ├── CircuitOpenError          the endpoint's breaker rejected the call, or it is isolated
    │   ├── BulkheadFull              no concurrency slot within the bulkhead's wait
    │   ├── LoadShedError             the adaptive throttle rejected the call locally
    │   │   └── RateLimited           the client-side rate limit could not admit the call
    │   ├── WriteParked               a keyed write failed and was parked in the outbox
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

``resilient_client.httpx2`` has the same tree over ``httpx2``'s classes, made from this
one by :func:`mirror_tree`. What the exceptions *do* (their attributes and one-line
messages) lives once, in the ``*Mixin`` classes here. Every class also derives from
:class:`ResilienceError`, a plain ``Exception``, so code serving both libraries catches
the SDK's own errors in one clause. Misuse (a bad policy, a malformed endpoint key) is a
``ValueError`` or a pydantic ``ValidationError``, raised at construction, never one of
these.

Messages are one line and carry no URL, header value or body excerpt beyond the
problem's own ``detail``: they end up in logs and error trackers. The stores' errors
(``OutboxStoreError``, ``IncidentStoreError``) live in their rooms, off the network path;
what they say of a failing SQLite file is worded once, by :func:`sqlite_trouble`.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

import httpx

from ._mask import neutralize

if TYPE_CHECKING:
    from .outbox._model import OutboxEntry
    from .problems._model import Problem

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
    "RateLimited",
    "ResilienceError",
    "ServerError",
    "ServiceUnavailableError",
    "WriteParked",
    "api_error_class",
    "sqlite_trouble",
]


class ResilienceError(Exception):
    """Base of every exception this SDK raises itself, whichever HTTP library it drives."""


def sqlite_trouble(exc: BaseException, *, timeout: float, kind: str) -> str:
    """What is wrong with a SQLite store's file, from ``sqlite3``'s error ``exc``: the end
    of a one-line store error ``"<kind> <path> <this>"`` (the outbox's and the incident
    store's errors, which are not on the network path). ``timeout``: the seconds the
    store waited for another connection's lock; ``kind``: what the store is ("outbox
    store", "incident store")."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return f"is locked by another connection (waited {timeout:g} s)"
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return f"is not a readable SQLite {kind} (damaged, or another kind of file)"
    return f"cannot be used ({type(exc).__name__}: {text})"


# -- behaviour, shared by the httpx and httpx2 trees -----------------------------------
# Each mixin's __init__ forwards (message, request=...) to the library's own exception
# class, which follows it in the MRO.


class CircuitOpenMixin(ResilienceError):
    """The endpoint's breaker is open (or its half-open probes are taken), or an operator
    isolated the endpoint (``client.isolate()``, a kill switch).

    ``endpoint`` is the endpoint key; ``reason`` is ``"open"`` for a breaker that refused
    the call, ``"isolated"`` for an isolated endpoint, whose ``isolation`` is the
    operator's reason (``None`` otherwise); ``retry_after`` the seconds until the breaker
    lets a probe through again (``None`` if unknown, and for an isolated endpoint, which
    stays refused until restored); ``retry_at`` the same instant on the pipeline clock's
    ``monotonic()`` scale (``math.inf`` for an isolated endpoint).
    """

    def __init__(
        self,
        endpoint: str,
        retry_at: float,
        *,
        request: Any = None,
        retry_after: float | None = None,
        isolation: str | None = None,
    ) -> None:
        if isolation is not None:
            # neutralize(): a reason read back from a shared storage was never checked by
            # isolate() (anyone may write the key), and the message must stay one line.
            message = f"endpoint {endpoint!r} isolated by a kill switch: {neutralize(isolation)}"
        else:
            message = f"circuit open for endpoint {endpoint!r}"
            if retry_after is not None:
                message += f": next probe in {max(0.0, retry_after):.1f} s"
        super().__init__(message, request=request)  # type: ignore[call-arg]
        self.endpoint = endpoint
        self.retry_at = retry_at
        self.retry_after = retry_after
        self.reason = "open" if isolation is None else "isolated"
        self.isolation = isolation


class BulkheadFullMixin(ResilienceError):
    """The endpoint already has ``max_concurrent`` calls in flight past ``max_wait``."""

    def __init__(self, endpoint: str, *, request: Any = None) -> None:
        super().__init__(f"bulkhead full for endpoint {endpoint!r}", request=request)  # type: ignore[call-arg]
        self.endpoint = endpoint


class LoadShedMixin(ResilienceError):
    """The adaptive throttle rejected the call before it reached the network."""

    def __init__(self, endpoint: str, *, request: Any = None) -> None:
        message = f"call shed locally: endpoint {endpoint!r} is rejecting most calls"
        super().__init__(message, request=request)  # type: ignore[call-arg]
        self.endpoint = endpoint


class RateLimitedMixin(LoadShedMixin):
    """The endpoint's client-side rate limit (``Policy.rate_limit``) could not admit the
    call within its wait (``max_wait``, or the time left to the deadline); the call never
    reached the server. ``retry_after``: the seconds until it would have been admitted.
    """

    def __init__(self, endpoint: str, retry_after: float, *, request: Any = None) -> None:
        message = (
            f"rate limit for endpoint {endpoint!r} would admit the call only in "
            f"{max(0.0, retry_after):.3f} s, past its wait"
        )
        # LoadShedMixin's own message is the throttle's: go past it to the library's.
        super(LoadShedMixin, self).__init__(message, request=request)  # type: ignore[call-arg]
        self.endpoint = endpoint
        self.retry_after = retry_after


class DeadlineExceededMixin(ResilienceError):
    """The call's ``Timeouts.total`` deadline ran out; ``attempts`` were made."""

    def __init__(self, endpoint: str, attempts: int, total: float, *, request: Any = None) -> None:
        message = (
            f"deadline of {total:g}s exceeded for endpoint {endpoint!r} "
            f"after {attempts} attempt{'s' if attempts != 1 else ''}"
        )
        super().__init__(message, request=request)  # type: ignore[call-arg]
        self.endpoint = endpoint
        self.attempts = attempts
        self.total = total


class AttemptTimeoutMixin(ResilienceError):
    """One attempt ran past its limit - ``Timeouts.attempt``, or what was left of the
    deadline if that was less (``cap``); retried like any other timeout. A call that ran
    out of time ends in :class:`DeadlineExceeded` instead."""

    def __init__(self, cap: float, *, request: Any = None) -> None:
        super().__init__(f"attempt exceeded its {cap:g}s cap", request=request)  # type: ignore[call-arg]
        self.cap = cap


class WriteParkedMixin(ResilienceError):
    """A keyed write ended in a retryable failure and was parked in the outbox.

    ``entry`` is the :class:`~resilient_client.outbox.OutboxEntry` now stored: the
    outbox sends it again, with the same idempotency key, when it replays. The message
    names the entry, the endpoint key and the last failure only.
    """

    def __init__(self, entry: OutboxEntry, *, request: Any = None) -> None:
        attempts = entry.attempts
        message = (
            f"write parked in the outbox as entry {entry.id} for endpoint {entry.endpoint!r} "
            f"after {attempts} attempt{'s' if attempts != 1 else ''} ({entry.last_error})"
        )
        super().__init__(message, request=request)  # type: ignore[call-arg]
        self.entry = entry


class ApiErrorMixin(ResilienceError):
    """An error response (4xx/5xx), normalized into :attr:`problem`."""

    response: Any

    def __init__(self, message: str, *, problem: Problem, request: Any, response: Any) -> None:
        super().__init__(message, request=request, response=response)  # type: ignore[call-arg]
        self.problem = problem

    @property
    def status_code(self) -> int:
        return int(self.response.status_code)


# -- the httpx tree ---------------------------------------------------------------------


class CircuitOpenError(CircuitOpenMixin, httpx.TransportError):
    __doc__ = CircuitOpenMixin.__doc__


class BulkheadFull(BulkheadFullMixin, httpx.TransportError):
    __doc__ = BulkheadFullMixin.__doc__


class LoadShedError(LoadShedMixin, httpx.TransportError):
    __doc__ = LoadShedMixin.__doc__


class RateLimited(RateLimitedMixin, LoadShedError):
    __doc__ = RateLimitedMixin.__doc__


class WriteParked(WriteParkedMixin, httpx.TransportError):
    __doc__ = WriteParkedMixin.__doc__


class DeadlineExceeded(DeadlineExceededMixin, httpx.TimeoutException):
    __doc__ = DeadlineExceededMixin.__doc__


class AttemptTimeout(AttemptTimeoutMixin, httpx.TimeoutException):
    __doc__ = AttemptTimeoutMixin.__doc__


class ApiError(ApiErrorMixin, httpx.HTTPStatusError):
    __doc__ = ApiErrorMixin.__doc__

    response: httpx.Response


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
    """The most specific :class:`ApiError` subclass for an HTTP status (a status past 599,
    such as LinkedIn's 999, is no server error: plain :class:`ApiError`)."""
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls
    return ServerError if 500 <= status <= 599 else ApiError


# Every class of the httpx tree, parents before children.
_TREE: tuple[type[Exception], ...] = (
    CircuitOpenError,
    BulkheadFull,
    LoadShedError,
    RateLimited,
    WriteParked,
    DeadlineExceeded,
    AttemptTimeout,
    ApiError,
    BadRequestError,
    AuthenticationError,
    PermissionDeniedError,
    NotFoundError,
    ConflictError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
)


def mirror_tree(lib: ModuleType, module: str) -> dict[str, Any]:
    """This tree over another httpx-compatible library (httpx2): same names, same mixins.

    Each class keeps its behaviour mixin and its place in the tree; only its httpx base
    becomes the library's class of the same name. So the two trees cannot drift apart.
    """
    made: dict[type, type[Exception]] = {}
    for cls in _TREE:
        bases = tuple(
            made.get(base) or (getattr(lib, base.__name__) if base.__module__ == "httpx" else base)
            for base in cls.__bases__
        )
        namespace = {"__doc__": cls.__doc__, "__module__": module, "__qualname__": cls.__name__}
        made[cls] = type(cls.__name__, bases, namespace)
    return {cls.__name__: mirrored for cls, mirrored in made.items()}
