"""Trace context into request headers, and the contexts attempts run in, at low cost.

Each attempt injects its span context through the configured global propagators. The
API's path costs a few microseconds per attempt: a lookup of the span in the context,
two formatting helpers, and ``httpx.Headers.__setitem__``, which encodes, lower-cases
and scans the headers for each field. Here:

- ``_headers.set_header`` replaces a header as ``httpx.Headers.__setitem__`` does (the first
  copy in place, any later copies dropped) over httpx's (and httpx2's) own
  ``(name, lower-cased name, value)`` byte triples, for ASCII names and values;
  anything else goes through the public ``__setitem__``.
- :func:`inject` writes ``traceparent``/``tracestate`` itself, byte for byte what the
  W3C Trace Context propagator writes, when the global propagator is the API's default
  (Trace Context, then W3C Baggage, exactly those classes); baggage, rarely present,
  still goes through its propagator. Any other propagator configuration is used as is,
  with :data:`HEADER_SETTER`.
- :func:`context_with` builds a context with several values set in one copy instead of
  one copy per value (``set_span_in_context`` and ``set_value`` copy it each);
  :data:`HTTP_SUPPRESSED` holds the values that make ``opentelemetry-instrumentation-httpx``
  skip an attempt the observer traces already.
- :func:`current_context` reads the current context straight from its ``ContextVar``,
  for the untraced fast path, which asks on every call.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from opentelemetry import baggage, context, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import Setter, TextMapPropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .._headers import put_triple, set_header

__all__ = [
    "HEADER_SETTER",
    "HTTP_SUPPRESSED",
    "context_with",
    "current_context",
    "inject",
]


class _HeaderSetter(Setter[Any]):
    def set(self, carrier: Any, key: str, value: str) -> None:
        set_header(carrier, key, value)


HEADER_SETTER = _HeaderSetter()
"""A propagation ``Setter`` for ``httpx.Headers`` (and any ``MutableMapping``)."""


def _span_key() -> str | None:
    """The key ``set_span_in_context`` stores the span under, or None if it cannot be told."""
    probe = trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)
    keys = list(trace.set_span_in_context(probe, Context()))
    if len(keys) != 1:  # pragma: no cover - an API that stores more than the span
        return None
    key = keys[0]
    if trace.get_current_span(Context({key: probe})) is not probe:  # pragma: no cover
        return None
    return key


# Where the API keeps the current span in a context (private to it, hence probed).
_SPAN_KEY = _span_key()


def _baggage_key() -> str | None:
    """The key baggage lives under in a context, or None if it cannot be told."""
    keys = list(baggage.set_baggage("probe", "1", Context()))
    return keys[0] if len(keys) == 1 else None


_BAGGAGE_KEY = _baggage_key()


# Where opentelemetry-instrumentation's is_http_instrumentation_enabled() looks; private,
# so a future API that moves it disables suppression (and the instrumentor test fails).
_SUPPRESS_HTTP: str | None = getattr(context, "_SUPPRESS_HTTP_INSTRUMENTATION_KEY", None)

HTTP_SUPPRESSED: dict[str, object] = {} if _SUPPRESS_HTTP is None else {_SUPPRESS_HTTP: True}
"""Context values that suppress HTTP instrumentation, for :func:`context_with`."""


def _context_reader() -> Callable[[], Context]:
    """The cheapest way to read the current OpenTelemetry context.

    The API's ``context.get_current()`` goes through two Python calls to a ``ContextVar``;
    the untraced fast path asks it on every call, so read the variable itself when the
    runtime context is the API's default one.
    """
    runtime = getattr(context, "_RUNTIME_CONTEXT", None)
    variable = getattr(runtime, "_current_context", None)
    if isinstance(variable, ContextVar):
        return variable.get
    return context.get_current


current_context = _context_reader()
"""The current OpenTelemetry context, as ``context.get_current()`` returns it."""


def context_with(parent: Context, span: trace.Span, extra: dict[str, object]) -> Context:
    """``parent`` with ``span`` current and ``extra`` set, in one copy."""
    if _SPAN_KEY is None:  # pragma: no cover - see _span_key
        ctx = trace.set_span_in_context(span, parent)
        for key, value in extra.items():
            ctx = context.set_value(key, value, ctx)
        return ctx
    return Context({**parent, **extra, _SPAN_KEY: span})


# The global propagator last seen, and its baggage propagator when it is the API's
# default (the fast path), else None.
_seen: list[tuple[TextMapPropagator, TextMapPropagator | None]] = []


def _default_baggage(textmap: TextMapPropagator) -> TextMapPropagator | None:
    if _seen and _seen[0][0] is textmap:
        return _seen[0][1]
    propagators = getattr(textmap, "_propagators", None)
    found: TextMapPropagator | None = None
    if (
        type(textmap) is CompositePropagator
        and isinstance(propagators, list | tuple)
        and [type(p) for p in propagators] == [TraceContextTextMapPropagator, W3CBaggagePropagator]
    ):
        found = propagators[1]
    _seen[:] = [(textmap, found)]
    return found


def inject(headers: Any, ctx: Context, carried: trace.SpanContext) -> None:
    """Inject ``ctx`` into ``headers``; ``carried`` is the span context ``ctx`` holds."""
    textmap = propagate.get_global_textmap()
    baggage_propagator = _default_baggage(textmap)
    if baggage_propagator is None:
        textmap.inject(headers, ctx, HEADER_SETTER)
        return
    # TraceContextTextMapPropagator.inject, spelt out.
    if carried != trace.INVALID_SPAN_CONTEXT:
        # Formatted as bytes, the form httpx keeps: the same text as the propagator's
        # f-string, at half its cost. Put as a triple rather than through set_header,
        # which would take text and check, encode and lower-case it again (~0.4 us more
        # per attempt); its fallback for other Headers is the same as here.
        traceparent = b"00-%032x-%016x-%02x" % (
            carried.trace_id,
            carried.span_id,
            carried.trace_flags,
        )
        stored = getattr(headers, "_list", None)
        if type(stored) is list:
            put_triple(stored, (b"traceparent", b"traceparent", traceparent))
        else:
            headers["traceparent"] = traceparent.decode("ascii")
        if carried.trace_state:
            set_header(headers, "tracestate", carried.trace_state.to_header())
    if _BAGGAGE_KEY is None or ctx.get(_BAGGAGE_KEY):  # most calls carry no baggage
        baggage_propagator.inject(headers, ctx, HEADER_SETTER)
