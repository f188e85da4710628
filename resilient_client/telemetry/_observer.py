"""``OpenTelemetryObserver``: the pipeline's events as spans, metrics and trace headers.

Span shape, for one call retried twice::

    GET /v1/users/{id}   INTERNAL  the call: endpoint, attempts, outcome; a span event per
    │                              retry decision, budget refusal and local rejection
    ├── GET /v1/users/{id}   CLIENT   attempt 1                  503, ERROR
    ├── GET /v1/users/{id}   CLIENT   attempt 2, resend_count 1  503, ERROR
    └── GET /v1/users/{id}   CLIENT   attempt 3, resend_count 2  200

The INTERNAL span is always made, so all attempts of a call land in one trace even when
the application has no span open. Each attempt carries its own span context downstream
(a new ``traceparent`` parent-id per attempt) through the configured global propagators,
merged with the caller's context so application baggage travels too.

While an attempt runs, its span is the current span and HTTP instrumentation is
suppressed in the current context: ``opentelemetry-instrumentation-httpx``, if active,
skips the attempt instead of tracing it a second time.

A hedge (``rc.Hedging``) runs beside the attempt it hedges: its span, a sibling under the
call's span, has ``resilient_client.hedge=true``; the call span counts them in
``resilient_client.hedges``. A hedge does not enter its context in the caller's (the
attempt it hedges did, and contexts are left in the order entered); its request carries
its own trace context all the same. A race's loser ends its span cancelled, not failed.

An attempt span starts when the attempt is about to be sent and ends when the pipeline has
its outcome: the response headers, plus the body when the pipeline reads it (a call that
is not streamed, or a small error body it may retry on). Span times are real time; the
``http.client.request.duration`` values come from the pipeline's clock, so tests with a
fake clock get exact durations.

Cost: whether the call's span records and whether an SDK meter provider is set are
checked once per call; with neither, no attribute is built and each attempt only
propagates the caller's context. Otherwise what does not change from call to call - the
span name, the request attributes of attempt spans and metrics, the metric attribute
sets of each outcome - is built once per route (method, endpoint and origin) and
reused; the call span gets all its attributes in one ``set_attributes`` when it ends
(each call costs the SDK a lock and a validation pass); trace context goes straight into
httpx's header storage (``_propagation``). Most of what remains is the SDK's own work.

This module holds what each event does to spans and metrics. The rest lives apart: the
configuration, the once-per-call gate and the route caches in ``_observer_base.py`` (a
base class, so the handlers read them as their own attributes), the per-route and
per-call records in ``_observer_state.py``, trace context and the current context in
``_propagation.py``, names and attribute values in ``_semconv.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import httpx
from opentelemetry import context, metrics, propagate, trace
from opentelemetry.trace import SpanKind, StatusCode

from .._call import _events as ev
from .._mask import neutralize
from .._redact import Redaction
from ..problems import REQUEST_ID_HEADERS
from ..problems._headers import response_request_id
from ..problems._model import shown_code
from . import _semconv as sc
from ._metrics import attempt_attributes, call_attributes
from ._observer_base import ObserverBase
from ._observer_state import Attrs, CallState, Route
from ._propagation import HEADER_SETTER, HTTP_SUPPRESSED, context_with, current_context, inject
from ._semconv import protocol_version  # per attempt: no attribute hop through sc

__all__ = ["OpenTelemetryObserver"]

_log = logging.getLogger("resilient_client.telemetry")

# Enum members are looked up through a descriptor on each access: once, here.
_INTERNAL, _CLIENT, _ERROR = SpanKind.INTERNAL, SpanKind.CLIENT, StatusCode.ERROR

# The state of every call with nothing to record (ended from the start: nothing to end).
_PASSTHROUGH = CallState(trace.INVALID_SPAN, None, recording=False, metered=False)
_PASSTHROUGH.ended = True


class OpenTelemetryObserver(ObserverBase):
    """Traces every call and attempt, records metrics, and propagates trace context.

    ``tracer_provider`` / ``meter_provider``: where spans and measurements go; ``None``
    means the global providers (``opentelemetry.trace`` / ``opentelemetry.metrics``),
    looked up through the API, so a provider set after this observer is built is still
    used. ``redaction``: what ``url.full`` and recorded headers may show (``None``: the
    default :class:`Redaction`). ``request_id_headers``: response headers holding the
    server's request id, tried in order, case-insensitively: the first with a well-formed
    value (1-200 visible ASCII characters) in any of its copies is recorded as
    ``resilient_client.request_id`` - the rule ``ResilienceInfo.request_id`` follows for
    the default names.
    ``recorded_headers``: request and response headers recorded as
    ``http.request.header.<name>`` / ``http.response.header.<name>`` (default none).

    Passed in a client's ``observers=``, it replaces the client's own observer (a client
    runs one: two would share each call's span); the client's ``tracer_provider`` and
    ``meter_provider`` are then unused.

    Raises ``ValueError`` when ``recorded_headers`` names a sensitive header
    (``Authorization``, ``Cookie``...). Exception messages are never recorded, only
    their type (``error.type``): a message can quote a header or a body.
    """

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        *,
        redaction: Redaction | None = None,
        request_id_headers: Iterable[str] = REQUEST_ID_HEADERS,
        recorded_headers: Iterable[str] = (),
    ) -> None:
        super().__init__(
            tracer_provider, meter_provider, redaction, request_id_headers, recorded_headers
        )
        self._handlers: dict[type[ev.Event], Callable[[Any, Any], None]] = {
            ev.CallStarted: self._call_started,
            ev.AttemptStarted: self._attempt_started,
            ev.AttemptEnded: self._attempt_ended,
            ev.RetryScheduled: self._retry_scheduled,
            ev.RetryRefused: self._retry_refused,
            ev.CallRejected: self._call_rejected,
            ev.CallEnded: self._call_ended,
            ev.BreakerStateChanged: self._breaker_changed,
        }

    def on_event(self, call: ev.CallView | None, event: ev.Event) -> None:
        """Receive one pipeline event. Never raises: a telemetry fault must not fail a call."""
        handler = self._handlers.get(type(event))
        if handler is None:
            return
        try:
            handler(call, event)
        except Exception as exc:
            # The type only: a message could quote the request.
            _log.warning(
                "telemetry: handling %s failed with %s", type(event).__name__, type(exc).__name__
            )

    # -- the call ----------------------------------------------------------------------

    def _call_started(self, call: ev.CallView, event: ev.CallStarted) -> None:
        request = call.request
        route = self._route(request.method, call.endpoint, request.url)
        parent = current_context()
        span = self._tracer.start_span(route.name, parent, _INTERNAL)
        recording = span.is_recording()
        metered = self._instruments.enabled()
        traced = recording or span.get_span_context().is_valid
        if not (traced or metered):
            # No SDK, no trace to continue: attempts only propagate the caller's context
            # (its baggage, say), and nothing is kept for the call.
            call.observation = _PASSTHROUGH
            return
        state = CallState(span, route, recording, metered)
        call.observation = state
        if traced:
            # The context every attempt runs in: the call's span, and HTTP
            # instrumentation suppressed. Built once per call, not once per attempt.
            state.context = context_with(parent, span, HTTP_SUPPRESSED)
            state.attach = True
        else:
            # Metrics only: no trace to continue, the caller's context is propagated as is.
            state.context = parent
        if not recording:
            return  # sampled out: its context travels; metrics need only the route
        # Each attribute costs the SDK a validation: the request's details go on the
        # attempt spans only, the call's identity on the call span only.
        state.attempt_attributes = self._attempt_attributes(route, request)

    def _attempt_attributes(self, route: Route, request: httpx.Request) -> Attrs:
        """An attempt span's attributes that are the same for each attempt to one URL."""
        attempt = {**route.metric, sc.URL_FULL: self._redaction.url(request.url)}
        if route.other:
            attempt[sc.HTTP_REQUEST_METHOD_ORIGINAL] = request.method
        return attempt

    def _call_ended(self, call: ev.CallView, event: ev.CallEnded) -> None:
        state = call.observation
        if not isinstance(state, CallState) or state.ended:
            return
        state.ended = True
        self._detach(state)
        if not (state.recording or state.metered):
            return
        if state.attempt_span is not None:  # an attempt never reported: don't leak its span
            state.attempt_span.end()
            state.attempt_span = None
        if state.hedge_spans:
            for hedge_span in state.hedge_spans.values():
                hedge_span.end()
            state.hedge_spans = None
        response, error, fallback = event.response, event.error, event.fallback
        status = response.status_code if response is not None else None
        error_type = sc.error_type_of(status, error)
        outcome = sc.call_outcome(error_type, error, state.rejected is not None, fallback)
        if state.recording:
            span = state.span
            # The call's identity goes on its span with its outcome, in one set_attributes
            # call (each costs the SDK a lock and a validation pass).
            attributes: Attrs = {
                sc.ENDPOINT: call.endpoint,
                sc.CORRELATION_ID: call.correlation_id,
            }
            if call.idempotency_key is not None:
                attributes[sc.IDEMPOTENCY_KEY] = call.idempotency_key
            attributes[sc.ATTEMPTS] = call.attempts
            if call.hedges:
                attributes[sc.HEDGES] = call.hedges
            attributes[sc.OUTCOME] = outcome
            if status is not None:
                attributes[sc.HTTP_RESPONSE_STATUS_CODE] = status
            if error_type is not None:
                attributes[sc.ERROR_TYPE] = error_type
            if response is not None:
                # Usually the last attempt's response, whose id is known already.
                if response is state.last_response:
                    request_id = state.last_request_id
                else:
                    request_id = self._request_id(response)
                if request_id is not None:
                    attributes[sc.REQUEST_ID] = request_id
            if outcome != "success":  # a successful call's stop reason is "success"
                stop_reason = call.stop_reason
                if stop_reason is not None:
                    attributes[sc.STOP_REASON] = stop_reason
            if call.retry_reasons:
                attributes[sc.RETRY_REASONS] = call.retry_reasons
            span.set_attributes(attributes)
            if error_type is not None and not fallback:
                span.set_status(_ERROR)
            span.end()
        state.last_response = None
        if state.metered:
            route = state.route
            assert route is not None
            elapsed = call.elapsed
            outcome_key = (outcome, error_type)
            metric = route.calls.get(outcome_key)
            if metric is None:
                metric = call_attributes(call.endpoint, route.method, outcome, error_type)
                self._keep(route.calls, outcome_key, metric)
            self._instruments.call_duration.record(elapsed, metric)

    # -- attempts ------------------------------------------------------------------------

    def _attempt_started(self, call: ev.CallView, event: ev.AttemptStarted) -> None:
        state = call.observation
        if state is _PASSTHROUGH:
            propagate.inject(call.request.headers, setter=HEADER_SETTER)
            return
        if not isinstance(state, CallState) or state.context is None:
            return
        if event.origin is not None and state.route is not None:
            # Failover: this attempt's origin (call.request is the request sent there)
            # names the server in its span and its duration metric.
            request = call.request
            state.route = self._route(request.method, call.endpoint, request.url)
            if state.recording:
                state.attempt_attributes = self._attempt_attributes(state.route, request)
        headers = call.request.headers
        ctx = state.context
        if state.recording:
            attributes = state.attempt_attributes
            if event.attempt > 1 or self._recorded:
                attributes = dict(attributes)
                if event.attempt > 1:
                    attributes[sc.HTTP_REQUEST_RESEND_COUNT] = event.attempt - 1
                if event.hedge:
                    attributes[sc.HEDGE] = True
                if self._recorded:
                    self._record_headers(attributes, sc.REQUEST_HEADER_PREFIX, headers)
            route = state.route
            assert route is not None
            span = self._tracer.start_span(route.name, ctx, _CLIENT, attributes)
            ctx = context_with(ctx, span, {})
            carried = span.get_span_context()
            if event.hedge:
                # Beside the attempt it hedges, which keeps the one slot and the entered
                # context (entered and left in order; a hedge enters none).
                if state.hedge_spans is None:
                    state.hedge_spans = {}
                state.hedge_spans[event.attempt] = span
                inject(headers, ctx, carried)
                return
            state.attempt_span = span
        elif state.attach:
            carried = state.span.get_span_context()
        else:  # metrics only: the caller's context, as is
            propagate.inject(headers, ctx, HEADER_SETTER)
            return
        # Replaces the previous attempt's values, as httpx.Headers.__setitem__ does.
        inject(headers, ctx, carried)
        if state.attach and not event.hedge:
            state.token = context.attach(ctx)

    def _attempt_ended(self, call: ev.CallView, event: ev.AttemptEnded) -> None:
        state = call.observation
        if not isinstance(state, CallState):
            return
        if not event.hedge:
            self._detach(state)
        if not (state.recording or state.metered):
            return
        response, error = event.response, event.error
        status = response.status_code if response is not None else None
        error_type = sc.error_type_of(status, error)
        category: str | None = None
        code: str | None = None
        if error is not None:
            category = "network" if isinstance(error, Exception) else None
        elif status is not None and status >= 400:
            problem = call.problem(response)  # type: ignore[arg-type] # parsed once per attempt
            if problem is not None:
                category, code = problem.category.value, shown_code(problem)
        version = protocol_version(response) if response is not None else None
        if event.hedge:
            span = None if state.hedge_spans is None else state.hedge_spans.pop(event.attempt, None)
        else:
            span = state.attempt_span
            state.attempt_span = None
        if span is not None:
            attributes: Attrs = {}
            if response is not None:
                attributes[sc.HTTP_RESPONSE_STATUS_CODE] = response.status_code
                if version is not None:
                    attributes[sc.NETWORK_PROTOCOL_VERSION] = version
                request_id = self._request_id(response)
                state.last_response, state.last_request_id = response, request_id
                if request_id is not None:
                    attributes[sc.REQUEST_ID] = request_id
                if self._recorded:
                    headers = response.headers
                    self._record_headers(attributes, sc.RESPONSE_HEADER_PREFIX, headers)
            if error_type is not None:
                attributes[sc.ERROR_TYPE] = error_type
            if category is not None:
                attributes[sc.PROBLEM_CATEGORY] = category
            if code is not None:
                attributes[sc.PROBLEM_CODE] = neutralize(code)
            if event.injected is not None:
                attributes[sc.CHAOS_FAULT] = event.injected
            span.set_attributes(attributes)
            if error_type is not None:
                span.set_status(_ERROR)
            span.end()
        if state.metered:
            route = state.route
            assert route is not None
            outcome_key = (status, version, error_type)
            metric = route.attempts.get(outcome_key)
            if metric is None:
                metric = attempt_attributes(route.metric, status, version, error_type)
                self._keep(route.attempts, outcome_key, metric)
            self._instruments.request_duration.record(event.duration, metric)
            if category is not None:
                self._instruments.failure(call.endpoint, category, event.injected)

    def _detach(self, state: CallState) -> None:
        """Leave the attempt's context, if the call entered one."""
        token = state.token
        if token is not None:
            state.token = None
            context.detach(token)

    # -- decisions -------------------------------------------------------------------------

    def _retry_scheduled(self, call: ev.CallView, event: ev.RetryScheduled) -> None:
        state = call.observation
        if not isinstance(state, CallState):
            return
        if state.recording:
            state.span.add_event(
                sc.EVENT_RETRY,
                {
                    sc.ATTEMPT: event.attempt,
                    sc.RETRY_REASON: event.reason,
                    sc.RETRY_DELAY: event.delay,
                },
            )
        if state.metered:
            self._instruments.retry(call.endpoint, event.reason)

    def _retry_refused(self, call: ev.CallView, event: ev.RetryRefused) -> None:
        state = call.observation
        if not isinstance(state, CallState):
            return
        if state.recording:
            state.span.add_event(
                sc.EVENT_RETRY_REFUSED, {sc.ATTEMPT: event.attempt, sc.REFUSED_BY: event.reason}
            )
        if state.metered:
            self._instruments.refusal(call.endpoint, event.reason)

    def _call_rejected(self, call: ev.CallView, event: ev.CallRejected) -> None:
        state = call.observation
        if not isinstance(state, CallState) or state is _PASSTHROUGH:
            return
        state.rejected = event.kind
        if state.recording:
            state.span.add_event(sc.EVENT_REJECTED, {sc.REJECTED_BY: event.kind})
        if state.metered:
            self._instruments.rejection(call.endpoint, event.kind)

    def _breaker_changed(self, call: ev.CallView | None, event: ev.BreakerStateChanged) -> None:
        if self._instruments.enabled():
            self._instruments.breaker_changed(event.endpoint, event.old, event.new)

    # -- helpers ----------------------------------------------------------------------------

    def _request_id(self, response: httpx.Response) -> str | None:
        return response_request_id(response.headers, names=self._request_ids)

    def _record_headers(self, attributes: Attrs, prefix: str, headers: httpx.Headers) -> None:
        for name in self._recorded:
            values = headers.get_list(name)
            if values:
                attributes[prefix + name] = tuple(values)
