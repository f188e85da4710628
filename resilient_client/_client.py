"""``ResilientClient`` / ``AsyncResilientClient``: httpx clients that mount the pipeline.

They are real ``httpx.Client`` / ``httpx.AsyncClient`` subclasses: httpx builds its
transports exactly as it would (``limits=``, ``verify=``, ``http2=``, proxies from the
environment, ``mounts=``), and each is then wrapped in the resilient transport, all
sharing one pipeline so endpoint state is per client, not per mount. The clients add
two facts the transport cannot see on its own: whether the caller streams the body,
and whether a ``timeout=`` was given explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from httpx._client import USE_CLIENT_DEFAULT, UseClientDefault
from httpx._types import (
    AuthTypes,
    CookieTypes,
    HeaderTypes,
    QueryParamTypes,
    RequestContent,
    RequestData,
    RequestExtensions,
    RequestFiles,
    TimeoutTypes,
)

from ._clock import SYSTEM_CLOCK, Clock
from ._pipeline import EXT_EXPLICIT_TIMEOUT, EXT_STREAM, Pipeline
from ._policy import Policy
from ._transport import AsyncResilientTransport, ResilientTransport

__all__ = ["AsyncResilientClient", "ResilientClient"]


class _PipelineOptions:
    """What both clients share: building the pipeline and marking requests."""

    _pipeline: Pipeline
    _explicit_timeout: bool

    def _init_pipeline(
        self,
        kwargs: dict[str, Any],
        policy: Policy | None,
        endpoints: Mapping[str, Policy] | None,
        correlation_header: str | None,
        raise_for_error: bool,
        clock: Clock,
    ) -> None:
        self._explicit_timeout = "timeout" in kwargs
        self._pipeline = Pipeline(
            policy,
            endpoints,
            base_url=kwargs.get("base_url", ""),
            clock=clock,
            correlation_header=correlation_header,
            raise_for_error=raise_for_error,
        )

    def build_request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> httpx.Request:
        # Resolves to httpx's BaseClient.build_request in both clients' MROs.
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
        if self._explicit_timeout or timeout is not USE_CLIENT_DEFAULT:
            request.extensions[EXT_EXPLICIT_TIMEOUT] = True
        return request

    @property
    def pipeline(self) -> Pipeline:
        return self._pipeline


class ResilientClient(_PipelineOptions, httpx.Client):
    """An ``httpx.Client`` whose every request runs through the resilience pipeline.

    ``policy`` is the default :class:`Policy`; ``endpoints`` maps endpoint keys
    (``"GET /v1/users/{id}"``) to policies merged over it, matched relative to
    ``base_url``'s path. ``raise_for_error=True`` raises an ``ApiError`` for a final
    4xx/5xx. ``correlation_header`` names the header carrying the correlation id
    (``None``: send none). Every other keyword is httpx's own; a ``transport=`` becomes
    the pipeline's inner transport. An explicit ``timeout=`` (here or per call) replaces
    the policy's per-phase timeouts, still clipped to the call's deadline.
    """

    def __init__(
        self,
        *,
        policy: Policy | None = None,
        endpoints: Mapping[str, Policy] | None = None,
        raise_for_error: bool = False,
        correlation_header: str | None = "X-Correlation-ID",
        clock: Clock = SYSTEM_CLOCK,
        **kwargs: Any,
    ) -> None:
        self._init_pipeline(kwargs, policy, endpoints, correlation_header, raise_for_error, clock)
        super().__init__(**kwargs)
        # httpx built its transports (default, proxies, mounts) as usual; wrap each.
        self._transport = ResilientTransport(self._transport, pipeline=self._pipeline)
        self._mounts = {
            pattern: None if inner is None else ResilientTransport(inner, pipeline=self._pipeline)
            for pattern, inner in self._mounts.items()
        }

    def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        request.extensions[EXT_STREAM] = stream
        return super().send(request, stream=stream, auth=auth, follow_redirects=follow_redirects)


class AsyncResilientClient(_PipelineOptions, httpx.AsyncClient):
    """The async mirror of :class:`ResilientClient` (an ``httpx.AsyncClient``)."""

    def __init__(
        self,
        *,
        policy: Policy | None = None,
        endpoints: Mapping[str, Policy] | None = None,
        raise_for_error: bool = False,
        correlation_header: str | None = "X-Correlation-ID",
        clock: Clock = SYSTEM_CLOCK,
        **kwargs: Any,
    ) -> None:
        self._init_pipeline(kwargs, policy, endpoints, correlation_header, raise_for_error, clock)
        super().__init__(**kwargs)
        self._transport = AsyncResilientTransport(self._transport, pipeline=self._pipeline)
        self._mounts = {
            pattern: None
            if inner is None
            else AsyncResilientTransport(inner, pipeline=self._pipeline)
            for pattern, inner in self._mounts.items()
        }

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        request.extensions[EXT_STREAM] = stream
        return await super().send(
            request, stream=stream, auth=auth, follow_redirects=follow_redirects
        )
