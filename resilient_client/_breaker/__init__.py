"""The breaker room: one circuit breaker per endpoint, asked before every attempt.

The rest of the package imports the breaker from here only; the modules inside are the
room's own business. ``_policy`` the :class:`Breaker` policy and what counts as a failure;
``_circuit`` the pure state machine; ``_breaker`` the sync/async driver and the registry;
``_storage`` where state is shared; ``_redis`` and ``_lua`` the fleet-wide Redis storage.
"""

from ._breaker import BreakerRegistry, EndpointBreaker
from ._policy import Breaker, Outcome, classify_for_breaker
from ._redis import RedisBreakerStorage
from ._storage import BreakerStorage, MemoryBreakerStorage
from ._types import BreakerSnapshot, Permit, Rejection

__all__ = [
    "Breaker",
    "BreakerRegistry",
    "BreakerSnapshot",
    "BreakerStorage",
    "EndpointBreaker",
    "MemoryBreakerStorage",
    "Outcome",
    "Permit",
    "RedisBreakerStorage",
    "Rejection",
    "classify_for_breaker",
]
