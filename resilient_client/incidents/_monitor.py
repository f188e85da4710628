"""The incident monitor: an observer of calls that opens, escalates and resolves incidents.

Two halves, so that a call pays only for counting:

- **On the call path** (:meth:`IncidentMonitor.on_event`): a call's end is counted into
  its endpoint's :class:`~._rules.CallWindow` under a lock held for a few integer
  stores, a failed call is appended to a bounded queue (references only), and the first
  call of each new window bucket wakes the monitor's thread. No I/O, no parsing, nothing
  that can raise to the caller.
- **On the monitor's thread**, once per window bucket (driven by the calls' own clock
  readings, so a fake clock drives it too), on a breaker opening, and on :meth:`flush`:
  failures become evidence, every endpoint's health is judged, and each provider's
  incident moves through its lifecycle in the store; the alerts that produces go to each
  sink's own bounded queue (``_sinks.Delivery``). With the system clock the thread also
  wakes by itself once per bucket, so incidents resolve when traffic stops.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import threading
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from .._call._events import (
    BreakerStateChanged,
    CallEnded,
    CallRejected,
    CallView,
    Event,
    RetryRefused,
    RetryScheduled,
)
from .._call._routing import parse_endpoint_key
from .._clock import Clock, SystemClock, default_clock
from .._exceptions import WriteParkedMixin
from ._evidence import Book, Failure, evidence
from ._incident import (
    Alert,
    ClientActions,
    Contribution,
    Incident,
    Record,
    Report,
    Severity,
    advance,
    utc,
)
from ._open import open_store
from ._rules import (
    BOUNDS,
    DOWN,
    HEALTHY,
    CallWindow,
    Health,
    HealthRules,
    HealthState,
    judge,
)
from ._sinks import AlertSink, Delivery
from ._statuspage import StatusPage
from ._stores import IncidentStore, MemoryIncidentStore

__all__ = ["IncidentMonitor"]

logger = logging.getLogger("resilient_client.incidents")

_FAILURE_QUEUE = 256  # failed calls awaiting the monitor's thread; more are counted only
_WAKE_AT = 128  # queue length that wakes the thread before the bucket ends
_ACTIONS = ("retries", "budget_refusals", "fast_failures", "shed", "fallbacks", "writes_parked")


class _Endpoint:
    """One endpoint of one provider: its window and running counters."""

    __slots__ = ("actions", "breaker_open", "key", "provider", "since", "state", "taken",
                 "window")  # fmt: skip

    def __init__(self, key: str, provider: str, width: float, since: float) -> None:
        self.key = key
        self.provider = provider
        self.window = CallWindow(width)
        self.actions = [0] * len(_ACTIONS)
        self.taken = (0, 0, (0,) * len(_ACTIONS))  # the counters at the last evaluation
        self.breaker_open = False
        self.state: HealthState = HEALTHY
        self.since = since


class IncidentMonitor:
    """Watches calls, judges health per endpoint, keeps incidents per provider, alerts.

    Args:
        rules: :class:`HealthRules` (default ``HealthRules()``).
        sinks: where alerts go (:class:`~._sinks.AlertSink`: ``LogSink``, ``WebhookSink``,
            ``PagerDutySink``, ``SlackSink`` or one's own); each gets its own bounded
            queue and thread.
        store: ``None`` (in memory), ``"sqlite:///path.db"``, a ``RedisIncidentStore`` or
            any ``IncidentStore``. A store that fails at run time is replaced by memory
            (one warning), which goes on with the incident the store last had; one paged
            meanwhile stays in memory until it resolves. A SQLite file that is not an
            incident store raises ``IncidentStoreError`` here.
        critical: endpoint keys whose outage makes an incident ``"critical"``.
        status_page: the provider's Atlassian Statuspage (``"https://status.example.com"``)
            for every provider, or ``{provider: url}``; ``None`` for none.
        clock: time source (default: the process's default clock); UTC times for the
            record come from its ``wall()``.

    Give it to a client as ``incidents=monitor`` (or in ``observers=``); one monitor may
    watch many clients. Raises ``TypeError``/``ValueError`` for bad arguments.
    """

    #: The events the monitor counts: the pipeline builds no others for it.
    events = frozenset({CallEnded, RetryScheduled, RetryRefused, CallRejected, BreakerStateChanged})

    def __init__(
        self,
        *,
        rules: HealthRules | None = None,
        sinks: Iterable[AlertSink] = (),
        store: IncidentStore | str | None = None,
        critical: Iterable[str] = (),
        status_page: str | Mapping[str, str] | None = None,
        clock: Clock | None = None,
    ) -> None:
        if rules is not None and not isinstance(rules, HealthRules):
            raise TypeError(f"rules must be a HealthRules, not {type(rules).__name__}")
        self.rules = rules = rules or HealthRules()
        sinks = tuple(sinks)
        for sink in sinks:
            if not isinstance(sink, AlertSink):
                raise TypeError(f"sinks must be AlertSinks, not {type(sink).__name__}")
        if isinstance(critical, str):
            raise TypeError("critical must be a collection of endpoint keys, not one string")
        self.critical = frozenset(_endpoint_key(key) for key in critical)
        self._clock = clock = clock or default_clock()
        self._store = open_store(store)
        self._fallback: MemoryIncidentStore | None = None
        self._seen: dict[str, Record | None] = {}  # the store's latest record, by provider
        self._degraded = False
        self._deliveries = [Delivery(sink) for sink in sinks]
        self._status = StatusPage.configured(status_page, clock)
        self._width = rules.bucket
        self._process = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._lock = threading.Lock()
        self._endpoints: dict[tuple[str, str], _Endpoint] = {}  # by (key, provider)
        self._failures: deque[Failure] = deque(maxlen=_FAILURE_QUEUE)
        self._books: dict[str, Book] = {}
        self._open: set[str] = set()
        self._suppressed: dict[str, tuple[float, str]] = {}
        self._tick = -1
        self._tripped = False  # a breaker opened: the next failed call wakes the thread
        self._wake = threading.Condition()
        self._requests: list[tuple[float, float, threading.Event | None]] = []
        self._thread: threading.Thread | None = None
        self._closed = False
        self._evaluating = threading.Lock()
        self._self_ticking = isinstance(clock, SystemClock)

    def __repr__(self) -> str:
        return f"IncidentMonitor(store={self._store!r}, sinks={len(self._deliveries)})"

    # -- the call path ---------------------------------------------------------------

    def on_event(self, call: CallView | None, event: Event) -> None:
        """Count ``event`` (the observer protocol). Never raises; no I/O."""
        try:
            if type(event) is CallEnded:
                response, error, fallback, _ = event
                if (
                    error is None
                    and not fallback
                    and (status := response.status_code) < 500  # type: ignore[union-attr]
                    and status != 429
                ):
                    # A success, most calls: one bin of the newest bucket's histogram,
                    # bumped under the lock; everything else waits for the bucket's end.
                    endpoint = self._endpoints.get((call.endpoint, call.provider))  # type: ignore[union-attr]
                    if endpoint is not None:
                        now = self._clock.monotonic()
                        window = endpoint.window
                        with self._lock:
                            if now // self._width == window.head:  # (a float: no int())
                                window.newest[bisect_left(BOUNDS, now - call.started)] += 1  # type: ignore[union-attr]
                                return
                self._ended(call, event)  # type: ignore[arg-type]
                return
            kind = type(event)
            if kind is RetryScheduled:
                self._action(call, 0)
            elif kind is RetryRefused:
                if event.reason == "budget":  # type: ignore[union-attr]
                    self._action(call, 1)
            elif kind is CallRejected:
                self._action(call, 2 if event.kind in ("breaker", "isolated") else 3)  # type: ignore[union-attr]
            elif kind is BreakerStateChanged:
                self._breaker(event)  # type: ignore[arg-type]
        except Exception:  # an observer must never fail a call
            logger.debug("incident monitor: event not counted", exc_info=True)

    def _endpoint(self, call: CallView) -> _Endpoint:
        key = (call.endpoint, call.provider)
        found = self._endpoints.get(key)
        if found is None:
            with self._lock:
                found = self._endpoints.get(key)
                if found is None:
                    found = _Endpoint(call.endpoint, call.provider, self._width, self._clock.wall())
                    self._endpoints[key] = found
        return found

    def _action(self, call: CallView | None, which: int) -> None:
        if call is not None:
            endpoint = self._endpoint(call)
            with self._lock:
                endpoint.actions[which] += 1

    def _ended(self, call: CallView, event: CallEnded) -> None:
        """Count a call's end: a failure, or the first call of a bucket or an endpoint."""
        endpoint = self._endpoint(call)
        error = event.error
        fallback = event.fallback
        parked = False
        if error is not None:
            if not isinstance(error, Exception):
                return  # cancelled by the caller: no evidence either way
            parked = isinstance(error, WriteParkedMixin)
            failed = True
        else:
            status = event.response.status_code  # type: ignore[union-attr]
            failed = fallback or status >= 500 or status == 429
        record = event.info
        attempts = call.attempts if record is None else record.attempts
        now = self._clock.monotonic()
        wall = self._clock.wall() if failed else 0.0
        index = int(now // self._width)
        tick = False
        with self._lock:
            if fallback:
                endpoint.actions[4] += 1
            if parked:
                endpoint.actions[5] += 1
            if attempts:  # refused locally: nothing the provider did
                endpoint.window.add(index, now - call.started, failed, wall)
            if index > self._tick:
                self._tick = index
                tick = True
            if self._tripped and failed:
                self._tripped = False
                tick = True
        if failed and attempts:
            failures = self._failures
            failures.append(
                Failure(wall, endpoint.provider, endpoint.key, call.request, event.response,
                        error, call.correlation_id, call.idempotency_key, attempts)
            )  # fmt: skip
            tick = tick or len(failures) == _WAKE_AT
        if tick:
            self._request(now, wall or self._clock.wall(), None)

    def _breaker(self, event: BreakerStateChanged) -> None:
        opened = event.new == "open"
        index = int(self._clock.monotonic() // self._width)
        with self._lock:
            sharing = [e for e in self._endpoints.values() if e.key == event.endpoint]
            if opened and len(sharing) > 1:
                # The event names no provider, and clients of several providers may use
                # one key: a provider whose calls neither failed in the window nor were
                # retried since the last evaluation did not trip this breaker.
                sharing = [
                    e
                    for e in sharing
                    if e.window.stats(index).failures or e.actions[0] > e.taken[2][0]
                ]
            for endpoint in sharing:
                endpoint.breaker_open = opened
        if opened:
            # An outage is judged within one breaker trip, but not before the call that
            # tripped it is counted: that call's end (any failed call's) wakes the thread.
            self._tripped = True

    # -- waking the monitor's thread ----------------------------------------------------

    def _request(self, now: float, wall: float, done: threading.Event | None) -> None:
        with self._wake:
            if self._closed:
                if done is not None:
                    done.set()
                return
            self._requests.append((now, wall, done))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="rc-incident-monitor", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                if not self._requests and not self._closed:
                    self._wake.wait(self._width if self._self_ticking else None)
                requests, self._requests = self._requests, []
                closed = self._closed
            if requests:
                now, wall = requests[-1][0], requests[-1][1]
            elif closed:
                return
            else:  # woken by time alone: the system clock
                now, wall = self._clock.monotonic(), self._clock.wall()
            try:
                self.evaluate(now, wall)
            except Exception:
                logger.exception("incident monitor: evaluation failed")
            for _, _, done in requests:
                if done is not None:
                    done.set()
            if closed:
                return

    # -- evaluation (the monitor's thread) --------------------------------------------

    def evaluate(self, now: float | None = None, wall: float | None = None) -> list[Alert]:
        """Judge health and move incidents now, on the calling thread; the alerts sent.

        The monitor's thread does this on its own; call it from tests or a scheduler.
        ``now``/``wall``: the clock's monotonic and wall readings (default: read now).
        """
        now = self._clock.monotonic() if now is None else now
        wall = self._clock.wall() if wall is None else wall
        with self._evaluating:
            return self._evaluate(now, wall)

    def _evaluate(self, now: float, wall: float) -> list[Alert]:
        width = self._width
        failures = self._failures
        while failures:
            failure = failures.popleft()
            found, category = evidence(failure)
            book = self._books.setdefault(failure.provider, Book())
            book.add(int(failure.wall // width), found, category)
        index = int(now // width)
        providers: dict[str, list[tuple[_Endpoint, Any, tuple[int, int, tuple[int, ...]]]]] = {}
        with self._lock:
            endpoints = list(self._endpoints.values())
            for endpoint in endpoints:
                raw = endpoint.window.stats(index)
                counters = (*endpoint.window.totals(), tuple(endpoint.actions))
                before, endpoint.taken = endpoint.taken, counters
                providers.setdefault(endpoint.provider, []).append((endpoint, raw, before))
                del counters
        alerts: list[Alert] = []
        for provider, members in providers.items():
            report = self._report(provider, members, now, wall, index)
            if (
                report.severity is None
                and provider not in self._open
                and (report.delta.calls == 0 or isinstance(self._store, MemoryIncidentStore))
            ):
                continue
            alerts.extend(self._advance(provider, report))
        if self._open and self._status is not None:
            self._status.poke()
        for alert in alerts:
            for delivery in self._deliveries:
                delivery.offer(alert)
        return alerts

    def _report(self, provider: str, members: list[Any], now: float, wall: float,
                index: int) -> Report:  # fmt: skip
        rules = self.rules
        states: dict[str, HealthState] = {}
        transitions: list[tuple[float, str]] = []
        book = self._books.setdefault(provider, Book())
        window = book.window(int(wall // self._width) - 9)
        delta, book.delta = book.delta, Contribution()
        severity: Severity | None = None
        for endpoint, stats, _ in members:
            state = judge(endpoint.state, stats, endpoint.breaker_open, rules)
            if state != endpoint.state:
                rate = stats.failures / stats.calls if stats.calls else 0.0
                why = "breaker open" if endpoint.breaker_open else (
                    f"{stats.failures} of {stats.calls} calls failed ({rate:.0%})")  # fmt: skip
                if stats.p95 is not None:
                    why += f", p95 {stats.p95:.3f} s"
                transitions.append((wall, f"{endpoint.key}: {endpoint.state} → {state}, {why}"))
                endpoint.state, endpoint.since = state, wall
            states[endpoint.key] = state
            if state == DOWN:
                level: Severity = "critical" if endpoint.key in self.critical else "error"
            elif state != HEALTHY:
                level = "warning"
            else:
                continue
            if severity is None or RANK_SEVERITY[level] > RANK_SEVERITY[severity]:
                severity = level
            window.by_endpoint[endpoint.key] = (stats.calls, stats.failures)
        for endpoint, stats, before in members:
            calls, failed, actions = endpoint.taken
            delta.calls += calls - before[0]
            delta.failed_calls += failed - before[1]
            delta.by_endpoint[endpoint.key] = (calls - before[0], failed - before[1])
            delta.actions = delta.actions + ClientActions(
                **{name: actions[i] - before[2][i] for i, name in enumerate(_ACTIONS)}
            )
            window.calls += stats.calls
            window.failed_calls += stats.failures
            if stats.first_failure is not None and (
                window.first_failure is None or stats.first_failure < window.first_failure
            ):
                window.first_failure = stats.first_failure
        # Client actions are counted since the last evaluation only, also on joining.
        window.actions = delta.actions
        unhealthy = [key for key, state in states.items() if state != HEALTHY]
        return Report(
            process=self._process,
            provider=provider,
            now=wall,
            states=states,
            severity=severity,
            window=window,
            delta=delta,
            transitions=transitions,
            provider_status=None if self._status is None else self._status.latest(provider),
            muted=self._muted(provider, unhealthy, wall),
        )

    def _advance(self, provider: str, report: Report) -> list[Alert]:
        after: list[Any] = [None]

        def change(record: Any) -> Any:
            result = advance(record, report, self.rules, lambda: self._new_id(provider, report))
            after[0] = result[0]
            return result

        def unless_kept(record: Any) -> Any:
            # An incident paged while the store was away, and that the store does not
            # know (it came back empty, or another process opened its own), stays in this
            # process until it resolves: its resolve must follow under its dedup_key.
            kept = self._kept(provider)
            if kept is not None and (record is None or record.incident.id != kept.incident.id):
                raise _Kept
            return change(record)

        try:
            alerts = self._store.update(provider, unless_kept)
        except _Kept:
            alerts = self._fallback.update(provider, change)  # type: ignore[union-attr]
        except Exception as exc:
            if self._fallback is None or not self._degraded:
                logger.warning(
                    "incident store %r failed (%s); keeping incidents in this process until "
                    "it answers again", self._store, type(exc).__name__,
                )  # fmt: skip
            self._degraded = True
            if self._fallback is None:
                self._fallback = MemoryIncidentStore()
            seen = self._seen.get(provider)
            if seen is not None and self._kept(provider) is None:
                # The incident the store last had goes on here: one already paged is
                # not paged again under a new dedup_key.
                self._fallback.put(provider, seen)
            alerts = self._fallback.update(provider, change)
            return self._note(provider, after[0], alerts)
        else:
            self._seen[provider] = after[0]
        if self._degraded:
            logger.warning("incident store %r answers again", self._store)
            self._degraded = False
        return self._note(provider, after[0], alerts)

    def _kept(self, provider: str) -> Record | None:
        """The fallback's incident for ``provider`` if it is open and was paged."""
        record = None if self._fallback is None else self._fallback.latest(provider)
        if record is not None and record.incident.state == "open" and record.triggered:
            return record
        return None

    def _note(self, provider: str, record: Record | None, alerts: list[Alert]) -> list[Alert]:
        if record is not None and record.incident.state == "open":
            self._open.add(provider)
        else:
            self._open.discard(provider)
        return alerts

    def _new_id(self, provider: str, report: Report) -> str:
        stamp = utc(report.now).strftime("%Y%m%dT%H%M%SZ")
        slug = "".join(c if c.isalnum() or c in ".-" else "-" for c in provider)[:60]
        return f"{slug}-{stamp}-{secrets.token_hex(3)}"

    def _muted(self, provider: str, unhealthy: list[str], wall: float) -> str | None:
        """The reason alerts are muted: the provider is, or every unhealthy endpoint."""

        def active(target: str) -> str | None:
            found = self._suppressed.get(target)
            return found[1] if found is not None and found[0] > wall else None

        reason = active(provider)
        if reason is None and unhealthy:
            reasons = [active(key) for key in unhealthy]
            if all(reasons):
                reason = reasons[0]
        return reason

    # -- the public surface -------------------------------------------------------------

    def suppress(
        self, provider_or_endpoint: str, *, until: datetime | float, reason: str = "maintenance"
    ) -> None:
        """Mute alerts for a provider (``"api.example.com"``, with ``:port`` if not the
        default) or an endpoint key until ``until`` (an aware datetime, or seconds from
        now); evidence is still recorded, and the trigger is sent when the mute ends if
        the incident is still open. An endpoint key is taken in its normal form, as
        ``critical`` takes it (``"post /v1/payments/"`` mutes ``"POST /v1/payments"``), a
        provider in lower case. ``ValueError`` for a naive datetime, a number of seconds
        that is not positive, a URL or a malformed endpoint key: each would mute nothing."""
        target = provider_or_endpoint.strip()
        if " " in target:
            target = _endpoint_key(target)
        elif "/" in target or not target:
            raise ValueError(
                f"suppress() takes a provider ('api.example.com', with ':port' if not the "
                f"default) or an endpoint key ('POST /v1/payments'), not {target!r}"
            )
        else:
            target = target.lower()
        if isinstance(until, datetime):
            if until.tzinfo is None:
                raise ValueError("until must be an aware datetime (UTC) or seconds from now")
            deadline = until.timestamp()
        else:
            seconds = float(until)
            if not (math.isfinite(seconds) and seconds > 0):
                raise ValueError(f"until must be a positive number of seconds, got {until!r}")
            deadline = self._clock.wall() + seconds
        self._suppressed[target] = (deadline, reason[:200])

    def health(self) -> dict[str, Health]:
        """Every endpoint seen, by key (``"key (provider)"`` when a key is seen on two
        providers), as last judged, with its window's figures now."""
        index = int(self._clock.monotonic() // self._width)
        with self._lock:
            rows = [(e, e.window.stats(index)) for e in self._endpoints.values()]
        seen: set[str] = set()
        found: dict[str, Health] = {}
        for endpoint, stats in rows:
            name = (
                endpoint.key
                if endpoint.key not in seen
                else f"{endpoint.key} ({endpoint.provider})"
            )
            seen.add(endpoint.key)
            found[name] = Health(
                state=endpoint.state,
                calls=stats.calls,
                failure_rate=stats.failures / stats.calls if stats.calls else 0.0,
                p95=stats.p95,
                since=utc(endpoint.since),
            )
        return found

    def incidents(self, open_only: bool = False) -> list[Incident]:
        """The incidents kept by the store (in memory while it is unreachable)."""
        if self._degraded and self._fallback is not None:
            return self._fallback.incidents(open_only)
        try:
            return self._store.incidents(open_only)
        except Exception:
            if self._fallback is None:
                raise
            return self._fallback.incidents(open_only)

    def flush(self, timeout: float = 5.0) -> bool:
        """Evaluate now on the monitor's thread, then wait up to ``timeout`` seconds for
        every sink to deliver what it has queued; whether all of it was done."""
        done = threading.Event()
        self._request(self._clock.monotonic(), self._clock.wall(), done)
        if not done.wait(timeout):
            return False
        return all(delivery.idle(timeout) for delivery in self._deliveries)

    def close(self, timeout: float = 2.0) -> None:
        """Stop the monitor's thread and the sinks' (alerts still queued are dropped)."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        for delivery in self._deliveries:
            delivery.close(timeout)
        if self._status is not None:
            self._status.close()
        self._store.close()


class _Kept(Exception):
    """The store's record is set aside: the fallback keeps the provider's incident."""


def _endpoint_key(key: str) -> str:
    """A configured key in its normal form; a host's default key (``"* host:port"``) as is."""
    if isinstance(key, str) and key.startswith("* ") and not key[2:].startswith("/"):
        return key
    return parse_endpoint_key(key).key


RANK_SEVERITY = {"warning": 1, "error": 2, "critical": 3}
