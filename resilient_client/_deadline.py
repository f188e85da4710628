"""The deadline room: how long a call may take, and what each attempt is given of it.

The outermost strategy. ``Timeouts.total`` is the call's deadline, over every attempt
and every wait; ``Timeouts.attempt`` caps one attempt; ``connect``/``read``/``write``/
``pool`` are httpx's per-phase timeouts for one attempt. Before each attempt the call
asks :func:`attempt_limit` what it may spend, and each phase is clipped to that limit
(:func:`clip`), so an attempt never runs past the deadline. Pure functions: the caller
passes the clock's reading in.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

__all__ = ["PHASES", "PhaseTable", "Timeouts", "attempt_limit", "clip", "phase_table"]

PHASES = ("connect", "read", "write", "pool")
_PHASE_SET = frozenset(PHASES)

# httpx's per-phase timeout dict, and its longest phase (``inf`` if one is unlimited).
PhaseTable = tuple[Mapping[str, float | None], float]


class Timeouts(BaseModel):
    """Timeouts in seconds, each positive and finite. ``None`` means no limit for that phase.

    ``connect``, ``read``, ``write`` and ``pool`` are httpx's per-phase timeouts for
    one attempt. ``attempt`` caps one attempt as a whole (connect to last body byte
    when the body is read by the pipeline). ``total`` is the call's deadline: all
    attempts and the waits between them; each attempt's timeouts are clipped to what
    is left of it, and when it runs out the call raises ``DeadlineExceeded``.
    An ``attempt`` cap above ``total`` can never apply: it is accepted (the deadline
    wins) with a ``UserWarning`` saying so.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    connect: float | None = 5.0
    read: float | None = 10.0
    write: float | None = 10.0
    pool: float | None = 5.0
    attempt: float | None = 10.0
    total: float | None = 30.0

    @field_validator("connect", "read", "write", "pool", "attempt", "total")
    @classmethod
    def _check_positive(cls, value: float | None, info: Any) -> float | None:
        # Not inf either (TOML's way to write a huge number): None is "no limit", and a
        # sync attempt's socket timeout of inf raises OverflowError, not a timeout.
        if value is not None and not 0 < value < math.inf:
            raise ValueError(
                f"{info.field_name} must be a positive, finite number of seconds or None, "
                f"got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _warn_contradiction(self) -> Timeouts:
        # Only when both were given: the defaults (10 s, 30 s) never contradict, and a
        # merge that changes one of them is checked on the merged value.
        given = self.model_fields_set
        if (
            {"attempt", "total"} <= given
            and self.attempt is not None
            and self.total is not None
            and self.attempt > self.total
        ):
            warnings.warn(
                f"Timeouts(attempt={self.attempt}, total={self.total}): the attempt cap "
                f"is longer than the deadline and can never apply",
                UserWarning,
                stacklevel=3,  # the caller of Timeouts(), past pydantic
            )
        return self


def phase_table(timeouts: Mapping[str, Any] | Timeouts) -> PhaseTable:
    """httpx's per-phase timeout dict, and its longest phase (``inf`` if one is unlimited)."""
    phases: Mapping[str, float | None]
    if type(timeouts) is dict and timeouts.keys() == _PHASE_SET:
        phases = timeouts  # httpx's own dict for an explicit timeout=: used as it is
    else:
        get = timeouts.get if isinstance(timeouts, Mapping) else timeouts.__getattribute__
        phases = {phase: get(phase) for phase in PHASES}
    values = phases.values()
    longest = math.inf if None in values else max(v for v in values if v is not None)
    return phases, longest


def attempt_limit(cap: float | None, deadline: float | None, now: float) -> float | None:
    """What the next attempt may spend: its ``cap``, or what is left of the ``deadline``
    if that is less (``None``: no limit). ``<= 0`` means the deadline has passed."""
    if deadline is None:
        return cap
    left = deadline - now
    return left if cap is None or left < cap else cap


def clip(table: PhaseTable, limit: float | None) -> Mapping[str, float | None]:
    """The per-phase timeouts of an attempt limited to ``limit`` seconds."""
    phases, longest = table
    if limit is None or limit >= longest:
        return phases  # nothing to clip: share the table
    return {
        phase: limit if value is None or value > limit else value for phase, value in phases.items()
    }
