"""``ResilientClient`` / ``AsyncResilientClient``: httpx clients that mount the pipeline.

They are real ``httpx.Client`` / ``httpx.AsyncClient`` subclasses: httpx builds its
transports exactly as it would (``limits=``, ``verify=``, ``http2=``, proxies from the
environment, ``mounts=``), and each is then wrapped in the resilient transport, all
sharing one pipeline so endpoint state is per client, not per mount. The clients add
two facts the transport cannot see on its own: whether the caller streams the body,
and whether a request's timeout was given explicitly.

The behaviour lives in mixins parameterised by a :class:`~resilient_client._flavor.Flavor`,
so ``resilient_client.httpx2`` declares the same clients over httpx2 without a copy.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import httpx

from ._call._extensions import EXT_EXPLICIT_TIMEOUT, EXT_STREAM
from ._call._pipeline import PIPELINE_KEYWORDS, BreakerTable, HealthTable, Pipeline
from ._clock import renew_after_fork
from ._flavor import HTTPX, Flavor
from ._transport import AsyncResilientTransport, ResilientTransport

__all__ = ["AsyncResilientClient", "ClientMixin", "ResilientClient"]

# Our stand-in default for httpx's USE_CLIENT_DEFAULT, whose class differs between httpx
# and httpx2: swapped for the library's own before calling it.
_CLIENT_DEFAULT: Any = object()


class ClientMixin:
    """Everything both clients (and both libraries' clients) add to httpx's."""

    _flavor: ClassVar[Flavor]
    _driver: ClassVar[type[Any]]  # the resilient transport class that wraps each transport
    _pipeline: Pipeline
    _explicit_timeout: bool
    _default_timeout: Any
    _timeout: Any
    _transport: Any
    _mounts: dict[Any, Any]
    _cookies: Any

    def __init__(self, **kwargs: Any) -> None:
        """The pipeline's keywords (``policy``, ``endpoints``, ``raise_for_error``,
        ``correlation_header``, ``breaker_storage``, ``breaker_listeners``,
        ``tracer_provider``, ``meter_provider``, ``telemetry``, ``clock``, ``observers``,
        ``outbox``, ``incidents``, ``failover``:
        :class:`~resilient_client._call._pipeline.PipelineOptions`)
        build the client's pipeline; every other keyword is httpx's own."""
        self._explicit_timeout = "timeout" in kwargs
        options: Any = {name: kwargs.pop(name) for name in PIPELINE_KEYWORDS & kwargs.keys()}
        self._pipeline = Pipeline(
            base_url=kwargs.get("base_url", ""), flavor=self._flavor, **options
        )
        super().__init__(**kwargs)
        # httpx's default timeout, told apart when a caller saves it and puts it back.
        self._default_timeout = None if self._explicit_timeout else self._timeout
        # httpx built its transports (default, proxies, mounts) as usual; wrap each.
        # (_transport and _mounts are httpx's own attributes, stable since 0.18.)
        driver, pipeline = self._driver, self._pipeline
        self._transport = driver(self._transport, pipeline=pipeline)
        self._mounts = {
            pattern: None if inner is None else driver(inner, pipeline=pipeline)
            for pattern, inner in self._mounts.items()
        }
        renew_after_fork(self)

    def _after_fork(self) -> None:
        """In a forked child: a fresh lock for httpx's cookie jar (``http.cookiejar``
        guards it with an RLock; one a parent's thread held, storing a response's
        cookies at the fork, would keep the child's first call waiting for good)."""
        jar: Any = getattr(self._cookies, "jar", None)
        if hasattr(jar, "_cookies_lock"):
            jar._cookies_lock = threading.RLock()

    @property
    def pipeline(self) -> Pipeline:
        return self._pipeline

    def health(self) -> HealthTable:
        """Each endpoint's breaker, budget, bulkhead and throttle state, by endpoint key
        (a dict; ``print()`` it for a table)."""
        return self._pipeline.health()

    def isolate(self, endpoint_key: str, *, reason: str) -> None:
        """Isolate an endpoint (a kill switch): every call of it fails fast with
        ``CircuitOpenError`` (``reason == "isolated"``, ``reason`` in its message) without
        reaching the server, whatever its breaker policy (also with ``breaker=None``),
        until :meth:`restore`. It is not retried; a fallback is asked and a keyed write of
        an outbox endpoint is parked, as for an open breaker. Isolating again replaces
        the reason.

        ``endpoint_key``: one of the client's configured keys (any spelling that parses
        to it, ``"get /v1/users/{id}"`` too), or a host's default ``"* <host>"`` (may be
        a host not called yet). ``reason``: why, one printable line of at most 200
        characters (it appears in errors, logs and ``health()``).

        With a ``breaker_storage`` that keeps isolations (``rc.MemoryBreakerStorage``,
        ``rc.RedisBreakerStorage``) the isolation is stored there, with no expiry, and
        holds for every client and process using it from their next call on. This is a
        plain method on the async client too: with Redis, it blocks for one command (at
        most the storage's ``timeout``). If the storage cannot be reached, the endpoint
        is isolated in this client only and a WARNING is logged; with a storage that
        keeps no isolations, isolations are always this client's only (warned once).

        Raises ``ValueError`` naming a malformed or unknown key (with a "did you mean"),
        ``ValueError`` for an empty, multi-line or overlong reason, ``TypeError`` for a
        key or reason that is not a str.
        """
        self._pipeline.isolate(endpoint_key, reason=reason)

    def restore(self, endpoint_key: str) -> bool:
        """Lift :meth:`isolate`'s kill switch: calls reach the server again from the next
        one on (fleet-wide with a shared storage). Returns whether the endpoint was
        isolated (as far as this client and the storage knew); restoring an endpoint that
        is not is a no-op returning ``False``. If the storage cannot be reached, only this
        client is restored, and a WARNING says the fleet's isolation may hold. Raises as
        :meth:`isolate` does for the key."""
        return self._pipeline.restore(endpoint_key)

    def breakers(self) -> BreakerTable:
        """Each endpoint's breaker: state, counts, and when it lets a probe through next
        (a dict; ``print()`` it for one line per breaker)."""
        return self._pipeline.breaker_table()

    @property
    def timeout(self) -> Any:
        # The library's getter returns this attribute; build_request reads it per request,
        # and calling up to it would be a second frame.
        return self._timeout

    @timeout.setter
    def timeout(self, timeout: Any) -> None:
        """httpx's setter; a timeout set on the client is a ``timeout=`` from now on,
        unless it is the client's own default put back."""
        # The library's own property (httpx's or httpx2's BaseClient), further up the MRO.
        super(ClientMixin, type(self)).timeout.fset(self, timeout)  # type: ignore[misc]
        restored = self._default_timeout is not None and timeout is self._default_timeout
        if restored:
            self._default_timeout = self._timeout  # the library stores a copy
        self._explicit_timeout = not restored

    def build_request(
        self,
        method: str,
        url: Any,
        *,
        content: Any = None,
        data: Any = None,
        files: Any = None,
        json: Any = None,
        params: Any = None,
        headers: Any = None,
        cookies: Any = None,
        timeout: Any = _CLIENT_DEFAULT,
        extensions: Any = None,
    ) -> httpx.Request:
        """httpx's ``build_request``; marks a timeout given for this call (``timeout=``,
        or a ``timeout`` extension, which httpx sends as it is)."""
        # Keywords spelt out rather than **kwargs: this runs on every request, and
        # repacking httpx's nine keywords cost a microsecond.
        if timeout is _CLIENT_DEFAULT:
            timeout = self._flavor.use_client_default
        # Resolves to the library's BaseClient.build_request in every client's MRO.
        request: httpx.Request = super().build_request(  # type: ignore[misc]
            method,
            url,
            content=content,
            data=data,
            files=files,
            json=json,
            params=params,
            headers=headers,
            cookies=cookies,
            timeout=timeout,
            extensions=extensions,
        )
        # Marked either way: a request without the mark is one built elsewhere (see send).
        request.extensions[EXT_EXPLICIT_TIMEOUT] = bool(
            self._explicit_timeout
            or timeout is not self._flavor.use_client_default
            or (extensions and "timeout" in extensions)
        )
        return request


