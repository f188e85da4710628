"""resilient_client: drop-in resilient httpx clients.

Deadlines, retries with backoff and jitter that honour Retry-After, idempotency keys,
one error model for every error envelope. Only re-exports live here; see the README
for the pipeline and the policy reference.
"""

from ._breaker import Breaker, RedisBreakerStorage
from ._budget import RetryBudget
from ._bulkhead import Bulkhead
from ._call._info import ResilienceInfo
from ._call._pipeline import EndpointHealth
from ._client import AsyncResilientClient, ResilientClient
from ._config import load_config
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
    RateLimitError,
    ResilienceError,
    ServerError,
    ServiceUnavailableError,
)
from ._idempotency import Idempotency, idempotency_key_for
from ._policy import Backoff, Policy, Retry, Timeouts
from ._throttle import AdaptiveThrottle
from ._transport import AsyncResilientTransport, ResilientTransport
from .problems import ErrorCategory, FieldError, Problem, parse_problem, raise_for_error
from .telemetry import OpenTelemetryObserver, Redaction, configure_telemetry

__all__ = [
    "AdaptiveThrottle",
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
    "CircuitOpenError",
    "ConflictError",
    "DeadlineExceeded",
    "EndpointHealth",
    "ErrorCategory",
    "FieldError",
    "Idempotency",
    "LoadShedError",
    "NotFoundError",
    "OpenTelemetryObserver",
    "PermissionDeniedError",
    "Policy",
    "Problem",
    "RateLimitError",
    "Redaction",
    "RedisBreakerStorage",
    "ResilienceError",
    "ResilienceInfo",
    "ResilientClient",
    "ResilientTransport",
    "Retry",
    "RetryBudget",
    "ServerError",
    "ServiceUnavailableError",
    "Timeouts",
    "configure_telemetry",
    "correlation_id",
    "idempotency_key_for",
    "load_config",
    "parse_problem",
    "raise_for_error",
]

__version__ = "0.1.0"
