"""Log records the SDK writes: one per final failure, bounded under an outage.

Every call that ends in failure is logged once, through ``logging`` (logger
``resilient_client``), with structured fields in ``extra``: ``endpoint``, ``status``,
``category``, ``code``, ``request_id``, ``attempts``, ``correlation_id``, ``error``.
Levels follow severity: a call that recovered after retries is DEBUG, a final 4xx is
WARNING, a final 5xx or transport failure ERROR.

Every record of the SDK's loggers (``resilient_client`` and its children) carries
``endpoint``, ``correlation_id``, ``trace_id`` and ``span_id`` as record attributes, so a
formatter can name them (``%(trace_id)s``) and a JSON formatter finds them: ``trace_id``
and ``span_id`` are the current OpenTelemetry span's, as 32 and 16 lowercase hex digits
(the W3C ``traceparent`` spelling), and each of the four is ``None`` when there is none.
Values that servers or callers choose - ``code``, ``correlation_id``, ``request_id``,
``endpoint`` (it holds the request's host), ``error`` - and the message itself have their
control and bidirectional formatting characters escaped, so no value can forge a line or
reorder what a reader sees (:class:`CallRecordFilter`).

httpx logs every request at INFO (logger ``httpx``: ``HTTP Request: GET
https://user:pw@host/?api_key=... "HTTP/1.1 200 OK"``) with the full URL, its password and
query secrets included. :class:`RedactingFilter`, added to that logger, redacts URLs in its
records as telemetry's ``url.full`` is redacted.

During an outage the same failure repeats for every call; the first one of each
``(endpoint, what)`` is logged, and the next one after ``interval`` seconds says how
many were suppressed in between, so log volume stays bounded whatever the call rate.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

from opentelemetry import trace

from ._clock import Clock, renew_after_fork
from ._mask import neutralize
from ._redact import Redaction, redact_text, redact_url

__all__ = [
    "CALL_FIELDS",
    "CallRecordFilter",
    "Episodes",
    "FailureLog",
    "RedactingFilter",
    "get_logger",
    "logger",
    "trace_ids",
]

CALL_FIELDS = ("endpoint", "correlation_id", "trace_id", "span_id")
"""The attributes every record of the SDK's loggers carries (``None`` when unknown)."""

# Values chosen by a server or a caller, escaped before any handler sees them.
_UNTRUSTED_FIELDS = ("endpoint", "correlation_id", "code", "request_id", "error")
# The loggers the SDK's modules use; get_logger() covers any other.
_SDK_LOGGERS = (
    "resilient_client",
    "resilient_client.breaker",
    "resilient_client.incidents",
    "resilient_client.outbox",
    "resilient_client.telemetry",
)


def trace_ids(span: trace.Span | None = None) -> tuple[str | None, str | None]:
    """``(trace_id, span_id)`` of ``span`` (None: the current span) as 32 and 16 lowercase
    hex digits, or ``(None, None)`` when it has no valid span context."""
    context = (span if span is not None else trace.get_current_span()).get_span_context()
    if not context.is_valid:
        return None, None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


