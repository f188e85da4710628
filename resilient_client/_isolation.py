"""Kill switches: endpoints an operator isolated (``client.isolate()``), refused until restored.

An isolation is the operator's decision, not a breaker's: it holds whatever the breaker
policy says (also with ``breaker=None``), never expires, and ends only with
``client.restore()``. Every attempt of an isolated endpoint fails fast with
``CircuitOpenError`` (``reason == "isolated"``, the operator's reason in its message)
without reaching the server, and is handled as an open breaker's refusal: not retried,
the fallback asked, a keyed write of an outbox endpoint parked.

Where an isolation lives:

- In this process, :attr:`IsolationTable.local`, which the drivers test once per attempt
  (one truth test while nothing is isolated: the success path pays nothing more).
- With a shared breaker storage that keeps isolations (an
  :class:`~._breaker._storage.IsolationStorage`: ``MemoryBreakerStorage``,
  ``RedisBreakerStorage``), beside the endpoint's breaker state, for every process using
  it, from their next call on. An endpoint with a breaker learns of it from the exchange
  its breaker makes with the storage on every call anyway (Redis: the same script, no
  extra round trip); one without a breaker asks the storage once per attempt
  (:meth:`IsolationTable.read`; Redis: one ``GET``). The storage's last answer is
  remembered, so an isolation keeps holding while the storage cannot be reached.

When the storage cannot be reached, ``isolate()`` isolates the endpoint in this process
only and logs a WARNING saying so (nothing is lost, the operator is told; isolate again
once the storage answers to isolate it fleet-wide); ``restore()`` likewise restores this
process and warns that the fleet's isolation may hold. A storage that keeps no isolations
(a third-party :class:`~._breaker.BreakerStorage`) is still accepted: isolations are then
local, and a WARNING says so once per client.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from ._breaker import (
    BreakerStorage,
    BreakerStorageUnavailable,
    EndpointBreaker,
    IsolationStorage,
)
from ._call._routing import parse_endpoint_key
from ._clock import renew_after_fork
from ._config import _hint

__all__ = ["MAX_REASON", "IsolationTable", "check_reason", "endpoint_key"]

logger = logging.getLogger("resilient_client")

MAX_REASON = 200
"""The longest reason ``isolate()`` accepts, in characters (it goes into error messages)."""


def check_reason(reason: object) -> str:
    """``reason`` as an isolation keeps it (stripped). ``TypeError`` if it is not a str;
    ``ValueError`` if it is empty, longer than :data:`MAX_REASON`, or not one printable
    line (it ends up in one-line error messages, logs and ``health()``)."""
    if not isinstance(reason, str):
        raise TypeError(f"reason must be a str saying why, not {type(reason).__name__}")
    text = reason.strip()
    if not text:
        raise ValueError("reason must not be empty: say why the endpoint is isolated")
    if len(text) > MAX_REASON or not text.isprintable():
        raise ValueError(f"reason must be one printable line of at most {MAX_REASON} characters")
    return text


def endpoint_key(text: object, known: Iterable[str]) -> str:
    """The endpoint key ``text`` names, in its normal form: one of ``known`` (the
    client's configured keys and the hosts' defaults it has seen), or any host's default
    ``"* <host>"`` (a host may be isolated before its first call).

    ``TypeError`` if ``text`` is not a str; ``ValueError`` naming it if it is malformed
    or unknown, with a "did you mean" for a known key close to it.
    """
    if not isinstance(text, str):
        raise TypeError(f"endpoint key must be a str, not {type(text).__name__}")
    names = sorted(set(known))
    parts = text.split()
    if len(parts) == 2 and parts[0] == "*" and "/" not in parts[1]:
        return f"* {parts[1].lower()}"  # a host's default endpoint
    try:
        key = parse_endpoint_key(text).key
    except ValueError as exc:
        raise ValueError(f"{exc}{_hint(text, names) if names else ''}") from None
    if key not in names:
        known_ones = _hint(text, names) if names else " (this client configures none)"
        raise ValueError(f"unknown endpoint key {text!r}{known_ones}")
    return key


class IsolationTable:
    """The kill switches of one pipeline (see the module docstring).

    ``storage``: the pipeline's breaker storage (``None``: in-process only).
    """

    def __init__(self, storage: BreakerStorage | None) -> None:
        # Reason by endpoint key, of isolations in force in this process only (no storage,
        # one that keeps no isolations, or one that could not be reached). Mutated in
        # place: the drivers hold it.
        self.local: dict[str, str] = {}
        self._storage = storage
        self.shared: IsolationStorage | None = (
            storage if isinstance(storage, IsolationStorage) else None
        )
        # The shared storage's last answer for endpoints asked without a breaker (those
        # with one keep it on the breaker, EndpointBreaker.isolated).
        self._seen: dict[str, str] = {}
        self._warned = False
        self._lock = threading.Lock()
        renew_after_fork(self)

    def _after_fork(self) -> None:
        """In a forked child: a fresh lock (another thread of the parent may hold it)."""
        self._lock = threading.Lock()

    def isolate(self, key: str, reason: str, breaker: EndpointBreaker | None) -> None:
        """Isolate ``key`` (already checked) for ``reason`` (already checked); ``breaker``
        is the endpoint's, if it has one yet. Warns as the module docstring says."""
        shared = self.shared
        if shared is not None:
            try:
                shared.isolate(key, reason)
            except BreakerStorageUnavailable as exc:
                logger.warning(
                    "endpoint %r isolated in this process only: the breaker storage %r "
                    "could not be reached (%s); isolate it again once it answers to "
                    "isolate it fleet-wide",
                    key,
                    self._storage,
                    exc,
                    extra={"endpoint": key},
                )
            else:
                # Fleet-wide now. Remembered as the storage's last word, so it holds here
                # should the storage become unreachable before the next call asks.
                with self._lock:
                    self._seen[key] = reason
                    self.local.pop(key, None)
                if breaker is not None:
                    breaker.isolated = reason
                return
        elif self._storage is not None and not self._warned:
            self._warned = True
            logger.warning(
                "breaker storage %r keeps no isolations (it is no IsolationStorage): "
                "isolated endpoints are refused in this process only",
                self._storage,
                extra={"endpoint": key},
            )
        with self._lock:
            self.local[key] = reason

    def restore(self, key: str, breaker: EndpointBreaker | None) -> bool:
        """Lift ``key``'s isolation; whether it was isolated, as far as this process or
        the shared storage knew. Warns if the storage could not be reached."""
        with self._lock:
            found = self.local.pop(key, None) is not None
            found = self._seen.pop(key, None) is not None or found
        if breaker is not None and breaker.isolated is not None:
            breaker.isolated = None
            found = True
        shared = self.shared
        if shared is not None:
            try:
                found = shared.restore(key) or found
            except BreakerStorageUnavailable as exc:
                logger.warning(
                    "endpoint %r restored in this process only: the breaker storage %r "
                    "could not be reached (%s); the fleet's isolation, if any, holds until "
                    "restore() reaches it",
                    key,
                    self._storage,
                    exc,
                    extra={"endpoint": key},
                )
        return found

    def reason_for(self, key: str, breaker: EndpointBreaker | None) -> str | None:
        """``key``'s isolation as this process knows it (no I/O), for ``health()``."""
        reason = self.local.get(key) or self._seen.get(key)
        if reason is None and breaker is not None:
            reason = breaker.isolated
        return reason

    # -- endpoints without a breaker under a shared storage: one read per attempt -------

    def read(self, key: str) -> str | None:
        """``key``'s isolation in the shared storage (blocking), or the storage's last
        answer if it cannot be reached."""
        assert self.shared is not None  # the drivers ask only when there is one
        try:
            reason = self.shared.isolation(key)
        except BreakerStorageUnavailable:
            return self._seen.get(key)
        return self._remember(key, reason)

    async def aread(self, key: str) -> str | None:
        """:meth:`read`, awaited."""
        assert self.shared is not None
        try:
            reason = await self.shared.aisolation(key)
        except BreakerStorageUnavailable:
            return self._seen.get(key)
        return self._remember(key, reason)

    def _remember(self, key: str, reason: str | None) -> str | None:
        if reason is None:
            if key in self._seen:
                with self._lock:
                    self._seen.pop(key, None)
        elif self._seen.get(key) != reason:
            with self._lock:
                self._seen[key] = reason
        return reason
