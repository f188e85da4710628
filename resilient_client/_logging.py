"""Log records the SDK writes: one per final failure, bounded under an outage.

Every call that ends in failure is logged once, through ``logging`` (logger
``resilient_client``), with structured fields in ``extra``: ``endpoint``, ``status``,
``category``, ``code``, ``request_id``, ``attempts``, ``correlation_id``, ``error``.
Levels follow severity: a call that recovered after retries is DEBUG, a final 4xx is
WARNING, a final 5xx or transport failure ERROR.

During an outage the same failure repeats for every call; the first one of each
``(endpoint, what)`` is logged, and the next one after ``interval`` seconds says how
many were suppressed in between, so log volume stays bounded whatever the call rate.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

from ._clock import Clock

__all__ = ["Episodes", "FailureLog", "logger"]

logger = logging.getLogger("resilient_client")
# A library does not print: without the application's own logging set up, records go
# nowhere (rather than to logging's last-resort stderr handler).
logger.addHandler(logging.NullHandler())

# Distinct (endpoint, what) pairs are bounded by configuration, but stay safe anyway.
_MAX_TRACKED = 4096


class Episodes:
    """When local refusals (budget, bulkhead, throttle) start an episode worth one line.

    An episode starts with a refusal after ``gap`` seconds without any; the refusals
    that follow it are not logged again. Not locked itself: its owner calls
    :meth:`refused` and :meth:`take` under its own lock, and may read :attr:`pending`
    without it (the common answer, "no", then costs no lock).
    """

    __slots__ = ("gap", "last", "pending")

    def __init__(self, gap: float) -> None:
        self.gap = gap
        self.last = -math.inf  # the last refusal
        self.pending = False  # an episode started and nobody has logged it yet

    def refused(self, now: float) -> None:
        """Count a refusal at ``now``."""
        if now - self.last >= self.gap:
            self.pending = True
        self.last = now

    def take(self) -> bool:
        """Whether the caller is the one to log the episode that started (once)."""
        if not self.pending:
            return False
        self.pending = False
        return True

    def ongoing(self, now: float) -> bool:
        """Whether refusals happened within the last ``gap`` seconds."""
        return now - self.last < self.gap


class FailureLog:
    """Rate-limited structured logging of final outcomes, per endpoint and failure."""

    def __init__(self, clock: Clock, interval: float = 10.0) -> None:
        self._clock = clock
        self._interval = interval
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], list[float]] = {}  # -> [last_logged, suppressed]

    def emit(self, level: int, message: str, fields: dict[str, Any]) -> None:
        """Log ``message`` with ``fields`` unless an identical failure was logged recently."""
        if not logger.isEnabledFor(level):
            return
        if level > logging.DEBUG:
            key = (str(fields.get("endpoint")), str(fields.get("status") or fields.get("error")))
            now = self._clock.monotonic()
            with self._lock:
                entry = self._seen.get(key)
                if entry is not None and now - entry[0] < self._interval:
                    entry[1] += 1
                    return
                suppressed = 0 if entry is None else int(entry[1])
                if len(self._seen) >= _MAX_TRACKED:
                    self._seen.clear()
                self._seen[key] = [now, 0]
            fields = {**fields, "suppressed": suppressed}
            if suppressed:
                message = f"{message} ({suppressed} identical failures suppressed)"
        logger.log(level, message, extra=fields)