def _marked(
    client: SyncSendMixin | AsyncSendMixin,
    request: httpx.Request,
    stream: bool,
    auth: Any,
    follow_redirects: Any,
) -> tuple[Any, Any]:
    """Mark ``request`` for the pipeline (is the body streamed, is its timeout the
    caller's) and map our defaults of ``send``'s keywords onto the library's own."""
    extensions = request.extensions
    extensions[EXT_STREAM] = stream
    if EXT_EXPLICIT_TIMEOUT not in extensions:  # built elsewhere, not by build_request
        # Its own timeout extension, or this client's timeout= (httpx copies it in).
        extensions[EXT_EXPLICIT_TIMEOUT] = "timeout" in extensions or client._explicit_timeout
    default = client._flavor.use_client_default
    return (
        default if auth is _CLIENT_DEFAULT else auth,
        default if follow_redirects is _CLIENT_DEFAULT else follow_redirects,
    )


class SyncSendMixin:
    _flavor: ClassVar[Flavor]
    _explicit_timeout: bool

    def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = _CLIENT_DEFAULT,
        follow_redirects: Any = _CLIENT_DEFAULT,
    ) -> httpx.Response:
        """httpx's ``send``; tells the pipeline whether the body will be streamed."""
        auth, follow_redirects = _marked(self, request, stream, auth, follow_redirects)
        response: httpx.Response = super().send(  # type: ignore[misc]
            request, stream=stream, auth=auth, follow_redirects=follow_redirects
        )
        return response


