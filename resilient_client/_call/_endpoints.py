"""Endpoints: the routing table and the state kept per endpoint key.

Every call belongs to one endpoint - the most specific configured key, or its host's
default ``"* <host>"`` - and shares that endpoint's state with every other call of it:
retry budget, bulkhead, throttle, breaker, rate limit. State is created once per
endpoint, never per call or per distinct URL, so its number is bounded by the
configuration plus the hosts' defaults, which are kept least recently used first and
capped (:data:`MAX_HOSTS`, 1,024 by default): a client talking to ever new hosts - a
crawler, an upstream redirecting each call somewhere else - keeps the most recent ones.
A host whose breaker is not closed is never evicted (forgetting it would let calls
through to an upstream the breaker is protecting), so the table may exceed the cap by
the number of those.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from itertools import islice

import httpx

from .._breaker import BreakerRegistry
from .._budget import RetryBudgetState
from .._bulkhead import BulkheadState
from .._clock import Clock
from .._deadline import phase_table
from .._hedging import HedgeState
from .._idempotency import IdempotencyRule
from .._policy import Policy, merge
from .._rate_limit import RateLimitState
from .._throttle import ThrottleState
from ..chaos._inject import injector_for
from ._routing import Router, parse_endpoint_key

__all__ = ["MAX_HOSTS", "Endpoint", "EndpointTable"]

MAX_HOSTS = 1024
"""How many hosts' default endpoints (``"* <host>"``) a client keeps by default."""

# How many of the least recently used hosts an insertion looks at for one to evict: the
# ones with a breaker not closed are skipped, and a table full of them must not make every
# new host scan it all.
_EVICTION_SCAN = 16


class Endpoint:
    """One endpoint key: its merged policy and the state its calls share."""

    __slots__ = (
        "attempt",
        "breaker",
        "budget",
        "bulkhead",
        "chaos",
        "failure_if",
        "hedge",
        "idempotency",
        "key",
        "phases",
        "policy",
        "provider",
        "rate_limit",
        "retry_if",
        "throttle",
        "total",
    )

    def __init__(
        self,
        key: str,
        policy: Policy,
        clock: Clock,
        breakers: BreakerRegistry,
        provider: str | None = None,
    ) -> None:
        self.key = key
        self.policy = policy
        #: The host (and port) of a host's default endpoint, which all its calls share;
        #: ``None`` for a configured key, which any host's calls may match.
        self.provider = provider
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
        self.rate_limit = None if policy.rate_limit is None else RateLimitState(policy.rate_limit)
        self.hedge = None if policy.hedging is None else HedgeState(policy.hedging)
        self.retry_if = None if policy.retry is None else policy.retry.retry_if
        self.failure_if = None if policy.breaker is None else policy.breaker.failure_if


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
        max_hosts: int = MAX_HOSTS,
    ) -> None:
        """``max_hosts``: how many hosts' default endpoints are kept (least recently used
        evicted first; see the module docstring). Raises ``ValueError`` below 1."""
        if max_hosts < 1:
            raise ValueError(f"max_hosts must be at least 1, got {max_hosts}")
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
        # By host and port, least recently used first.
        self._hosts: OrderedDict[tuple[bytes, int | None], Endpoint] = OrderedDict()
        self._max_hosts = max_hosts
        self._lock = threading.Lock()  # for insertions and evictions; a hit takes none
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
        hosts = self._hosts
        endpoint = hosts.get(where)
        if endpoint is None:
            return self._add_host(url, where)
        try:  # noqa: SIM105 - suppress() would cost a context manager on every call
            hosts.move_to_end(where)  # (C, atomic under the GIL: no lock on a hit)
        except KeyError:  # evicted by another thread just now: it stays in use anyway
            pass
        return endpoint

    def _add_host(self, url: httpx.URL, where: tuple[bytes, int | None]) -> Endpoint:
        host = url.host if url.port is None else f"{url.host}:{url.port}"
        new = Endpoint(f"* {host}", self.default, self._clock, self._breakers, host)
        with self._lock:
            # Two threads racing on a new host end up sharing one endpoint.
            endpoint = self._hosts.setdefault(where, new)
            if endpoint is new and len(self._hosts) > self._max_hosts:
                self._evict(where)
        return endpoint

    def _evict(self, added: tuple[bytes, int | None]) -> None:
        """Drop the least recently used host whose breaker is closed, other than the one
        just ``added`` (under the lock)."""
        # Copied in one C step: a hit's move_to_end (no lock) must not meet an iteration.
        for where, endpoint in list(islice(self._hosts.items(), _EVICTION_SCAN)):
            breaker = endpoint.breaker
            if where != added and (breaker is None or breaker.is_closed()):
                self._hosts.pop(where, None)
                if breaker is not None:
                    self._breakers.discard(endpoint.key)
                return

    def all(self) -> list[Endpoint]:
        """Every endpoint known so far: configured ones, then hosts seen."""
        configured = [endpoint for _, endpoint in self._router.entries]
        return configured + list(self._hosts.values())
