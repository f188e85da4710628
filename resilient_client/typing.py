"""The extension surface: what an integrator implements or receives to extend the pipeline.

- :class:`Observer` receives every decision of a pipeline as a typed event, with a
  read-only :class:`CallView` of the call it belongs to (``observers=[...]`` on a client
  or transport). Events: :class:`CallStarted`, :class:`AttemptStarted`,
  :class:`AttemptEnded`, :class:`RetryScheduled`, :class:`RetryRefused`,
  :class:`CallRejected`, :class:`CallEnded`, :class:`BreakerStateChanged` (``Event`` is
  their union). An observer must not raise and should be quick: it runs on the call path.
- :class:`Clock`: time, sleeping and randomness (``clock=``); ``resilient_client.testing``
  has a ``FakeClock``.
- :class:`BreakerStorage` shares breaker state across processes (``breaker_storage=``);
  one that is also an :class:`IsolationStorage` shares the kill switches
  (``client.isolate()``) too;
  :class:`BreakerSnapshot` is what ``client.breakers()`` reports, :class:`BreakerListener`
  is told of every transition (``breaker_listeners=``).
- :class:`AlertSink` delivers incident alerts (``rc.IncidentMonitor(sinks=[...])``);
  :class:`IncidentStore` keeps incidents; :class:`OutboxStore` keeps parked writes
  (``rc.Outbox(store)``).

Every name here is a protocol or a frozen value: importing this module changes nothing.
"""

from __future__ import annotations

from ._breaker import BreakerListener, BreakerSnapshot, BreakerStorage, IsolationStorage
from ._call._events import (
    AttemptEnded,
    AttemptStarted,
    BreakerStateChanged,
    CallEnded,
    CallRejected,
    CallStarted,
    CallView,
    Event,
    Observer,
    RetryRefused,
    RetryScheduled,
)
from ._clock import Clock
from .incidents import AlertSink, IncidentStore
from .outbox import OutboxStore

__all__ = [
    "AlertSink",
    "AttemptEnded",
    "AttemptStarted",
    "BreakerListener",
    "BreakerSnapshot",
    "BreakerStateChanged",
    "BreakerStorage",
    "CallEnded",
    "CallRejected",
    "CallStarted",
    "CallView",
    "Clock",
    "Event",
    "IncidentStore",
    "IsolationStorage",
    "Observer",
    "OutboxStore",
    "RetryRefused",
    "RetryScheduled",
]

for _name in __all__:
    _value = globals()[_name]
    if "._" in getattr(_value, "__module__", ""):
        _value.__module__ = __name__
del _name, _value