class AsyncSendMixin:
    _flavor: ClassVar[Flavor]
    _explicit_timeout: bool

    # A coroutine function of its own, not a plain one handing back httpx's coroutine
    # (a frame cheaper): inspect must call it one, for mock.patch to make an AsyncMock of
    # it and for tenacity and backoff to wrap it as async.
    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = _CLIENT_DEFAULT,
        follow_redirects: Any = _CLIENT_DEFAULT,
    ) -> httpx.Response:
        """httpx's ``send``; tells the pipeline whether the body will be streamed."""
        auth, follow_redirects = _marked(self, request, stream, auth, follow_redirects)
        response: httpx.Response = await super().send(  # type: ignore[misc]
            request, stream=stream, auth=auth, follow_redirects=follow_redirects
        )
        return response


class ResilientClient(ClientMixin, SyncSendMixin, httpx.Client):
    """An ``httpx.Client`` whose every request runs through the resilience pipeline.

    ``policy`` is the default :class:`Policy`; ``endpoints`` maps endpoint keys
    (``"GET /v1/users/{id}"``) to policies merged over it, matched relative to
    ``base_url``'s path. ``raise_for_error=True`` raises an ``ApiError`` for a final
    4xx/5xx. ``correlation_header`` names the header carrying the correlation id
    (``None``: send none). ``breaker_storage``: ``None`` keeps breaker state in this
    client; ``rc.RedisBreakerStorage(...)`` shares it across a fleet; ``breaker_listeners``
    are told of every breaker state change (``state_change(breaker, old, new)``, or
    ``pybreaker.CircuitBreakerListener`` instances). Spans and metrics go
    through OpenTelemetry's global providers, or ``tracer_provider`` / ``meter_provider``
    when given (``telemetry=False``: none at all). ``observers`` receive every pipeline
    event. Every other
    keyword is httpx's own; a ``transport=`` becomes the pipeline's inner transport. An
    explicit ``timeout=`` (here or per call) replaces the policy's per-phase timeouts,
    still clipped to the call's deadline.
    """

    _flavor = HTTPX
    _driver = ResilientTransport


class AsyncResilientClient(ClientMixin, AsyncSendMixin, httpx.AsyncClient):
    """The async mirror of :class:`ResilientClient` (an ``httpx.AsyncClient``)."""

    _flavor = HTTPX
    _driver = AsyncResilientTransport
