"""Endpoints: the routing table and the state kept per endpoint key.

Every call belongs to one endpoint - the most specific configured key, or its host's
default ``"* <host>"`` - and shares that endpoint's state with every other call of it:
retry budget, bulkhead, throttle, breaker. State is created once per endpoint, never per
call or per distinct URL, so its number is bounded by the configuration (plus one per
host the client talks to).
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from .._breaker import BreakerRegistry
from .._budget import RetryBudgetState
from .._bulkhead import BulkheadState
from .._clock import Clock
from .._deadline import phase_table
from .._idempotency import IdempotencyRule
from .._policy import Policy, merge
from .._throttle import ThrottleState
from ..chaos._inject import injector_for
from ._routing import Router, parse_endpoint_key

__all__ = ["Endpoint", "EndpointTable"]


class Endpoint:
    """One endpoint key: its merged policy and the state its calls share."""

    __slots__ = (
        "attempt",
        "breaker",
        "budget",
        "bulkhead",
        "chaos",
        "idempotency",
        "key",
        "phases",
        "policy",
        "throttle",
        "total",
    )

    def __init__(self, key: str, policy: Policy, clock: Clock, breakers: BreakerRegistry) -> None:
        self.key = key
        self.policy = policy
        # Copied out of the pydantic models, whose attribute reads cost 4x a slot's.
        timeouts = policy.timeouts
        self.phases = phase_table(timeouts)
        self.total = timeouts.total
        self.attempt = timeouts.attempt
        self.idempotency = IdempotencyRule(policy.idempotency)
        self.breaker = None if policy.breaker is None else breakers.get(key, policy.breaker)
        self.budget = None if policy.budget is None else RetryBudgetState(policy.budget, clock)
        self.bulkhead = None if policy.bulkhead is None else BulkheadState(policy.bulkhead, clock)
        self.throttle = None if policy.throttle is None else ThrottleState(policy.throttle, clock)
        self.chaos = None if policy.chaos is None else injector_for(policy.chaos, clock)


class EndpointTable:
    """Configured endpoints compiled for matching, and the per-host defaults made lazily."""

    def __init__(
        self,
        default: Policy,
        endpoints: Mapping[str, Policy] | None,
        *,
        base_path: str,
        clock: Clock,
        breakers: BreakerRegistry,
    ) -> None:
        self.default = default
        self._clock = clock
        self._breakers = breakers
        entries: list[tuple[str, Endpoint]] = []
        for key, policy in (endpoints or {}).items():
            if not isinstance(policy, Policy):
                raise TypeError(
                    f"endpoints[{key!r}] must be a resilient_client.Policy, "
                    f"not {type(policy).__name__}"
                )
            normalized = parse_endpoint_key(key).key  # report keys in their normal form
            entries.append((key, Endpoint(normalized, merge(default, policy), clock, breakers)))
        self._router = Router(entries)
        self._hosts: dict[tuple[bytes, int | None], Endpoint] = {}  # by host and port
        self._base_path = base_path

    def match(self, request: httpx.Request) -> Endpoint:
        """The endpoint of a request: its most specific key, else its host's default."""
        url = request.url
        if self._router.entries:  # decoding the path is the dearest step: only if used
            path = url.path
            base = self._base_path
            if base and (path == base or path.startswith(base + "/")):
                path = path[len(base) :]
            found = self._router.match(request.method, path)
            if found is not None:
                return found[1]
        # The cheapest properties; the display form is made once per host.
        where = (url.raw_host, url.port)
        endpoint = self._hosts.get(where)
        if endpoint is None:
            host = url.host if url.port is None else f"{url.host}:{url.port}"
            new = Endpoint(f"* {host}", self.default, self._clock, self._breakers)
            # setdefault: two threads racing on a new host end up sharing one endpoint.
            endpoint = self._hosts.setdefault(where, new)
        return endpoint

    def all(self) -> list[Endpoint]:
        """Every endpoint known so far: configured ones, then hosts seen."""
        configured = [endpoint for _, endpoint in self._router.entries]
        return configured + list(self._hosts.values())
