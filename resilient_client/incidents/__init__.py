"""Incidents: from failing calls to one deduplicated alert per provider outage.

An :class:`IncidentMonitor` observes calls (``rc.ResilientClient(..., incidents=monitor)``),
judges each endpoint's health by :class:`HealthRules`, keeps one :class:`Incident` per
provider outage in a store (memory, SQLite, or :class:`RedisIncidentStore` for a fleet),
and sends :class:`Alert` s to sinks (:class:`LogSink`, :class:`WebhookSink`,
:class:`PagerDutySink`, :class:`SlackSink`, or any :class:`AlertSink`) off the call path.
"""

from ._incident import (
    Alert,
    ClientActions,
    EndpointImpact,
    Evidence,
    Incident,
    ProviderStatus,
    SeriesPoint,
    StatusPageIncident,
)
from ._monitor import IncidentMonitor
from ._open import open_store
from ._redis import RedisIncidentStore
from ._rules import Health, HealthRules
from ._sinks import AlertSink, LogSink, PagerDutySink, SinkError, SlackSink, WebhookSink
from ._stores import (
    IncidentStore,
    IncidentStoreError,
    MemoryIncidentStore,
    SqliteIncidentStore,
)

__all__ = [
    "Alert",
    "AlertSink",
    "ClientActions",
    "EndpointImpact",
    "Evidence",
    "Health",
    "HealthRules",
    "Incident",
    "IncidentMonitor",
    "IncidentStore",
    "IncidentStoreError",
    "LogSink",
    "MemoryIncidentStore",
    "PagerDutySink",
    "ProviderStatus",
    "RedisIncidentStore",
    "SeriesPoint",
    "SinkError",
    "SlackSink",
    "SqliteIncidentStore",
    "StatusPageIncident",
    "WebhookSink",
    "open_store",
]

for _name in __all__:
    _value = globals()[_name]
    if getattr(_value, "__module__", "").startswith(__name__ + "."):
        _value.__module__ = __name__