class CallRecordFilter(logging.Filter):
    """Gives each record the :data:`CALL_FIELDS` and escapes untrusted values (see the
    module docstring). ``trace_id``/``span_id`` given in ``extra`` are kept: a record
    written after the call's span ended can name that span. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = record.__dict__
        if fields.get("trace_id") is None:
            fields["trace_id"], fields["span_id"] = trace_ids()
        else:
            fields.setdefault("span_id", None)
        for name in ("endpoint", "correlation_id"):
            fields.setdefault(name, None)
        for name in _UNTRUSTED_FIELDS:
            value = fields.get(name)
            if isinstance(value, str):
                fields[name] = neutralize(value)
        if isinstance(record.msg, str):
            record.msg = neutralize(record.msg, limit=None)
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                neutralize(arg, limit=None) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


_FILTER = CallRecordFilter()


class RedactingFilter(logging.Filter):
    """Redacts the URLs in every record it sees: credentials and sensitive query values
    become ``REDACTED`` (:class:`~resilient_client.telemetry.Redaction`), in the message
    and in its arguments (an ``httpx.URL`` argument included). Never drops a record.

    For httpx's own request log, which prints each URL whole::

        logging.getLogger("httpx").addFilter(resilient_client.RedactingFilter())

    (a logger's filter sees the records of that logger only; add it to a handler to cover
    every logger the handler serves). ``redaction``: what to redact, ``None`` the default.
    """

    def __init__(self, redaction: Redaction | None = None) -> None:
        super().__init__()
        self._redaction = redaction

    def filter(self, record: logging.LogRecord) -> bool:
        redaction = self._redaction
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg, redaction)
        args = record.args
        if isinstance(args, tuple) and args:
            record.args = tuple(_redacted_arg(arg, redaction) for arg in args)
        elif isinstance(args, dict) and args:
            record.args = {key: _redacted_arg(arg, redaction) for key, arg in args.items()}
        return True


def _redacted_arg(arg: object, redaction: Redaction | None) -> object:
    if isinstance(arg, str):
        return redact_text(arg, redaction)
    # A URL object (httpx's, httpx2's): formatted by %s, so it is replaced by its text.
    if type(arg).__name__ == "URL" and hasattr(arg, "userinfo"):
        return redact_url(arg, redaction)
    return arg


def get_logger(name: str) -> logging.Logger:
    """The SDK logger ``name`` (``resilient_client`` or a child), with the record filter
    attached: a logger filter applies to its own records only, not to its children's."""
    if name != "resilient_client" and not name.startswith("resilient_client."):
        raise ValueError(f"not an SDK logger name: {name!r}")
    found = logging.getLogger(name)
    if _FILTER not in found.filters:
        found.addFilter(_FILTER)
    return found


logger = get_logger("resilient_client")
# A library does not print: without the application's own logging set up, records go
# nowhere (rather than to logging's last-resort stderr handler).
logger.addHandler(logging.NullHandler())
for _name in _SDK_LOGGERS:
    get_logger(_name)

# Distinct (endpoint, what) pairs are bounded by configuration, but stay safe anyway.
_MAX_TRACKED = 4096


class Episodes:
    """When local refusals (budget, bulkhead, throttle) start an episode worth one line.

    An episode starts with a refusal after ``gap`` seconds without any; the refusals
    that follow it are not logged again. Not locked itself: its owner calls
    :meth:`refused` and :meth:`take` under its own lock, and may read :attr:`pending`
    without it (the common answer, "no", then costs no lock).
    """

    __slots__ = ("gap", "last", "pending")

    def __init__(self, gap: float) -> None:
        self.gap = gap
        self.last = -math.inf  # the last refusal
        self.pending = False  # an episode started and nobody has logged it yet

    def refused(self, now: float) -> None:
        """Count a refusal at ``now``."""
        if now - self.last >= self.gap:
            self.pending = True
        self.last = now

    def take(self) -> bool:
        """Whether the caller is the one to log the episode that started (once)."""
        if not self.pending:
            return False
        self.pending = False
        return True

    def ongoing(self, now: float) -> bool:
        """Whether refusals happened within the last ``gap`` seconds."""
        return now - self.last < self.gap


class FailureLog:
    """Rate-limited structured logging of final outcomes, per endpoint and failure."""

    def __init__(self, clock: Clock, interval: float = 10.0) -> None:
        self._clock = clock
        self._interval = interval
        self._lock = threading.Lock()
        renew_after_fork(self)
        self._seen: dict[tuple[str, str], list[float]] = {}  # -> [last_logged, suppressed]

    def _after_fork(self) -> None:
        """In a forked child: a fresh lock (another thread may have held this one)."""
        self._lock = threading.Lock()

    def emit(self, level: int, message: str, fields: dict[str, Any]) -> None:
        """Log ``message`` with ``fields`` unless an identical failure was logged recently."""
        if not logger.isEnabledFor(level):
            return
        if level > logging.DEBUG:
            key = (str(fields.get("endpoint")), str(fields.get("status") or fields.get("error")))
            now = self._clock.monotonic()
            with self._lock:
                entry = self._seen.get(key)
                if entry is not None and now - entry[0] < self._interval:
                    entry[1] += 1
                    return
                suppressed = 0 if entry is None else int(entry[1])
                if len(self._seen) >= _MAX_TRACKED:
                    self._seen.clear()
                self._seen[key] = [now, 0]
            fields = {**fields, "suppressed": suppressed}
            if suppressed:
                message = f"{message} ({suppressed} identical failures suppressed)"
        logger.log(level, message, extra=fields)
