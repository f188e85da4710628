"""What a replay decides, without I/O: which claimed entries are sent, what each answer
makes of an entry, and when a pending one is due again.

Both drivers (``Outbox.replay`` and ``Outbox.areplay``) run one :class:`ReplayPass` and
only claim, send, settle and call back; every decision is a method here.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from .._exceptions import ApiErrorMixin
from .._retry import Backoff, backoff_delay
from ..problems import ErrorCategory, Problem, parse_problem
from ._model import OutboxEntry, ReplayResult, utc

__all__ = ["REPLAY_BACKOFF", "ReplayPass", "Step", "held_endpoints", "outcome_of"]

REPLAY_BACKOFF = Backoff(initial=5.0, multiplier=2.0, max=300.0, jitter="equal")
"""Waits between replays of an entry whose provider still fails: 5 s, 10 s, 20 s, … up to
5 min, equal jitter (half fixed, so a fleet spreads out without ever retrying at once)."""


class Step(enum.Enum):
    """What to do with a claimed entry."""

    SEND = "send"
    EXPIRE = "expire"  # older than max_age: dead, not sent
    HOLD = "hold"  # its endpoint already failed in this pass: back to the store unsent
    LAPSED = "lapsed"  # our lease ran out before we got to it: another replayer may own it


@dataclass(frozen=True, slots=True)
class Outcome:
    """A send's outcome, reduced to what the decision needs."""

    status: int | None  # None: no response
    problem: Problem | None
    error: str | None  # the exception's type name, for no response
    retry_after: float | None


def outcome_of(result: Any) -> Outcome:
    """A response, an ``ApiError`` (its response) or any other exception, reduced."""
    if isinstance(result, ApiErrorMixin):
        result = result.response
    if isinstance(result, BaseException):
        hint = getattr(result, "retry_after", None)
        retry_after = float(hint) if isinstance(hint, int | float) else None
        return Outcome(None, None, type(result).__name__, retry_after)
    status = int(result.status_code)
    problem = parse_problem(result) if status >= 400 else None
    return Outcome(status, problem, None, None if problem is None else problem.retry_after)


def keeps_trying(status: int, problem: Problem) -> bool:
    """Whether an error answer leaves the entry pending: a retryable problem, a 409 (the
    key's first request still in progress, per the idempotency draft) or any throttling
    (a quota refills; the entry has until ``max_age``)."""
    return problem.retryable or status == 409 or problem.category is ErrorCategory.THROTTLED


def held_endpoints(snapshots: Iterable[Any]) -> frozenset[str]:
    """Endpoints whose breaker is open and not yet letting a probe through: the
    background replayer leaves their entries alone (breaker snapshots in, keys out)."""
    return frozenset(
        snapshot.endpoint
        for snapshot in snapshots
        if snapshot.state == "open" and (snapshot.retry_in or 0.0) > 0.0
    )


@dataclass(slots=True)
class ReplayPass:
    """One replay: its lease owner, what it has done, and the decisions along the way.

    ``limit``: entries to handle at most (``None``: all that are due); ``skip``: endpoints
    not to touch at all; ``batch``: entries claimed per store round trip.
    """

    max_age: float
    lease: float
    backoff: Backoff
    batch: int
    limit: int | None = None
    skip: frozenset[str] = frozenset()
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    result: ReplayResult = field(default_factory=ReplayResult)
    failing: set[str] = field(default_factory=set)
    handled: int = 0

    def claim_size(self) -> int:
        """How many entries to claim next (0: the pass is done)."""
        if self.limit is None:
            return self.batch
        return max(0, min(self.batch, self.limit - self.handled))

    def claim_args(self, now: float, size: int) -> dict[str, Any]:
        """Keyword arguments of the store's ``claim`` for the next batch."""
        return {
            "now": now,
            "until": now + self.lease,
            "owner": self.owner,
            "limit": size,
            "skip": self.skip | self.failing,
        }

    def step(self, entry: OutboxEntry, now: float, leased_until: float) -> Step:
        """What to do with a claimed ``entry`` at ``now``; our lease ends ``leased_until``."""
        if now >= leased_until:
            return Step.LAPSED
        if now - entry.parked_at.timestamp() > self.max_age:
            return Step.EXPIRE
        if entry.endpoint in self.failing:
            return Step.HOLD
        return Step.SEND

    def unsent(self, entry: OutboxEntry, step: Step, now: float) -> OutboxEntry | None:
        """The entry after a step that sends nothing (``None``: leave it as it is)."""
        if step is Step.EXPIRE:
            reason = f"older than max_age ({self.max_age:g} s); not sent"
            return replace(entry, state="dead", settled_at=utc(now), reason=reason)
        if step is Step.HOLD:
            return entry  # settled unchanged: lease released, still due
        return None

    def judge(self, entry: OutboxEntry, outcome: Outcome, now: float, rnd: float) -> OutboxEntry:
        """The entry after a replay send that ended in ``outcome``."""
        replays = entry.replays + 1
        status, problem = outcome.status, outcome.problem
        if status is not None and status < 400:
            return replace(entry, state="delivered", replays=replays, settled_at=utc(now))
        if status is not None and problem is not None and not keeps_trying(status, problem):
            return replace(
                entry,
                state="dead",
                replays=replays,
                settled_at=utc(now),
                last_error=f"status {status}",
                reason=f"status {status} is not retryable",
                problem=problem,
            )
        delay = backoff_delay(self.backoff, replays, None, rnd)
        if outcome.retry_after is not None:
            delay = max(delay, outcome.retry_after)
        return replace(
            entry,
            replays=replays,
            last_error=f"status {status}" if status is not None else str(outcome.error),
            next_replay_at=utc(now + delay),
        )

    def record(self, entry: OutboxEntry) -> None:
        """Count a settled entry in the result; a pending one marks its endpoint failing,
        so the rest of its entries wait for the next pass instead of hammering it."""
        self.handled += 1
        if entry.state == "delivered":
            self.result.delivered.append(entry)
        elif entry.state == "dead":
            self.result.dead.append(entry)
        else:
            self.result.pending.append(entry)
            self.failing.add(entry.endpoint)
