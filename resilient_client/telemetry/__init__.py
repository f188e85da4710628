"""OpenTelemetry for the pipeline: spans per call and per attempt, metrics, W3C propagation,
redaction. Built on the OpenTelemetry API only; :func:`configure_telemetry` (the ``otel``
extra) sets up the SDK for applications.

Spans
=====

=====================  ========  ==========================================================
span                   kind      attributes
=====================  ========  ==========================================================
the call               INTERNAL  ``resilient_client.endpoint``,
                                 ``resilient_client.correlation_id``,
                                 ``resilient_client.idempotency_key`` (when sent); at the
                                 end ``resilient_client.attempts``,
                                 ``resilient_client.outcome`` (``success``/``failure``/
                                 ``rejected``/``fallback``/``cancelled``),
                                 ``http.response.status_code``, ``error.type``,
                                 ``resilient_client.request_id``, and unless it succeeded
                                 ``resilient_client.stop_reason``; after retries
                                 ``resilient_client.retry.reasons``
each attempt           CLIENT    ``http.request.method`` (``http.request.method_original``
                                 for ``_OTHER``), ``server.address``, ``server.port``,
                                 ``url.full`` (redacted), ``url.template`` (configured
                                 endpoints), ``http.request.resend_count`` (attempts after
                                 the first); at the end ``http.response.status_code``,
                                 ``network.protocol.version``, ``error.type``,
                                 ``resilient_client.request_id``;
                                 ``http.request.header.<name>`` /
                                 ``http.response.header.<name>`` (allow-listed only)
=====================  ========  ==========================================================

Both are named ``{method} {url.template}`` when the endpoint key is configured
(``GET /v1/users/{id}``), else ``{method}``; an unknown method is ``_OTHER`` and names
the span ``HTTP``. Status is ERROR for a 4xx/5xx or an exception, unset otherwise, on
cancellation, and on a call its fallback answered. Span events on the call span:
``resilient_client.retry`` (``resilient_client.attempt``, ``resilient_client.retry.reason``,
``resilient_client.retry.delay`` in seconds), ``resilient_client.retry_refused``
(``resilient_client.retry.refused_by``: ``budget``/``breaker``) and
``resilient_client.rejected`` (``resilient_client.rejected_by``:
``breaker``/``bulkhead``/``throttle``).

Metrics
=======

``http.client.request.duration`` - histogram, ``s``, one per attempt, the conventions' buckets
    ``http.request.method``, ``server.address``, ``server.port``, ``url.template``,
    ``http.response.status_code``, ``error.type``, ``network.protocol.version``
``resilient_client.call.duration`` - histogram, ``s``, one per call (waits included)
    ``resilient_client.endpoint``, ``http.request.method``, ``resilient_client.outcome``,
    ``error.type``
``resilient_client.retries`` - counter, ``{retry}``
    ``resilient_client.endpoint``, ``resilient_client.retry.reason``
``resilient_client.retry.refusals`` - counter, ``{retry}``
    ``resilient_client.endpoint``, ``resilient_client.retry.refused_by``
    (``budget``/``breaker``)
``resilient_client.rejections`` - counter, ``{call}``
    ``resilient_client.endpoint``, ``resilient_client.rejected_by``
    (``breaker``/``bulkhead``/``throttle``)
``resilient_client.breaker.state`` - gauge, ``1``: 1 for the current state, 0 for the others
    ``resilient_client.endpoint``, ``resilient_client.breaker.state``
    (``closed``/``open``/``half_open``)
``resilient_client.breaker.transitions`` - counter, ``{transition}``
    ``resilient_client.endpoint``, ``resilient_client.breaker.previous_state``,
    ``resilient_client.breaker.state``

Every metric attribute value is bounded: endpoint keys, hosts, methods, status codes,
exception type names, reasons and states; never a URL, an id or a header value.

Propagation and data protection
===============================

Each attempt carries its own span context (``traceparent``/``tracestate``, and the
caller's ``baggage``) through the global propagators; the SDK adds no baggage of its own.
``opentelemetry-instrumentation-httpx`` is suppressed during attempts, so nothing is
traced twice. ``url.full`` never shows credentials or sensitive query values; headers are
recorded only from an allow-list, never ``Authorization``, ``Cookie``, ``Set-Cookie``,
``Proxy-Authorization``, ``X-Api-Key`` and the like (:class:`Redaction`). Exception
messages are not recorded, only ``error.type``; a server's error text that is recorded
anywhere goes through :func:`mask_text` first (e-mail addresses, card numbers, tokens,
control and bidirectional formatting characters).
"""

from .._redact import Redaction, mask_text, redact_text, redact_url
from ._configure import TelemetryProviders, configure_telemetry
from ._observer import OpenTelemetryObserver

__all__ = [
    "OpenTelemetryObserver",
    "Redaction",
    "TelemetryProviders",
    "configure_telemetry",
    "mask_text",
    "redact_text",
    "redact_url",
]
