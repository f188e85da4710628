"""The Redis breaker storage: one breaker per endpoint for a whole fleet.

Kept apart from the storage contract (``_storage.py``) because everything here is
Redis: the optional redis-py import, one connection pool per event loop, the health
bookkeeping that falls back fast and warns rarely, and the wire format of the Lua script
(``_lua.py``), which applies the same state machine as ``_circuit.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import threading
from typing import TYPE_CHECKING, Any, Literal

import anyio.to_thread

from .._clock import SYSTEM_CLOCK, Clock, renew_after_fork
from ._circuit import CLOSED, HALF_OPEN, OPEN, Trip, rate_units
from ._lua import MODES, SCRIPT, Reply
from ._policy import Breaker, BreakerState
from ._storage import BreakerStorageUnavailable, Exchange, SharedView

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = ["RedisBreakerStorage"]

logger = logging.getLogger("resilient_client.breaker")

_STATES: tuple[BreakerState, BreakerState, BreakerState] = (CLOSED, OPEN, HALF_OPEN)
_ADMITTED: tuple[None, Literal["call"], Literal["probe"]] = (None, "call", "probe")


def _key_base(namespace: str, endpoint: str) -> str:
    # Braces delimit Redis Cluster hash tags and appear in endpoint keys ("{id}"):
    # escape them (and the escape character) so the tag is exactly the endpoint.
    escaped = endpoint.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")
    return f"{namespace}:breaker:{{{escaped}}}"


class RedisBreakerStorage:
    """Breaker state shared by every process naming the same Redis and ``namespace``.

    A fleet trips together: the failures of all processes count toward one breaker per
    endpoint, and half-open admits at most ``half_open_max_calls`` probes fleet-wide.
    Each call costs one Redis round trip (a Lua script) while the breaker is closed; a
    half-open probe's outcome costs one more. It also keeps the fleet's kill switches
    (``client.isolate()``): one key per isolated endpoint, with no TTL, which the script
    reads in the same round trip; an endpoint with no breaker reads it with one ``GET``
    per attempt.

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL (redis-py syntax). Nothing
            connects until the first call.
        namespace: prefix of every key; breakers are shared per namespace and endpoint.
        timeout: seconds allowed for connecting and for each Redis command (default 0.05).
        key_ttl: seconds a key outlives its last write (default 3600; never less than
            twice a breaker's longest open period), so abandoned endpoints leave nothing.
        warn_interval: at most one WARNING per this many seconds while Redis fails.
        reconnect_interval: after a failure, seconds during which calls do not try Redis
            at all (default 1.0; 0 = try on every call).
        clock: times ``warn_interval`` and ``reconnect_interval``.

    When Redis fails or is slow, calls go on with each breaker's in-process state (a
    warning is logged, nothing is raised) and share again once Redis answers.
    Raises ``ValueError`` for a malformed URL or a non-positive ``timeout``/``key_ttl``.
    Under asyncio, I/O uses ``redis.asyncio`` (one connection pool per event loop); under
    another async library (trio) each call runs the sync client in a worker thread.
    """

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        namespace: str = "resilient-client",
        *,
        timeout: float = 0.05,
        key_ttl: float = 3600.0,
        warn_interval: float = 30.0,
        reconnect_interval: float = 1.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        for name, value in (("timeout", timeout), ("key_ttl", key_ttl)):
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"{name} must be a positive finite number of seconds")
        for name, value in (
            ("warn_interval", warn_interval),
            ("reconnect_interval", reconnect_interval),
        ):
            if not value >= 0.0:
                raise ValueError(f"{name} must be >= 0 seconds")
        if not namespace:
            raise ValueError("namespace must not be empty")
        self._url = url  # may hold a password: never logged
        self.namespace = namespace
        self._timeout = timeout
        self._key_ttl = key_ttl
        self._warn_interval = warn_interval
        self._reconnect_interval = reconnect_interval
        self._clock = clock
        try:
            import redis
            import redis.asyncio
            import redis.asyncio.retry
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError as exc:  # an optional dependency
            raise ImportError(
                "RedisBreakerStorage needs redis-py: pip install 'resilient-client[redis]'"
            ) from exc
        self._redis = redis
        # Fall back at once: no redis-py retries (its default retries with backoff).
        try:
            sync: redis.Redis | None = redis.Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError:
            sync = None
        if sync is None:
            # Not redis-py's error, nor chained to it (raised outside its except block,
            # so not even as a suppressed context): a '/', '?' or '#' in a password ends
            # the URL's authority there, and redis-py quotes the "port" it then finds,
            # the password's beginning.
            raise ValueError(
                "url is not a valid Redis URL (redis://, rediss:// or unix://; "
                "percent-encode any '/', '?', '#' or '@' in the password)"
            )
        self._sync = sync
        self._async_retry = redis.asyncio.retry.Retry(NoBackoff(), 0)
        self._errors = (redis.RedisError, OSError)
        self._sha = hashlib.sha1(SCRIPT.encode()).hexdigest()
        # One client per event loop (redis.asyncio connections belong to a loop). Not weak:
        # a client refers to its loop, so a weak key would never die; closed loops' clients
        # are dropped when another loop comes along.
        self._async: dict[asyncio.AbstractEventLoop, redis.asyncio.Redis] = {}
        # By endpoint: the policy last seen, its keys and its encoded policy argument.
        self._encoded: dict[str, tuple[Breaker, list[str], str]] = {}
        self._lock = threading.Lock()
        renew_after_fork(self)
        self._round_trips = 0
        self._down = False
        self._next_try = 0.0
        self._next_warning = 0.0

    def _after_fork(self) -> None:
        """In a forked child: a fresh lock, and none of the parent's event loops' clients
        (redis-py's own pools replace the parent's connections in a child)."""
        self._lock = threading.Lock()
        self._async = {}

    @property
    def round_trips(self) -> int:
        """Redis commands sent so far (each a round trip), counted for benchmarks."""
        return self._round_trips

    def __repr__(self) -> str:
        return f"RedisBreakerStorage(namespace={self.namespace!r})"

    # -- the two drivers: structurally identical, one blocking, one awaiting ------------

    def exchange(self, request: Exchange, /) -> SharedView:
        keys, args = self._encode(request)
        self._may_try()
        try:
            self._count()
            try:
                reply = self._sync.evalsha(self._sha, 4, *keys, *args)
            except self._redis.exceptions.NoScriptError:  # a new server: EVAL caches it again
                self._count()
                reply = self._sync.eval(SCRIPT, 4, *keys, *args)
        except self._errors as exc:
            self._failed(exc)
            raise BreakerStorageUnavailable(str(exc)) from exc
        self._succeeded()
        return self._decode(request, reply)

    async def aexchange(self, request: Exchange, /) -> SharedView:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio): keep the loop free with a worker thread
            return await anyio.to_thread.run_sync(self.exchange, request)
        keys, args = self._encode(request)
        self._may_try()
        client = self._async_client(loop)
        try:
            self._count()
            try:
                reply = await client.evalsha(self._sha, 4, *keys, *args)
            except self._redis.exceptions.NoScriptError:
                self._count()
                reply = await client.eval(SCRIPT, 4, *keys, *args)
        except self._errors as exc:
            self._failed(exc)
            raise BreakerStorageUnavailable(str(exc)) from exc
        self._succeeded()
        return self._decode(request, reply)

    # -- kill switches (IsolationStorage): one key beside the breaker's, never expired ----

    def isolate(self, endpoint: str, reason: str, /) -> None:
        """Isolate ``endpoint`` fleet-wide (one ``SET``, with no TTL: an isolation holds
        until restored, whatever ``key_ttl``). Tried even while Redis is marked down."""
        self._command(self._sync.set, self._isolation_key(endpoint), reason)

    def restore(self, endpoint: str, /) -> bool:
        """Lift ``endpoint``'s isolation fleet-wide (one ``DEL``); whether there was one."""
        return bool(self._command(self._sync.delete, self._isolation_key(endpoint)))

    def isolation(self, endpoint: str, /) -> str | None:
        """``endpoint``'s isolation (one ``GET``, asked per attempt of an endpoint without
        a breaker; a breaker's exchange reads it in its own script, at no extra cost)."""
        self._may_try()
        try:
            self._count()
            value = self._sync.get(self._isolation_key(endpoint))
        except self._errors as exc:
            self._failed(exc)
            raise BreakerStorageUnavailable(str(exc)) from exc
        self._succeeded()
        return _text(value)

    async def aisolation(self, endpoint: str, /) -> str | None:
        """:meth:`isolation`, awaited."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio): a worker thread, as aexchange does
            return await anyio.to_thread.run_sync(self.isolation, endpoint)
        self._may_try()
        client = self._async_client(loop)
        try:
            self._count()
            value = await client.get(self._isolation_key(endpoint))
        except self._errors as exc:
            self._failed(exc)
            raise BreakerStorageUnavailable(str(exc)) from exc
        self._succeeded()
        return _text(value)

    def _isolation_key(self, endpoint: str) -> str:
        return f"{_key_base(self.namespace, endpoint)}:i"

    def _command(self, command: Any, *args: Any) -> Any:
        # An operator's isolate() / restore(): tried whatever the health bookkeeping says
        # (it is no call to spare), and its failure told by the caller, not warned here.
        try:
            self._count()
            return command(*args)
        except self._errors as exc:
            raise BreakerStorageUnavailable(str(exc)) from exc

    def close(self) -> None:
        """Close the sync connection pool (the async pools close with :meth:`aclose`)."""
        self._sync.close()

    async def aclose(self) -> None:
        """Close the connection pool of the running event loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        client = self._async.pop(loop, None)
        if client is not None:
            await client.aclose()

    # -- health: fall back fast, warn rarely, recover on the first answer ---------------

    def _may_try(self) -> None:
        if self._down and self._clock.monotonic() < self._next_try:
            raise BreakerStorageUnavailable("Redis unavailable; retrying later")

    def _failed(self, exc: BaseException) -> None:
        now = self._clock.monotonic()
        with self._lock:
            self._down = True
            self._next_try = now + self._reconnect_interval
            warn = now >= self._next_warning
            if warn:
                self._next_warning = now + self._warn_interval
        if warn:
            logger.warning(
                "breaker storage %r unreachable (%s: %s); breakers use in-process state",
                self,
                type(exc).__name__,
                exc,
            )

    def _succeeded(self) -> None:
        if self._down:
            with self._lock:
                was_down, self._down = self._down, False
            if was_down:
                logger.info("breaker storage %r reachable again; breakers are shared", self)

    def _count(self) -> None:
        with self._lock:
            self._round_trips += 1

    # -- wire format ----------------------------------------------------------------------

    def _async_client(self, loop: asyncio.AbstractEventLoop) -> redis.asyncio.Redis:
        client = self._async.get(loop)
        if client is None:
            with self._lock:
                for closed in [other for other in self._async if other.is_closed()]:
                    del self._async[closed]
            client = self._redis.asyncio.Redis.from_url(
                self._url,
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
                retry=self._async_retry,
            )
            self._async[loop] = client
        return client

    def _encode(self, request: Exchange) -> tuple[list[str], list[str]]:
        policy = request.policy
        cached = self._encoded.get(request.endpoint)
        if cached is None or (cached[0] is not policy and cached[0] != policy):
            base = _key_base(self.namespace, request.endpoint)
            keys = [f"{base}:h", f"{base}:w", f"{base}:p", f"{base}:i"]
            cached = self._encoded[request.endpoint] = (
                policy,
                keys,
                _policy_arg(policy, self._key_ttl),
            )
        _, keys, policy_arg = cached
        probe = request.probe
        return keys, [
            policy_arg,
            request.admit_token or "",
            probe.token if probe else "",
            "[{},{},{!r}{}]".format(
                probe.generation if probe else 0,
                -1 if probe is None or probe.bits is None else probe.bits,
                probe.rand if probe else 0.0,
                "".join(f",{generation},{bits}" for generation, bits in request.pending),
            ),
        ]

    @staticmethod
    def _decode(request: Exchange, reply: bytes | str) -> SharedView:
        text = reply.decode() if isinstance(reply, bytes) else reply
        text, isolated, reason = text.partition("\n")
        fields = Reply._make(int(x) for x in text.split(","))
        return SharedView(
            state=_STATES[fields.st],
            generation=fields.gen,
            admitted=_ADMITTED[fields.admitted],
            retry_after=max(0, fields.wait) / 1000.0,
            open_remaining=max(0, fields.open_left) / 1000.0,
            failures=fields.fc if request.policy.window == "consecutive" else fields.nf,
            calls=fields.n,
            slow=fields.ns,
            successes=fields.hs,
            probes=fields.probes,
            trip=Trip(fields.tc, fields.tf, fields.ts, fields.tn),
            isolated=reason if isolated else None,
        )


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _policy_arg(policy: Breaker, key_ttl: float) -> str:
    size = policy.window_size * 1000.0 if policy.window == "time" else policy.window_size
    reset_ms = max(1, round(policy.reset_timeout * 1000.0))
    cap = policy.reset_timeout_max
    max_ms = 0 if cap is None else max(reset_ms, round(cap * 1000.0))
    values = (
        MODES[policy.window],
        policy.failure_threshold,
        repr(float(size)),
        policy.minimum_calls,
        rate_units(policy.failure_rate_threshold),
        rate_units(policy.slow_call_rate_threshold),
        reset_ms,
        policy.half_open_max_calls,
        policy.success_threshold,
        max(round(key_ttl * 1000.0), 2 * max(reset_ms, max_ms)),
        max_ms,
        repr(float(policy.reset_multiplier)),
    )
    return "[" + ",".join(str(v) for v in values) + "]"
