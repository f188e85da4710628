"""The breaker room: one circuit breaker per endpoint, asked before every attempt.

The rest of the package imports the breaker from here only; the modules inside are the
room's own business, each importing only those listed before it:

- ``_policy``: the :class:`Breaker` policy, what counts as a failure, and the values a
  breaker hands out (:class:`Permit`, :class:`Rejection`, :class:`BreakerSnapshot`);
- ``_circuit``: the pure state machine, its states and ``TRANSITIONS`` side by side;
- ``_storage``: where state is shared (the protocols and the in-process backend), the
  operator's kill switches included;
- ``_lua`` and ``_redis``: the fleet-wide Redis storage, a port of ``_circuit`` to Lua;
- ``_breaker``: the sync/async driver of one endpoint, the registry, the pybreaker bridge.
"""

from ._breaker import BreakerListener, BreakerRegistry, EndpointBreaker
from ._circuit import TRANSITIONS
from ._policy import (
    Breaker,
    BreakerSnapshot,
    BreakerState,
    FailurePredicate,
    Outcome,
    Permit,
    Rejection,
    apply_failure_predicate,
    classify_for_breaker,
)
from ._redis import RedisBreakerStorage
from ._storage import (
    BreakerStorage,
    BreakerStorageUnavailable,
    IsolationStorage,
    MemoryBreakerStorage,
)

__all__ = [
    "TRANSITIONS",
    "Breaker",
    "BreakerListener",
    "BreakerRegistry",
    "BreakerSnapshot",
    "BreakerState",
    "BreakerStorage",
    "BreakerStorageUnavailable",
    "EndpointBreaker",
    "FailurePredicate",
    "IsolationStorage",
    "MemoryBreakerStorage",
    "Outcome",
    "Permit",
    "RedisBreakerStorage",
    "Rejection",
    "apply_failure_predicate",
    "classify_for_breaker",
]
