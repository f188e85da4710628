"""resilient_client: drop-in resilient httpx clients.

Deadlines, retries with backoff and jitter that honour Retry-After, idempotency keys,
one error model for every error envelope. Only re-exports live here (and, as httpx does,
each public name reports this package as its ``__module__``); see the README for the
pipeline and the policy reference.
"""

from ._breaker import Breaker, MemoryBreakerStorage, RedisBreakerStorage
from ._budget import RetryBudget
from ._bulkhead import Bulkhead
from ._call._end import resilience_info
from ._call._info import ResilienceInfo
from ._call._pipeline import EndpointHealth
from ._client import AsyncResilientClient, ResilientClient
from ._config import ClientConfig, ConfigWarning, load_config
from ._context import correlation_id
from ._exceptions import (
    ApiError,
    AttemptTimeout,
    AuthenticationError,
    BadRequestError,
    BulkheadFull,
    CircuitOpenError,
    ConflictError,
    DeadlineExceeded,
    LoadShedError,
    NotFoundError,
    PermissionDeniedError,
    RateLimited,
    RateLimitError,
    ResilienceError,
    ServerError,
    ServiceUnavailableError,
    WriteParked,
)
from ._failover import Failover
from ._hedging import Hedging
from ._idempotency import Idempotency, idempotency_key_for
from ._logging import RedactingFilter
from ._policy import Backoff, Policy, Retry, Timeouts
from ._rate_limit import RateLimit
from ._throttle import AdaptiveThrottle
from ._transport import AsyncResilientTransport, ResilientTransport
from .chaos._inject import Chaos
from .incidents import (
    Alert,
    Evidence,
    Health,
    HealthRules,
    Incident,
    IncidentMonitor,
    LogSink,
    PagerDutySink,
    RedisIncidentStore,
    SlackSink,
    WebhookSink,
)
from .outbox import Outbox, OutboxEntry, RedisOutboxStore, ReplayResult
from .problems import ErrorCategory, FieldError, Problem, parse_problem, raise_for_error
from .telemetry import OpenTelemetryObserver, Redaction, configure_telemetry

__all__ = [
    "AdaptiveThrottle",
    "Alert",
    "ApiError",
    "AsyncResilientClient",
    "AsyncResilientTransport",
    "AttemptTimeout",
    "AuthenticationError",
    "Backoff",
    "BadRequestError",
    "Breaker",
    "Bulkhead",
    "BulkheadFull",
    "Chaos",
    "CircuitOpenError",
    "ClientConfig",
    "ConfigWarning",
    "ConflictError",
    "DeadlineExceeded",
    "EndpointHealth",
    "ErrorCategory",
    "Evidence",
    "Failover",
    "FieldError",
    "Health",
    "HealthRules",
    "Hedging",
    "Idempotency",
    "Incident",
    "IncidentMonitor",
    "LoadShedError",
    "LogSink",
    "MemoryBreakerStorage",
    "NotFoundError",
    "OpenTelemetryObserver",
    "Outbox",
    "OutboxEntry",
    "PagerDutySink",
    "PermissionDeniedError",
    "Policy",
    "Problem",
    "RateLimit",
    "RateLimitError",
    "RateLimited",
    "RedactingFilter",
    "Redaction",
    "RedisBreakerStorage",
    "RedisIncidentStore",
    "RedisOutboxStore",
    "ReplayResult",
    "ResilienceError",
    "ResilienceInfo",
    "ResilientClient",
    "ResilientTransport",
    "Retry",
    "RetryBudget",
    "ServerError",
    "ServiceUnavailableError",
    "SlackSink",
    "Timeouts",
    "WebhookSink",
    "WriteParked",
    "configure_telemetry",
    "correlation_id",
    "idempotency_key_for",
    "load_config",
    "parse_problem",
    "raise_for_error",
    "resilience_info",
]

__version__ = "0.1.0"

# Public names report the package as their home, not the private module they live in.
for _name in __all__:
    _value = globals()[_name]
    if "._" in getattr(_value, "__module__", ""):  # a private module's, not a public one's
        _value.__module__ = "resilient_client"
del _name, _value
