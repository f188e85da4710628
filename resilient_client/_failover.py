"""Failover across origins: which origin each attempt of a call goes to.

:class:`Failover` is the policy (``failover=`` on a client or transport); the client's
``base_url`` is the *primary* origin, ``Failover.origins`` the others, in order.
:class:`FailoverState` is one pipeline's state: the origin later calls start on, and when
the primary is probed again. :class:`OriginBreakers` is what a call to the primary uses as
its breaker: the origins' breakers taken in failover order, asked by the drivers exactly
as they ask one endpoint's breaker (so the drivers do not know failover exists, and a
pipeline without it pays one attribute test per call).

The rules, pure (:func:`first_origin`, :func:`next_origin`, :func:`attempt_order`,
:func:`settled`):

- A call's first attempt goes where later calls stay (the primary, until calls move), or
  to the primary when it is due a probe: its breaker, when not closed, lets a probe
  through (its half-open slots decide); otherwise ``probe_after`` seconds after calls
  left it, one call at a time, then every ``probe_after`` seconds.
- A retry goes to the next origin (after the last one: the primary again), except a
  retry for a 409 or 425 (the same origin is asked again: the request is in progress, or
  too early, *there*). Failover rides on retries: a refused connection, a timeout or a
  retryable status moves the call's next attempt; with ``retry=None`` a call has one
  attempt, and only an open breaker moves it.
- Each origin has its own breaker: the primary's is the endpoint's (named by the
  endpoint key), another origin's is named ``"<endpoint key> @ <origin>"``. An origin
  whose breaker refuses is passed over for the next one, without an attempt; when every
  origin's breaker refuses, the call fails fast with the primary's ``CircuitOpenError``.
- Where later calls start moves when an attempt is answered well (its breaker would count
  a success) at another origin than the call started at, while calls still start there;
  it comes back as soon as the primary answers well (a probe that succeeded).

Only requests to the primary's origin (scheme, host and port) fail over; a request to
any other host, one of the listed origins included, is sent where it points. The
attempt's request is a copy with the origin's scheme, host and port and its ``Host``
header (path, query, body and every other header, the idempotency key and correlation
id included, stay the same); the caller's request is never changed.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, NamedTuple

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ._breaker import Breaker, Rejection
from ._headers import request_copy
from ._logging import logger

if TYPE_CHECKING:
    from ._breaker import BreakerRegistry, EndpointBreaker, Outcome, Permit

__all__ = [
    "Failover",
    "FailoverState",
    "Origin",
    "OriginBreakers",
    "attempt_order",
    "first_origin",
    "next_origin",
    "origin_name",
    "settled",
]

# Retries asked again of the same origin: a 409 to a keyed request means the original is
# still in progress there; a 425 asks for the same request again, later, there.
_SAME_ORIGIN_REASONS = frozenset({"status_409", "status_425"})
# What classifies an attempt's outcome for a call whose breakers are off.
_DEFAULT_BREAKER = Breaker()


def origin_name(url: httpx.URL) -> str:
    """``url``'s origin as this SDK names it: ``"scheme://host"`` or
    ``"scheme://host:port"`` (a default port is left out; the host in its ASCII form)."""
    return f"{url.scheme}://{url.netloc.decode('ascii')}"


def _parse_origin(text: object) -> str:
    """``text`` as an origin name; ``ValueError`` naming it if it is not one."""
    if not isinstance(text, str):
        raise ValueError(f"origins must be URL strings, got {type(text).__name__}")
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL:
        raise ValueError(f"{text!r} is not a URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"{text!r} is not an absolute http or https URL")
    if url.userinfo:  # (not echoed: it may hold a password)
        raise ValueError("an origin must not carry credentials")
    if url.path not in ("", "/") or url.query or url.fragment:
        raise ValueError(
            f"{text!r} is not an origin: give scheme, host and port only (no path or query)"
        )
    return origin_name(url)


class Failover(BaseModel):
    """Send attempts to other origins when the primary (the client's ``base_url``) fails.

    ``origins``: one or more absolute http/https URLs, ``scheme://host[:port]`` with no
    path, query or fragment (a trailing ``/`` is allowed), tried in order after the
    primary; no duplicates, and not the primary itself. ``probe_after``: seconds calls
    stay on another origin before one call tries the primary again, when the primary's
    breaker is closed or off (default 30.0; when its breaker is open, its own
    ``reset_timeout`` and half-open probes decide instead).

    Raises ``ValidationError`` naming the bad value. See the module docstring for when
    an attempt moves, and how calls come back.
    """

    # The messages name the bad origin themselves; the raw input could hold a password.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    origins: tuple[str, ...] = Field(min_length=1)
    probe_after: float = Field(default=30.0, gt=0.0)

    @field_validator("origins", mode="before")
    @classmethod
    def _check_origins(cls, value: object) -> tuple[str, ...]:
        if isinstance(value, str):  # a lone URL would be read as a tuple of characters
            raise ValueError("origins must be a tuple of URLs, not one string")
        if not isinstance(value, list | tuple):
            raise ValueError(f"origins must be a tuple of URLs, got {type(value).__name__}")
        names: list[str] = []
        for item in value:
            name = _parse_origin(item)
            if name in names:
                raise ValueError(f"{item!r} is listed twice (as {name!r})")
            names.append(name)
        return tuple(names)


# -- the rules, pure ---------------------------------------------------------------------


def first_origin(sticky: int, primary_due: bool) -> int:
    """The origin (index; 0 = the primary) of a call's first attempt: where calls stay
    now, or the primary when it is due a probe."""
    return 0 if primary_due else sticky


def next_origin(previous: int, reason: str | None, count: int) -> int:
    """The origin of a retry, after an attempt at ``previous`` retried for ``reason``:
    the next one (after the last, the primary), or the same for a 409 or 425."""
    if reason in _SAME_ORIGIN_REASONS:
        return previous
    return (previous + 1) % count


def attempt_order(start: int, count: int) -> tuple[int, ...]:
    """The origins an attempt may go to, in the order their breakers are asked: from
    ``start`` on, round to the one before it."""
    return tuple(range(start, count)) + tuple(range(start))


def settled(sticky: int, started: int, answered: int) -> int:
    """Where later calls start, after an attempt of a call that started at ``started`` was
    answered well at ``answered``, while calls started at ``sticky``.

    The primary answering well brings calls back to it. Another origin answering a call
    that moved there moves calls to it, but only from where that call started: a call
    still in flight at a secondary must not undo a probe's return to the primary.
    """
    if answered == 0:
        return 0
    if answered != started and sticky == started:
        return answered
    return sticky


# -- one pipeline's state ----------------------------------------------------------------


class Origin(NamedTuple):
    """One origin: its name (``"https://us.api.example.com"``) and the URL parts an
    attempt's request is rewritten with."""

    name: str
    scheme: str
    host: str
    port: int | None
    netloc: str


def _origin(name: str) -> Origin:
    url = httpx.URL(name)
    return Origin(name, url.scheme, url.host, url.port, url.netloc.decode("ascii"))


class FailoverState:
    """One pipeline's failover: its origins, where calls start now, and the probe timer.

    ``base_url`` names the primary (its scheme, host and port; its path is kept by every
    request). Raises ``ValueError`` when there is no ``base_url`` (the primary would be
    a guess) or when ``policy.origins`` lists the primary, ``TypeError`` when ``policy``
    is not a :class:`Failover`.
    """

    def __init__(
        self, policy: object, base_url: httpx.URL | str, breakers: BreakerRegistry
    ) -> None:
        if not isinstance(policy, Failover):
            raise TypeError(
                f"failover must be a resilient_client.Failover, not {type(policy).__name__}"
            )
        url = httpx.URL(str(base_url))
        if not url.host or url.scheme not in ("http", "https"):
            raise ValueError(
                "failover needs the primary origin: give the client (or the transport) "
                "an absolute http(s) base_url"
            )
        primary = origin_name(url)
        if primary in policy.origins:
            raise ValueError(f"failover.origins lists the primary, base_url {primary!r}")
        self.policy = policy
        self.origins = tuple(_origin(name) for name in (primary, *policy.origins))
        count = len(self.origins)
        self._primary_key = (url.scheme, url.raw_host, url.port)
        #: The order origins are asked in, by the origin an attempt starts at.
        self.orders = tuple(attempt_order(start, count) for start in range(count))
        self._registry = breakers
        self._breakers: dict[str, tuple[EndpointBreaker, ...]] = {}  # by endpoint key
        self._off: tuple[None, ...] = (None,) * count
        self._lock = threading.Lock()
        self._sticky = 0
        self._probe_at = 0.0  # (monotonic) when a call next probes the primary

    @property
    def current(self) -> str:
        """The origin later calls start on."""
        return self.origins[self._sticky].name

    def route(self, call: Any) -> None:
        """Give ``call`` its :class:`OriginBreakers` if it goes to the primary's origin."""
        url = call.request.url
        if (url.scheme, url.raw_host, url.port) != self._primary_key:
            return  # another host: sent where it points
        breaker = call.breaker
        if breaker is None:
            breakers: tuple[EndpointBreaker | None, ...] = self._off
            policy = _DEFAULT_BREAKER
        else:
            policy = breaker.policy
            breakers = (breaker, *self._others(call.endpoint.key, policy))
        call.breaker = OriginBreakers(self, call, breakers, policy)

    def _others(self, key: str, policy: Breaker) -> tuple[EndpointBreaker, ...]:
        """The endpoint's breakers at the other origins (kept per endpoint key: a bounded
        set, as only requests to the primary's origin fail over)."""
        found = self._breakers.get(key)
        if found is None or found[0].policy is not policy:
            registry = self._registry
            found = tuple(registry.get(f"{key} @ {o.name}", policy) for o in self.origins[1:])
            self._breakers[key] = found
        return found

    def start(self, primary: EndpointBreaker | None, now: float) -> int:
        """The origin of a call's first attempt (claiming the probe when one is due)."""
        sticky = self._sticky
        if sticky == 0:
            return 0
        if primary is not None and not primary.is_closed():
            # Its breaker decides: a break that is over lets a half-open probe through.
            due = primary.retry_at() is None
        else:
            with self._lock:
                due = now >= self._probe_at
                if due:  # one call probes; the next after another probe_after
                    self._probe_at = now + self.policy.probe_after
        return first_origin(sticky, due)

    def answered(self, started: int, index: int, now: float) -> None:
        """An attempt of a call that started at ``started`` was answered well at ``index``."""
        if index == self._sticky:
            return  # the common case: nothing moves, no lock
        with self._lock:
            before = self._sticky
            after = self._sticky = settled(before, started, index)
            if after != before and before == 0:
                self._probe_at = now + self.policy.probe_after
        if after != before:
            if after == 0:
                logger.info("failover: calls are back on the primary %s", self.origins[0].name)
            else:
                logger.warning(
                    "failover: calls moved from %s to %s",
                    self.origins[before].name,
                    self.origins[after].name,
                )


# -- one call's breaker across origins ---------------------------------------------------


class _OriginPermit(NamedTuple):
    """A permit of the breaker at ``origin`` (an index; ``permit`` ``None``: that origin
    has no breaker)."""

    origin: int
    permit: Permit | None


class OriginBreakers:
    """A call's breaker across origins: the origins' breakers, asked in failover order.

    The drivers use it as they use one endpoint's breaker (``admit`` / ``aadmit``,
    ``record`` / ``arecord``, ``local``, ``policy``...). Admitting an attempt also points
    it at the admitted origin: ``call.sent`` is the request to send, ``call.origin`` the
    origin's name.
    """

    __slots__ = (
        "_at",
        "_breakers",
        "_call",
        "_started",
        "_state",
        "local",
        "policy",
        "slow_call_duration",
    )

    def __init__(
        self,
        state: FailoverState,
        call: Any,
        breakers: tuple[EndpointBreaker | None, ...],
        policy: Breaker,
    ) -> None:
        self._state = state
        self._call = call
        self._breakers = breakers
        self.policy = policy
        self.slow_call_duration = breakers[0].slow_call_duration if breakers[0] else None
        self.local = all(b is None or b.local for b in breakers)
        self._started = 0  # the origin of the call's first attempt
        self._at = 0  # the origin of its last attempt

    def _order(self) -> tuple[int, ...]:
        call, state = self._call, self._state
        if call.attempts == 0:
            start = self._started = state.start(self._breakers[0], call.clock.monotonic())
        else:
            verdict = call.verdict
            reason = None if verdict is None else verdict.reason
            start = next_origin(self._at, reason, len(state.origins))
        return state.orders[start]

    def _admitted(self, index: int, permit: Permit | None) -> _OriginPermit:
        """Point the call's next attempt at origin ``index``."""
        self._at = index
        call = self._call
        origin = self._state.origins[index]
        sent = call.request if index == 0 else _moved(call.request, origin)
        call.sent = sent
        call.origin = origin.name
        if call.view is not None:  # observers see (and add headers to) what is sent
            call.view.request = sent
        return _OriginPermit(index, permit)

    def admit(self) -> _OriginPermit | Rejection:
        """Admit the attempt at the first origin whose breaker lets it through; else the
        primary's rejection. An endpoint the fleet isolated (a kill switch) goes nowhere."""
        refused: Rejection | None = None
        for index in self._order():
            breaker = self._breakers[index]
            permit = None if breaker is None else breaker.admit()
            if not isinstance(permit, Rejection):
                try:
                    isolated = self._fleet_isolation(index)
                except BaseException:
                    # Interrupted reading the kill switch (a Redis GET): the permit,
                    # maybe a probe's slot, goes back, or it is held until its lease ends.
                    if permit is not None:
                        breaker.release(permit)  # type: ignore[union-attr]
                    raise
                if isolated is None:
                    return self._admitted(index, permit)
                if permit is not None:
                    breaker.release(permit)  # type: ignore[union-attr]
                return isolated
            if permit.isolated is not None:
                return permit
            if refused is None or index == 0:
                refused = permit
        assert refused is not None  # every origin has a breaker that refused
        return refused

    async def aadmit(self) -> _OriginPermit | Rejection:
        """:meth:`admit`, awaiting breakers whose state is shared."""
        refused: Rejection | None = None
        for index in self._order():
            breaker = self._breakers[index]
            permit = None if breaker is None else await breaker.aadmit()
            if not isinstance(permit, Rejection):
                try:
                    isolated = await self._afleet_isolation(index)
                except BaseException:  # cancelled mid-read: as admit() does
                    if permit is not None:
                        await breaker.arelease(permit)  # type: ignore[union-attr]
                    raise
                if isolated is None:
                    return self._admitted(index, permit)
                if permit is not None:
                    await breaker.arelease(permit)  # type: ignore[union-attr]
                return isolated
            if permit.isolated is not None:
                return permit
            if refused is None or index == 0:
                refused = permit
        assert refused is not None
        return refused

    # A fleet-wide kill switch is kept under the endpoint's key, beside the primary's
    # breaker, whose exchange carries it: an attempt admitted by another origin's breaker
    # (or with no breaker at the primary) reads it from the storage - a read per such
    # attempt, paid only by failover clients with a shared storage.

    def _fleet_isolation(self, index: int) -> Rejection | None:
        fleet = self._call._pipeline.isolations
        if fleet.shared is None or (index == 0 and self._breakers[0] is not None):
            return None
        return self._isolation(fleet.read(self._call.endpoint.key))

    async def _afleet_isolation(self, index: int) -> Rejection | None:
        fleet = self._call._pipeline.isolations
        if fleet.shared is None or (index == 0 and self._breakers[0] is not None):
            return None
        return self._isolation(await fleet.aread(self._call.endpoint.key))

    def _isolation(self, reason: str | None) -> Rejection | None:
        if reason is None:
            return None
        call = self._call
        return Rejection(call.endpoint.key, call.clock.monotonic(), "closed", reason)

    def record(self, permit: _OriginPermit, outcome: Outcome, duration: float) -> None:
        """Count ``outcome`` with the admitting origin's breaker; an origin answering
        well (a success) may move where later calls start."""
        if permit.permit is not None:
            self._breakers[permit.origin].record(permit.permit, outcome, duration)  # type: ignore[union-attr]
        if outcome == "success":
            self._state.answered(self._started, permit.origin, self._call.clock.monotonic())

    async def arecord(self, permit: _OriginPermit, outcome: Outcome, duration: float) -> None:
        """:meth:`record`, awaiting a breaker whose state is shared."""
        if permit.permit is not None:
            await self._breakers[permit.origin].arecord(permit.permit, outcome, duration)  # type: ignore[union-attr]
        if outcome == "success":
            self._state.answered(self._started, permit.origin, self._call.clock.monotonic())

    def release(self, permit: _OriginPermit) -> None:
        self.record(permit, "ignored", 0.0)

    async def arelease(self, permit: _OriginPermit) -> None:
        await self.arecord(permit, "ignored", 0.0)

    def retry_at(self) -> float | None:
        """When some origin could next admit an attempt; ``None`` if one could now."""
        soonest: float | None = None
        for breaker in self._breakers:
            at = None if breaker is None else breaker.retry_at()
            if at is None:
                return None
            soonest = at if soonest is None else min(soonest, at)
        return soonest


def _moved(request: httpx.Request, origin: Origin) -> httpx.Request:
    """A copy of ``request`` addressed to ``origin`` (its URL's scheme, host and port, and
    its Host header); the rest is shared with ``request``, which is left as it was."""
    copy = request_copy(request)
    copy.url = request.url.copy_with(scheme=origin.scheme, host=origin.host, port=origin.port)
    copy.headers["Host"] = origin.netloc
    return copy
